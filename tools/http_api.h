// The OpenAI-compatible API of `rotor serve`, apart from the HTTP server itself: parsing and
// checking request bodies, and building response bodies and stream chunks. Pure functions,
// so the tests can check them without a socket.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/sampler.h"
#include "tokenizer/chat_template.h"

namespace rotor {

// A refused request: HTTP status and an OpenAI-style error object.
class ApiError : public std::runtime_error {
 public:
  ApiError(int status, const std::string& message, std::string param = "",
           std::string code = "")
      : std::runtime_error(message), status_(status), param_(std::move(param)),
        code_(std::move(code)) {}
  int status() const { return status_; }
  nlohmann::json body() const;

 private:
  int status_;
  std::string param_, code_;
};

// {"error": {"message", "type", "param", "code"}}; type follows from the status.
nlohmann::json error_body(int status, const std::string& message, const std::string& param = "",
                          const std::string& code = "");

struct CompletionRequest {
  bool chat = true;                   // /v1/chat/completions (messages) or /v1/completions
  std::vector<ChatMessage> messages;  // chat
  std::string prompt;                 // completions
  SamplingParams sampling;
  bool seeded = false;
  int max_tokens = 0;                 // 0 = until the context is full
  std::vector<std::string> stop;
  bool stream = false;
  bool include_usage = false;         // stream_options.include_usage
};

// Throws ApiError(400) on a body that is not JSON, misses a required field, or has a known
// field of the wrong type or out of range. Unknown fields are ignored. `defaults` are the
// server's sampling settings.
CompletionRequest parse_completion_request(const std::string& body, bool chat,
                                           const SamplingParams& defaults);

struct Usage {
  int prompt_tokens = 0, completion_tokens = 0;
};

// Whole responses.
nlohmann::json completion_response(bool chat, const std::string& id, int64_t created,
                                   const std::string& model, const std::string& text,
                                   const std::string& finish_reason, const Usage& usage);
// One server-sent-event stream chunk: text (may be empty), finish_reason ("" while running),
// with role on the first chat chunk and usage when given.
nlohmann::json completion_chunk(bool chat, const std::string& id, int64_t created,
                                const std::string& model, const std::string& text,
                                const std::string& finish_reason, bool first,
                                const Usage* usage);
// "data: JSON\n\n".
std::string sse_event(const nlohmann::json& j);

}  // namespace rotor

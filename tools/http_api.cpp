#include "tools/http_api.h"

#include <limits>

namespace rotor {

using nlohmann::json;

namespace {

std::string error_type(int status) {
  switch (status) {
    case 401: return "authentication_error";
    case 404: return "not_found_error";
    case 413: return "invalid_request_error";
    default: break;
  }
  return status >= 500 ? "server_error" : "invalid_request_error";
}

[[noreturn]] void bad(const std::string& param, const std::string& message) {
  throw ApiError(400, message, param);
}

double number(const json& j, const char* name, double lo, double hi) {
  const json& v = j.at(name);
  if (!v.is_number()) bad(name, std::string("'") + name + "' must be a number");
  const double x = v.get<double>();
  if (!(x >= lo && x <= hi))
    bad(name, std::string("'") + name + "' must be between " + std::to_string(lo) + " and " +
                  std::to_string(hi));
  return x;
}

long long integer(const json& j, const char* name, long long lo, long long hi) {
  const json& v = j.at(name);
  if (!v.is_number_integer()) bad(name, std::string("'") + name + "' must be an integer");
  if (v.is_number_unsigned() && v.get<unsigned long long>() >
                                    static_cast<unsigned long long>(std::numeric_limits<long long>::max()))
    bad(name, std::string("'") + name + "' is out of range");
  const long long x = v.get<long long>();
  if (x < lo || x > hi)
    bad(name, std::string("'") + name + "' must be between " + std::to_string(lo) + " and " +
                  std::to_string(hi));
  return x;
}

bool has(const json& j, const char* name) { return j.contains(name) && !j.at(name).is_null(); }

// A message's content: a string, or an array of {"type": "text", "text": ...} parts.
std::string content_text(const json& c) {
  if (c.is_string()) return c.get<std::string>();
  if (c.is_array()) {
    std::string out;
    for (const json& part : c) {
      if (!part.is_object() || part.value("type", json()) != "text" || !part.contains("text") ||
          !part["text"].is_string())
        bad("messages", "message content parts must be {\"type\": \"text\", \"text\": string}");
      out += part["text"].get<std::string>();
    }
    return out;
  }
  bad("messages", "message content must be a string or an array of text parts");
}

}  // namespace

json error_body(int status, const std::string& message, const std::string& param,
                const std::string& code) {
  return {{"error",
           {{"message", message},
            {"type", error_type(status)},
            {"param", param.empty() ? json() : json(param)},
            {"code", code.empty() ? json() : json(code)}}}};
}

json ApiError::body() const { return error_body(status_, what(), param_, code_); }

CompletionRequest parse_completion_request(const std::string& body, bool chat,
                                           const SamplingParams& defaults) {
  const json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) bad("", "the request body is not valid JSON");
  if (!j.is_object()) bad("", "the request body must be a JSON object");

  CompletionRequest r;
  r.chat = chat;
  r.sampling = defaults;
  if (chat) {
    if (!j.contains("messages")) bad("messages", "'messages' is required");
    const json& ms = j["messages"];
    if (!ms.is_array() || ms.empty()) bad("messages", "'messages' must be a non-empty array");
    for (const json& m : ms) {
      if (!m.is_object()) bad("messages", "each message must be an object");
      if (!m.contains("role") || !m["role"].is_string())
        bad("messages", "each message needs a string 'role'");
      const std::string role = m["role"];
      if (role != "system" && role != "user" && role != "assistant" && role != "developer")
        bad("messages", "unsupported message role '" + role + "' (system, user, assistant)");
      if (!m.contains("content")) bad("messages", "each message needs 'content'");
      r.messages.push_back({role == "developer" ? "system" : role, content_text(m["content"])});
    }
    if (r.messages.back().role != "user")
      bad("messages", "the last message must be the user's");
  } else {
    if (!j.contains("prompt")) bad("prompt", "'prompt' is required");
    const json& p = j["prompt"];
    if (p.is_string()) {
      r.prompt = p.get<std::string>();
    } else if (p.is_array() && p.size() == 1 && p[0].is_string()) {
      r.prompt = p[0].get<std::string>();
    } else {
      bad("prompt", "'prompt' must be a string");
    }
  }
  if (has(j, "model") && !j["model"].is_string()) bad("model", "'model' must be a string");
  if (has(j, "temperature")) r.sampling.temperature = static_cast<float>(number(j, "temperature", 0, 2));
  if (has(j, "top_p")) r.sampling.top_p = static_cast<float>(number(j, "top_p", 1e-6, 1));
  if (has(j, "top_k")) r.sampling.top_k = static_cast<int>(integer(j, "top_k", 0, 1 << 24));
  if (has(j, "min_p")) r.sampling.min_p = static_cast<float>(number(j, "min_p", 0, 1));
  if (has(j, "repetition_penalty"))
    r.sampling.repeat_penalty = static_cast<float>(number(j, "repetition_penalty", 0.01, 100));
  if (has(j, "seed")) {
    r.sampling.seed = static_cast<uint64_t>(
        integer(j, "seed", std::numeric_limits<long long>::min(), std::numeric_limits<long long>::max()));
    r.seeded = true;
  }
  const char* max_name = has(j, "max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
  if (has(j, max_name)) r.max_tokens = static_cast<int>(integer(j, max_name, 1, 1 << 24));
  if (has(j, "n") && integer(j, "n", 1, 1) != 1) bad("n", "only n = 1 is supported");
  if (has(j, "stop")) {
    const json& s = j["stop"];
    if (s.is_string()) {
      r.stop.push_back(s.get<std::string>());
    } else if (s.is_array() && s.size() <= 4) {
      for (const json& e : s) {
        if (!e.is_string()) bad("stop", "'stop' must be a string or an array of strings");
        r.stop.push_back(e.get<std::string>());
      }
    } else {
      bad("stop", "'stop' must be a string or an array of up to 4 strings");
    }
  }
  if (has(j, "stream")) {
    if (!j["stream"].is_boolean()) bad("stream", "'stream' must be a boolean");
    r.stream = j["stream"].get<bool>();
  }
  if (has(j, "stream_options")) {
    const json& so = j["stream_options"];
    if (!so.is_object()) bad("stream_options", "'stream_options' must be an object");
    if (has(so, "include_usage")) {
      if (!so["include_usage"].is_boolean())
        bad("stream_options", "'stream_options.include_usage' must be a boolean");
      r.include_usage = so["include_usage"].get<bool>();
    }
  }
  return r;
}

namespace {
json usage_json(const Usage& u) {
  return {{"prompt_tokens", u.prompt_tokens},
          {"completion_tokens", u.completion_tokens},
          {"total_tokens", u.prompt_tokens + u.completion_tokens}};
}
}  // namespace

json completion_response(bool chat, const std::string& id, int64_t created,
                         const std::string& model, const std::string& text,
                         const std::string& finish_reason, const Usage& usage) {
  json choice = {{"index", 0}, {"finish_reason", finish_reason}, {"logprobs", nullptr}};
  if (chat)
    choice["message"] = {{"role", "assistant"}, {"content", text}};
  else
    choice["text"] = text;
  return {{"id", id},
          {"object", chat ? "chat.completion" : "text_completion"},
          {"created", created},
          {"model", model},
          {"choices", json::array({choice})},
          {"usage", usage_json(usage)}};
}

json completion_chunk(bool chat, const std::string& id, int64_t created, const std::string& model,
                      const std::string& text, const std::string& finish_reason, bool first,
                      const Usage* usage) {
  json choice = {{"index", 0},
                 {"finish_reason", finish_reason.empty() ? json() : json(finish_reason)},
                 {"logprobs", nullptr}};
  if (chat) {
    json delta = json::object();
    if (first) delta["role"] = "assistant";
    if (!text.empty() || (first && finish_reason.empty())) delta["content"] = text;
    choice["delta"] = delta;
  } else {
    choice["text"] = text;
  }
  json out = {{"id", id},
              {"object", chat ? "chat.completion.chunk" : "text_completion"},
              {"created", created},
              {"model", model},
              {"choices", json::array({choice})}};
  if (usage) out["usage"] = usage_json(*usage);
  return out;
}

std::string sse_event(const json& j) {
  return "data: " + j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n";
}

}  // namespace rotor

// rotor serve: an OpenAI-compatible HTTP server on one model.
//
// httplib's thread pool accepts connections; generation is serialized by one mutex around the
// model's single CachedSession, so concurrent requests queue and never share state (a request
// whose prompt shares a prefix with the previous one reuses that part of the KV cache). A
// streaming client that goes away is noticed at the next write and its answer stops, freeing
// the model. SIGTERM or SIGINT stops the server (answers in progress end) and exits 0.
#include <httplib.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <memory>
#include <mutex>
#include <random>
#include <thread>

#include "engine/error.h"
#include "tools/chat_session.h"
#include "tools/cli_model.h"
#include "tools/commands.h"
#include "tools/http_api.h"
#include "tools/sampling_options.h"
#include "tools/template_options.h"

namespace rotor {

namespace {

using nlohmann::json;

std::atomic<bool> g_stopping{false};
int g_signal_pipe[2] = {-1, -1};

void on_stop_signal(int sig) {
  const unsigned char b = static_cast<unsigned char>(sig);
  ssize_t ignored = ::write(g_signal_pipe[1], &b, 1);
  (void)ignored;
}

struct ServerState {
  LoadedModel lm;
  ChatTemplate tmpl;
  std::string model_name;
  SamplingParams defaults;
  std::string api_key;
  int token_delay_ms = 0;
  std::mutex model_mu;  // held while a request uses the model
  std::unique_ptr<CachedSession> cache;
  std::atomic<long> next_id{0};
  std::mutex rng_mu;
  std::mt19937_64 rng{std::random_device{}()};
};

void send_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

void send_error(httplib::Response& res, const ApiError& e) { send_json(res, e.status(), e.body()); }

std::string basename_of(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// Everything one completion needs, shared with the streaming callback.
struct Job {
  bool chat = true;
  std::vector<int> prompt;
  SamplingParams sampling;
  AnswerOptions opts;
  std::string id;
  int64_t created = 0;
};

void handle_completion(ServerState& S, bool chat, const httplib::Request& req,
                       httplib::Response& res) {
  auto job = std::make_shared<Job>();
  CompletionRequest r;
  try {
    r = parse_completion_request(req.body, chat, S.defaults);
    const ModelConfig& c = S.lm.model->config;
    if (chat) {
      job->prompt = tokenize_chat(*S.lm.tokenizer, S.tmpl.render(r.messages, true), c.bos_id,
                                  c.eos_id);
    } else {
      job->prompt = {c.bos_id};
      for (int id : S.lm.tokenizer->encode(r.prompt)) job->prompt.push_back(id);
      job->opts.at_text_start = r.prompt.empty();
    }
  } catch (const ApiError& e) {
    send_error(res, e);
    return;
  } catch (const Error& e) {
    send_error(res, ApiError(400, e.what(), chat ? "messages" : "prompt"));
    return;
  }
  const int ctx = S.cache->ctx();
  if (static_cast<int>(job->prompt.size()) > ctx) {
    send_error(res, ApiError(400,
                             "the prompt is " + std::to_string(job->prompt.size()) +
                                 " tokens, longer than the context of " + std::to_string(ctx) +
                                 " tokens",
                             chat ? "messages" : "prompt", "context_length_exceeded"));
    return;
  }
  if (!r.seeded) {
    std::lock_guard<std::mutex> lock(S.rng_mu);
    r.sampling.seed = S.rng();
  }
  job->chat = chat;
  job->sampling = r.sampling;
  job->opts.max_tokens = r.max_tokens > 0 ? r.max_tokens : ctx;
  job->opts.stop = r.stop;
  if (chat)
    for (auto& s : S.tmpl.stop_strings()) job->opts.stop.push_back(s);
  job->id = (chat ? "chatcmpl-" : "cmpl-") + std::to_string(++S.next_id);
  job->created = static_cast<int64_t>(std::time(nullptr));
  auto finish = [](const Answer& a) {
    return a.finish_reason == "cancelled" ? std::string("stop") : a.finish_reason;
  };

  if (!r.stream) {
    Answer a;
    {
      std::lock_guard<std::mutex> lock(S.model_mu);
      Sampler sampler(job->sampling);
      job->opts.cancelled = [] { return g_stopping.load(); };
      a = S.cache->answer(job->prompt, sampler, job->opts, nullptr);
    }
    const Usage usage{a.prompt_tokens, static_cast<int>(a.tokens.size())};
    send_json(res, 200,
              completion_response(chat, job->id, job->created, S.model_name, a.text, finish(a),
                                  usage));
    return;
  }

  const bool include_usage = r.include_usage;
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream", [&S, job, include_usage, finish](size_t, httplib::DataSink& sink) {
        bool gone = false;
        auto write = [&](const std::string& s) {
          if (!gone && !sink.write(s.data(), s.size())) gone = true;
        };
        std::lock_guard<std::mutex> lock(S.model_mu);
        const bool chat_job = job->chat;
        write(sse_event(completion_chunk(chat_job, job->id, job->created, S.model_name, "", "",
                                         true, nullptr)));
        AnswerOptions opts = job->opts;
        opts.cancelled = [&] { return gone || g_stopping.load(); };
        Sampler sampler(job->sampling);
        Answer a;
        try {
          a = S.cache->answer(job->prompt, sampler, opts, [&](const std::string& piece) {
            write(sse_event(completion_chunk(chat_job, job->id, job->created, S.model_name,
                                             piece, "", false, nullptr)));
            if (S.token_delay_ms > 0)
              std::this_thread::sleep_for(std::chrono::milliseconds(S.token_delay_ms));
          });
        } catch (const std::exception& e) {  // the headers are gone: report in the stream
          S.cache->reset();
          write(sse_event(error_body(500, e.what())));
          write("data: [DONE]\n\n");
          if (!gone) sink.done();
          return !gone;
        }
        if (gone) {
          std::fprintf(stderr, "rotor serve: %s: client gone after %zu tokens; answer stopped\n",
                       job->id.c_str(), a.tokens.size());
          return false;
        }
        const Usage usage{a.prompt_tokens, static_cast<int>(a.tokens.size())};
        write(sse_event(completion_chunk(chat_job, job->id, job->created, S.model_name, "",
                                         finish(a), false, include_usage ? nullptr : &usage)));
        if (include_usage) {
          json u = completion_chunk(chat_job, job->id, job->created, S.model_name, "", "", false,
                                    &usage);
          u["choices"] = json::array();
          write(sse_event(u));
        }
        write("data: [DONE]\n\n");
        if (!gone) sink.done();
        return !gone;
      });
}

}  // namespace

int cmd_serve(int argc, char** argv) {
  Args args("serve", "-m MODEL [--host H] [--port P] [options]",
            "An OpenAI-compatible HTTP server: POST /v1/chat/completions, POST /v1/completions\n"
            "(both with \"stream\": true for server-sent events), GET /v1/models, GET /health.\n"
            "Requests are answered one at a time (the others wait). SIGTERM stops it.");
  add_model_options(args);
  add_template_options(args);
  args.option("host", 0, "HOST", "address to listen on", "127.0.0.1 (loopback only)");
  args.option("port", 0, "PORT", "port to listen on; 0 picks a free one (printed)", "8080");
  args.option("api-key", 0, "KEY", "require 'Authorization: Bearer KEY' (not on /health)",
              "none");
  args.option("ctx", 'c', "N", "context length in tokens", "the model's max positions");
  args.option("max-body", 0, "BYTES", "largest request body accepted", "1048576");
  args.option("http-threads", 0, "N", "connections handled at once", "16");
  args.option("token-delay-ms", 0, "MS", "pause after each streamed token (for testing)", "0");
  add_sampling_options(args);
  if (!args.parse(argc, argv)) return 0;

  const std::string host = args.get("host", "127.0.0.1");
  const int port = static_cast<int>(args.get_int("port", 8080, 0, 65535));
  const int ctx = static_cast<int>(args.get_int("ctx", 0, 0, 1 << 24));
  const size_t max_body = static_cast<size_t>(args.get_int("max-body", 1 << 20, 1, 1LL << 32));
  const int http_threads = static_cast<int>(args.get_int("http-threads", 16, 1, 1024));
  check_template_option(args);

  // SIGTERM / SIGINT may land on any thread (OpenBLAS starts its own before main): the
  // handler only writes to a pipe, and a watcher thread stops the server.
  if (::pipe(g_signal_pipe) != 0) throw Error("cannot create a pipe", kExitInternal);
  struct sigaction sa = {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGINT, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  ServerState S;
  S.defaults = sampling_from_args(args);
  S.api_key = args.get("api-key");
  S.token_delay_ms = static_cast<int>(args.get_int("token-delay-ms", 0, 0, 60000));
  S.lm = load_model_from_args(args);
  std::string why;
  S.tmpl = template_from_args(args, *S.lm.model, &why);
  S.model_name = basename_of(S.lm.model->path);
  S.cache = std::make_unique<CachedSession>(*S.lm.model, *S.lm.tokenizer, ctx);

  httplib::Server svr;
  svr.new_task_queue = [http_threads] { return new httplib::ThreadPool(http_threads); };
  svr.set_payload_max_length(max_body);
  svr.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return;
    std::string message = "HTTP error " + std::to_string(res.status);
    if (res.status == 404) message = "no such endpoint";
    if (res.status == 413) message = "the request body is too large";
    if (res.status == 400) message = "malformed request";
    send_json(res, res.status, error_body(res.status, message));
  });
  svr.set_exception_handler([](const httplib::Request&, httplib::Response& res,
                               std::exception_ptr ep) {
    std::string message = "internal error";
    int status = 500;
    try {
      std::rethrow_exception(ep);
    } catch (const Error& e) {
      message = e.what();
      status = e.code() == kExitBadInput ? 400 : 500;
    } catch (const std::exception& e) {
      message = e.what();
    } catch (...) {
    }
    send_json(res, status, error_body(status, message));
  });
  svr.set_pre_routing_handler([&S](const httplib::Request& req, httplib::Response& res) {
    if (S.api_key.empty() || req.path == "/health") return httplib::Server::HandlerResponse::Unhandled;
    if (req.get_header_value("Authorization") == "Bearer " + S.api_key)
      return httplib::Server::HandlerResponse::Unhandled;
    send_json(res, 401, error_body(401, "missing or wrong API key (Authorization: Bearer KEY)",
                                   "", "invalid_api_key"));
    return httplib::Server::HandlerResponse::Handled;
  });

  svr.Get("/health", [](const httplib::Request&, httplib::Response& res) {
    send_json(res, 200, {{"status", "ok"}});
  });
  svr.Get("/v1/models", [&S](const httplib::Request&, httplib::Response& res) {
    send_json(res, 200,
              {{"object", "list"},
               {"data", json::array({{{"id", S.model_name},
                                      {"object", "model"},
                                      {"created", 0},
                                      {"owned_by", "rotor"}}})}});
  });
  svr.Post("/v1/chat/completions", [&S](const httplib::Request& req, httplib::Response& res) {
    handle_completion(S, true, req, res);
  });
  svr.Post("/v1/completions", [&S](const httplib::Request& req, httplib::Response& res) {
    handle_completion(S, false, req, res);
  });

  int bound = port;
  if (port == 0) {
    bound = svr.bind_to_any_port(host);
    if (bound < 0) throw Error("cannot listen on " + host + " (any port)");
  } else if (!svr.bind_to_port(host, port)) {
    throw Error("cannot listen on " + host + ":" + std::to_string(port));
  }
  std::fprintf(stderr,
               "rotor serve: listening on http://%s:%d (model %s, template %s from %s, ctx %d)\n",
               host.c_str(), bound, S.model_name.c_str(), S.tmpl.name().c_str(), why.c_str(),
               S.cache->ctx());
  std::fflush(stderr);

  std::thread([&svr] {
    unsigned char sig = 0;
    while (::read(g_signal_pipe[0], &sig, 1) < 0 && errno == EINTR) {
    }
    std::fprintf(stderr, "rotor serve: %s, stopping\n", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    g_stopping = true;
    svr.stop();
  }).detach();

  const bool ok = svr.listen_after_bind();
  if (!ok && !g_stopping) throw Error("the server stopped unexpectedly", kExitInternal);
  std::fprintf(stderr, "rotor serve: stopped\n");
  return 0;
}

}  // namespace rotor

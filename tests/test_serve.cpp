// rotor serve as clients see it: a server started on a free loopback port, talked to with curl
// and with the OpenAI client library under Node.js (tests/server/, installed by `npm ci
// --prefix tests/server`), concurrent and disconnecting clients, malformed requests, and a
// clean exit on SIGTERM.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "tests/helpers.h"

using namespace rotor::test;
using nlohmann::json;

namespace {

const char kKey[] = "test-key";

std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// `rotor serve` on a free port, stopped (SIGTERM, then SIGKILL if it hangs) at destruction.
class ServerProcess {
 public:
  explicit ServerProcess(const std::vector<std::string>& extra) {
    std::vector<std::string> argv = {rotor_bin(), "serve", "-m", llama2c_path("stories260K"),
                                     "--port", "0", "--api-key", kKey};
    argv.insert(argv.end(), extra.begin(), extra.end());
    log_ = dir_.file("log");
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      const int fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      std::vector<char*> args;
      for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    // The port is in the first line of the log; then /health must answer.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      const std::string l = log();
      const size_t at = l.find("http://127.0.0.1:");
      if (at != std::string::npos) {
        port_ = std::atoi(l.c_str() + at + 17);
        if (port_ > 0) break;
      }
      int status;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        FAIL("rotor serve exited at start: " << l);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    REQUIRE_MESSAGE(port_ > 0, "no port in the log: " << log());
    base_ = "http://127.0.0.1:" + std::to_string(port_);
  }
  ~ServerProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  // SIGTERM; the exit status (or -1 if it had to be killed after 30 s).
  int stop() {
    ::kill(pid_, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    int status = 0;
    while (std::chrono::steady_clock::now() < deadline) {
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return -1;
  }
  std::string log() const {
    try {
      return read_file(log_);
    } catch (...) {
      return "";
    }
  }
  const std::string& base() const { return base_; }
  const TempDir& dir() const { return dir_; }

 private:
  TempDir dir_;
  std::string log_, base_;
  pid_t pid_ = -1;
  int port_ = 0;
};

struct Http {
  int status = 0;
  std::string body;
  json j() const { return json::parse(body); }
};

std::string run_shell(const std::string& cmd) {
  FILE* p = ::popen(cmd.c_str(), "r");
  REQUIRE(p);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  ::pclose(p);
  return out;
}

// The curl command for one request (body "" = GET); prints the body, then the status on the
// last line.
std::string curl_cmd(const ServerProcess& s, const std::string& path, const std::string& body,
                     bool auth = true, const std::string& extra = "") {
  std::string cmd = "curl -s -N --max-time 120 -w '\\n%{http_code}' " + extra + " ";
  if (auth) cmd += "-H 'Authorization: Bearer " + std::string(kKey) + "' ";
  if (!body.empty()) cmd += "-H 'Content-Type: application/json' --data-binary " + quote(body) + " ";
  return cmd + quote(s.base() + path);
}

Http parse_output(const std::string& out) {
  Http h;
  const size_t nl = out.rfind('\n');
  REQUIRE(nl != std::string::npos);
  h.status = std::atoi(out.c_str() + nl + 1);
  h.body = out.substr(0, nl);
  return h;
}

Http curl(const ServerProcess& s, const std::string& path, const std::string& body = "",
          bool auth = true) {
  return parse_output(run_shell(curl_cmd(s, path, body, auth)));
}

// The text and the last chunk of a server-sent-event stream.
struct Stream {
  std::string text;
  json last;  // the last JSON chunk
  int chunks = 0;
  bool done = false;
};
Stream parse_sse(const std::string& body, bool chat) {
  Stream st;
  std::istringstream in(body);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("data: ", 0) != 0) continue;
    const std::string data = line.substr(6);
    if (data == "[DONE]") {
      st.done = true;
      continue;
    }
    json c = json::parse(data);
    ++st.chunks;
    if (!c["choices"].empty()) {
      const json& ch = c["choices"][0];
      if (chat && ch["delta"].contains("content")) st.text += ch["delta"]["content"].get<std::string>();
      if (!chat) st.text += ch["text"].get<std::string>();
    }
    st.last = c;
  }
  return st;
}

std::string chat_body(const std::string& user, int max_tokens, bool stream, int seed = -1) {
  json b = {{"model", "rotor"},
            {"messages", {{{"role", "user"}, {"content", user}}}},
            {"max_tokens", max_tokens},
            {"stream", stream}};
  if (seed < 0)
    b["temperature"] = 0;
  else
    b["seed"] = seed;
  return b.dump();
}

}  // namespace

TEST_CASE("serve: endpoints, streaming, the OpenAI client, concurrency, errors, SIGTERM") {
  ServerProcess server({"--max-body", "65536", "--token-delay-ms", "2"});

  SUBCASE("health, models, and the API key") {
    Http h = curl(server, "/health", "", false);
    CHECK(h.status == 200);
    CHECK(h.j()["status"] == "ok");
    Http m = curl(server, "/v1/models");
    CHECK(m.status == 200);
    CHECK(m.j()["data"][0]["id"] == "stories260K.bin");
    Http no_key = curl(server, "/v1/models", "", false);
    CHECK(no_key.status == 401);
    CHECK(no_key.j()["error"]["type"] == "authentication_error");
  }

  SUBCASE("completions match rotor run; chat streams what it answers whole") {
    CliResult run = run_rotor({"run", "-m", llama2c_path("stories260K"), "-p", "Once upon a time",
                               "-n", "20", "--temp", "0", "--json"});
    REQUIRE(run.exit_code == 0);
    const json rj = json::parse(run.out);
    Http c = curl(server, "/v1/completions",
                  R"({"prompt": "Once upon a time", "max_tokens": 20, "temperature": 0})");
    REQUIRE_MESSAGE(c.status == 200, c.body);
    const json cj = c.j();
    CHECK(cj["object"] == "text_completion");
    CHECK(cj["choices"][0]["text"] == rj["text"]);
    CHECK(cj["choices"][0]["finish_reason"] == "length");
    CHECK(cj["usage"]["prompt_tokens"] == rj["prompt_tokens"].size());
    CHECK(cj["usage"]["completion_tokens"] == 20);
    CHECK(cj["usage"]["total_tokens"] == rj["prompt_tokens"].size() + 20);

    Http stop = curl(server, "/v1/completions",
                     R"({"prompt": "Once upon a time", "max_tokens": 20, "temperature": 0,
                         "stop": ["little"]})");
    REQUIRE(stop.status == 200);
    CHECK(stop.j()["choices"][0]["finish_reason"] == "stop");
    const std::string full = rj["text"];
    CHECK(stop.j()["choices"][0]["text"] == full.substr(0, full.find("little")));

    Http whole = curl(server, "/v1/chat/completions", chat_body("The dog said", 24, false));
    REQUIRE_MESSAGE(whole.status == 200, whole.body);
    const json wj = whole.j();
    CHECK(wj["object"] == "chat.completion");
    CHECK(wj["choices"][0]["message"]["role"] == "assistant");
    const std::string text = wj["choices"][0]["message"]["content"];
    CHECK(!text.empty());

    Http streamed = curl(server, "/v1/chat/completions", chat_body("The dog said", 24, true));
    REQUIRE(streamed.status == 200);
    Stream st = parse_sse(streamed.body, true);
    CHECK(st.done);
    CHECK(st.text == text);
    CHECK(st.chunks >= 3);
    CHECK(st.last["object"] == "chat.completion.chunk");
    CHECK(st.last["choices"][0]["finish_reason"] == wj["choices"][0]["finish_reason"]);
    CHECK(st.last["usage"] == wj["usage"]);

    Http cs = curl(server, "/v1/completions",
                   R"({"prompt": "Once upon a time", "max_tokens": 20, "temperature": 0,
                       "stream": true})");
    CHECK(parse_sse(cs.body, false).text == rj["text"]);
  }

  SUBCASE("the OpenAI client library (Node.js)") {
    // The checkout: the directory above the one holding the rotor binary (build/ or build-san/).
    std::string root = rotor_bin();
    for (int up = 0; up < 2; ++up) root = root.substr(0, root.rfind('/'));
    const std::string dir = root + "/tests/server";
    REQUIRE_MESSAGE(run_shell("test -d " + quote(dir + "/node_modules/openai") + " && echo yes") ==
                        "yes\n",
                    "tests/server/node_modules is missing: run `npm ci --prefix tests/server`");
    const std::string out = run_shell("cd " + quote(dir) + " && timeout 120 node openai_client.mjs " +
                                      quote(server.base() + "/v1") + " " + kKey + " 2>&1");
    json j;
    REQUIRE_NOTHROW_MESSAGE(j = json::parse(out), out);
    CHECK(j["models"] == json::array({"stories260K.bin"}));
    CHECK(j["chat"]["role"] == "assistant");
    CHECK(j["chat"]["usage"]["completion_tokens"] == 16);
    CHECK(j["chat"]["finish_reason"] == "length");
    CHECK(j["stream"]["text"] == j["chat"]["text"]);
    CHECK(j["stream"]["usage"] == j["chat"]["usage"]);
    CHECK(j["stream"]["finish_reason"] == "length");
    CHECK(j["stream"]["chunks"].get<int>() >= 3);
    Http c = curl(server, "/v1/completions",
                  R"({"prompt": "Once upon a time", "max_tokens": 16, "temperature": 0})");
    CHECK(j["completion"]["text"] == c.j()["choices"][0]["text"]);
    CHECK(j["error"]["status"] == 400);
    CHECK(j["error"]["type"] == "invalid_request_error");
    CHECK(j["error"]["param"] == "messages");
  }

  SUBCASE("8 concurrent clients get what each would get alone") {
    const std::vector<std::string> prompts = {"Once upon a time", "The dog said", "Lily went",
                                              "The sun was", "Tom and Sam", "A big cat",
                                              "One day", "The bird sang"};
    std::vector<std::string> alone;
    for (size_t i = 0; i < prompts.size(); ++i) {
      Http h = curl(server, "/v1/chat/completions", chat_body(prompts[i], 30, false, int(i)));
      REQUIRE(h.status == 200);
      alone.push_back(h.j()["choices"][0]["message"]["content"]);
    }
    // All at once, half of them streaming.
    std::string script;
    for (size_t i = 0; i < prompts.size(); ++i)
      script += curl_cmd(server, "/v1/chat/completions", chat_body(prompts[i], 30, i % 2, int(i))) +
                " > " + quote(server.dir().file("c" + std::to_string(i))) + " &\n";
    script += "wait\n";
    run_shell(script);
    for (size_t i = 0; i < prompts.size(); ++i) {
      CAPTURE(i);
      Http h = parse_output(read_file(server.dir().file("c" + std::to_string(i))));
      REQUIRE(h.status == 200);
      const std::string text = i % 2 ? parse_sse(h.body, true).text
                                     : h.j()["choices"][0]["message"]["content"].get<std::string>();
      CHECK(text == alone[i]);
    }
  }

  SUBCASE("a client that disconnects mid-stream frees the model") {
    // 400 tokens at 2 ms each would take 0.8 s; the client leaves after 0.3 s.
    const auto t0 = std::chrono::steady_clock::now();
    run_shell(curl_cmd(server, "/v1/completions",
                       R"({"prompt": "Once", "max_tokens": 400, "temperature": 0, "stream": true})",
                       true, "--max-time 0.3") + " > /dev/null");
    Http next = curl(server, "/v1/completions",
                     R"({"prompt": "Once upon a time", "max_tokens": 4, "temperature": 0})");
    CHECK(next.status == 200);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    CAPTURE(seconds);
    const std::string log = server.log();
    const size_t at = log.find("client gone after ");
    REQUIRE_MESSAGE(at != std::string::npos, log);
    CHECK(std::atoi(log.c_str() + at + 18) < 400);  // stopped early
  }

  SUBCASE("malformed requests get a 4xx with an OpenAI error object") {
    struct Case {
      const char* path;
      std::string body;
      int status;
      const char* param;
    };
    const std::vector<Case> cases = {
        {"/v1/chat/completions", "{not json", 400, nullptr},
        {"/v1/chat/completions", "[1, 2]", 400, nullptr},
        {"/v1/chat/completions", R"({"max_tokens": 4})", 400, "messages"},
        {"/v1/chat/completions", R"({"messages": "hello"})", 400, "messages"},
        {"/v1/chat/completions", R"({"messages": [{"role": "user"}]})", 400, "messages"},
        {"/v1/chat/completions", R"({"messages": [{"role": "wizard", "content": "x"}]})", 400,
         "messages"},
        {"/v1/chat/completions",
         R"({"messages": [{"role": "user", "content": "x"}], "temperature": "hot"})", 400,
         "temperature"},
        {"/v1/chat/completions",
         R"({"messages": [{"role": "user", "content": "x"}], "max_tokens": -3})", 400,
         "max_tokens"},
        {"/v1/chat/completions",
         R"({"messages": [{"role": "user", "content": "x"}], "stream": "yes"})", 400, "stream"},
        {"/v1/chat/completions",
         R"({"messages": [{"role": "user", "content": "x"}], "stop": 7})", 400, "stop"},
        {"/v1/completions", R"({"prompt": 42})", 400, "prompt"},
        {"/v1/completions", R"({"prompt": "x", "top_p": 5})", 400, "top_p"},
    };
    for (const Case& c : cases) {
      CAPTURE(c.body);
      Http h = curl(server, c.path, c.body);
      CHECK(h.status == c.status);
      json j;
      REQUIRE_NOTHROW_MESSAGE(j = h.j(), h.body);
      CHECK(j["error"]["type"] == "invalid_request_error");
      CHECK(j["error"]["message"].is_string());
      if (c.param) CHECK(j["error"]["param"] == c.param);
    }
    // Unknown fields are ignored.
    CHECK(curl(server, "/v1/completions", R"({"prompt": "x", "max_tokens": 2, "frobnicate": [1]})")
              .status == 200);
    // A prompt longer than the context (512 tokens).
    std::string long_text;
    for (int i = 0; i < 700; ++i) long_text += "cat ";
    Http too_long = curl(server, "/v1/completions", json({{"prompt", long_text}}).dump());
    CHECK(too_long.status == 400);
    CHECK(too_long.j()["error"]["code"] == "context_length_exceeded");
    // A body over --max-body.
    Http big = curl(server, "/v1/completions",
                    json({{"prompt", std::string(100000, 'a')}}).dump());
    CHECK(big.status == 413);
    CHECK(big.j()["error"]["type"] == "invalid_request_error");
    Http nowhere = curl(server, "/v1/nothing", "{}");
    CHECK(nowhere.status == 404);
    CHECK(nowhere.j()["error"]["message"].is_string());
    // Still serving.
    CHECK(curl(server, "/health", "", false).status == 200);
  }

  CHECK(server.stop() == 0);
  CHECK(server.log().find("rotor serve: stopped") != std::string::npos);
}

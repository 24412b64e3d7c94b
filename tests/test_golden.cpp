// Every case of ../shared/golden (an independent float64 reference): the prompt encodes to the
// listed ids, greedy generation reproduces every listed token, and the logits match at every
// position through both the prefill and the decode path; with the checkpoint mapped and read
// into memory (--no-mmap).
#include <dirent.h>
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "engine/generate.h"
#include "engine/import/load_model.h"
#include "engine/session.h"
#include "tests/helpers.h"
#include "tokenizer/tokenizer.h"

using namespace rotor;
using namespace rotor::test;

namespace {

std::vector<std::string> golden_models() {
  std::vector<std::string> names;
  DIR* d = ::opendir((shared_dir() + "/golden").c_str());
  REQUIRE_MESSAGE(d != nullptr, "no golden directory under " << shared_dir());
  while (dirent* e = ::readdir(d))
    if (e->d_name[0] != '.') names.push_back(e->d_name);
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

float max_abs_diff(const float* a, const float* b, size_t n) {
  float m = 0.0f;
  for (size_t i = 0; i < n; ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

}  // namespace

TEST_CASE("golden: tokens, greedy continuations and logits match the float64 reference") {
  constexpr float kTolerance = 1e-4f;
  const std::vector<std::string> models = golden_models();
  REQUIRE(models.size() >= 2);
  for (const std::string& name : models)
    for (const FileAccess access : {FileAccess::kMap, FileAccess::kRead}) {
      CAPTURE(name);
      CAPTURE(access == FileAccess::kMap ? "mapped" : "read");
      const std::string dir = shared_dir() + "/golden/" + name;
      const auto golden = nlohmann::json::parse(read_file(dir + "/golden.json"));
      LoadOptions options;
      options.access = access;
      auto model = load_model(llama2c_path(name), options);
      Tokenizer tok(model->tokenizer_proto, model->tokenizer_path);
      const int V = model->config.vocab_size;
      REQUIRE(tok.bos_id() == 1);
      REQUIRE(golden["cases"].size() > 0);

      for (const auto& c : golden["cases"]) {
        const std::string prompt = c["prompt"];
        CAPTURE(prompt);
        const auto prompt_ids = c["prompt_tokens"].get<std::vector<int>>();
        const auto greedy = c["greedy_tokens"].get<std::vector<int>>();
        std::vector<int> encoded = {tok.bos_id()};
        for (int id : tok.encode(prompt)) encoded.push_back(id);
        CHECK(encoded == prompt_ids);

        std::vector<int> all = prompt_ids;
        all.insert(all.end(), greedy.begin(), greedy.end());
        const std::vector<float> ref =
            read_f32_file(dir + "/" + c["logits_file"].get<std::string>());
        REQUIRE(ref.size() == all.size() * V);

        Session prefill(*model);
        std::vector<float> logits;
        prefill.prefill(all, &logits);
        const float prefill_diff = max_abs_diff(logits.data(), ref.data(), ref.size());
        CHECK(prefill_diff <= kTolerance);

        Session decode(*model);
        float decode_diff = 0.0f;
        for (size_t t = 0; t < all.size(); ++t)
          decode_diff = std::max(decode_diff, max_abs_diff(decode.decode(all[t]), &ref[t * V], V));
        CHECK(decode_diff <= kTolerance);
        MESSAGE(name << (access == FileAccess::kMap ? "" : " (read)") << " '" << prompt
                     << "': max |logit - ref| prefill " << prefill_diff
                     << ", decode " << decode_diff);

        Session gen(*model);
        Sampler greedy_sampler(SamplingParams{0.0f, 0, 1.0f, 0});
        std::vector<int> produced;
        generate(gen, greedy_sampler, prompt_ids, static_cast<int>(greedy.size()),
                 [&](int id) { produced.push_back(id); });
        CHECK(produced == greedy);
      }
    }
}

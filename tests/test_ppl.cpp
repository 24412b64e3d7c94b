// `rotor ppl` against the reference figure of shared/docs/EVAL.md.
#include <doctest/doctest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "tests/helpers.h"

using namespace rotor::test;

TEST_CASE("ppl: stories260K on tinystories_val_dev.txt at ctx 256 is 5.3896 +- 0.1%") {
  CliResult r = run_rotor({"ppl", "-m", llama2c_path("stories260K"), "-f",
                           shared_dir() + "/data/tinystories_val_dev.txt", "--ctx", "256",
                           "--json"});
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  auto j = nlohmann::json::parse(r.out);
  MESSAGE("rotor ppl: " << r.out);
  CHECK(j["ctx"] == 256);
  CHECK(j["windows"] == 928);
  CHECK(j["tokens"] == 236640);
  CHECK(std::fabs(j["ppl"].get<double>() / 5.3896 - 1.0) < 1e-3);
  CHECK(std::fabs(j["nll"].get<double>() - 1.68447) < 1e-3);
}

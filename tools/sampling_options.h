// Sampling flags shared by `rotor run` and `rotor chat`.
#pragma once
#include "engine/sampler.h"
#include "tools/args.h"

namespace rotor {

void add_sampling_options(Args& args);
SamplingParams sampling_from_args(const Args& args);

}  // namespace rotor

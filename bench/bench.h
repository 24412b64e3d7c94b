// Google Benchmark micro-benchmarks of the kernels at real model shapes (`make bench`). Each
// file registers one concept's benchmarks, once per ISA this CPU runs (kernels_for), so a new
// kernel-table entry gets its benchmarks by adding a file and a line in bench_main.cpp.
#pragma once
#include <benchmark/benchmark.h>

#include <string>

#include "engine/kernels/kernels.h"

namespace rotor::bench {

// Integer matrix products (block_dots): GEMV (1 token) and GEMM (prefill) at LLaMA shapes.
void register_linear(Isa isa);
// The shared epilogue of decode (linear_epilogue), registered once: it has no per-ISA entry.
void register_epilogue();
// Activation quantization (quantize_acts) of rows of LLaMA widths, and the SwiGLU activation.
void register_activations(Isa isa);
// Attention of one head over a 4- or 8-bit KV cache (attend).
void register_attention(Isa isa);
// The KV cache's store of one token through every layer, registered once (no per-ISA entry).
void register_kv_store();
// The normalized Hadamard transform (the hadamard entry) at hidden, MLP and head sizes.
void register_hadamard(Isa isa);
// psot-layer's f16 residual blocks: vecmat_f16 from memory, and f16_to_f32.
void register_f16(Isa isa);
// The file checksum's lanes (checksum_lanes), as loading a model verifies its chunks.
void register_checksum(Isa isa);

// Per-iteration work: `bytes` read from memory (weights, cache) and `ops` arithmetic
// operations (a multiply-add counts 2), reported as rates (bytes/s, ops/s).
void set_work(benchmark::State& state, double bytes, double ops);
// "name/isa/detail", the naming every benchmark here follows (the table splits on '/').
std::string bench_name(const char* name, Isa isa, const std::string& detail);

}  // namespace rotor::bench

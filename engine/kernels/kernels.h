// The one small interface between the forward pass and the integer kernels. Each ISA
// (scalar reference, AVX2, AVX-512 VNNI, NEON) provides a KernelTable; one is chosen at
// start-up from the CPU's features, or by ROTOR_ISA=scalar|avx2|avx512|neon.
//
// Integer linear algebra (METHODS.md §1). Weights w ≈ s_w·(w' − z_w) with signed codes w'
// (4-bit: −8..7, 8-bit: −128..127) and an integer zero point z_w per (row, group);
// activations x ≈ s_x·(q − z_x) with unsigned codes q (0..2^b−1) per (token, segment). Then
//   Σ x·w = s_x·s_w·(Σ q·w' − z_w·Σq − z_x·Σw' + n·z_x·z_w)
// per block of columns; the kernels compute only the integer dots Σ q·w' of every block,
// and one shared epilogue (linear_epilogue) does the rest, so every ISA gives the same floats.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace rotor {

// Columns of packed weights come in chunks of 64; widths are padded to a multiple of it.
constexpr int kChunk = 64;

// A quantized weight matrix [rows, cols], used in place from the model file.
struct PackedMatrix {
  int rows = 0;
  int cols = 0;          // logical input width
  int cols_padded = 0;   // multiple of kChunk and of group; padding weights are exactly zero
  int bits = 4;          // 4 or 8
  int group = 0;         // columns per (scale, zero) group; cols_padded for per-channel
  int block = 0;         // columns per integer dot: divides group and the activation segment
  // 4-bit: rows × cols_padded/2 bytes; in each 64-column chunk, byte i holds column i in its
  //        low nibble and column i+32 in its high nibble, each stored as w' + 8 (0..15).
  // 8-bit: rows × cols_padded int8 codes w'.
  const uint8_t* codes = nullptr;
  const float* scales = nullptr;   // [rows, cols_padded / group]
  const int32_t* zeros = nullptr;  // [rows, cols_padded / group]: z_w, in w' units
  const int32_t* sums = nullptr;   // [rows, cols_padded / block]: Σ w' over the block

  int groups() const { return cols_padded / group; }
  int blocks() const { return cols_padded / block; }
  size_t row_bytes() const { return static_cast<size_t>(cols_padded) * bits / 8; }
};

// Activations of n tokens quantized per (token, segment).
struct QuantizedActs {
  int tokens = 0;
  int cols_padded = 0;
  int segment = 0;               // columns per (scale, zero): the whole row, or one head
  int block = 0;                 // columns per integer block sum (as the weights' block)
  std::vector<uint8_t> q;        // [tokens, cols_padded]; padding holds the zero point
  std::vector<float> scale;      // [tokens, cols_padded / segment]
  std::vector<int32_t> zero;     // [tokens, cols_padded / segment]
  std::vector<int32_t> sums;     // [tokens, cols_padded / block]: Σ q over the block
  // Decode through KernelTable::centered_dots only: [cols_padded] codes less their segment's
  // zero point (q − z_x, −15..15), else empty.
  std::vector<int8_t> centered;
};

// Quantization of an activation row: bits ∈ {4, 8}; the range [min(x,0), max(x,0)] of segment
// s is scaled by clip(s) before the scale and zero point are chosen.
struct ActQuantParams {
  struct Clip {
    float min, max;
  };
  ActQuantParams() = default;
  // The shared settings: a constructor, so the brace lists of these five that callers write
  // leave segment_clips out without a missing-initializer warning.
  ActQuantParams(int bits_, int segment_, int block_, float clip_min_, float clip_max_)
      : bits(bits_), segment(segment_), block(block_), clip_min(clip_min_), clip_max(clip_max_) {}

  int bits = 8;
  int segment = 0;   // 0 = whole row
  int block = 0;     // 0 = segment
  float clip_min = 1.0f, clip_max = 1.0f;
  // Clips of their own for each segment of the padded row (o_proj: one pair per head), or
  // empty: every segment uses (clip_min, clip_max). An owned vector keeps the params one value
  // to copy and store; the kernels look a pair up once per segment, never per element.
  std::vector<Clip> segment_clips;

  Clip clip(int s) const {
    return segment_clips.empty() ? Clip{clip_min, clip_max} : segment_clips[s];
  }
};

// K and V of one KV head across positions: per (position) codes, scale and min, so
// k = scale·code + min. 4-bit codes pack two per byte (element 2i low nibble, 2i+1 high).
struct KvView {
  int head_dim = 0;
  int bits = 8;                // 4 or 8
  // Each array holds the positions one after the other: codes head_bytes() apart, scales and
  // minimums in f16, one apart (in float they were 8 of the 72 bytes of a 4-bit row of 128;
  // KvCache rounds them first and codes against the rounded values).
  const uint8_t* k_codes = nullptr;
  const uint16_t* k_scale = nullptr;
  const uint16_t* k_min = nullptr;
  const uint8_t* v_codes = nullptr;
  const uint16_t* v_scale = nullptr;
  const uint16_t* v_min = nullptr;
  // k_group > 0: K is stored per channel over groups of k_group positions instead (KIVI,
  // kv_kernels.h); positions [0, n_pos / k_group · k_group) are in complete groups, the rest
  // are in float (k_float), and k_codes, k_scale and k_min are unused.
  int k_group = 0;
  // Group g's codes start at k_group_codes + g·head_dim·k_group·bits/8 and go in blocks of
  // channels (2 at 8 bits, 4 at 4 bits), 2·k_group bytes each: kivi_slot says where a code is.
  // The two bytes of a position hold its channel pair (c, c + 1) as int16 lanes would, so
  // kernels multiply them by q' with integer pair dots. k = k_group_scale·code + k_group_min,
  // both at [g·head_dim + c] in f16: in float they were half as many bytes as the 4-bit codes
  // they describe (KvCache rounds them first and codes against the rounded values).
  const uint8_t* k_group_codes = nullptr;
  const uint16_t* k_group_scale = nullptr;
  const uint16_t* k_group_min = nullptr;
  // The positions from first = n_pos / k_group · k_group on, in float, one row per position
  // as the model wrote it: position first + p, channel c at k_float[p·k_float_stride + c].
  const float* k_float = nullptr;
  size_t k_float_stride = 0;  // floats between positions (at least head_dim)

  int head_bytes() const { return head_dim * bits / 8; }  // head_dim is even at 4 bits
};

// Element i of a cache row's codes (K per position, V): at 4 bits the even elements in the
// low nibbles.
inline int row_code(const uint8_t* row, int bits, int i) {
  return bits == 8 ? row[i] : (i % 2 ? row[i / 2] >> 4 : row[i / 2] & 0x0F);
}

// Where the KIVI code of channel c at position p of a group sits: the byte from the group's
// first and the code's bit shift in it. A block of channels holds, per position, channel pair
// (b, b + 1) in two bytes (b the block's first channel) and at 4 bits pair (b + 2, b + 3) in
// their high nibbles. head_dim must be a multiple of the block (KvCache checks).
struct KiviSlot {
  size_t byte;
  int shift;
};
inline KiviSlot kivi_slot(int k_group, int bits, int c, int p) {
  const int block = bits == 8 ? 2 : 4, b = c / block, r = c % block;
  return {static_cast<size_t>(b) * 2 * k_group + 2 * p + r % 2, r >= 2 ? 4 : 0};
}
// The code of channel c at position p of the group whose codes start at group.
inline int kivi_code(const uint8_t* group, int k_group, int bits, int c, int p) {
  const KiviSlot at = kivi_slot(k_group, bits, c, p);
  return group[at.byte] >> at.shift & ((1 << bits) - 1);
}

// One normalized Hadamard pass (engine/hadamard.h) on rows of n = 2^log2 · m floats, each row
// viewed as 2^log2 blocks of m: x ← ((x ⊙ pre) · (H_{2^log2} ⊗ h)) ⊙ post, where h is m×m
// (m = 1: h unused) and pre/post are n-vectors or null (= all ones).
struct HadamardPlan {
  size_t n = 0;
  int log2 = 0;
  int m = 1;
  // h[b·m_pad + d] = h(b, d), ±1; columns m..m_pad−1 are zero so that a SIMD width dividing
  // kHadamardPad reads whole vectors. m_pad = m rounded up to a multiple of kHadamardPad.
  const float* h = nullptr;
  int m_pad = 0;
  // Null, or the same h as sign bits, 16 columns per word: bit j of h_signs[b·m_pad/16 + v] is
  // set when h(b, 16·v + j) = −1 (columns past m clear). 32× smaller than h (3.8 KB at m = 172),
  // so it stays in L1: the AVX-512 kernel reads h this way when given (each word a lane mask
  // that picks +1 or −1), the others always read the floats. HadamardTransform gives it when h
  // outgrows L1 (m ≥ 108).
  const uint16_t* h_signs = nullptr;
  const float* pre = nullptr;
  const float* post = nullptr;
};
constexpr int kHadamardPad = 16;
constexpr int kHadamardMaxM = 172;

struct KernelTable {
  const char* name;
  // dots[(t·(r1−r0) + (r−r0))·blocks + b] = Σ_{j ∈ block b} q[t·q_stride + j] · w'[r][j]
  // for tokens t < n_tokens and rows r ∈ [r0, r1). n_tokens == 1 is decode (GEMV).
  void (*block_dots)(const PackedMatrix& w, const uint8_t* q, size_t q_stride, int n_tokens,
                     int r0, int r1, int32_t* dots);
  // Decode of 4-bit rows of several blocks, each whole 64-column chunks (o_proj, its 4-bit
  // activations per head), with the activations' zero points folded in, or null:
  // dots[(r − r0)·blocks + b] = Σ_{j ∈ block b} a[j]·w'[r][j] for rows r ∈ [r0, r1), where
  // a = QuantizedActs::centered. Its epilogue needs no Σw' (PackedMatrix::sums), which decode
  // then does not read (7B: 16 MB a token).
  void (*centered_dots)(const PackedMatrix& w, const int8_t* a, int r0, int r1, int32_t* dots);
  // Quantizes rows x[n_tokens, cols] (cols ≤ a.cols_padded, already sized) into a.
  void (*quantize_acts)(const float* x, int cols, int n_tokens, const ActQuantParams& p,
                        QuantizedActs& a);
  // Attention of the n_q query heads that share one KV head (grouped-query attention) over a
  // quantized K/V cache, see KvView: q and out hold n_q rows of head_dim, scores is scratch of
  // n_q rows of n_pos floats. Every ISA rounds the query the same way, so that the K sums are
  // exact integer dots (kv_kernels.h); AVX-512 rounds the V weights for its byte dots
  // (v_weights.h), within a bound of the others' float sums.
  void (*attend)(const KvView& kv, const float* q, int n_q, int n_pos, float* scores, float* out);
  // The Hadamard pass of p on rows x + r·stride, r < rows (in place).
  void (*hadamard)(const HadamardPlan& p, float* x, int rows, size_t stride);
  // Σ p[0, n) as unsigned bytes, read with the ISA's widest loads: rotor bench's memory
  // bandwidth probe, so the roofline it reports is what this CPU's vector loads can stream.
  uint64_t (*byte_total)(const uint8_t* p, size_t n);
  // In place: gate[i] ← silu(gate[i])·up[i] = gate[i] / (1 + e^−gate[i]) · up[i], i < n (the
  // SwiGLU of the MLP). The vector ISAs use a polynomial e^x: within a few 1e−7 relative.
  void (*swiglu)(float* gate, const float* up, int n);
  // y[t·ys + j] = Σ_{i < rows} x[t·xs + i]·m[i·ld + j] for tokens t < n_tokens and j < cols,
  // m in f16 (psot-layer's residual blocks in decode and short prefills): for each (t, j) a
  // chain of fused multiply-adds from 0 in the order of i, so every ISA gives the same floats
  // and a token the same as alone.
  void (*vecmat_f16)(const float* x, size_t xs, int n_tokens, const uint16_t* m, int rows,
                     int cols, size_t ld, float* y, size_t ys);
  // out[i] = h[i] as a float, i < n (exact).
  void (*f16_to_f32)(const uint16_t* h, size_t n, float* out);
  // The file checksum's lanes (engine/format/rotor_format.h) over n ≤ kChecksumWays byte
  // ranges of one length side by side: lanes[4c, 4c + 4) advance over the `bytes` bytes at
  // p[c], bytes a multiple of 32. Loading a model checksums its tensor data's 16 MiB chunks
  // this way, four at a time: the lanes of one range are chains of 64-bit multiplies that read
  // ~14 GB/s on a core (checksum_lanes_dram), and AVX-512 advances those of four ranges at once.
  void (*checksum_lanes)(const uint8_t* const* p, int n, size_t bytes, uint64_t* lanes);
};
constexpr int kChecksumWays = 4;

enum class Isa { kScalar, kAvx2, kAvx512, kNeon };

const char* isa_name(Isa isa);
// The ISAs this CPU runs, scalar first.
std::vector<Isa> supported_isas();
// The table for one ISA (must be supported).
const KernelTable& kernels_for(Isa isa);
// The table used by the engine: the best supported ISA, or ROTOR_ISA when set (an unknown or
// unsupported value is an Error).
const KernelTable& kernels();

// Tables provided by each ISA's translation unit (only those built for this architecture).
extern const KernelTable kScalarKernels;
extern const KernelTable kAvx2Kernels;
// The same with the block dots by AVX-VNNI's vpdpbusd, for CPUs that have it (avx2_vnni.cpp).
extern const KernelTable kAvx2VnniKernels;
extern const KernelTable kAvx512Kernels;
// The same but decode walks rows one after another rather than in tiles of 8 side by side
// (per-channel weights, and 4-bit rows of several blocks: o_proj with per-head activations):
// faster from memory on Intel (avx512.cpp, dispatch.cpp).
extern const KernelTable kAvx512RowByRowKernels;
extern const KernelTable kNeonKernels;

// y[t, r] for r ∈ [r0, r1): the shared float epilogue over the integer block dots of a tile,
// block_dots' or (centered) centered_dots' (one token): the same floats from either.
void linear_epilogue(const PackedMatrix& w, const QuantizedActs& a, int t0, int n_tokens, int r0,
                     int r1, const int32_t* dots, bool centered, float* y, size_t y_stride);

// The scalar reference pieces, shared by the ISA files for the parts they do not specialize.
void quantize_acts_scalar(const float* x, int cols, int n_tokens, const ActQuantParams& p,
                          QuantizedActs& a);
void centered_dots_scalar(const PackedMatrix& w, const int8_t* a, int r0, int r1, int32_t* dots);
void attend_scalar(const KvView& kv, const float* q, int n_q, int n_pos, float* scores,
                   float* out);
// scores[t] ← exp(scores[t] − max) over n values; returns their sum (the softmax denominator).
float exp_shifted(float* scores, int n);
// Every attention kernel (and the float cache's softmax) sets softmax terms exp(score − max) below exp(kSoftmaxCutoff) ≈ 1.6e−28
// to 0: beside the largest term (1) they are far below float precision, and kept they would
// make the weights e·v_scale subnormal, which costs x86 cores a microcode assist per operation
// (attention over sharply peaked scores ran 10× slower).
constexpr float kSoftmaxCutoff = -64.0f;
// The vector e^x helpers clamp x to at most this, just above ln(FLT_MAX) ≈ 88.72: e^x is then
// +inf as a float (as std::exp gives above ln(FLT_MAX)), and 2^n stays within the exponent.
constexpr float kExpOverflow = 89.0f;
// The hadamard entry of each ISA (each defined in engine/kernels/hadamard_ISA.cpp).
void hadamard_scalar(const HadamardPlan& p, float* x, int rows, size_t stride);
void hadamard_avx2(const HadamardPlan& p, float* x, int rows, size_t stride);
void hadamard_avx512(const HadamardPlan& p, float* x, int rows, size_t stride);
void hadamard_neon(const HadamardPlan& p, float* x, int rows, size_t stride);
uint64_t byte_total_scalar(const uint8_t* p, size_t n);
void vecmat_f16_scalar(const float* x, size_t xs, int n_tokens, const uint16_t* m, int rows,
                       int cols, size_t ld, float* y, size_t ys);
void f16_to_f32_scalar(const uint16_t* h, size_t n, float* out);
void checksum_lanes_scalar(const uint8_t* const* p, int n, size_t bytes, uint64_t* lanes);

}  // namespace rotor

namespace rotor {
// Weights back to floats: out[(r − r0)·cols + j] = s_w·(w' − z_w) for rows [r0, r1), the
// logical columns only. Used by the paths that keep activations in float (A16, embeddings).
void dequantize_rows(const PackedMatrix& w, int r0, int r1, float* out);
}  // namespace rotor

#pragma once
// How a cuDNN convolution algorithm is chosen, as pure functions over cuDNN's candidate lists (so
// that the rules are tested without a GPU, tests/cuda/test_conv_algorithm.cpp), and the key a
// chosen algorithm is cached under (conv_plan.h does the cuDNN calls and the caching).
//
// Candidates come ranked: by cuDNN's heuristics (cudnnGet*Algorithm_v7, deterministic mode) or by
// measured time (cudnnFind*AlgorithmEx, --deterministic off). The first is taken that
//   - cuDNN reports as supported (status CUDNN_STATUS_SUCCESS),
//   - is DETERMINISTIC, in deterministic mode (in the backward passes cuDNN's ALGO_0s and
//     BWD_FILTER_ALGO_3 add with atomics),
//   - multiplies in a math type the TF32 setting allows: FMA always; DEFAULT and TENSOR_OP (TF32
//     tensor cores for fp32 data) only with TF32 on; TENSOR_OP_ALLOW_CONVERSION (may round fp32
//     operands to fp16) never. bf16 data (the bf16 convolutions, which cast their operands first)
//     has nothing left to round: FMA, DEFAULT and TENSOR_OP all multiply the bf16 values exactly
//     with float accumulation, whatever the TF32 setting,
//   - needs at most the workspace limit.
// When none qualifies, a fixed deterministic algorithm with little workspace is used (IMPLICIT_GEMM
// forward, BWD_DATA_ALGO_1, BWD_FILTER_ALGO_1; TENSOR_OP math for bf16 data) and reported as a
// fallback in the log.
#include <cudnn.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "cudnn_legacy.h"
#include "kernels/conv2d.h"

// Legacy-API types throughout.
CHEX_CUDNN_LEGACY_API_BEGIN
namespace chex::cuda {

constexpr size_t kMaxWorkspaceBytes = size_t{1} << 30;

enum class ConvPass : uint8_t { forward, backward_data, backward_filter };
enum class ConvSearch : uint8_t { heuristic, timed };

// What the choice may use.
struct ConvPolicy {
  bool deterministic = true;  // only DETERMINISTIC candidates
  bool allow_tf32 = false;    // tensor-core math for fp32 data
  size_t max_workspace = kMaxWorkspaceBytes;
  cudnnDataType_t data_type = CUDNN_DATA_FLOAT;  // of x, w and y: FLOAT or BFLOAT16
};

// One entry of a ranked cudnnConvolution{Fwd,BwdData,BwdFilter}AlgoPerf_t list, pass-independent.
struct ConvCandidate {
  int algo = 0;
  cudnnStatus_t status = CUDNN_STATUS_SUCCESS;
  cudnnDeterminism_t determinism = CUDNN_DETERMINISTIC;
  cudnnMathType_t math = CUDNN_FMA_MATH;
  size_t memory = 0;    // workspace bytes
  float time_ms = -1;   // measured by cudnnFind*; negative for heuristics
};

template <typename Perf>
std::vector<ConvCandidate> conv_candidates(const Perf* ranked, int returned) {
  std::vector<ConvCandidate> out;
  for (int i = 0; i < returned; ++i)
    out.push_back({static_cast<int>(ranked[i].algo), ranked[i].status, ranked[i].determinism, ranked[i].mathType,
                   ranked[i].memory, ranked[i].time});
  return out;
}

struct ConvChoice {
  int algo = 0;  // cudnnConvolution{Fwd,BwdData,BwdFilter}Algo_t
  cudnnMathType_t math = CUDNN_FMA_MATH;
  size_t workspace = 0;  // a candidate's memory; the caller asks cuDNN for a fallback's
  bool deterministic = true;
  bool fallback = false;  // no candidate qualified
  ConvSearch search = ConvSearch::heuristic;
  float time_ms = -1;     // measured (timed search), else negative
};

bool math_allowed(cudnnMathType_t math, bool allow_tf32, cudnnDataType_t data_type = CUDNN_DATA_FLOAT);
ConvChoice pick_conv_algorithm(ConvPass pass, const std::vector<ConvCandidate>& ranked, const ConvPolicy& policy,
                               ConvSearch search);

// "IMPLICIT_PRECOMP_GEMM", "ALGO_1", "WINOGRAD_NONFUSED", ... (cuDNN's enumerator without its prefix).
const char* conv_algorithm_name(ConvPass pass, int algo);
// TENSOR_OP reads "TENSOR_OP (TF32)" for float data, "TENSOR_OP (bf16)" for bf16.
const char* conv_math_name(cudnnMathType_t math, cudnnDataType_t data_type = CUDNN_DATA_FLOAT);
const char* conv_data_type_name(cudnnDataType_t data_type);  // "fp32", "bf16"
const char* conv_pass_name(ConvPass pass);

// One convolution problem, everything that decides its descriptors and its algorithm, as plain
// integers: the cache's key (no strings built per call). Equal keys, equal choices.
struct ConvKey {
  int64_t batch = 0, in_channels = 0, height = 0, width = 0, x_batch_stride = 0;
  int64_t out_channels = 0, kernel_h = 0, kernel_w = 0, out_height = 0, out_width = 0, y_batch_stride = 0;
  int64_t stride = 1, padding = 0, dilation = 1;  // Conv2dGeometry has no dilation yet: always 1
  int32_t device = 0;
  cudnnDataType_t dtype = CUDNN_DATA_FLOAT;
  ConvPass pass = ConvPass::forward;
  bool tf32 = false;
  bool deterministic = true;
  bool operator==(const ConvKey&) const = default;
};
struct ConvKeyHash {
  size_t operator()(const ConvKey& key) const;
};

// The key of one pass over x and y (or dx and dy) of these batch strides, under the current TF32
// and determinism settings. With one image the batch stride is never used: the packed one is taken.
// data_type: of x, w and y (CUDNN_DATA_BFLOAT16 for the bf16 convolutions, whose plans thus live
// beside the fp32 ones of the same geometry; TF32 does not apply to them and is keyed false).
ConvKey conv_key(int device, ConvPass pass, const kernels::Conv2dGeometry& g, int64_t x_batch_stride,
                 int64_t y_batch_stride, bool tf32, bool deterministic, cudnnDataType_t data_type = CUDNN_DATA_FLOAT);

// The CHEX_LOG=conv line for a choice, e.g.
// "chex conv: forward cuda:0 x[16,64,56,56]/64*3136 w[128,64,1,1] pad 0 stride 1 dil 1 ->
//  y[16,128,56,56]/128*3136: IMPLICIT_PRECOMP_GEMM, FMA math, workspace 0 B, deterministic, heuristic"
// with "bf16" after the pass for a bf16 plan ("chex conv: forward bf16 cuda:0 ...").
std::string conv_log_line(const ConvKey& key, const ConvChoice& choice);

}  // namespace chex::cuda
CHEX_CUDNN_LEGACY_API_END

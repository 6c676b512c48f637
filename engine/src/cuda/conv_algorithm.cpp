#include "conv_algorithm.h"

#include <array>
#include <cstdio>

#include "cudnn_legacy.h"

CHEX_CUDNN_LEGACY_API_BEGIN
namespace chex::cuda {
namespace {

ConvChoice fallback(ConvPass pass, const ConvPolicy& policy, ConvSearch search) {
  ConvChoice c;
  switch (pass) {
    case ConvPass::forward: c.algo = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM; break;
    case ConvPass::backward_data: c.algo = CUDNN_CONVOLUTION_BWD_DATA_ALGO_1; break;
    case ConvPass::backward_filter: c.algo = CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1; break;
  }
  if (policy.data_type == CUDNN_DATA_BFLOAT16) c.math = CUDNN_TENSOR_OP_MATH;
  else c.math = policy.allow_tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH;
  c.fallback = true;
  c.search = search;
  return c;
}

// The key's fields in order, for hashing.
std::array<int64_t, 19> fields(const ConvKey& k) {
  return {k.batch,      k.in_channels, k.height,    k.width,          k.x_batch_stride,
          k.out_channels, k.kernel_h,  k.kernel_w,  k.out_height,     k.out_width,
          k.y_batch_stride, k.stride,  k.padding,   k.dilation,       k.device,
          static_cast<int64_t>(k.dtype), static_cast<int64_t>(k.pass), k.tf32, k.deterministic};
}

std::string bytes_text(size_t bytes) {
  char text[32];
  if (bytes < (size_t{1} << 20)) std::snprintf(text, sizeof text, "%zu B", bytes);
  else std::snprintf(text, sizeof text, "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  return text;
}

}  // namespace

bool math_allowed(cudnnMathType_t math, bool allow_tf32, cudnnDataType_t data_type) {
  const bool tensor_cores_exact = allow_tf32 || data_type == CUDNN_DATA_BFLOAT16;
  switch (math) {
    case CUDNN_FMA_MATH: return true;
    case CUDNN_DEFAULT_MATH:
    case CUDNN_TENSOR_OP_MATH: return tensor_cores_exact;
    default: return false;  // TENSOR_OP_MATH_ALLOW_CONVERSION: may round fp32 operands to fp16
  }
}

ConvChoice pick_conv_algorithm(ConvPass pass, const std::vector<ConvCandidate>& ranked, const ConvPolicy& policy,
                               ConvSearch search) {
  for (const ConvCandidate& c : ranked) {
    if (c.status != CUDNN_STATUS_SUCCESS) continue;
    if (policy.deterministic && c.determinism != CUDNN_DETERMINISTIC) continue;
    if (!math_allowed(c.math, policy.allow_tf32, policy.data_type) || c.memory > policy.max_workspace) continue;
    ConvChoice chosen;
    chosen.algo = c.algo;
    chosen.math = c.math;
    chosen.workspace = c.memory;
    chosen.deterministic = c.determinism == CUDNN_DETERMINISTIC;
    chosen.search = search;
    chosen.time_ms = c.time_ms;
    return chosen;
  }
  return fallback(pass, policy, search);
}

const char* conv_algorithm_name(ConvPass pass, int algo) {
  switch (pass) {
    case ConvPass::forward:
      switch (static_cast<cudnnConvolutionFwdAlgo_t>(algo)) {
        case CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM: return "IMPLICIT_GEMM";
        case CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM: return "IMPLICIT_PRECOMP_GEMM";
        case CUDNN_CONVOLUTION_FWD_ALGO_GEMM: return "GEMM";
        case CUDNN_CONVOLUTION_FWD_ALGO_DIRECT: return "DIRECT";
        case CUDNN_CONVOLUTION_FWD_ALGO_FFT: return "FFT";
        case CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING: return "FFT_TILING";
        case CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD: return "WINOGRAD";
        case CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED: return "WINOGRAD_NONFUSED";
        default: return "unknown";
      }
    case ConvPass::backward_data:
      switch (static_cast<cudnnConvolutionBwdDataAlgo_t>(algo)) {
        case CUDNN_CONVOLUTION_BWD_DATA_ALGO_0: return "ALGO_0";
        case CUDNN_CONVOLUTION_BWD_DATA_ALGO_1: return "ALGO_1";
        case CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT: return "FFT";
        case CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING: return "FFT_TILING";
        case CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD: return "WINOGRAD";
        case CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED: return "WINOGRAD_NONFUSED";
        default: return "unknown";
      }
    case ConvPass::backward_filter:
      switch (static_cast<cudnnConvolutionBwdFilterAlgo_t>(algo)) {
        case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0: return "ALGO_0";
        case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1: return "ALGO_1";
        case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT: return "FFT";
        case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3: return "ALGO_3";
        case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED: return "WINOGRAD_NONFUSED";
        case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING: return "FFT_TILING";
        default: return "unknown";
      }
  }
  return "unknown";
}

const char* conv_math_name(cudnnMathType_t math, cudnnDataType_t data_type) {
  const bool bf16 = data_type == CUDNN_DATA_BFLOAT16;
  switch (math) {
    case CUDNN_FMA_MATH: return "FMA";
    case CUDNN_DEFAULT_MATH: return bf16 ? "DEFAULT" : "DEFAULT (TF32 allowed)";
    case CUDNN_TENSOR_OP_MATH: return bf16 ? "TENSOR_OP (bf16)" : "TENSOR_OP (TF32)";
    case CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION: return "TENSOR_OP_ALLOW_CONVERSION";
    default: return "unknown";
  }
}

const char* conv_data_type_name(cudnnDataType_t data_type) {
  switch (data_type) {
    case CUDNN_DATA_FLOAT: return "fp32";
    case CUDNN_DATA_BFLOAT16: return "bf16";
    case CUDNN_DATA_HALF: return "fp16";
    default: return "unknown";
  }
}

const char* conv_pass_name(ConvPass pass) {
  switch (pass) {
    case ConvPass::forward: return "forward";
    case ConvPass::backward_data: return "backward-data";
    case ConvPass::backward_filter: return "backward-filter";
  }
  return "?";
}

size_t ConvKeyHash::operator()(const ConvKey& key) const {
  // Each field's value (not the struct's bytes: padding is no part of the key) mixed in with
  // splitmix64's finaliser: a few multiplies a field, every input bit reaching every output bit.
  uint64_t h = 0x9e3779b97f4a7c15ull;
  for (int64_t v : fields(key)) {
    h ^= static_cast<uint64_t>(v);
    h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
    h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
    h ^= h >> 31;
  }
  return static_cast<size_t>(h);
}

ConvKey conv_key(int device, ConvPass pass, const kernels::Conv2dGeometry& g, int64_t x_batch_stride,
                 int64_t y_batch_stride, bool tf32, bool deterministic, cudnnDataType_t data_type) {
  ConvKey k;
  k.batch = g.batch;
  k.in_channels = g.in_channels;
  k.height = g.height;
  k.width = g.width;
  k.x_batch_stride = g.batch > 1 ? x_batch_stride : g.in_sample();
  k.out_channels = g.out_channels;
  k.kernel_h = g.kernel_h;
  k.kernel_w = g.kernel_w;
  k.out_height = g.out_height;
  k.out_width = g.out_width;
  k.y_batch_stride = g.batch > 1 ? y_batch_stride : g.out_sample();
  k.stride = g.stride;
  k.padding = g.padding;
  k.device = device;
  k.dtype = data_type;
  k.pass = pass;
  k.tf32 = tf32 && data_type == CUDNN_DATA_FLOAT;
  k.deterministic = deterministic;
  return k;
}

std::string conv_log_line(const ConvKey& k, const ConvChoice& c) {
  // fp32 lines name no type (as before bf16 plans existed); others do, after the pass.
  const std::string data_type = k.dtype == CUDNN_DATA_FLOAT ? "" : std::string(" ") + conv_data_type_name(k.dtype);
  char text[512];
  std::snprintf(text, sizeof text,
                "chex conv: %s%s cuda:%d x[%lld,%lld,%lld,%lld] batch stride %lld, w[%lld,%lld,%lld,%lld], pad %lld "
                "stride %lld dil %lld -> y[%lld,%lld,%lld,%lld] batch stride %lld: ",
                conv_pass_name(k.pass), data_type.c_str(), k.device, static_cast<long long>(k.batch),
                static_cast<long long>(k.in_channels), static_cast<long long>(k.height),
                static_cast<long long>(k.width), static_cast<long long>(k.x_batch_stride),
                static_cast<long long>(k.out_channels), static_cast<long long>(k.in_channels),
                static_cast<long long>(k.kernel_h), static_cast<long long>(k.kernel_w),
                static_cast<long long>(k.padding), static_cast<long long>(k.stride), static_cast<long long>(k.dilation),
                static_cast<long long>(k.batch), static_cast<long long>(k.out_channels),
                static_cast<long long>(k.out_height), static_cast<long long>(k.out_width),
                static_cast<long long>(k.y_batch_stride));
  std::string line = text;
  line += conv_algorithm_name(k.pass, c.algo);
  line += ", ";
  line += conv_math_name(c.math, k.dtype);
  line += " math, workspace " + bytes_text(c.workspace);
  line += c.deterministic ? ", deterministic" : ", non-deterministic";
  if (c.search == ConvSearch::heuristic) {
    line += ", heuristic";
  } else {
    char timed[48];
    if (c.time_ms >= 0) std::snprintf(timed, sizeof timed, ", timed (%.3f ms)", static_cast<double>(c.time_ms));
    else std::snprintf(timed, sizeof timed, ", timed");
    line += timed;
  }
  if (c.fallback) {
    line += k.deterministic ? ", FALLBACK: no candidate was supported, deterministic, " : ", FALLBACK: no candidate was supported, ";
    line += k.tf32 || k.dtype != CUDNN_DATA_FLOAT ? "in an allowed math type" : "in FMA math (TF32 off)";
    line += " and within " + bytes_text(kMaxWorkspaceBytes);
  }
  return line;
}

}  // namespace chex::cuda
CHEX_CUDNN_LEGACY_API_END

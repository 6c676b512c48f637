// How convolution algorithms are chosen, keyed and logged (engine/src/cuda/conv_algorithm.h), run
// without a GPU: the rules are pure functions over cuDNN's candidate lists, given here as synthetic
// cudnnConvolution*AlgoPerf_t lists the way cudnnGet*_v7 and cudnnFind*Ex return them.
#include <catch2/catch.hpp>

#include <set>
#include <unordered_set>
#include <vector>

#include "engine/src/core/log_topics.h"
#include "engine/src/cuda/conv_algorithm.h"
#include "engine/src/cuda/conv_plan.h"
#include "engine/src/cuda/cudnn_legacy.h"
#include "models/densenet_shapes.h"

CHEX_CUDNN_LEGACY_API_BEGIN
using namespace chex;
using namespace chex::cuda;

namespace {

template <typename Perf, typename Algo>
Perf perf(Algo algo, cudnnDeterminism_t determinism, cudnnMathType_t math, size_t memory, float time_ms = -1,
          cudnnStatus_t status = CUDNN_STATUS_SUCCESS) {
  Perf p{};
  p.algo = algo;
  p.status = status;
  p.time = time_ms;
  p.memory = memory;
  p.determinism = determinism;
  p.mathType = math;
  return p;
}

const ConvPolicy kDeterministicFp32{true, false, kMaxWorkspaceBytes};

}  // namespace

TEST_CASE("deterministic mode passes over non-deterministic candidates, timed mode takes the fastest",
          "[cudnn][conv-algorithm]") {
  using P = cudnnConvolutionBwdFilterAlgoPerf_t;
  // As cudnnFind ranks them: ALGO_0 (atomics) fastest, then ALGO_1.
  const std::vector<P> ranked{
      perf<P>(CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0, CUDNN_NON_DETERMINISTIC, CUDNN_FMA_MATH, 0, 0.10f),
      perf<P>(CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1, CUDNN_DETERMINISTIC, CUDNN_FMA_MATH, 4096, 0.25f)};
  const auto candidates = conv_candidates(ranked.data(), static_cast<int>(ranked.size()));
  REQUIRE(candidates.size() == 2);
  CHECK(candidates[0].time_ms == 0.10f);

  const ConvChoice det = pick_conv_algorithm(ConvPass::backward_filter, candidates, kDeterministicFp32,
                                             ConvSearch::heuristic);
  CHECK(det.algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1);
  CHECK(det.deterministic);
  CHECK_FALSE(det.fallback);
  CHECK(det.workspace == 4096);

  const ConvChoice fast =
      pick_conv_algorithm(ConvPass::backward_filter, candidates, {false, false, kMaxWorkspaceBytes}, ConvSearch::timed);
  CHECK(fast.algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0);
  CHECK_FALSE(fast.deterministic);
  CHECK(fast.search == ConvSearch::timed);
  CHECK(fast.time_ms == 0.10f);
}

TEST_CASE("TF32 math is taken only when allowed, a down-converting math type never", "[cudnn][conv-algorithm]") {
  using P = cudnnConvolutionFwdAlgoPerf_t;
  const std::vector<P> ranked{
      perf<P>(CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED, CUDNN_DETERMINISTIC, CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION,
              0),
      perf<P>(CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, CUDNN_DETERMINISTIC, CUDNN_TENSOR_OP_MATH, 0),
      perf<P>(CUDNN_CONVOLUTION_FWD_ALGO_GEMM, CUDNN_DETERMINISTIC, CUDNN_DEFAULT_MATH, 0),
      perf<P>(CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, CUDNN_DETERMINISTIC, CUDNN_FMA_MATH, 0)};
  const auto candidates = conv_candidates(ranked.data(), static_cast<int>(ranked.size()));

  const ConvChoice fp32 = pick_conv_algorithm(ConvPass::forward, candidates, kDeterministicFp32, ConvSearch::heuristic);
  CHECK(fp32.algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM);
  CHECK(fp32.math == CUDNN_FMA_MATH);
  CHECK_FALSE(fp32.fallback);

  const ConvChoice tf32 =
      pick_conv_algorithm(ConvPass::forward, candidates, {true, true, kMaxWorkspaceBytes}, ConvSearch::heuristic);
  CHECK(tf32.algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM);
  CHECK(tf32.math == CUDNN_TENSOR_OP_MATH);

  CHECK(math_allowed(CUDNN_FMA_MATH, false));
  CHECK_FALSE(math_allowed(CUDNN_DEFAULT_MATH, false));
  CHECK(math_allowed(CUDNN_DEFAULT_MATH, true));
  CHECK_FALSE(math_allowed(CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION, true));
}

TEST_CASE("bf16 data takes tensor-core math whatever the TF32 setting, a down-converting math type never",
          "[cudnn][conv-algorithm][bf16]") {
  using P = cudnnConvolutionFwdAlgoPerf_t;
  const std::vector<P> ranked{
      perf<P>(CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED, CUDNN_DETERMINISTIC, CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION,
              0),
      perf<P>(CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, CUDNN_DETERMINISTIC, CUDNN_TENSOR_OP_MATH, 0),
      perf<P>(CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, CUDNN_DETERMINISTIC, CUDNN_FMA_MATH, 0)};
  const auto candidates = conv_candidates(ranked.data(), static_cast<int>(ranked.size()));
  const ConvPolicy bf16{true, false, kMaxWorkspaceBytes, CUDNN_DATA_BFLOAT16};
  const ConvChoice c = pick_conv_algorithm(ConvPass::forward, candidates, bf16, ConvSearch::heuristic);
  CHECK(c.algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM);
  CHECK(c.math == CUDNN_TENSOR_OP_MATH);
  CHECK_FALSE(c.fallback);
  // The same list for fp32 data with TF32 off skips the tensor-core candidate.
  CHECK(pick_conv_algorithm(ConvPass::forward, candidates, kDeterministicFp32, ConvSearch::heuristic).algo ==
        CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM);

  CHECK(math_allowed(CUDNN_TENSOR_OP_MATH, false, CUDNN_DATA_BFLOAT16));
  CHECK(math_allowed(CUDNN_DEFAULT_MATH, false, CUDNN_DATA_BFLOAT16));
  CHECK(math_allowed(CUDNN_FMA_MATH, false, CUDNN_DATA_BFLOAT16));
  CHECK_FALSE(math_allowed(CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION, true, CUDNN_DATA_BFLOAT16));
  CHECK_FALSE(math_allowed(CUDNN_TENSOR_OP_MATH, false, CUDNN_DATA_FLOAT));

  // The fallback, still deterministic, in tensor-core math.
  const ConvChoice f = pick_conv_algorithm(ConvPass::backward_filter, {}, bf16, ConvSearch::heuristic);
  CHECK(f.fallback);
  CHECK(f.algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1);
  CHECK(f.math == CUDNN_TENSOR_OP_MATH);
}

TEST_CASE("candidates over the workspace limit or unsupported are passed over", "[cudnn][conv-algorithm]") {
  using P = cudnnConvolutionBwdDataAlgoPerf_t;
  const std::vector<P> ranked{
      perf<P>(CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT, CUDNN_DETERMINISTIC, CUDNN_FMA_MATH, kMaxWorkspaceBytes + 1),
      perf<P>(CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD, CUDNN_DETERMINISTIC, CUDNN_FMA_MATH, 0, -1,
              CUDNN_STATUS_NOT_SUPPORTED),
      perf<P>(CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING, CUDNN_DETERMINISTIC, CUDNN_FMA_MATH, kMaxWorkspaceBytes)};
  const auto candidates = conv_candidates(ranked.data(), static_cast<int>(ranked.size()));
  const ConvChoice c = pick_conv_algorithm(ConvPass::backward_data, candidates, kDeterministicFp32,
                                           ConvSearch::heuristic);
  CHECK(c.algo == CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING);  // exactly at the limit is allowed
  CHECK(c.workspace == kMaxWorkspaceBytes);
  // A smaller limit leaves nothing: the fallback.
  const ConvChoice small = pick_conv_algorithm(ConvPass::backward_data, candidates, {true, false, 1 << 20},
                                               ConvSearch::heuristic);
  CHECK(small.fallback);
  CHECK(small.algo == CUDNN_CONVOLUTION_BWD_DATA_ALGO_1);
}

TEST_CASE("with no qualifying candidate each pass falls back to a deterministic algorithm, reported as such",
          "[cudnn][conv-algorithm]") {
  using P = cudnnConvolutionFwdAlgoPerf_t;
  const std::vector<P> ranked{
      perf<P>(CUDNN_CONVOLUTION_FWD_ALGO_FFT, CUDNN_NON_DETERMINISTIC, CUDNN_FMA_MATH, 0),
      perf<P>(CUDNN_CONVOLUTION_FWD_ALGO_GEMM, CUDNN_DETERMINISTIC, CUDNN_TENSOR_OP_MATH, 0)};
  const auto candidates = conv_candidates(ranked.data(), static_cast<int>(ranked.size()));
  const ConvChoice f = pick_conv_algorithm(ConvPass::forward, candidates, kDeterministicFp32, ConvSearch::heuristic);
  CHECK(f.fallback);
  CHECK(f.algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM);
  CHECK(f.math == CUDNN_FMA_MATH);
  CHECK(f.deterministic);
  // With TF32 allowed the fallback may use it.
  const ConvChoice t = pick_conv_algorithm(ConvPass::backward_filter, {}, {true, true, kMaxWorkspaceBytes},
                                           ConvSearch::heuristic);
  CHECK(t.fallback);
  CHECK(t.algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1);
  CHECK(t.math == CUDNN_DEFAULT_MATH);
  // An empty list (cuDNN returned nothing) falls back too.
  CHECK(pick_conv_algorithm(ConvPass::backward_data, {}, kDeterministicFp32, ConvSearch::timed).fallback);
}

TEST_CASE("convolution keys differ in every field, and equal keys hash equally", "[cudnn][conv-algorithm]") {
  const auto g = kernels::Conv2dGeometry::make(16, 64, 56, 56, 128, 1, 1, 1, 0);
  const ConvKey base = conv_key(0, ConvPass::forward, g, 256 * 3136, 128 * 3136, false, true);
  const ConvKeyHash hash;
  CHECK(base == conv_key(0, ConvPass::forward, g, 256 * 3136, 128 * 3136, false, true));
  CHECK(hash(base) == hash(conv_key(0, ConvPass::forward, g, 256 * 3136, 128 * 3136, false, true)));

  std::vector<ConvKey> variants;
  auto vary = [&](auto change) {
    ConvKey k = base;
    change(k);
    variants.push_back(k);
  };
  vary([](ConvKey& k) { k.batch = 8; });
  vary([](ConvKey& k) { k.in_channels = 96; });
  vary([](ConvKey& k) { k.height = 28; });
  vary([](ConvKey& k) { k.width = 28; });
  vary([](ConvKey& k) { k.x_batch_stride = 64 * 3136; });
  vary([](ConvKey& k) { k.out_channels = 32; });
  vary([](ConvKey& k) { k.kernel_h = 3; });
  vary([](ConvKey& k) { k.kernel_w = 3; });
  vary([](ConvKey& k) { k.out_height = 28; });
  vary([](ConvKey& k) { k.out_width = 28; });
  vary([](ConvKey& k) { k.y_batch_stride = 512 * 3136; });
  vary([](ConvKey& k) { k.stride = 2; });
  vary([](ConvKey& k) { k.padding = 1; });
  vary([](ConvKey& k) { k.dilation = 2; });
  vary([](ConvKey& k) { k.device = 1; });
  vary([](ConvKey& k) { k.dtype = CUDNN_DATA_HALF; });
  vary([](ConvKey& k) { k.pass = ConvPass::backward_data; });
  vary([](ConvKey& k) { k.pass = ConvPass::backward_filter; });
  vary([](ConvKey& k) { k.tf32 = true; });
  vary([](ConvKey& k) { k.deterministic = false; });
  std::set<size_t> hashes{hash(base)};
  for (size_t i = 0; i < variants.size(); ++i) {
    INFO("variant " << i);
    CHECK_FALSE(variants[i] == base);
    hashes.insert(hash(variants[i]));
  }
  CHECK(hashes.size() == variants.size() + 1);  // no two of these collide

  // With one image the batch stride is never read: any stride gives the packed one, one key.
  const auto one = kernels::Conv2dGeometry::make(1, 64, 56, 56, 128, 1, 1, 1, 0);
  CHECK(conv_key(0, ConvPass::forward, one, 999, 7, false, true) ==
        conv_key(0, ConvPass::forward, one, 64 * 3136, 128 * 3136, false, true));
}

TEST_CASE("bf16 and fp32 plans of one geometry have keys of their own, and TF32 does not split bf16 keys",
          "[cudnn][conv-algorithm][bf16]") {
  const auto g = kernels::Conv2dGeometry::make(64, 128, 56, 56, 32, 3, 3, 1, 1);
  const ConvKeyHash hash;
  const ConvKey fp32 = conv_key(0, ConvPass::forward, g, g.in_sample(), g.out_sample(), false, true);
  const ConvKey bf16 = conv_key(0, ConvPass::forward, g, g.in_sample(), g.out_sample(), false, true,
                                CUDNN_DATA_BFLOAT16);
  CHECK(fp32.dtype == CUDNN_DATA_FLOAT);
  CHECK(bf16.dtype == CUDNN_DATA_BFLOAT16);
  CHECK_FALSE(fp32 == bf16);
  CHECK(hash(fp32) != hash(bf16));
  // TF32 is about fp32 operands: with it on, the bf16 key (and so its plan) is the same.
  const ConvKey bf16_tf32 = conv_key(0, ConvPass::forward, g, g.in_sample(), g.out_sample(), true, true,
                                     CUDNN_DATA_BFLOAT16);
  CHECK(bf16_tf32 == bf16);
  CHECK_FALSE(bf16_tf32.tf32);
  CHECK(conv_key(0, ConvPass::forward, g, g.in_sample(), g.out_sample(), true, true).tf32);

  // Every pass of every DenseNet-121 convolution, in both types: all distinct.
  std::unordered_set<ConvKey, ConvKeyHash> keys;
  const auto shapes = models::densenet_layer_shapes(64);
  for (const auto& c : shapes.convolutions) {
    const auto d = kernels::Conv2dGeometry::make(c.batch, c.in_channels, c.height, c.width, c.out_channels, c.kernel,
                                                 c.kernel, c.stride, c.padding);
    for (ConvPass pass : {ConvPass::forward, ConvPass::backward_data, ConvPass::backward_filter})
      for (cudnnDataType_t type : {CUDNN_DATA_FLOAT, CUDNN_DATA_BFLOAT16})
        keys.insert(conv_key(0, pass, d, d.in_sample(), d.out_sample(), false, true, type));
  }
  CHECK(keys.size() == 2 * 3 * shapes.convolutions.size());
}

TEST_CASE("every DenseNet-121 convolution pass has a key of its own", "[cudnn][conv-algorithm]") {
  const auto shapes = models::densenet_layer_shapes(16);
  std::unordered_set<ConvKey, ConvKeyHash> keys;
  for (const auto& c : shapes.convolutions) {
    const auto g = kernels::Conv2dGeometry::make(c.batch, c.in_channels, c.height, c.width, c.out_channels, c.kernel,
                                                 c.kernel, c.stride, c.padding);
    for (ConvPass pass : {ConvPass::forward, ConvPass::backward_data, ConvPass::backward_filter})
      keys.insert(conv_key(0, pass, g, g.in_sample(), g.out_sample(), true, true));
  }
  CHECK(keys.size() == 3 * shapes.convolutions.size());
}

TEST_CASE("a cached plan's descriptors are made from its key, batch strides included", "[cudnn][conv-algorithm]") {
  // Block 1's second 3x3 at batch 16: the bottleneck [16, 128, 56, 56] packed in, 32 new channels
  // written into the block buffer [16, 256, 56, 56] in place.
  const auto g = kernels::Conv2dGeometry::make(16, 128, 56, 56, 32, 3, 3, 1, 1);
  const ConvPlan plan(conv_key(0, ConvPass::forward, g, 128 * 3136, 256 * 3136, false, true));
  Shape shape, strides;
  plan.x.read(shape, strides);
  CHECK(shape == Shape{16, 128, 56, 56});
  CHECK(strides == Shape{128 * 3136, 3136, 56, 1});
  plan.y.read(shape, strides);
  CHECK(shape == Shape{16, 32, 56, 56});
  CHECK(strides == Shape{256 * 3136, 3136, 56, 1});
  plan.bias.read(shape, strides);
  CHECK(shape == Shape{1, 32, 1, 1});
}

TEST_CASE("a bf16 plan's tensors and filter are bf16, its bias float, its math tensor cores",
          "[cudnn][conv-algorithm][bf16]") {
  const auto g = kernels::Conv2dGeometry::make(64, 128, 56, 56, 32, 3, 3, 1, 1);
  const ConvPlan plan(conv_key(0, ConvPass::forward, g, g.in_sample(), g.out_sample(), false, true,
                               CUDNN_DATA_BFLOAT16));
  CHECK(plan.x.data_type() == CUDNN_DATA_BFLOAT16);
  CHECK(plan.y.data_type() == CUDNN_DATA_BFLOAT16);
  CHECK(plan.w.data_type() == CUDNN_DATA_BFLOAT16);
  CHECK(plan.bias.data_type() == CUDNN_DATA_FLOAT);
  CHECK(plan.conv.math_type() == CUDNN_TENSOR_OP_MATH);
  Shape shape, strides;
  plan.x.read(shape, strides);
  CHECK(strides == Shape{128 * 3136, 3136, 56, 1});  // the dense bf16 copy
  // The fp32 plan of the same geometry keeps float descriptors and FMA math (TF32 off).
  const ConvPlan fp32(conv_key(0, ConvPass::forward, g, g.in_sample(), g.out_sample(), false, true));
  CHECK(fp32.x.data_type() == CUDNN_DATA_FLOAT);
  CHECK(fp32.w.data_type() == CUDNN_DATA_FLOAT);
  CHECK(fp32.conv.math_type() == CUDNN_FMA_MATH);
}

TEST_CASE("the CHEX_LOG=conv line names the shapes, the algorithm, its math, workspace and how it was chosen",
          "[cudnn][conv-algorithm]") {
  const auto g = kernels::Conv2dGeometry::make(16, 64, 56, 56, 32, 3, 3, 1, 1);
  const ConvKey key = conv_key(0, ConvPass::forward, g, 256 * 3136, 32 * 3136, true, true);
  ConvChoice c;
  c.algo = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM;
  c.math = CUDNN_TENSOR_OP_MATH;
  c.workspace = 3 << 20;
  CHECK(conv_log_line(key, c) ==
        "chex conv: forward cuda:0 x[16,64,56,56] batch stride 802816, w[32,64,3,3], pad 1 stride 1 dil 1 -> "
        "y[16,32,56,56] batch stride 100352: IMPLICIT_PRECOMP_GEMM, TENSOR_OP (TF32) math, workspace 3.0 MiB, "
        "deterministic, heuristic");

  const ConvKey timed_key = conv_key(0, ConvPass::backward_filter, g, 256 * 3136, 32 * 3136, false, false);
  ConvChoice t;
  t.algo = CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0;
  t.workspace = 512;
  t.deterministic = false;
  t.search = ConvSearch::timed;
  t.time_ms = 0.125f;
  CHECK(conv_log_line(timed_key, t).ends_with(
      ": ALGO_0, FMA math, workspace 512 B, non-deterministic, timed (0.125 ms)"));

  const ConvChoice f = pick_conv_algorithm(ConvPass::backward_data, {}, kDeterministicFp32, ConvSearch::heuristic);
  const ConvKey data_key = conv_key(0, ConvPass::backward_data, g, 256 * 3136, 32 * 3136, false, true);
  CHECK(conv_log_line(data_key, f).ends_with(
      ": ALGO_1, FMA math, workspace 0 B, deterministic, heuristic, FALLBACK: no candidate was supported, "
      "deterministic, in FMA math (TF32 off) and within 1024.0 MiB"));

  // A bf16 plan says so after the pass, and its tensor-core math is bf16's, not TF32.
  const ConvKey bf16_key = conv_key(0, ConvPass::backward_data, g, 64 * 3136, 32 * 3136, false, true,
                                    CUDNN_DATA_BFLOAT16);
  ConvChoice b;
  b.algo = CUDNN_CONVOLUTION_BWD_DATA_ALGO_1;
  b.math = CUDNN_TENSOR_OP_MATH;
  CHECK(conv_log_line(bf16_key, b) ==
        "chex conv: backward-data bf16 cuda:0 x[16,64,56,56] batch stride 200704, w[32,64,3,3], pad 1 stride 1 dil 1 "
        "-> y[16,32,56,56] batch stride 100352: ALGO_1, TENSOR_OP (bf16) math, workspace 0 B, deterministic, "
        "heuristic");
}

TEST_CASE("CHEX_LOG names topics in a comma-separated list, or all of them", "[log]") {
  CHECK(log_list_names("conv", "conv"));
  CHECK(log_list_names("alloc,conv", "conv"));
  CHECK(log_list_names("all", "conv"));
  CHECK_FALSE(log_list_names("", "conv"));
  CHECK_FALSE(log_list_names("convolution", "conv"));
  CHECK_FALSE(log_list_names("con,v", "conv"));
}
CHEX_CUDNN_LEGACY_API_END

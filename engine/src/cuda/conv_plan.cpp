#include "conv_plan.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>
#include <vector>

#include "chex/determinism.h"
#include "chex/error.h"
#include "chex/precision.h"
#include "core/log_topics.h"
#include "cuda_check.h"
#include "cudnn_check.h"
#include "device_buffer.h"

CHEX_CUDNN_LEGACY_API_BEGIN
namespace chex::cuda {
namespace {

// The scratch a timed search may give the candidates: the workspace limit, or half of what the
// device has free when that is less.
size_t search_workspace_bytes() {
  size_t free = 0, total = 0;
  CHEX_CUDA_CHECK(cudaMemGetInfo(&free, &total));
  return std::min(kMaxWorkspaceBytes, free / 2);
}

// cuDNN's ranked candidates for one pass: its heuristics, or (timed) its measurements on `b`.
std::vector<ConvCandidate> candidates(const DeviceContext& ctx, const ConvKey& key, ConvPlan& p, const ConvBuffers& b) {
  cudnnHandle_t h = ctx.cudnn;
  int count = 0, returned = 0;
  const bool timed = !key.deterministic;
  std::unique_ptr<DeviceBuffer> scratch;
  if (timed) scratch = std::make_unique<DeviceBuffer>(ctx.device, search_workspace_bytes());
  void* ws = timed ? scratch->get() : nullptr;
  const size_t ws_bytes = timed ? scratch->bytes() : 0;
  switch (key.pass) {
    case ConvPass::forward: {
      CHEX_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithmMaxCount(h, &count));
      std::vector<cudnnConvolutionFwdAlgoPerf_t> ranked(static_cast<size_t>(count));
      if (timed)
        CHEX_CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithmEx(h, p.x.get(), b.x, p.w.get(), b.w, p.conv.get(),
                                                                p.y.get(), const_cast<void*>(b.y), count, &returned,
                                                                ranked.data(), ws, ws_bytes));
      else
        CHEX_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(h, p.x.get(), p.w.get(), p.conv.get(), p.y.get(),
                                                                count, &returned, ranked.data()));
      return conv_candidates(ranked.data(), returned);
    }
    case ConvPass::backward_data: {
      CHEX_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithmMaxCount(h, &count));
      std::vector<cudnnConvolutionBwdDataAlgoPerf_t> ranked(static_cast<size_t>(count));
      if (timed)
        CHEX_CUDNN_CHECK(cudnnFindConvolutionBackwardDataAlgorithmEx(h, p.w.get(), b.w, p.y.get(), b.y, p.conv.get(),
                                                                     p.x.get(), const_cast<void*>(b.x), count,
                                                                     &returned, ranked.data(), ws, ws_bytes));
      else
        CHEX_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(h, p.w.get(), p.y.get(), p.conv.get(),
                                                                     p.x.get(), count, &returned, ranked.data()));
      return conv_candidates(ranked.data(), returned);
    }
    case ConvPass::backward_filter: {
      CHEX_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(h, &count));
      std::vector<cudnnConvolutionBwdFilterAlgoPerf_t> ranked(static_cast<size_t>(count));
      if (timed)
        CHEX_CUDNN_CHECK(cudnnFindConvolutionBackwardFilterAlgorithmEx(h, p.x.get(), b.x, p.y.get(), b.y,
                                                                       p.conv.get(), p.w.get(), const_cast<void*>(b.w),
                                                                       count, &returned, ranked.data(), ws, ws_bytes));
      else
        CHEX_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, p.x.get(), p.y.get(), p.conv.get(),
                                                                       p.w.get(), count, &returned, ranked.data()));
      return conv_candidates(ranked.data(), returned);
    }
  }
  return {};
}

// The workspace cuDNN asks for the chosen algorithm in its math type.
size_t workspace_bytes(const DeviceContext& ctx, ConvPass pass, const ConvPlan& p) {
  size_t bytes = 0;
  switch (pass) {
    case ConvPass::forward:
      CHEX_CUDNN_CHECK(cudnnGetConvolutionForwardWorkspaceSize(ctx.cudnn, p.x.get(), p.w.get(), p.conv.get(),
                                                               p.y.get(), p.algo<cudnnConvolutionFwdAlgo_t>(), &bytes));
      break;
    case ConvPass::backward_data:
      CHEX_CUDNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(
          ctx.cudnn, p.w.get(), p.y.get(), p.conv.get(), p.x.get(), p.algo<cudnnConvolutionBwdDataAlgo_t>(), &bytes));
      break;
    case ConvPass::backward_filter:
      CHEX_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterWorkspaceSize(ctx.cudnn, p.x.get(), p.y.get(), p.conv.get(),
                                                                      p.w.get(),
                                                                      p.algo<cudnnConvolutionBwdFilterAlgo_t>(), &bytes));
      break;
  }
  return bytes;
}

void choose(const DeviceContext& ctx, const ConvKey& key, ConvPlan& plan, const ConvBuffers& buffers) {
  const ConvPolicy policy{key.deterministic, key.tf32, kMaxWorkspaceBytes, key.dtype};
  const ConvSearch search = key.deterministic ? ConvSearch::heuristic : ConvSearch::timed;
  plan.choice = pick_conv_algorithm(key.pass, candidates(ctx, key, plan, buffers), policy, search);
  CHEX_CUDNN_CHECK(cudnnSetConvolutionMathType(plan.conv.get(), plan.choice.math));
  plan.choice.workspace = workspace_bytes(ctx, key.pass, plan);
}

// The math type the descriptors are made with, before the choice sets the chosen one: tensor cores
// for bf16 data, else as the TF32 setting allows.
cudnnMathType_t initial_math(const ConvKey& k) {
  if (k.dtype == CUDNN_DATA_BFLOAT16) return CUDNN_TENSOR_OP_MATH;
  return k.tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH;
}

struct DeviceCache {
  std::shared_mutex mutex;
  std::unordered_map<ConvKey, std::unique_ptr<ConvPlan>, ConvKeyHash> plans;
};

}  // namespace

ConvPlan::ConvPlan(const ConvKey& k)
    : x({k.batch, k.in_channels, k.height, k.width}, {k.x_batch_stride, k.height * k.width, k.width, 1}, k.dtype),
      y({k.batch, k.out_channels, k.out_height, k.out_width},
        {k.y_batch_stride, k.out_height * k.out_width, k.out_width, 1}, k.dtype),
      w({k.out_channels, k.in_channels, k.kernel_h, k.kernel_w}, k.dtype),
      conv(k.padding, k.stride, initial_math(k)),
      bias({1, k.out_channels, 1, 1}, {k.out_channels, 1, 1, 1}) {}

const ConvPlan& conv_plan(const DeviceContext& ctx, const ConvKey& key, const ConvBuffers& buffers) {
  static std::array<DeviceCache, 64> caches;
  DeviceCache& cache = caches[static_cast<size_t>(ctx.device)];
  {
    std::shared_lock lock(cache.mutex);
    const auto found = cache.plans.find(key);
    if (found != cache.plans.end()) return *found->second;
  }
  std::unique_lock lock(cache.mutex);
  auto& slot = cache.plans[key];
  if (!slot) {
    auto plan = std::make_unique<ConvPlan>(key);
    try {
      choose(ctx, key, *plan, buffers);
    } catch (...) {
      cache.plans.erase(key);
      throw;
    }
    if (log_enabled("conv")) std::fprintf(stderr, "%s\n", conv_log_line(key, plan->choice).c_str());
    slot = std::move(plan);
  }
  return *slot;
}

const ConvPlan& current_conv_plan(const DeviceContext& ctx, ConvPass pass, const kernels::Conv2dGeometry& g,
                                  int64_t x_batch_stride, int64_t y_batch_stride, const ConvBuffers& buffers,
                                  cudnnDataType_t data_type) {
  const ConvKey key = conv_key(ctx.device, pass, g, x_batch_stride, y_batch_stride, chex::cuda_tf32().convolutions,
                               chex::deterministic(), data_type);
  return conv_plan(ctx, key, buffers);
}

}  // namespace chex::cuda
CHEX_CUDNN_LEGACY_API_END

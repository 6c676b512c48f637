#include "conv_algorithm.h"

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "chex/error.h"
#include "cudnn_check.h"
#include "cudnn_legacy.h"
#include "device_context.h"

CHEX_CUDNN_LEGACY_API_BEGIN
namespace chex::cuda {
namespace {

bool acceptable_math(cudnnMathType_t math) { return math == CUDNN_FMA_MATH || tf32_allowed(); }

// The first acceptable candidate of a ranked list of cudnnConvolution*AlgoPerf_t.
template <typename Perf>
bool pick(const std::vector<Perf>& ranked, int returned, ConvAlgorithm& chosen) {
  for (int i = 0; i < returned; ++i) {
    const Perf& p = ranked[static_cast<size_t>(i)];
    if (p.status == CUDNN_STATUS_SUCCESS && p.determinism == CUDNN_DETERMINISTIC && acceptable_math(p.mathType) &&
        p.memory <= kMaxWorkspaceBytes) {
      chosen.algo = static_cast<int>(p.algo);
      chosen.math = p.mathType;
      return true;
    }
  }
  return false;
}

ConvAlgorithm choose(cudnnHandle_t handle, ConvPass pass, ConvProblem p) {
  ConvAlgorithm chosen;
  const cudnnMathType_t fallback_math = tf32_allowed() ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH;
  int count = 0, returned = 0;
  switch (pass) {
    case ConvPass::forward: {
      CHEX_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithmMaxCount(handle, &count));
      std::vector<cudnnConvolutionFwdAlgoPerf_t> ranked(static_cast<size_t>(count));
      CHEX_CUDNN_CHECK(cudnnGetConvolutionForwardAlgorithm_v7(handle, p.x.get(), p.w.get(), p.conv.get(), p.y.get(),
                                                              count, &returned, ranked.data()));
      if (!pick(ranked, returned, chosen)) chosen = {CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, 0, fallback_math};
      CHEX_CUDNN_CHECK(cudnnSetConvolutionMathType(p.conv.get(), chosen.math));
      CHEX_CUDNN_CHECK(cudnnGetConvolutionForwardWorkspaceSize(handle, p.x.get(), p.w.get(), p.conv.get(), p.y.get(),
                                                               static_cast<cudnnConvolutionFwdAlgo_t>(chosen.algo),
                                                               &chosen.workspace));
      break;
    }
    case ConvPass::backward_data: {
      CHEX_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithmMaxCount(handle, &count));
      std::vector<cudnnConvolutionBwdDataAlgoPerf_t> ranked(static_cast<size_t>(count));
      CHEX_CUDNN_CHECK(cudnnGetConvolutionBackwardDataAlgorithm_v7(handle, p.w.get(), p.y.get(), p.conv.get(),
                                                                   p.x.get(), count, &returned, ranked.data()));
      if (!pick(ranked, returned, chosen)) chosen = {CUDNN_CONVOLUTION_BWD_DATA_ALGO_1, 0, fallback_math};
      CHEX_CUDNN_CHECK(cudnnSetConvolutionMathType(p.conv.get(), chosen.math));
      CHEX_CUDNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(
          handle, p.w.get(), p.y.get(), p.conv.get(), p.x.get(),
          static_cast<cudnnConvolutionBwdDataAlgo_t>(chosen.algo), &chosen.workspace));
      break;
    }
    case ConvPass::backward_filter: {
      CHEX_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(handle, &count));
      std::vector<cudnnConvolutionBwdFilterAlgoPerf_t> ranked(static_cast<size_t>(count));
      CHEX_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterAlgorithm_v7(handle, p.x.get(), p.y.get(), p.conv.get(),
                                                                     p.w.get(), count, &returned, ranked.data()));
      if (!pick(ranked, returned, chosen)) chosen = {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1, 0, fallback_math};
      CHEX_CUDNN_CHECK(cudnnSetConvolutionMathType(p.conv.get(), chosen.math));
      CHEX_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterWorkspaceSize(
          handle, p.x.get(), p.y.get(), p.conv.get(), p.w.get(),
          static_cast<cudnnConvolutionBwdFilterAlgo_t>(chosen.algo), &chosen.workspace));
      break;
    }
  }
  return chosen;
}

}  // namespace

ConvAlgorithm conv_algorithm(cudnnHandle_t handle, ConvPass pass, const std::string& key, ConvProblem problem) {
  static std::map<std::pair<ConvPass, std::string>, ConvAlgorithm> cache;
  static std::mutex mutex;
  std::lock_guard lock(mutex);
  const auto found = cache.find({pass, key});
  if (found != cache.end()) {
    CHEX_CUDNN_CHECK(cudnnSetConvolutionMathType(problem.conv.get(), found->second.math));
    return found->second;
  }
  const ConvAlgorithm chosen = choose(handle, pass, problem);
  cache.emplace(std::pair{pass, key}, chosen);
  return chosen;
}

}  // namespace chex::cuda
CHEX_CUDNN_LEGACY_API_END

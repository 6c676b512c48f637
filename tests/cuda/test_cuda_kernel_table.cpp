// The CUDA backend's kernel table has every required kernel and, of the optional ones, exactly
// those CHEX_CUDA_OPTIONAL_KERNELS lists (the batch-norm moments, the bf16 convolutions).
// tests/test_densenet_kernel_calls counts the kernels of CUDA's DenseNet step on the CPU with the other optional kernels hidden
// (CpuPath::like_cuda, which keeps that same list), which is CUDA's path only while this holds.
#include <catch2/catch.hpp>

#include <set>
#include <string>

#include "engine/src/backend/backend.h"

TEST_CASE("the CUDA kernel table has every required kernel and only the optional ones it lists", "[cuda-table]") {
  const chex::backend::KernelTable& t = chex::backend::cuda_kernels();
#define CHEX_CHECK_REQUIRED(ret, name, ...) CHECK(t.name != nullptr);
  CHEX_BACKEND_KERNELS(CHEX_CHECK_REQUIRED)
#undef CHEX_CHECK_REQUIRED
  std::set<std::string> listed;
#define CHEX_LIST_NAME(ret, name, ...) listed.insert(#name);
  CHEX_CUDA_OPTIONAL_KERNELS(CHEX_LIST_NAME)
#undef CHEX_LIST_NAME
  CHECK(listed == std::set<std::string>{"batch_norm_moments", "batch_norm_moments_bf16",
                                        "batch_norm_statistics_from_moments", "conv2d_bf16_workspace_bytes",
                                        "conv2d_forward_bf16", "conv2d_bf16_backward_workspace_bytes",
                                        "conv2d_backward_data_bf16", "conv2d_backward_weight_bf16"});
#define CHEX_CHECK_OPTIONAL(ret, name, ...) \
  {                                         \
    INFO(#name);                            \
    CHECK((t.name != nullptr) == listed.contains(#name)); \
  }
  CHEX_OPTIONAL_BACKEND_KERNELS(CHEX_CHECK_OPTIONAL)
#undef CHEX_CHECK_OPTIONAL
}

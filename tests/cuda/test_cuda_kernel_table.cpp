// The CUDA backend's kernel table has none of the optional kernels. tests/test_densenet_kernel_calls
// counts the kernels of CUDA's DenseNet step on the CPU with the optional kernels hidden
// (CpuPath::without_optional_kernels), which is CUDA's path only while this holds: when a CUDA
// optional kernel is added, that emulation (and bench_kernels' weights) must follow.
#include <catch2/catch.hpp>

#include "engine/src/backend/backend.h"

TEST_CASE("the CUDA kernel table has every required kernel and no optional one", "[cuda-table]") {
  const chex::backend::KernelTable& t = chex::backend::cuda_kernels();
#define CHEX_CHECK_REQUIRED(ret, name, ...) CHECK(t.name != nullptr);
#define CHEX_CHECK_ABSENT(ret, name, ...) CHECK(t.name == nullptr);
  CHEX_BACKEND_KERNELS(CHEX_CHECK_REQUIRED)
  CHEX_OPTIONAL_BACKEND_KERNELS(CHEX_CHECK_ABSENT)
#undef CHEX_CHECK_REQUIRED
#undef CHEX_CHECK_ABSENT
}

// The CUDA backend's kernel table: the hand-written launchers (kernels/*.cu) and the cuDNN/cuBLAS
// kernels of this directory, with the CPU twins' signatures (backend/backend.h), and the optional
// kernels it has (CHEX_CUDA_OPTIONAL_KERNELS).
#include "backend/backend.h"
#include "cuda/library_kernels.h"

namespace chex::backend {

const KernelTable& cuda_kernels() {
  static const KernelTable table = [] {
    KernelTable t;
#define CHEX_CUDA_TABLE_ENTRY(ret, name, ...) t.name = &kernels::cuda::name;
    CHEX_BACKEND_KERNELS(CHEX_CUDA_TABLE_ENTRY)
    CHEX_CUDA_OPTIONAL_KERNELS(CHEX_CUDA_TABLE_ENTRY)
#undef CHEX_CUDA_TABLE_ENTRY
    return t;
  }();
  return table;
}

}  // namespace chex::backend

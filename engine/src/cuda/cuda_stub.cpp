// Used when chex is built without the CUDA backend. No CUDA tensor can exist in such a build
// (require_device refuses the device first), so these only ever report the missing backend.
#include "chex/error.h"
#include "cuda/ops_cuda.h"

namespace chex::cuda {
namespace {
[[noreturn]] void no_backend() { CHEX_FAIL("this build of chex has no CUDA backend; use --device cpu"); }
}  // namespace

// The CUDA side of the ops (cuda/ops_cuda.h).
void sum(int, const float*, int64_t, float*) { no_backend(); }
void broadcast_scalar(int, const float*, float*, int64_t) { no_backend(); }
void bce_with_logits(int, const float*, const float*, const float*, const float*, int64_t, int64_t, float*, float*) {
  no_backend();
}
void mul_by_scalar(int, const float*, const float*, float*, int64_t) { no_backend(); }
void adam_multi_tensor(int, std::vector<kernels::AdamTensor>&, const kernels::AdamHyper&) { no_backend(); }
void sgd_multi_tensor(int, std::vector<kernels::SgdTensor>&, const kernels::SgdHyper&) { no_backend(); }

}  // namespace chex::cuda

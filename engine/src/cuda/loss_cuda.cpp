// bce_with_logits on CUDA: the fused sigmoid + weighted BCE kernel (kernels/bce.cu), loss and
// gradient (for a loss gradient of 1) in one launch.
#include "device_context.h"
#include "kernels/bce.h"
#include "ops_cuda.h"

namespace chex::cuda {

void bce_with_logits(int device, const float* logits, const float* targets, const float* pos_weight,
                     const float* neg_weight, int64_t batch, int64_t classes, float* loss, float* dlogits) {
  kernels::cuda::bce_with_logits(logits, targets, pos_weight, neg_weight, batch, classes, loss, 1.f, dlogits,
                                 context(device).stream);
}

}  // namespace chex::cuda

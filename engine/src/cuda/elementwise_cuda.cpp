// The scalar broadcasts on CUDA over contiguous arrays (the gradient of a sum, scaling by a device
// scalar) through cuDNN's tensor operations on [1, 1, 1, n] views, in chunks below cuDNN's
// 2^31-element limit.
#include <algorithm>

#include "chex/error.h"
#include "cudnn_check.h"
#include "cudnn_descriptors.h"
#include "cudnn_legacy.h"
#include "device_context.h"
#include "library_kernels.h"

CHEX_CUDNN_LEGACY_API_BEGIN
namespace chex::kernels::cuda {
namespace {

using chex::cuda::OpTensorDescriptor;
using chex::cuda::TensorDescriptor;

constexpr int64_t kChunk = int64_t{1} << 30;

// Calls fn(offset, length) over [0, n) in chunks cuDNN can describe.
template <typename Fn>
void in_chunks(int64_t n, Fn fn) {
  for (int64_t offset = 0; offset < n; offset += kChunk) fn(offset, std::min(kChunk, n - offset));
}

}  // namespace

void broadcast_scalar(const Queue& q, const float* value, float* y, int64_t n) {
  if (n == 0) return;
  const DeviceContext& ctx = context(q.device);
  const TensorDescriptor scalar = TensorDescriptor::flat(1);
  in_chunks(n, [&](int64_t offset, int64_t length) {
    // beta 0: y is written, not read.
    CHEX_CUDNN_CHECK(cudnnAddTensor(ctx.cudnn, &kOne, scalar.get(), value, &kZero, TensorDescriptor::flat(length).get(),
                                    y + offset));
  });
}

void mul_by_scalar(const Queue& q, const float* a, const float* scalar, float* y, int64_t n) {
  if (n == 0) return;
  const DeviceContext& ctx = context(q.device);
  const OpTensorDescriptor mul(CUDNN_OP_TENSOR_MUL);
  const TensorDescriptor one_value = TensorDescriptor::flat(1);
  in_chunks(n, [&](int64_t offset, int64_t length) {
    const TensorDescriptor flat = TensorDescriptor::flat(length);
    // B = the scalar, broadcast over A's elements.
    CHEX_CUDNN_CHECK(cudnnOpTensor(ctx.cudnn, mul.get(), &kOne, flat.get(), a + offset, &kOne, one_value.get(), scalar,
                                   &kZero, flat.get(), y + offset));
  });
}

}  // namespace chex::kernels::cuda
CHEX_CUDNN_LEGACY_API_END

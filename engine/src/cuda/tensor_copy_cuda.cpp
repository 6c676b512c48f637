// Strided copies and fills of device tensors (Tensor::copy_, contiguous(), fill_, zeros):
// batch-strided copies are one cudaMemcpy2DAsync, anything else goes through cuDNN's
// cudnnTransformTensor (any strides, rank up to 8), fills through cudnnSetTensor.
#include <algorithm>

#include "chex/error.h"
#include "device_runtime.h"
#include "cuda_check.h"
#include "cudnn_check.h"
#include "cudnn_descriptors.h"
#include "cudnn_legacy.h"
#include "device_context.h"

CHEX_CUDNN_LEGACY_API_BEGIN
namespace chex::cuda {
namespace {

bool has_zero_size(const Shape& shape) {
  return std::any_of(shape.begin(), shape.end(), [](int64_t s) { return s == 0; });
}

// Dimensions 1.. densely packed (size-1 dimensions may have any stride), images not overlapping:
// rows of a cudaMemcpy2D.
bool batch_strided(const Shape& shape, const Shape& strides) {
  int64_t expected = 1;
  for (size_t i = shape.size(); i-- > 1;) {
    if (shape[i] != 1 && strides[i] != expected) return false;
    expected *= shape[i];
  }
  return shape[0] <= 1 || strides[0] >= expected;
}

// cuDNN wants at least one dimension: a scalar is [1].
void at_least_1d(Shape& shape, Shape& strides) {
  if (shape.empty()) {
    shape = {1};
    strides = {1};
  }
}

}  // namespace

void strided_copy(void* dst, const Shape& dst_strides, const void* src, const Shape& src_strides, const Shape& shape,
                  size_t element_size, int device) {
  if (has_zero_size(shape)) return;
  const DeviceContext& ctx = context(device);
  if (shape.empty() || (batch_strided(shape, dst_strides) && batch_strided(shape, src_strides))) {
    const int64_t rows = shape.empty() ? 1 : shape[0];
    const int64_t image = rows > 0 ? shape_numel(shape) / rows : 0;
    const size_t width = element_size * static_cast<size_t>(image);
    auto pitch = [&](const Shape& strides) {
      return rows > 1 ? element_size * static_cast<size_t>(strides[0]) : width;
    };
    CHEX_CUDA_CHECK(cudaMemcpy2DAsync(dst, pitch(dst_strides), src, pitch(src_strides), width,
                                      static_cast<size_t>(rows), cudaMemcpyDeviceToDevice, ctx.stream));
    return;
  }
  CHEX_CHECK(element_size == sizeof(float), "copy_ on CUDA: a copy between arbitrary strides is float32 only");
  Shape s = shape, ds = dst_strides, ss = src_strides;
  at_least_1d(s, ds);
  at_least_1d(s, ss);
  const float one = 1.f, zero = 0.f;
  CHEX_CUDNN_CHECK(cudnnTransformTensor(ctx.cudnn, &one, TensorDescriptor::any_rank(s, ss).get(), src, &zero,
                                        TensorDescriptor::any_rank(s, ds).get(), dst));
}

void strided_fill(float* dst, const Shape& shape, const Shape& strides, float value, int device) {
  if (has_zero_size(shape)) return;
  const DeviceContext& ctx = context(device);
  Shape s = shape, st = strides;
  at_least_1d(s, st);
  CHEX_CUDNN_CHECK(cudnnSetTensor(ctx.cudnn, TensorDescriptor::any_rank(s, st).get(), dst, &value));
}

}  // namespace chex::cuda
CHEX_CUDNN_LEGACY_API_END

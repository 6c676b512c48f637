// Channel-block copies on CUDA: one cudaMemcpy2DAsync per call, a "row" being one image's channel
// range (channels · spatial floats, contiguous within an image) and the pitches the batch strides.
#include <algorithm>

#include "cuda_check.h"
#include "device_context.h"
#include "ops_cuda.h"

namespace chex::cuda {

void copy_channels(int device, const float* src, int64_t src_batch_stride, int64_t src_channel_offset, float* dst,
                   int64_t dst_batch_stride, int64_t dst_channel_offset, int64_t batch, int64_t channels,
                   int64_t spatial) {
  if (batch == 0 || channels == 0 || spatial == 0) return;
  const DeviceContext& ctx = context(device);
  const size_t row = sizeof(float) * static_cast<size_t>(channels * spatial);
  // With one image the pitch is never stepped over, but it must still be at least the row.
  auto pitch = [&](int64_t stride) { return std::max(row, sizeof(float) * static_cast<size_t>(stride)); };
  CHEX_CUDA_CHECK(cudaMemcpy2DAsync(dst + dst_channel_offset * spatial, pitch(dst_batch_stride),
                                    src + src_channel_offset * spatial, pitch(src_batch_stride), row,
                                    static_cast<size_t>(batch), cudaMemcpyDeviceToDevice, ctx.stream));
}

}  // namespace chex::cuda

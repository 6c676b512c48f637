#pragma once
// Channel-block copy between batch-strided NCHW buffers: the primitive of channel concatenation
// (copy each input into its channel range of the output) and of its backward (copy each range of
// the gradient back out). CPU twin (the reference the CUDA kernel is tested against).
#include <cstdint>

namespace chex::kernels::cpu {

// For every image n < batch and channel c < channels:
//   dst[n, dst_channel_offset + c, :] = src[n, src_channel_offset + c, :]
// where a channel holds `spatial` (= H*W) values, image n of src starts at src + n * src_batch_stride
// and image n of dst at dst + n * dst_batch_stride. The ranges must not overlap.
void copy_channels(const float* src, int64_t src_batch_stride, int64_t src_channel_offset, float* dst,
                   int64_t dst_batch_stride, int64_t dst_channel_offset, int64_t batch, int64_t channels,
                   int64_t spatial);

}  // namespace chex::kernels::cpu

// Channel-block copies on CUDA through the hand-written kernel (kernels/concat.cu).
// (bench_kernels compares it with one cudaMemcpy2DAsync per block.)
#include "device_context.h"
#include "kernels/concat.h"
#include "ops_cuda.h"

namespace chex::cuda {

void copy_channels(int device, const float* src, int64_t src_batch_stride, int64_t src_channel_offset, float* dst,
                   int64_t dst_batch_stride, int64_t dst_channel_offset, int64_t batch, int64_t channels,
                   int64_t spatial) {
  kernels::cuda::copy_channels(src, src_batch_stride, src_channel_offset, dst, dst_batch_stride, dst_channel_offset,
                               batch, channels, spatial, context(device).stream);
}

void add_channels(int device, const float* src, int64_t src_batch_stride, int64_t src_channel_offset, float* dst,
                  int64_t dst_batch_stride, int64_t dst_channel_offset, int64_t batch, int64_t channels,
                  int64_t spatial) {
  kernels::cuda::add_channels(src, src_batch_stride, src_channel_offset, dst, dst_batch_stride, dst_channel_offset,
                              batch, channels, spatial, context(device).stream);
}

}  // namespace chex::cuda

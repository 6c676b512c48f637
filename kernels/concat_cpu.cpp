#include "concat.h"

#include <cstring>

namespace chex::kernels::cpu {
namespace {
// Below this many elements a parallel region costs more than it saves.
constexpr int64_t kParallelThreshold = 1 << 15;
}  // namespace

void copy_channels(const Queue&, const float* src, int64_t src_batch_stride, int64_t src_channel_offset, float* dst,
                   int64_t dst_batch_stride, int64_t dst_channel_offset, int64_t batch, int64_t channels,
                   int64_t spatial) {
  // Within one image the block is contiguous in both buffers: one copy per image.
  const int64_t block = channels * spatial;
  if (block == 0) return;
#pragma omp parallel for schedule(static) if (batch * block > kParallelThreshold)
  for (int64_t n = 0; n < batch; ++n) {
    const float* from = src + n * src_batch_stride + src_channel_offset * spatial;
    float* to = dst + n * dst_batch_stride + dst_channel_offset * spatial;
    std::memcpy(to, from, static_cast<size_t>(block) * sizeof(float));
  }
}

void add_channels(const Queue&, const float* src, int64_t src_batch_stride, int64_t src_channel_offset, float* dst,
                  int64_t dst_batch_stride, int64_t dst_channel_offset, int64_t batch, int64_t channels,
                  int64_t spatial) {
  const int64_t block = channels * spatial;
  if (block == 0) return;
#pragma omp parallel for schedule(static) if (batch * block > kParallelThreshold)
  for (int64_t n = 0; n < batch; ++n) {
    const float* from = src + n * src_batch_stride + src_channel_offset * spatial;
    float* to = dst + n * dst_batch_stride + dst_channel_offset * spatial;
#pragma omp simd
    for (int64_t i = 0; i < block; ++i) to[i] += from[i];
  }
}

void concat_channels(const Queue& q, const ChannelPart* parts, int count, float* dst, int64_t dst_batch_stride,
                     int64_t batch, int64_t spatial) {
  for (int i = 0; i < count; ++i)
    copy_channels(q, parts[i].data, parts[i].batch_stride, 0, dst, dst_batch_stride, parts[i].channel_offset, batch,
                  parts[i].channels, spatial);
}

void split_channels(const Queue& q, const float* src, int64_t src_batch_stride, const ChannelPart* parts, int count,
                    int64_t batch, int64_t spatial) {
  for (int i = 0; i < count; ++i)
    copy_channels(q, src, src_batch_stride, parts[i].channel_offset, parts[i].data, parts[i].batch_stride, 0, batch,
                  parts[i].channels, spatial);
}

}  // namespace chex::kernels::cpu

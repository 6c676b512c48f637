#pragma once
// Channel-block copy between batch-strided NCHW buffers: the primitive of channel concatenation
// (copy each input into its channel range of the output) and of its backward (copy each range of
// the gradient back out). CPU twins (the reference the CUDA kernels are tested against) and the
// CUDA launchers.
//
// Memory-efficient dense blocks (DESIGN.md) use the same primitive: a layer's new channels are
// copied into their slice of the block buffer, and in backward a slice's gradient is added into
// the block gradient buffer (add_channels).
#include <cstdint>

#include "kernels/queue.h"

// The kernels of this family that both backends provide (engine/src/backend/backend.h).
#define CHEX_CONCAT_KERNELS(X) \
  X(copy_channels)             \
  X(add_channels)              \
  X(concat_channels)           \
  X(split_channels)

namespace chex::kernels {

// One part of a channel concatenation: `channels` channels of a batch-strided buffer (image n
// starts at data + n * batch_stride) that sit at `channel_offset` in the concatenated buffer.
struct ChannelPart {
  float* data = nullptr;
  int64_t batch_stride = 0;
  int64_t channels = 0;
  int64_t channel_offset = 0;
};

}  // namespace chex::kernels

namespace chex::kernels::cpu {

// For every image n < batch and channel c < channels:
//   dst[n, dst_channel_offset + c, :] = src[n, src_channel_offset + c, :]
// where a channel holds `spatial` (= H*W) values, image n of src starts at src + n * src_batch_stride
// and image n of dst at dst + n * dst_batch_stride. The ranges must not overlap.
void copy_channels(const Queue& q, const float* src, int64_t src_batch_stride, int64_t src_channel_offset, float* dst,
                   int64_t dst_batch_stride, int64_t dst_channel_offset, int64_t batch, int64_t channels,
                   int64_t spatial);
// The same ranges, accumulated: dst[n, dst_channel_offset + c, :] += src[n, src_channel_offset + c, :].
void add_channels(const Queue& q, const float* src, int64_t src_batch_stride, int64_t src_channel_offset, float* dst,
                  int64_t dst_batch_stride, int64_t dst_channel_offset, int64_t batch, int64_t channels,
                  int64_t spatial);

// Concatenation along channels: every part's channels are copied to dst at the part's channel
// offset (image n of dst starts at dst + n * dst_batch_stride).
void concat_channels(const Queue& q, const ChannelPart* parts, int count, float* dst, int64_t dst_batch_stride,
                     int64_t batch, int64_t spatial);
// Its inverse (the backward of concatenation): every part receives its channels of src.
void split_channels(const Queue& q, const float* src, int64_t src_batch_stride, const ChannelPart* parts, int count,
                    int64_t batch, int64_t spatial);

}  // namespace chex::kernels::cpu

#include "kernels/gpu.h"

namespace chex::kernels::CHEX_GPU_NAMESPACE {

// The launchers of the CPU twins above, same arguments. `parts` is a host array
// (its contents travel as kernel arguments); the buffers it points to are device memory.
void copy_channels(const Queue& q, const float* src, int64_t src_batch_stride, int64_t src_channel_offset, float* dst,
                   int64_t dst_batch_stride, int64_t dst_channel_offset, int64_t batch, int64_t channels,
                   int64_t spatial);
void add_channels(const Queue& q, const float* src, int64_t src_batch_stride, int64_t src_channel_offset, float* dst,
                  int64_t dst_batch_stride, int64_t dst_channel_offset, int64_t batch, int64_t channels,
                  int64_t spatial);
void concat_channels(const Queue& q, const ChannelPart* parts, int count, float* dst, int64_t dst_batch_stride,
                     int64_t batch, int64_t spatial);
void split_channels(const Queue& q, const float* src, int64_t src_batch_stride, const ChannelPart* parts, int count,
                    int64_t batch, int64_t spatial);

}  // namespace chex::kernels::CHEX_GPU_NAMESPACE

#pragma once
// Channel-block copy between batch-strided NCHW buffers: the primitive of channel concatenation
// (copy each input into its channel range of the output) and of its backward (copy each range of
// the gradient back out). CPU twins (the reference the CUDA kernels are tested against) and the
// CUDA launchers, both declared from one list (CHEX_DECLARE_KERNEL, kernels/queue.h): the same
// signatures by construction.
//
// Memory-efficient dense blocks (DESIGN.md) use the same primitive: a layer's new channels are
// copied into their slice of the block buffer, and in backward a slice's gradient is added into
// the block gradient buffer (add_channels).
//
// Each kernel exists for float32 and for bf16 buffers (the *_bf16 names; one template on the GPU
// and in the twins), and add_channels also from bf16 into float32. Copies move bits; additions are
// taken in float and a bf16 sum is rounded once (kernels/bfloat16.h).
#include <cstdint>

#include "kernels/bfloat16.h"
#include "kernels/queue.h"

namespace chex::kernels {

// One part of a channel concatenation: `channels` channels of a batch-strided buffer (image n
// starts at data + n * batch_stride) that sit at `channel_offset` in the concatenated buffer.
template <typename T>
struct BasicChannelPart {
  T* data = nullptr;
  int64_t batch_stride = 0;
  int64_t channels = 0;
  int64_t channel_offset = 0;
};
using ChannelPart = BasicChannelPart<float>;
using ChannelPartBf16 = BasicChannelPart<BFloat16>;

// A block of channels moved between two batch-strided buffers: for every image n < shape.batch and
// channel c < shape.channels, channel src_channel_offset + c of src goes to channel
// dst_channel_offset + c of dst (a channel holds shape.spatial = H*W values). The ranges must not
// overlap. Src and Dst are the element types (different only for an addition of bf16 into float).
template <typename Src, typename Dst = Src>
struct BasicChannelCopyArgs {
  Strided<const Src> src;
  int64_t src_channel_offset = 0;
  Strided<Dst> dst;
  int64_t dst_channel_offset = 0;
  ImageShape shape;
};
using ChannelCopyArgs = BasicChannelCopyArgs<float>;
using ChannelCopyArgsBf16 = BasicChannelCopyArgs<BFloat16>;
using ChannelCopyArgsBf16ToFloat = BasicChannelCopyArgs<BFloat16, float>;

}  // namespace chex::kernels

// The kernels of this family that both backends provide (engine/src/backend/backend.h):
//   copy_channels    dst[n, dst_channel_offset + c, :] = src[n, src_channel_offset + c, :]
//   add_channels     the same ranges, accumulated: dst[...] += src[...]
//   concat_channels  concatenation along channels: every part's channels are copied to dst at the
//                    part's channel offset (image n of dst starts at dst + n * dst_batch_stride)
//   split_channels   its inverse (the backward of concatenation): every part receives its channels
//                    of src
// the same four on bf16 buffers: copy_channels_bf16, add_channels_bf16, concat_channels_bf16,
// split_channels_bf16; and
//   add_channels_bf16_to_float  dst[...] += src[...] widened: a bf16 gradient slice accumulated
//                    into a float32 buffer (a dense block's gradient buffer stays fp32: it takes
//                    one addition per later layer, which bf16 would round each time)
#define CHEX_CONCAT_KERNELS(X)                                                                                    \
  X(void, copy_channels, const ChannelCopyArgs& a)                                                                \
  X(void, add_channels, const ChannelCopyArgs& a)                                                                 \
  X(void, concat_channels, const ChannelPart* parts, int count, float* dst, int64_t dst_batch_stride,            \
    int64_t batch, int64_t spatial)                                                                               \
  X(void, split_channels, const float* src, int64_t src_batch_stride, const ChannelPart* parts, int count,       \
    int64_t batch, int64_t spatial)                                                                               \
  X(void, copy_channels_bf16, const ChannelCopyArgsBf16& a)                                                       \
  X(void, add_channels_bf16, const ChannelCopyArgsBf16& a)                                                        \
  X(void, concat_channels_bf16, const ChannelPartBf16* parts, int count, BFloat16* dst, int64_t dst_batch_stride, \
    int64_t batch, int64_t spatial)                                                                               \
  X(void, split_channels_bf16, const BFloat16* src, int64_t src_batch_stride, const ChannelPartBf16* parts,       \
    int count, int64_t batch, int64_t spatial)                                                                    \
  X(void, add_channels_bf16_to_float, const ChannelCopyArgsBf16ToFloat& a)

namespace chex::kernels::cpu { CHEX_CONCAT_KERNELS(CHEX_DECLARE_KERNEL) }

#include "kernels/gpu.h"

// The launchers of the CPU twins. `parts` is a host array (its contents travel as kernel
// arguments); the buffers it points to are device memory.
namespace chex::kernels::CHEX_GPU_NAMESPACE { CHEX_CONCAT_KERNELS(CHEX_DECLARE_KERNEL) }

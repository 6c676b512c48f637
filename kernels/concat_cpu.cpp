#include "concat.h"

#include <cstring>
#include <type_traits>

namespace chex::kernels::cpu {
namespace {
// Below this many elements a parallel region costs more than it saves.
constexpr int64_t kParallelThreshold = 1 << 15;

// copy_channels (kAdd false) and add_channels (kAdd true) on float or bf16 buffers: within one
// image the block is contiguous in both buffers, so one memcpy, or one vectorised loop, per image.
// Sums are taken in float and rounded once to Dst.
template <bool kAdd, typename Src, typename Dst>
void move_channels(const BasicChannelCopyArgs<Src, Dst>& a) {
  const int64_t batch = a.shape.batch, spatial = a.shape.spatial;
  const int64_t block = a.shape.channels * spatial;
  if (block == 0) return;
#pragma omp parallel for schedule(static) if (batch * block > kParallelThreshold)
  for (int64_t n = 0; n < batch; ++n) {
    const Src* from = a.src.data + n * a.src.batch_stride + a.src_channel_offset * spatial;
    Dst* to = a.dst.data + n * a.dst.batch_stride + a.dst_channel_offset * spatial;
    if constexpr (kAdd) {
#pragma omp simd
      for (int64_t i = 0; i < block; ++i) to[i] = from_float<Dst>(to_float(to[i]) + to_float(from[i]));
    } else {
      static_assert(std::is_same_v<Src, Dst>, "copies keep the element type");
      std::memcpy(to, from, static_cast<size_t>(block) * sizeof(Dst));
    }
  }
}

template <typename T>
void concat_parts(const BasicChannelPart<T>* parts, int count, T* dst, int64_t dst_batch_stride, int64_t batch,
                  int64_t spatial) {
  for (int i = 0; i < count; ++i)
    move_channels<false, T, T>({.src = {parts[i].data, parts[i].batch_stride},
                                .dst = {dst, dst_batch_stride},
                                .dst_channel_offset = parts[i].channel_offset,
                                .shape = {batch, parts[i].channels, spatial}});
}

template <typename T>
void split_parts(const T* src, int64_t src_batch_stride, const BasicChannelPart<T>* parts, int count, int64_t batch,
                 int64_t spatial) {
  for (int i = 0; i < count; ++i)
    move_channels<false, T, T>({.src = {src, src_batch_stride},
                                .src_channel_offset = parts[i].channel_offset,
                                .dst = {parts[i].data, parts[i].batch_stride},
                                .shape = {batch, parts[i].channels, spatial}});
}

}  // namespace

void copy_channels(const Queue&, const ChannelCopyArgs& a) { move_channels<false>(a); }

void add_channels(const Queue&, const ChannelCopyArgs& a) { move_channels<true>(a); }

void concat_channels(const Queue&, const ChannelPart* parts, int count, float* dst, int64_t dst_batch_stride,
                     int64_t batch, int64_t spatial) {
  concat_parts(parts, count, dst, dst_batch_stride, batch, spatial);
}

void split_channels(const Queue&, const float* src, int64_t src_batch_stride, const ChannelPart* parts, int count,
                    int64_t batch, int64_t spatial) {
  split_parts(src, src_batch_stride, parts, count, batch, spatial);
}

void copy_channels_bf16(const Queue&, const ChannelCopyArgsBf16& a) { move_channels<false>(a); }

void add_channels_bf16(const Queue&, const ChannelCopyArgsBf16& a) { move_channels<true>(a); }

void concat_channels_bf16(const Queue&, const ChannelPartBf16* parts, int count, BFloat16* dst,
                          int64_t dst_batch_stride, int64_t batch, int64_t spatial) {
  concat_parts(parts, count, dst, dst_batch_stride, batch, spatial);
}

void split_channels_bf16(const Queue&, const BFloat16* src, int64_t src_batch_stride, const ChannelPartBf16* parts,
                         int count, int64_t batch, int64_t spatial) {
  split_parts(src, src_batch_stride, parts, count, batch, spatial);
}

void add_channels_bf16_to_float(const Queue&, const ChannelCopyArgsBf16ToFloat& a) { move_channels<true>(a); }

}  // namespace chex::kernels::cpu

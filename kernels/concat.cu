// Channel concatenation kernels (CUDA twins of concat_cpu.cpp). Every operation here is a set of
// rows: one row per (image, part), `channels * spatial` contiguous floats on both sides, the rows
// batch-strided. A block's threads walk one row (blockIdx.y = image, blockIdx.z = part), with
// float4 accesses whenever the source and destination rows share their alignment, after a scalar
// head that brings them to 16 bytes; scalar accesses otherwise.
#include "kernels/concat.h"

#include <algorithm>

#include "kernels/cuda_compat.h"
#include "kernels/cuda_helpers.cuh"

namespace chex::kernels::CHEX_GPU_NAMESPACE {
namespace {

constexpr int kThreads = 256;
constexpr unsigned kMaxGridY = 65535;  // CUDA's limit on gridDim.y; larger batches loop
constexpr int kMaxParts = 8;           // parts per concat launch: the table travels as an argument

struct PartTable {
  ChannelPart parts[kMaxParts];
};

template <bool kAdd>
__device__ __forceinline__ void put(float* to, float v) {
  if constexpr (kAdd) {
    *to += v;
  } else {
    *to = v;
  }
}

template <bool kAdd>
__device__ __forceinline__ void put4(float4* to, float4 v) {
  if constexpr (kAdd) {
    const float4 old = *to;
    *to = make_float4(old.x + v.x, old.y + v.y, old.z + v.z, old.w + v.w);
  } else {
    *to = v;
  }
}

// dst[i] = src[i] (or +=) for i < len, thread `first` of `step` threads taking every step-th
// element (or float4).
template <bool kAdd>
__device__ void copy_row(const float* src, float* dst, int64_t len, int64_t first, int64_t step) {
  // Floats in 16-byte units: rows whose starts differ in that phase cannot both be vector-aligned.
  const auto src_phase = static_cast<int64_t>((reinterpret_cast<uintptr_t>(src) / sizeof(float)) % 4);
  const auto dst_phase = static_cast<int64_t>((reinterpret_cast<uintptr_t>(dst) / sizeof(float)) % 4);
  int64_t head = len, vectors = 0;
  if (src_phase == dst_phase) {
    head = min(len, (4 - src_phase) % 4);
    vectors = (len - head) / 4;
  }
  for (int64_t i = first; i < head; i += step) put<kAdd>(dst + i, src[i]);
  const auto* src4 = reinterpret_cast<const float4*>(src + head);
  auto* dst4 = reinterpret_cast<float4*>(dst + head);
  for (int64_t i = first; i < vectors; i += step) put4<kAdd>(dst4 + i, src4[i]);
  for (int64_t i = head + 4 * vectors + first; i < len; i += step) put<kAdd>(dst + i, src[i]);
}

template <bool kAdd>
__global__ void copy_channels_kernel(const float* src, int64_t src_stride, float* dst, int64_t dst_stride, int64_t len,
                                     int64_t batch) {
  for (int64_t n = blockIdx.y; n < batch; n += gridDim.y)
    copy_row<kAdd>(src + n * src_stride, dst + n * dst_stride, len, first_index(), grid_threads());
}

__global__ void concat_kernel(PartTable table, float* dst, int64_t dst_stride, int64_t batch, int64_t spatial) {
  const ChannelPart part = table.parts[blockIdx.z];
  for (int64_t n = blockIdx.y; n < batch; n += gridDim.y)
    copy_row<false>(part.data + n * part.batch_stride, dst + n * dst_stride + part.channel_offset * spatial,
                    part.channels * spatial, first_index(), grid_threads());
}

__global__ void split_kernel(const float* src, int64_t src_stride, PartTable table, int64_t batch, int64_t spatial) {
  const ChannelPart part = table.parts[blockIdx.z];
  for (int64_t n = blockIdx.y; n < batch; n += gridDim.y)
    copy_row<false>(src + n * src_stride + part.channel_offset * spatial, part.data + n * part.batch_stride,
                    part.channels * spatial, first_index(), grid_threads());
}

// The grid for rows of at most `len` floats: blocks along x enough for one float4 per thread
// (capped; the loops stride over the rest), one block row per image.
dim3 grid_for(int64_t len, int64_t batch, int parts) {
  const int64_t per_row = (len / 4 + kThreads - 1) / kThreads;
  const int64_t rows = std::min(batch, int64_t{kMaxGridY});
  // About 16k blocks in all is plenty to fill any GPU; beyond that threads take several vectors.
  const int64_t cap = std::max(int64_t{1}, int64_t{16384} / (rows * parts));
  return dim3(static_cast<unsigned>(std::clamp(per_row, int64_t{1}, cap)), static_cast<unsigned>(rows),
              static_cast<unsigned>(parts));
}

template <bool kAdd>
void launch_copy(const ChannelCopyArgs& a, cudaStream_t stream) {
  const int64_t batch = a.shape.batch, spatial = a.shape.spatial;
  const int64_t len = a.shape.channels * spatial;
  if (len <= 0 || batch <= 0) return;
  CHEX_LAUNCH(copy_channels_kernel<kAdd>, grid_for(len, batch, 1), kThreads, 0, stream,
              a.src.data + a.src_channel_offset * spatial, a.src.batch_stride,
              a.dst.data + a.dst_channel_offset * spatial, a.dst.batch_stride, len, batch);
}

// Runs `launch(table, count)` over the parts in groups of kMaxParts, skipping empty parts.
template <typename Launch>
void for_part_groups(const ChannelPart* parts, int count, int64_t spatial, Launch&& launch) {
  PartTable table{};
  int filled = 0;
  int64_t longest = 0;
  for (int i = 0; i < count; ++i) {
    if (parts[i].channels * spatial <= 0) continue;
    table.parts[filled++] = parts[i];
    longest = std::max(longest, parts[i].channels * spatial);
    if (filled == kMaxParts) {
      launch(table, filled, longest);
      filled = 0;
      longest = 0;
    }
  }
  if (filled > 0) launch(table, filled, longest);
}

}  // namespace

void copy_channels(const Queue& q, const ChannelCopyArgs& a) { launch_copy<false>(a, q.stream); }

void add_channels(const Queue& q, const ChannelCopyArgs& a) { launch_copy<true>(a, q.stream); }

void concat_channels(const Queue& q, const ChannelPart* parts, int count, float* dst, int64_t dst_batch_stride,
                     int64_t batch, int64_t spatial) {
  if (batch <= 0) return;
  for_part_groups(parts, count, spatial, [&](const PartTable& table, int filled, int64_t longest) {
    CHEX_LAUNCH(concat_kernel, grid_for(longest, batch, filled), kThreads, 0, q.stream, table, dst, dst_batch_stride,
                batch, spatial);
  });
}

void split_channels(const Queue& q, const float* src, int64_t src_batch_stride, const ChannelPart* parts, int count,
                    int64_t batch, int64_t spatial) {
  if (batch <= 0) return;
  for_part_groups(parts, count, spatial, [&](const PartTable& table, int filled, int64_t longest) {
    CHEX_LAUNCH(split_kernel, grid_for(longest, batch, filled), kThreads, 0, q.stream, src, src_batch_stride, table,
                batch, spatial);
  });
}

}  // namespace chex::kernels::CHEX_GPU_NAMESPACE

// Channel concatenation kernels (CUDA twins of concat_cpu.cpp), one template for float and bf16
// buffers (and for the addition of bf16 into float). Every operation here is a set of rows: one row
// per (image, part), `channels * spatial` contiguous elements on both sides, the rows
// batch-strided. A block's threads walk one row (blockIdx.y = image, blockIdx.z = part), with
// vector accesses (16 bytes of the wider type: four floats, eight bf16) whenever the source and
// destination rows share their alignment, after a scalar head that brings them to it; scalar
// accesses otherwise. Sums are taken in float and rounded once to bf16.
#include "kernels/concat.h"

#include <algorithm>

#include "kernels/cuda_compat.h"
#include "kernels/cuda_helpers.cuh"
#include "kernels/element_type.cuh"

namespace chex::kernels::CHEX_GPU_NAMESPACE {
namespace {

constexpr int kThreads = 256;
constexpr unsigned kMaxGridY = 65535;  // CUDA's limit on gridDim.y; larger batches loop
constexpr int kMaxParts = 8;           // parts per concat launch: the table travels as an argument

// T is the interface element type (float or BFloat16), as in the parts' pointers.
template <typename T>
struct PartTable {
  BasicChannelPart<T> parts[kMaxParts];
};

// Elements per vector access: 16 bytes of the wider of the two types (4 floats, 8 bf16, or 4 bf16
// read for 4 floats written).
template <typename S, typename D>
inline constexpr int kPerVector = 16 / static_cast<int>(sizeof(S) > sizeof(D) ? sizeof(S) : sizeof(D));

// *to = v, or *to += v (in float, rounded once), for S and D the device element types.
template <bool kAdd, typename S, typename D>
__device__ __forceinline__ void put(D* to, S v) {
  if constexpr (kAdd) {
    *to = from_float<D>(to_float(*to) + to_float(v));
  } else {
    *to = v;
  }
}

template <bool kAdd, typename S, typename D>
__device__ __forceinline__ void put_vector(Vector<D, kPerVector<S, D>>* to, const Vector<S, kPerVector<S, D>>& v) {
  if constexpr (kAdd) {
    Vector<D, kPerVector<S, D>> sum = *to;
#pragma unroll
    for (int k = 0; k < kPerVector<S, D>; ++k) put<true>(&sum.v[k], v.v[k]);
    *to = sum;
  } else {
    *to = v;
  }
}

// dst[i] = src[i] (or +=) for i < len, thread `first` of `step` threads taking every step-th
// element (or vector).
template <bool kAdd, typename S, typename D>
__device__ void copy_row(const S* src, D* dst, int64_t len, int64_t first, int64_t step) {
  constexpr int64_t kCount = kPerVector<S, D>;
  // Elements in vector units: rows whose starts differ in that phase cannot both be vector-aligned.
  const auto src_phase = static_cast<int64_t>((reinterpret_cast<uintptr_t>(src) / sizeof(S)) % kCount);
  const auto dst_phase = static_cast<int64_t>((reinterpret_cast<uintptr_t>(dst) / sizeof(D)) % kCount);
  int64_t head = len, vectors = 0;
  if (src_phase == dst_phase) {
    head = min(len, (kCount - src_phase) % kCount);
    vectors = (len - head) / kCount;
  }
  for (int64_t i = first; i < head; i += step) put<kAdd>(dst + i, src[i]);
  const auto* src_vectors = reinterpret_cast<const Vector<S, kCount>*>(src + head);
  auto* dst_vectors = reinterpret_cast<Vector<D, kCount>*>(dst + head);
  for (int64_t i = first; i < vectors; i += step) {
    const Vector<S, kCount> v = src_vectors[i];  // one vector load, whatever put_vector reads of it
    put_vector<kAdd, S, D>(dst_vectors + i, v);
  }
  for (int64_t i = head + kCount * vectors + first; i < len; i += step) put<kAdd>(dst + i, src[i]);
}

template <bool kAdd, typename S, typename D>
__global__ void copy_channels_kernel(const S* src, int64_t src_stride, D* dst, int64_t dst_stride, int64_t len,
                                     int64_t batch) {
  for (int64_t n = blockIdx.y; n < batch; n += gridDim.y)
    copy_row<kAdd>(src + n * src_stride, dst + n * dst_stride, len, first_index(), grid_threads());
}

template <typename T>
__global__ void concat_kernel(PartTable<T> table, DeviceElement<T>* dst, int64_t dst_stride, int64_t batch,
                              int64_t spatial) {
  const BasicChannelPart<T> part = table.parts[blockIdx.z];
  const DeviceElement<T>* src = device_pointer(part.data);
  for (int64_t n = blockIdx.y; n < batch; n += gridDim.y)
    copy_row<false>(src + n * part.batch_stride, dst + n * dst_stride + part.channel_offset * spatial,
                    part.channels * spatial, first_index(), grid_threads());
}

template <typename T>
__global__ void split_kernel(const DeviceElement<T>* src, int64_t src_stride, PartTable<T> table, int64_t batch,
                             int64_t spatial) {
  const BasicChannelPart<T> part = table.parts[blockIdx.z];
  DeviceElement<T>* dst = device_pointer(part.data);
  for (int64_t n = blockIdx.y; n < batch; n += gridDim.y)
    copy_row<false>(src + n * src_stride + part.channel_offset * spatial, dst + n * part.batch_stride,
                    part.channels * spatial, first_index(), grid_threads());
}

// The grid for rows of at most `len` elements: blocks along x enough for one vector (of
// `per_vector` elements) per thread (capped; the loops stride over the rest), one block row per
// image.
dim3 grid_for(int64_t len, int64_t per_vector, int64_t batch, int parts) {
  const int64_t per_row = (len / per_vector + kThreads - 1) / kThreads;
  const int64_t rows = std::min(batch, int64_t{kMaxGridY});
  // About 16k blocks in all is plenty to fill any GPU; beyond that threads take several vectors.
  const int64_t cap = std::max(int64_t{1}, int64_t{16384} / (rows * parts));
  return dim3(static_cast<unsigned>(std::clamp(per_row, int64_t{1}, cap)), static_cast<unsigned>(rows),
              static_cast<unsigned>(parts));
}

template <bool kAdd, typename Src, typename Dst>
void launch_copy(const BasicChannelCopyArgs<Src, Dst>& a, cudaStream_t stream) {
  const int64_t batch = a.shape.batch, spatial = a.shape.spatial;
  const int64_t len = a.shape.channels * spatial;
  if (len <= 0 || batch <= 0) return;
  using S = DeviceElement<Src>;
  using D = DeviceElement<Dst>;
  const dim3 grid = grid_for(len, kPerVector<S, D>, batch, 1);
  CHEX_LAUNCH((copy_channels_kernel<kAdd, S, D>), grid, kThreads, 0, stream,
              device_pointer(a.src.data + a.src_channel_offset * spatial), a.src.batch_stride,
              device_pointer(a.dst.data + a.dst_channel_offset * spatial), a.dst.batch_stride, len, batch);
}

// Runs `launch(table, count, longest)` over the parts in groups of kMaxParts, skipping empty parts.
template <typename T, typename Launch>
void for_part_groups(const BasicChannelPart<T>* parts, int count, int64_t spatial, Launch&& launch) {
  PartTable<T> table{};
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

template <typename T>
void launch_concat(const Queue& q, const BasicChannelPart<T>* parts, int count, T* dst, int64_t dst_batch_stride,
                   int64_t batch, int64_t spatial) {
  if (batch <= 0) return;
  for_part_groups(parts, count, spatial, [&](const PartTable<T>& table, int filled, int64_t longest) {
    CHEX_LAUNCH(concat_kernel<T>, grid_for(longest, kPerVector<T, T>, batch, filled), kThreads, 0, q.stream, table,
                device_pointer(dst), dst_batch_stride, batch, spatial);
  });
}

template <typename T>
void launch_split(const Queue& q, const T* src, int64_t src_batch_stride, const BasicChannelPart<T>* parts, int count,
                  int64_t batch, int64_t spatial) {
  if (batch <= 0) return;
  for_part_groups(parts, count, spatial, [&](const PartTable<T>& table, int filled, int64_t longest) {
    CHEX_LAUNCH(split_kernel<T>, grid_for(longest, kPerVector<T, T>, batch, filled), kThreads, 0, q.stream,
                device_pointer(src), src_batch_stride, table, batch, spatial);
  });
}

}  // namespace

void copy_channels(const Queue& q, const ChannelCopyArgs& a) { launch_copy<false>(a, q.stream); }

void add_channels(const Queue& q, const ChannelCopyArgs& a) { launch_copy<true>(a, q.stream); }

void concat_channels(const Queue& q, const ChannelPart* parts, int count, float* dst, int64_t dst_batch_stride,
                     int64_t batch, int64_t spatial) {
  launch_concat(q, parts, count, dst, dst_batch_stride, batch, spatial);
}

void split_channels(const Queue& q, const float* src, int64_t src_batch_stride, const ChannelPart* parts, int count,
                    int64_t batch, int64_t spatial) {
  launch_split(q, src, src_batch_stride, parts, count, batch, spatial);
}

void copy_channels_bf16(const Queue& q, const ChannelCopyArgsBf16& a) { launch_copy<false>(a, q.stream); }

void add_channels_bf16(const Queue& q, const ChannelCopyArgsBf16& a) { launch_copy<true>(a, q.stream); }

void concat_channels_bf16(const Queue& q, const ChannelPartBf16* parts, int count, BFloat16* dst,
                          int64_t dst_batch_stride, int64_t batch, int64_t spatial) {
  launch_concat(q, parts, count, dst, dst_batch_stride, batch, spatial);
}

void split_channels_bf16(const Queue& q, const BFloat16* src, int64_t src_batch_stride, const ChannelPartBf16* parts,
                         int count, int64_t batch, int64_t spatial) {
  launch_split(q, src, src_batch_stride, parts, count, batch, spatial);
}

void add_channels_bf16_to_float(const Queue& q, const ChannelCopyArgsBf16ToFloat& a) {
  launch_copy<true>(a, q.stream);
}

}  // namespace chex::kernels::CHEX_GPU_NAMESPACE

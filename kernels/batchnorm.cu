// Batch-norm kernels (CUDA twins of batchnorm_cpu.cpp). Every kernel that reads or writes images is
// a template on their element type D (x, y, dy, dx), float or __nv_bfloat16 (the *_bf16
// launchers): bf16 values are widened on the load, summed in double and computed on in float as
// float32 ones are, and each result rounded once on the store (kernels/element_type.cuh); the
// parameters, statistics, parameter gradients, moments and workspace partials are the float32
// kernels' in both.
//
// Work layout. blockIdx.y is the channel. A channel's batch * spatial values are `count` items of
// W elements: W = 4 (a float4, or four bf16 in 8 bytes) when every tensor's base, batch stride and
// the spatial size keep the alignment of four elements, else W = 1. Two launch shapes, chosen by the
// item count alone:
//  - small channels (at most 4,096 items: DenseNet's 7x7 and 14x14 norms at batch 16 and 64, its
//    28x28 ones at batch 16): one pass. One block of 512 threads per channel loads all its items
//    into registers (at most 8 a thread, every load issued before any store), sums them, and
//    normalises or differentiates them from the registers: training forward, inference, apply and
//    backward are one launch each, x and dy are read once, and no workspace is needed. With a
//    block per channel in two passes these ran at 15-30% of DRAM peak on the H200 (latency: two
//    launches, a few dependent loads a thread, two reads);
//  - larger channels: the gridDim.x blocks of a channel (its "splits") share the items in a
//    grid-stride loop, a pass for the sums and one to apply them. Splits depend on the shape alone,
//    so results are the same on any GPU.
//
// Reductions are deterministic: each thread sums a fixed set of items, a block sums its threads in
// a fixed order (through shared memory to one warp, then a shuffle tree) and writes its partial to a
// workspace slot; the consuming kernel combines a channel's partials in index order. No float
// atomics, so no result depends on the order in which blocks or threads run.
//
// The training forward also comes in parts (batch_norm_moments, batch_norm_statistics_from_moments)
// for the dense block, which keeps the moments of its buffer's channels: the same partials, the
// same combination and formulas (shared device functions), so the same bits as the forward.
//
// Sums are in double, as in the CPU twin: A100/H100 run FP64 at half the FP32 rate and convert
// float->double at 16 per SM-clock, several times what a memory-bound pass needs (1-2 conversions
// and 2-3 flops per loaded float), and the statistics then match the twin to a few ulps.
#include <cstdint>
#include <initializer_list>
#include <type_traits>
#include <utility>

#include "kernels/batchnorm.h"
#include "kernels/cuda_compat.h"
#include "kernels/cuda_helpers.cuh"
#include "kernels/element_type.cuh"

namespace chex::kernels::CHEX_GPU_NAMESPACE {
namespace {

constexpr int kThreads = 256;
// About two waves of 8 resident 256-thread blocks on each of an H100's 132 SMs.
constexpr int64_t kTargetBlocks = 2048;
// Fewer blocks rather than threads with less than this many items each.
constexpr int64_t kMinItemsPerThread = 4;
constexpr int64_t kMaxSplits = 1024;

// ---- Reductions.

struct Sums {  // two sums reduced together
  double a, b;
};

// One block's share of a channel's values: their count, mean and sum of squared deviations from
// that mean. Partials combine exactly (Chan et al.), so no block needs a shift common to all.
struct Moments {
  double count, mean, m2;
};

__device__ __forceinline__ Sums add(Sums l, Sums r) { return {l.a + r.a, l.b + r.b}; }

using CHEX_GPU_NAMESPACE::warp_sum;  // beside the overload for Sums, which would hide it
__device__ __forceinline__ Sums warp_sum(Sums s) { return {warp_sum(s.a), warp_sum(s.b)}; }

// Sum over the block (kBlock threads) in a fixed order; valid in thread 0. Every thread calls it.
// The threads' sums go through shared memory to warp 0, whose lanes add their column of kBlock / 32
// values, then shuffle: once per block, so one barrier rather than ten shuffles per thread.
template <int kBlock = kThreads>
__device__ Sums block_sum(Sums s) {
  CHEX_SHARED(Sums[kBlock], all);
  all[threadIdx.x] = s;
  __syncthreads();
  if (threadIdx.x < 32) {
    s = all[threadIdx.x];
#pragma unroll
    for (int w = 1; w < kBlock / 32; ++w) s = add(s, all[threadIdx.x + 32 * w]);
    s = warp_sum(s);
  }
  return s;
}

// Thread 0's value to every thread of the block (after a barrier).
template <typename T>
__device__ T broadcast_from_thread0(const T& value) {
  CHEX_SHARED(T, shared);
  if (threadIdx.x == 0) shared = value;
  __syncthreads();
  return shared;
}

// A channel's moments from its `splits` partials, combined in index order by one full warp; every
// lane gets the result, and every warp that asks gets the same bits.
__device__ Moments warp_channel_moments(const Moments* partials, int splits) {
  const int lane = static_cast<int>(threadIdx.x % 32);
  Sums s{0.0, 0.0};  // count, count * mean
  for (int k = lane; k < splits; k += 32) s = add(s, Sums{partials[k].count, partials[k].count * partials[k].mean});
  s = warp_sum(s);
  const double count = __shfl_sync(kFullMask, s.a, 0);
  const double mean = __shfl_sync(kFullMask, s.b, 0) / count;
  double m2 = 0.0;
  for (int k = lane; k < splits; k += 32) {
    const double d = partials[k].mean - mean;
    m2 += partials[k].m2 + partials[k].count * d * d;
  }
  m2 = __shfl_sync(kFullMask, warp_sum(m2), 0);
  return {count, mean, m2};
}

// The same for a whole block: warp 0 combines, everyone gets the result.
__device__ Moments block_channel_moments(const Moments* partials, int splits) {
  CHEX_SHARED(Moments, result);
  if (threadIdx.x < 32) {
    const Moments m = warp_channel_moments(partials, splits);
    if (threadIdx.x == 0) result = m;
  }
  __syncthreads();
  return result;
}

// A channel's summed partials (plain sums), combined in index order; every thread gets the result.
__device__ Sums block_channel_sums(const Sums* partials, int splits) {
  CHEX_SHARED(Sums, result);
  if (threadIdx.x < 32) {
    Sums s{0.0, 0.0};
    for (int k = static_cast<int>(threadIdx.x); k < splits; k += 32) s = add(s, partials[k]);
    s = warp_sum(s);
    if (threadIdx.x == 0) result = s;
  }
  __syncthreads();
  return result;
}

// ---- Statistics as the CPU twin derives them.

struct ChannelStats {
  float mean, invstd;  // what normalises (float-rounded, as saved)
};

// The biased variance, what batch_norm_moments writes (m2 can round a hair below 0 for a constant
// channel).
__device__ __forceinline__ double biased_var(const Moments& m) { return fmax(m.m2, 0.0) / m.count; }

// What a training BN does with channel c's moments (mean and biased variance over `count` values):
// the biased variance normalises, the running statistics take the unbiased one. Returns the
// statistics to normalise with; `writer` (one thread per channel) also saves them, unless null, and
// moves the running ones. The training forwards and batch_norm_statistics_from_moments share it,
// so that the kept moments give the forward's bits.
__device__ ChannelStats use_moments(double mean, double var, double count, bool writer, unsigned c, float momentum,
                                    float eps, float* running_mean, float* running_var, float* save_mean,
                                    float* save_invstd) {
  const ChannelStats st{static_cast<float>(mean), static_cast<float>(1.0 / sqrt(var + static_cast<double>(eps)))};
  if (writer) {
    if (save_mean) save_mean[c] = st.mean;
    if (save_invstd) save_invstd[c] = st.invstd;
    const double unbiased = count > 1.0 ? count / (count - 1.0) : 1.0;
    const double mo = momentum;
    running_mean[c] = static_cast<float>((1.0 - mo) * running_mean[c] + mo * mean);
    running_var[c] = static_cast<float>((1.0 - mo) * running_var[c] + mo * var * unbiased);
  }
  return st;
}

__device__ __forceinline__ float running_invstd(float running_var, float eps) {
  return static_cast<float>(1.0 / sqrt(static_cast<double>(running_var) + static_cast<double>(eps)));
}

// The one formula of a normalised value, shared by the forward and the backward's ReLU mask so that
// both see the same bits (an explicit fma: no contraction choice left to the compiler).
__device__ __forceinline__ float normalized(float x, float mean, float scale, float shift) {
  return fmaf(x - mean, scale, shift);
}

// ---- Items.

template <int W>
struct Pack {
  float v[W];
};

// W elements of D (float or __nv_bfloat16) widened to float;
// bf16 items are W-element vectors (8 bytes for W = 4), rounded once on the store.
template <int W, typename D>
__device__ __forceinline__ Pack<W> load(const D* p) {
  if constexpr (!std::is_same_v<D, float>) {
    const Vector<D, W> q = *reinterpret_cast<const Vector<D, W>*>(p);
    Pack<W> r;
#pragma unroll
    for (int k = 0; k < W; ++k) r.v[k] = to_float(q.v[k]);
    return r;
  } else if constexpr (W == 4) {
    const float4 q = *reinterpret_cast<const float4*>(p);
    return {{q.x, q.y, q.z, q.w}};
  } else {
    return {{*p}};
  }
}

template <int W, typename D>
__device__ __forceinline__ void store(D* p, const Pack<W>& q) {
  if constexpr (!std::is_same_v<D, float>) {
    Vector<D, W> r;
#pragma unroll
    for (int k = 0; k < W; ++k) r.v[k] = from_float<D>(q.v[k]);
    *reinterpret_cast<Vector<D, W>*>(p) = r;
  } else if constexpr (W == 4) {
    *reinterpret_cast<float4*>(p) = make_float4(q.v[0], q.v[1], q.v[2], q.v[3]);
  } else {
    *p = q.v[0];
  }
}

// A channel's values as items: item j is image j / per_image, floats (j % per_image) * W onwards of
// that image's channel plane.
struct Layout {
  int64_t spatial;     // H*W, also the distance between channel planes of an image
  unsigned per_image;  // items per plane: spatial / W
  unsigned count;      // items per channel: batch * per_image
};

// The image and the float offset within the plane of item j.
struct Item {
  unsigned n;
  int64_t offset;
};
template <int W>
__device__ __forceinline__ Item item(unsigned j, const Layout& l) {
  const unsigned n = j / l.per_image;
  return {n, int64_t{j - n * l.per_image} * W};
}

// The gradient reaching the BN output: a batch-strided tensor of D.
template <typename D>
struct Grad {
  const D* data;
  int64_t batch_stride;
};
template <int W, typename D>
__device__ __forceinline__ Pack<W> load_grad(const Grad<D>& g, unsigned c, const Item& it, const Layout& l) {
  return load<W>(g.data + it.n * g.batch_stride + c * l.spatial + it.offset);
}

// y = normalized(x) (then ReLU) over the block's items of channel c; D is the element type.
template <int W, bool kRelu, typename D>
__device__ __forceinline__ void normalize_items(const D* x, int64_t x_stride, D* y, int64_t y_stride,
                                                unsigned c, const Layout& l, float mean, float scale, float shift) {
  const D* xc = x + c * l.spatial;
  D* yc = y + c * l.spatial;
  for (unsigned j = blockIdx.x * kThreads + threadIdx.x; j < l.count; j += gridDim.x * kThreads) {
    const Item it = item<W>(j, l);
    Pack<W> v = load<W>(xc + it.n * x_stride + it.offset);
#pragma unroll
    for (int k = 0; k < W; ++k) {
      v.v[k] = normalized(v.v[k], mean, scale, shift);
      if constexpr (kRelu) v.v[k] = relu(v.v[k]);
    }
    store<W>(yc + it.n * y_stride + it.offset, v);
  }
}

// ---- Kernels.

// Pass 1 of the training forward: each block's moments of its items of channel blockIdx.y, summed
// relative to the block's first value (a shift that keeps the sum of squares from cancelling).
template <typename D, int W>
__global__ void __launch_bounds__(kThreads) bn_moments(const D* x, int64_t x_stride, Layout l, Moments* partials) {
  const unsigned c = blockIdx.y;
  const D* xc = x + c * l.spatial;
  const unsigned first = blockIdx.x * kThreads;  // < l.count: every block has items
  const Item first_item = item<W>(first, l);
  const double shift = to_float(xc[first_item.n * x_stride + first_item.offset]);
  Sums s{0.0, 0.0};
  for (unsigned j = first + threadIdx.x; j < l.count; j += gridDim.x * kThreads) {
    const Item it = item<W>(j, l);
    const Pack<W> v = load<W>(xc + it.n * x_stride + it.offset);
#pragma unroll
    for (int k = 0; k < W; ++k) {
      const double d = static_cast<double>(v.v[k]) - shift;
      s.a += d;
      s.b += d * d;
    }
  }
  s = block_sum(s);
  if (threadIdx.x == 0) {
    // Items of this block: one per thread per full round of the grid, plus its part of the last.
    const unsigned grid_items = gridDim.x * kThreads;
    const unsigned rounds = l.count / grid_items, rest = l.count - rounds * grid_items;
    const unsigned extra = rest > first ? min(rest - first, static_cast<unsigned>(kThreads)) : 0u;
    const double n = static_cast<double>(rounds * kThreads + extra) * W;
    const double d = s.a / n;
    partials[c * gridDim.x + blockIdx.x] = {n, shift + d, s.b - s.a * d};
  }
}

// Pass 2 of the training forward: combine the channel's moments, save them and update the running
// statistics (block 0), normalise.
template <typename D, int W, bool kRelu>
__global__ void __launch_bounds__(kThreads)
    bn_forward_training_apply(const D* x, int64_t x_stride, D* y, int64_t y_stride, Layout l,
                              const Moments* partials, const float* gamma, const float* beta, float momentum,
                              float eps, float* running_mean, float* running_var, float* save_mean,
                              float* save_invstd) {
  const unsigned c = blockIdx.y;
  const Moments m = block_channel_moments(partials + c * gridDim.x, static_cast<int>(gridDim.x));
  const ChannelStats st = use_moments(m.mean, biased_var(m), m.count, blockIdx.x == 0 && threadIdx.x == 0, c, momentum,
                                      eps, running_mean, running_var, save_mean, save_invstd);
  normalize_items<W, kRelu>(x, x_stride, y, y_stride, c, l, st.mean, st.invstd * gamma[c], beta[c]);
}

// Channel c's (mean, invstd) for normalising with fixed statistics: the running ones (kRunning,
// `spread` the running variance) or given ones (`spread` is invstd); one thread, `saver`, records
// them in save_mean / save_invstd when those are wanted.
struct FixedStatistics {
  float mean, invstd;
};
template <bool kRunning>
__device__ __forceinline__ FixedStatistics fixed_statistics(unsigned c, const float* mean, const float* spread,
                                                            float eps, bool saver, float* save_mean,
                                                            float* save_invstd) {
  const FixedStatistics st{mean[c], kRunning ? running_invstd(spread[c], eps) : spread[c]};
  if (saver) {
    if (save_mean) save_mean[c] = st.mean;
    if (save_invstd) save_invstd[c] = st.invstd;
  }
  return st;
}

// Normalisation with fixed statistics: the running ones (inference; kRunning, and `spread` is the
// running variance) or given ones (apply; `spread` is invstd). D is the element type of x and y.
template <typename D, int W, bool kRelu, bool kRunning>
__global__ void __launch_bounds__(kThreads)
    bn_forward_fixed(const D* x, int64_t x_stride, D* y, int64_t y_stride, Layout l, const float* mean,
                     const float* spread, const float* gamma, const float* beta, float eps, float* save_mean,
                     float* save_invstd) {
  const unsigned c = blockIdx.y;
  const FixedStatistics st = fixed_statistics<kRunning>(c, mean, spread, eps, blockIdx.x == 0 && threadIdx.x == 0,
                                                        save_mean, save_invstd);
  normalize_items<W, kRelu>(x, x_stride, y, y_stride, c, l, st.mean, st.invstd * gamma[c], beta[c]);
}

// Pass 1 of the backward: each block's sum(dy') and sum(dy' * (x - mean)) over its items of
// channel blockIdx.y, where dy' is dy masked by the fused ReLU.
template <typename D, int W, bool kRelu>
__global__ void __launch_bounds__(kThreads)
    bn_backward_sums(const D* x, int64_t x_stride, Grad<D> dy, Layout l, const float* mean, const float* invstd,
                     const float* gamma, const float* beta, Sums* partials) {
  const unsigned c = blockIdx.y;
  const float mean_c = mean[c];
  const float scale = invstd[c] * gamma[c];
  const float shift = kRelu ? beta[c] : 0.f;
  const D* xc = x + c * l.spatial;
  Sums s{0.0, 0.0};
  for (unsigned j = blockIdx.x * kThreads + threadIdx.x; j < l.count; j += gridDim.x * kThreads) {
    const Item it = item<W>(j, l);
    const Pack<W> xv = load<W>(xc + it.n * x_stride + it.offset);
    const Pack<W> g = load_grad<W>(dy, c, it, l);
#pragma unroll
    for (int k = 0; k < W; ++k) {
      const float gk = !kRelu || normalized(xv.v[k], mean_c, scale, shift) > 0.f ? g.v[k] : 0.f;
      s.a += gk;
      s.b += static_cast<double>(gk) * (static_cast<double>(xv.v[k]) - mean_c);
    }
  }
  s = block_sum(s);
  if (threadIdx.x == 0) partials[c * gridDim.x + blockIdx.x] = s;
}

// dx = scale * (dy' - mean - (x - mean_c) * centered), as the twin: the two coefficients from the
// channel's sums (zero with fixed statistics).
struct DxCoefficients {
  float mean, centered;
};

// What both backward kernels know of channel c: its statistics, the scale and the ReLU's shift;
// finish() turns the channel's sums (dy', dy' (x - mean)) into dbeta and dgamma (written by the
// thread `saver`) and dx's coefficients.
template <bool kRelu>
struct BackwardChannel {
  float mean, invstd, scale, shift;
  __device__ BackwardChannel(unsigned c, const float* mean_, const float* invstd_, const float* gamma,
                             const float* beta)
      : mean(mean_[c]), invstd(invstd_[c]), scale(invstd_[c] * gamma[c]), shift(kRelu ? beta[c] : 0.f) {}

  template <bool kBatchStats>
  __device__ DxCoefficients finish(const Sums& t, double n, bool saver, unsigned c, float* dgamma, float* dbeta) const {
    if (saver) {
      if (dbeta) dbeta[c] = static_cast<float>(t.a);
      if (dgamma) dgamma[c] = static_cast<float>(t.b * invstd);
    }
    if (!kBatchStats) return {0.f, 0.f};
    return {static_cast<float>(t.a / n), static_cast<float>(t.b / n * invstd * invstd)};
  }
};

// Pass 2 of the backward: combine the channel's sums (when there are partials), write dgamma and
// dbeta (block 0), then dx through the batch statistics (kBatchStats) or fixed ones.
template <typename D, int W, bool kRelu, bool kBatchStats>
__global__ void __launch_bounds__(kThreads)
    bn_backward_dx(const D* x, int64_t x_stride, Grad<D> dy, D* dx, int64_t dx_stride, Layout l,
                   const float* mean, const float* invstd, const float* gamma, const float* beta,
                   const Sums* partials, int splits, float* dgamma, float* dbeta) {
  const unsigned c = blockIdx.y;
  const BackwardChannel<kRelu> ch(c, mean, invstd, gamma, beta);
  const float mean_c = ch.mean, scale = ch.scale, shift = ch.shift;
  const Sums t = partials ? block_channel_sums(partials + c * splits, splits) : Sums{0.0, 0.0};
  const DxCoefficients coefficients = ch.template finish<kBatchStats>(t, static_cast<double>(l.count) * W,
                                                  blockIdx.x == 0 && threadIdx.x == 0, c, dgamma, dbeta);
  if (!dx) return;
  const float k_mean = coefficients.mean, k_centered = coefficients.centered;
  const D* xc = x + c * l.spatial;
  D* dxc = dx + c * l.spatial;
  for (unsigned j = blockIdx.x * kThreads + threadIdx.x; j < l.count; j += gridDim.x * kThreads) {
    const Item it = item<W>(j, l);
    const Pack<W> xv = load<W>(xc + it.n * x_stride + it.offset);
    Pack<W> g = load_grad<W>(dy, c, it, l);
#pragma unroll
    for (int k = 0; k < W; ++k) {
      const float gk = !kRelu || normalized(xv.v[k], mean_c, scale, shift) > 0.f ? g.v[k] : 0.f;
      g.v[k] = scale * (gk - k_mean - (xv.v[k] - mean_c) * k_centered);
    }
    store<W>(dxc + it.n * dx_stride + it.offset, g);
  }
}

// ---- Small channels in one pass: one block of kFusedThreads per channel holds the channel's
// items in registers (at most kFusedItems a thread), sums them, and normalises (or differentiates)
// them from the registers: one launch and one read of x (and dy) instead of two of each, no
// workspace. Used when a channel has at most kFusedThreads * kFusedItems items (DenseNet at batch
// 16: 7x7, 14x14 and 28x28); the same fixed-order double sums, so the results do not depend on the
// schedule.
constexpr int kFusedThreads = 512;
constexpr int kFusedItems = 8;
constexpr int64_t kFusedCapacity = int64_t{kFusedThreads} * kFusedItems;

// Loads this thread's items of channel c (item j = threadIdx.x + i * kFusedThreads); `valid` marks
// the ones that exist.
template <int W, typename D>
__device__ __forceinline__ void load_channel_items(const D* base, int64_t stride, unsigned c, const Layout& l,
                                                   Pack<W> (&v)[kFusedItems]) {
  const D* bc = base + c * l.spatial;
#pragma unroll
  for (int i = 0; i < kFusedItems; ++i) {
    const unsigned j = threadIdx.x + static_cast<unsigned>(i) * kFusedThreads;
    if (j < l.count) {
      const Item it = item<W>(j, l);
      v[i] = load<W>(bc + it.n * stride + it.offset);
    }
  }
}

template <int W, typename D>
__device__ __forceinline__ void store_channel_items(D* base, int64_t stride, unsigned c, const Layout& l,
                                                    const Pack<W> (&v)[kFusedItems]) {
  D* bc = base + c * l.spatial;
#pragma unroll
  for (int i = 0; i < kFusedItems; ++i) {
    const unsigned j = threadIdx.x + static_cast<unsigned>(i) * kFusedThreads;
    if (j < l.count) {
      const Item it = item<W>(j, l);
      store<W>(bc + it.n * stride + it.offset, v[i]);
    }
  }
}

// The moments of channel c from its items held in registers (load_channel_items), relative to the
// channel's first value (item 0 of image 0); every thread gets them.
template <int W, typename D>
__device__ Moments channel_moments_in_registers(const D* x, unsigned c, const Layout& l,
                                                const Pack<W> (&v)[kFusedItems]) {
  const double shift = to_float(x[c * l.spatial]);
  Sums s{0.0, 0.0};
#pragma unroll
  for (int i = 0; i < kFusedItems; ++i) {
    if (threadIdx.x + static_cast<unsigned>(i) * kFusedThreads >= l.count) break;
#pragma unroll
    for (int k = 0; k < W; ++k) {
      const double d = static_cast<double>(v[i].v[k]) - shift;
      s.a += d;
      s.b += d * d;
    }
  }
  s = block_sum<kFusedThreads>(s);
  const double n = static_cast<double>(l.count) * W;
  const double d = s.a / n;  // thread 0's is the block's
  return broadcast_from_thread0(Moments{n, shift + d, s.b - s.a * d});
}

// The training forward of channel blockIdx.y in one pass: moments, statistics, running update,
// normalisation.
template <typename D, int W, bool kRelu>
__global__ void __launch_bounds__(kFusedThreads)
    bn_forward_training_fused(const D* x, int64_t x_stride, D* y, int64_t y_stride, Layout l,
                              const float* gamma, const float* beta, float momentum, float eps, float* running_mean,
                              float* running_var, float* save_mean, float* save_invstd) {
  const unsigned c = blockIdx.y;
  Pack<W> v[kFusedItems] = {};
  load_channel_items<W>(x, x_stride, c, l, v);
  const Moments m = channel_moments_in_registers<W>(x, c, l, v);
  const ChannelStats st = use_moments(m.mean, biased_var(m), m.count, threadIdx.x == 0, c, momentum, eps, running_mean,
                                      running_var, save_mean, save_invstd);
  const float scale = st.invstd * gamma[c], shift_out = beta[c];
#pragma unroll
  for (int i = 0; i < kFusedItems; ++i) {
#pragma unroll
    for (int k = 0; k < W; ++k) {
      v[i].v[k] = normalized(v[i].v[k], st.mean, scale, shift_out);
      if constexpr (kRelu) v[i].v[k] = relu(v[i].v[k]);
    }
  }
  store_channel_items<W>(y, y_stride, c, l, v);
}

// Normalisation with fixed statistics (as bn_forward_fixed) of channel blockIdx.y: every load is
// issued before the first store (a grid-stride loop cannot hoist the next load above a store to a
// y that may alias x), so a small channel's reads are all in flight at once.
template <typename D, int W, bool kRelu, bool kRunning>
__global__ void __launch_bounds__(kFusedThreads)
    bn_forward_fixed_fused(const D* x, int64_t x_stride, D* y, int64_t y_stride, Layout l, const float* mean,
                           const float* spread, const float* gamma, const float* beta, float eps, float* save_mean,
                           float* save_invstd) {
  const unsigned c = blockIdx.y;
  const FixedStatistics st = fixed_statistics<kRunning>(c, mean, spread, eps, threadIdx.x == 0, save_mean, save_invstd);
  const float mean_c = st.mean, invstd_c = st.invstd;
  Pack<W> v[kFusedItems] = {};
  load_channel_items<W>(x, x_stride, c, l, v);
  const float scale = invstd_c * gamma[c], shift = beta[c];
#pragma unroll
  for (int i = 0; i < kFusedItems; ++i) {
#pragma unroll
    for (int k = 0; k < W; ++k) {
      v[i].v[k] = normalized(v[i].v[k], mean_c, scale, shift);
      if constexpr (kRelu) v[i].v[k] = relu(v[i].v[k]);
    }
  }
  store_channel_items<W>(y, y_stride, c, l, v);
}

// The backward of channel blockIdx.y in one pass: the sums, dgamma and dbeta, and dx (when wanted)
// from the values held in registers. dx may alias dy: every read precedes the barrier in the sum.
template <typename D, int W, bool kRelu, bool kBatchStats>
__global__ void __launch_bounds__(kFusedThreads)
    bn_backward_fused(const D* x, int64_t x_stride, Grad<D> dy, D* dx, int64_t dx_stride, Layout l,
                      const float* mean, const float* invstd, const float* gamma, const float* beta, float* dgamma,
                      float* dbeta) {
  const unsigned c = blockIdx.y;
  const BackwardChannel<kRelu> ch(c, mean, invstd, gamma, beta);
  const float mean_c = ch.mean, scale = ch.scale, shift = ch.shift;
  Pack<W> xv[kFusedItems] = {}, g[kFusedItems] = {};
  load_channel_items<W>(x, x_stride, c, l, xv);
  load_channel_items<W>(dy.data, dy.batch_stride, c, l, g);
  Sums s{0.0, 0.0};
#pragma unroll
  for (int i = 0; i < kFusedItems; ++i) {
    if (threadIdx.x + static_cast<unsigned>(i) * kFusedThreads >= l.count) break;
#pragma unroll
    for (int k = 0; k < W; ++k) {
      const float gk = !kRelu || normalized(xv[i].v[k], mean_c, scale, shift) > 0.f ? g[i].v[k] : 0.f;
      g[i].v[k] = gk;
      s.a += gk;
      s.b += static_cast<double>(gk) * (static_cast<double>(xv[i].v[k]) - mean_c);
    }
  }
  const Sums t = broadcast_from_thread0(block_sum<kFusedThreads>(s));
  const DxCoefficients coefficients = ch.template finish<kBatchStats>(t, static_cast<double>(l.count) * W, threadIdx.x == 0, c, dgamma,
                                                  dbeta);
  if (!dx) return;
  const float k_mean = coefficients.mean, k_centered = coefficients.centered;
#pragma unroll
  for (int i = 0; i < kFusedItems; ++i) {
#pragma unroll
    for (int k = 0; k < W; ++k) g[i].v[k] = scale * (g[i].v[k] - k_mean - (xv[i].v[k] - mean_c) * k_centered);
  }
  store_channel_items<W>(dx, dx_stride, c, l, g);
}

// ---- The training forward in parts (batch_norm_moments, batch_norm_statistics_from_moments), for
// a caller that keeps the moments of channels it reads again: the same sums and formulas as the
// training forward's, so the same bits.

// A small channel's moments (as bn_forward_training_fused computes them) into (mean, var).
template <typename D, int W>
__global__ void __launch_bounds__(kFusedThreads)
    bn_moments_fused(const D* x, int64_t x_stride, Layout l, double* mean, double* var) {
  const unsigned c = blockIdx.y;
  Pack<W> v[kFusedItems] = {};
  load_channel_items<W>(x, x_stride, c, l, v);
  const Moments m = channel_moments_in_registers<W>(x, c, l, v);
  if (threadIdx.x == 0) {
    mean[c] = m.mean;
    var[c] = biased_var(m);
  }
}

// A larger channel's moments from bn_moments' partials, combined as bn_forward_training_apply
// combines them (warp_channel_moments): one warp per channel.
__global__ void __launch_bounds__(32) bn_moments_combine(const Moments* partials, int splits, double* mean, double* var) {
  const unsigned c = blockIdx.y;
  const Moments m = warp_channel_moments(partials + c * splits, splits);
  if (threadIdx.x == 0) {
    mean[c] = m.mean;
    var[c] = biased_var(m);
  }
}

// One thread per channel: the saved statistics and the running update from the moments.
__global__ void __launch_bounds__(kThreads)
    bn_statistics_from_moments(const double* mean, const double* var, unsigned channels, double count, float momentum,
                               float eps, float* running_mean, float* running_var, float* save_mean,
                               float* save_invstd) {
  const unsigned c = blockIdx.x * kThreads + threadIdx.x;
  if (c < channels)
    use_moments(mean[c], var[c], count, true, c, momentum, eps, running_mean, running_var, save_mean, save_invstd);
}

// ---- Launch helpers.

// Whether items of four elements of D fit (float4, or four bf16 in 8 bytes): the plane size and
// every (pointer, batch stride) keep the alignment of four elements.
template <typename D = float>
bool vectorizable(int64_t spatial, std::initializer_list<std::pair<const void*, int64_t>> tensors) {
  if (spatial % 4 != 0) return false;
  for (const auto& [p, stride] : tensors)
    if (p && (!vector_aligned<D, 4>(p) || stride % 4 != 0)) return false;
  return true;
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

Layout make_layout(int64_t batch, int64_t spatial, int w) {
  const int64_t per_image = spatial / w, count = batch * per_image;
  // 32-bit item indices: a channel plus one grid stride must fit.
  CHEX_CHECK(count + kMaxSplits * kThreads < (int64_t{1} << 32), "batch norm: ", count,
             " items per channel is more than the kernels index");
  return {spatial, static_cast<unsigned>(per_image), static_cast<unsigned>(count)};
}

// Blocks per channel: enough for about kTargetBlocks in all, no more than gives each thread
// kMinItemsPerThread items. Every block then has at least one item.
int channel_splits(int64_t channels, const Layout& l) {
  const int64_t by_work = ceil_div(l.count, kThreads * kMinItemsPerThread);
  const int64_t by_fill = ceil_div(kTargetBlocks, channels);
  const int64_t splits = by_work < by_fill ? by_work : by_fill;
  return static_cast<int>(splits < 1 ? 1 : (splits > kMaxSplits ? kMaxSplits : splits));
}

// Whether a channel's items fit one fused block's registers.
bool fits_fused(const Layout& l) { return l.count <= kFusedCapacity; }

void check_shape(int64_t batch, int64_t channels, int64_t spatial) {
  CHEX_CHECK(batch >= 0 && channels >= 0 && spatial >= 0, "batch norm: negative size");
  CHEX_CHECK(channels <= 65535, "batch norm: ", channels, " channels exceed the grid's y dimension");
}

// Calls f(std::integral_constant<bool, b>): turns a run-time flag into a template argument.
template <typename F>
void with_flag(bool b, F&& f) {
  if (b) {
    f(std::true_type{});
  } else {
    f(std::false_type{});
  }
}

template <typename F>
void with_width(bool vec4, F&& f) {
  if (vec4) {
    f(std::integral_constant<int, 4>{});
  } else {
    f(std::integral_constant<int, 1>{});
  }
}

// Pass 1 of the training statistics.
// Returns the splits, which the consuming kernel's grid must repeat.
template <typename D>
int launch_moments(const D* x, int64_t x_batch_stride, int64_t batch, int64_t channels, int64_t spatial,
                   bool vec4, void* workspace, cudaStream_t stream) {
  CHEX_CHECK(batch * spatial >= 1, "batch norm in training needs at least one value per channel");
  CHEX_CHECK(workspace, "batch norm in training needs a workspace (batch_norm_workspace_bytes)");
  int splits = 0;
  with_width(vec4, [&](auto w) {
    const Layout l = make_layout(batch, spatial, w);
    splits = channel_splits(channels, l);
    const dim3 grid(static_cast<unsigned>(splits), static_cast<unsigned>(channels));
    CHEX_LAUNCH((bn_moments<D, w>), grid, kThreads, 0, stream, x, x_batch_stride, l, static_cast<Moments*>(workspace));
  });
  return splits;
}

// The backward of BN (+ReLU), on elements of D.
template <typename D>
void launch_backward(const D* x, int64_t x_batch_stride, Grad<D> dy, D* dx, int64_t dx_batch_stride,
                     int64_t batch, int64_t channels, int64_t spatial, const float* mean, const float* invstd,
                     const float* gamma, const float* beta, bool batch_statistics, bool fuse_relu, float* dgamma,
                     float* dbeta, void* workspace, cudaStream_t stream) {
  check_shape(batch, channels, spatial);
  if (channels == 0) return;
  if (batch * spatial == 0) {  // nothing to sum: zero parameter gradients, as the twin
    if (dgamma || dbeta) {
      // No kernel reads any value; the dx kernel still writes the zero sums.
      const Layout l{spatial, 0, 0};
      with_flag(fuse_relu, [&](auto relu) {
        CHEX_LAUNCH((bn_backward_dx<D, 1, relu, false>), dim3(1, static_cast<unsigned>(channels)), kThreads, 0,
                    stream, x, x_batch_stride, dy, static_cast<D*>(nullptr), dx_batch_stride, l, mean, invstd,
                    gamma, beta, static_cast<const Sums*>(nullptr), 0, dgamma, dbeta);
      });
    }
    return;
  }
  const bool need_sums = dgamma || dbeta || (dx && batch_statistics);
  if (!need_sums && !dx) return;
  const bool vec4 = vectorizable<D>(spatial, {{x, x_batch_stride}, {dy.data, dy.batch_stride}, {dx, dx_batch_stride}});
  with_width(vec4, [&](auto w) {
    with_flag(fuse_relu, [&](auto relu) {
      const Layout l = make_layout(batch, spatial, w);
      if (need_sums && fits_fused(l)) {
        with_flag(batch_statistics, [&](auto batch_stats_flag) {
          CHEX_LAUNCH((bn_backward_fused<D, w, relu, batch_stats_flag>), dim3(1, static_cast<unsigned>(channels)),
                      kFusedThreads, 0, stream, x, x_batch_stride, dy, dx, dx_batch_stride, l, mean, invstd, gamma,
                      beta, dgamma, dbeta);
        });
        return;
      }
      const int splits = channel_splits(channels, l);
      const dim3 grid(static_cast<unsigned>(splits), static_cast<unsigned>(channels));
      CHEX_CHECK(!need_sums || workspace, "batch norm backward needs a workspace (batch_norm_workspace_bytes)");
      auto* partials = static_cast<Sums*>(workspace);
      if (need_sums)
        CHEX_LAUNCH((bn_backward_sums<D, w, relu>), grid, kThreads, 0, stream, x, x_batch_stride, dy, l, mean,
                    invstd, gamma, beta, partials);
      // Without dx, one block per channel writes dgamma and dbeta.
      const dim3 dx_grid(dx ? static_cast<unsigned>(splits) : 1u, static_cast<unsigned>(channels));
      const Sums* sums = need_sums ? partials : nullptr;
      with_flag(batch_statistics, [&](auto batch_stats_flag) {
        CHEX_LAUNCH((bn_backward_dx<D, w, relu, batch_stats_flag>), dx_grid, kThreads, 0, stream, x,
                    x_batch_stride, dy, dx, dx_batch_stride, l, mean, invstd, gamma, beta, sums, splits, dgamma,
                    dbeta);
      });
    });
  });
}

}  // namespace

size_t batch_norm_workspace_bytes(const Queue&, const ImageShape& s) {
  check_shape(s.batch, s.channels, s.spatial);
  if (s.channels == 0 || s.batch * s.spatial == 0) return 0;
  // Scalar items give the most items and splits; float4 items never need more. Channels whose
  // scalar items fit one fused block need none (their float4 items fit too).
  const Layout scalar = make_layout(s.batch, s.spatial, 1);
  if (fits_fused(scalar)) return 0;
  const int splits = channel_splits(s.channels, scalar);
  return static_cast<size_t>(s.channels) * static_cast<size_t>(splits) * sizeof(Moments);
}

bool batch_norm_one_pass(const ImageShape& s) {
  check_shape(s.batch, s.channels, s.spatial);
  return s.batch * s.spatial > 0 && fits_fused(make_layout(s.batch, s.spatial, s.spatial % 4 == 0 ? 4 : 1));
}

namespace {
// The training forward on elements of D: one launch for small channels, else moments then apply.
template <typename D>
void forward_training(const D* x, int64_t x_batch_stride, D* y, int64_t y_batch_stride, const ImageShape& shape,
                      const float* gamma, const float* beta, float momentum, float eps, float* running_mean,
                      float* running_var, float* save_mean, float* save_invstd, bool fuse_relu, void* workspace,
                      cudaStream_t stream) {
  const int64_t batch = shape.batch, channels = shape.channels, spatial = shape.spatial;
  check_shape(batch, channels, spatial);
  if (channels == 0) return;
  const bool vec4 = vectorizable<D>(spatial, {{x, x_batch_stride}, {y, y_batch_stride}});
  CHEX_CHECK(batch * spatial >= 1, "batch norm in training needs at least one value per channel");
  bool fused = false;
  with_width(vec4, [&](auto w) {
    const Layout l = make_layout(batch, spatial, w);
    if (!fits_fused(l)) return;
    fused = true;
    with_flag(fuse_relu, [&](auto relu) {
      CHEX_LAUNCH((bn_forward_training_fused<D, w, relu>), dim3(1, static_cast<unsigned>(channels)), kFusedThreads,
                  0, stream, x, x_batch_stride, y, y_batch_stride, l, gamma, beta, momentum, eps, running_mean,
                  running_var, save_mean, save_invstd);
    });
  });
  if (fused) return;
  const int splits = launch_moments(x, x_batch_stride, batch, channels, spatial, vec4, workspace, stream);
  with_width(vec4, [&](auto w) {
    with_flag(fuse_relu, [&](auto relu) {
      const dim3 grid(static_cast<unsigned>(splits), static_cast<unsigned>(channels));
      CHEX_LAUNCH((bn_forward_training_apply<D, w, relu>), grid, kThreads, 0, stream, x, x_batch_stride, y,
                  y_batch_stride, make_layout(batch, spatial, w), static_cast<const Moments*>(workspace), gamma, beta,
                  momentum, eps, running_mean, running_var, save_mean, save_invstd);
    });
  });
}

// The moments alone, as forward_training computes them, on elements of D.
template <typename D>
void moments(const D* x, int64_t x_batch_stride, const ImageShape& shape, double* mean, double* var,
             void* workspace, cudaStream_t stream) {
  const int64_t batch = shape.batch, channels = shape.channels, spatial = shape.spatial;
  check_shape(batch, channels, spatial);
  if (channels == 0) return;
  CHEX_CHECK(batch * spatial >= 1, "batch-norm moments need at least one value per channel");
  const bool vec4 = vectorizable<D>(spatial, {{x, x_batch_stride}});
  bool fused = false;
  with_width(vec4, [&](auto w) {
    const Layout l = make_layout(batch, spatial, w);
    if (!fits_fused(l)) return;
    fused = true;
    CHEX_LAUNCH((bn_moments_fused<D, w>), dim3(1, static_cast<unsigned>(channels)), kFusedThreads, 0, stream, x,
                x_batch_stride, l, mean, var);
  });
  if (fused) return;
  const int splits = launch_moments(x, x_batch_stride, batch, channels, spatial, vec4, workspace, stream);
  CHEX_LAUNCH(bn_moments_combine, dim3(1, static_cast<unsigned>(channels)), 32, 0, stream,
              static_cast<const Moments*>(workspace), splits, mean, var);
}
}  // namespace

void batch_norm_forward_training(const Queue& q, const BatchNormForwardArgs& a) {
  forward_training(a.x.data, a.x.batch_stride, a.y.data, a.y.batch_stride, a.shape, a.gamma, a.beta, a.momentum, a.eps,
                   a.running_mean, a.running_var, a.save_mean, a.save_invstd, a.fuse_relu, a.workspace, q.stream);
}

void batch_norm_forward_training_bf16(const Queue& q, const BatchNormForwardArgsBf16& a) {
  forward_training(device_pointer(a.x.data), a.x.batch_stride, device_pointer(a.y.data), a.y.batch_stride, a.shape,
                   a.gamma, a.beta, a.momentum, a.eps, a.running_mean, a.running_var, a.save_mean, a.save_invstd,
                   a.fuse_relu, a.workspace, q.stream);
}

void batch_norm_moments(const Queue& q, const BatchNormMomentsArgs& a) {
  moments(a.x.data, a.x.batch_stride, a.shape, a.mean, a.var, a.workspace, q.stream);
}

void batch_norm_moments_bf16(const Queue& q, const BatchNormMomentsArgsBf16& a) {
  moments(device_pointer(a.x.data), a.x.batch_stride, a.shape, a.mean, a.var, a.workspace, q.stream);
}

void batch_norm_statistics_from_moments(const Queue& q, const BatchNormStatisticsFromMomentsArgs& a) {
  CHEX_CHECK(a.channels >= 0 && a.channels < (int64_t{1} << 31) && a.count >= 1, "batch-norm statistics from moments: ",
             a.channels, " channels of ", a.count, " values each");
  if (a.channels == 0) return;
  const auto blocks = static_cast<unsigned>(ceil_div(a.channels, kThreads));
  CHEX_LAUNCH(bn_statistics_from_moments, dim3(blocks), kThreads, 0, q.stream, a.mean, a.var,
              static_cast<unsigned>(a.channels), static_cast<double>(a.count), a.momentum, a.eps, a.running_mean,
              a.running_var, a.save_mean, a.save_invstd);
}

namespace {
// Inference and apply: one elementwise pass with fixed statistics, on elements of D.
template <bool kRunning, typename D>
void launch_fixed(const D* x, int64_t x_batch_stride, D* y, int64_t y_batch_stride, int64_t batch,
                  int64_t channels, int64_t spatial, const float* mean, const float* spread, const float* gamma,
                  const float* beta, float eps, float* save_mean, float* save_invstd, bool fuse_relu,
                  cudaStream_t stream) {
  check_shape(batch, channels, spatial);
  if (channels == 0) return;
  if (batch * spatial == 0) {  // only the saved statistics to write
    if (!save_mean && !save_invstd) return;
    const Layout l{spatial, 0, 0};
    CHEX_LAUNCH((bn_forward_fixed<D, 1, false, kRunning>), dim3(1, static_cast<unsigned>(channels)), kThreads, 0, stream,
                x, x_batch_stride, y, y_batch_stride, l, mean, spread, gamma, beta, eps, save_mean, save_invstd);
    return;
  }
  const bool vec4 = vectorizable<D>(spatial, {{x, x_batch_stride}, {y, y_batch_stride}});
  with_width(vec4, [&](auto w) {
    with_flag(fuse_relu, [&](auto relu) {
      const Layout l = make_layout(batch, spatial, w);
      if (fits_fused(l)) {
        CHEX_LAUNCH((bn_forward_fixed_fused<D, w, relu, kRunning>), dim3(1, static_cast<unsigned>(channels)),
                    kFusedThreads, 0, stream, x, x_batch_stride, y, y_batch_stride, l, mean, spread, gamma, beta, eps,
                    save_mean, save_invstd);
        return;
      }
      const dim3 grid(static_cast<unsigned>(channel_splits(channels, l)), static_cast<unsigned>(channels));
      CHEX_LAUNCH((bn_forward_fixed<D, w, relu, kRunning>), grid, kThreads, 0, stream, x, x_batch_stride, y,
                  y_batch_stride, l, mean, spread, gamma, beta, eps, save_mean, save_invstd);
    });
  });
}
}  // namespace

void batch_norm_forward_inference(const Queue& q, const BatchNormForwardArgs& a) {
  launch_fixed<true>(a.x.data, a.x.batch_stride, a.y.data, a.y.batch_stride, a.shape.batch, a.shape.channels,
                     a.shape.spatial, a.running_mean, a.running_var, a.gamma, a.beta, a.eps, a.save_mean,
                     a.save_invstd, a.fuse_relu, q.stream);
}

void batch_norm_apply(const Queue& q, const BatchNormApplyArgs& a) {
  launch_fixed<false>(a.x.data, a.x.batch_stride, a.y.data, a.y.batch_stride, a.shape.batch, a.shape.channels,
                      a.shape.spatial, a.mean, a.invstd, a.gamma, a.beta, 0.f, nullptr, nullptr, a.fuse_relu,
                      q.stream);
}

void batch_norm_forward_inference_bf16(const Queue& q, const BatchNormForwardArgsBf16& a) {
  launch_fixed<true>(device_pointer(a.x.data), a.x.batch_stride, device_pointer(a.y.data), a.y.batch_stride,
                     a.shape.batch, a.shape.channels, a.shape.spatial, a.running_mean, a.running_var, a.gamma, a.beta,
                     a.eps, a.save_mean, a.save_invstd, a.fuse_relu, q.stream);
}

void batch_norm_apply_bf16(const Queue& q, const BatchNormApplyArgsBf16& a) {
  launch_fixed<false>(device_pointer(a.x.data), a.x.batch_stride, device_pointer(a.y.data), a.y.batch_stride,
                      a.shape.batch, a.shape.channels, a.shape.spatial, a.mean, a.invstd, a.gamma, a.beta, 0.f,
                      nullptr, nullptr, a.fuse_relu, q.stream);
}

void batch_norm_backward(const Queue& q, const BatchNormBackwardArgs& a) {
  launch_backward(a.x.data, a.x.batch_stride, Grad<float>{a.dy.data, a.dy.batch_stride}, a.dx.data, a.dx.batch_stride,
                  a.shape.batch, a.shape.channels, a.shape.spatial, a.mean, a.invstd, a.gamma, a.beta,
                  a.batch_statistics, a.fuse_relu, a.dgamma, a.dbeta, a.workspace, q.stream);
}

void batch_norm_backward_bf16(const Queue& q, const BatchNormBackwardArgsBf16& a) {
  launch_backward(device_pointer(a.x.data), a.x.batch_stride, Grad<__nv_bfloat16>{device_pointer(a.dy.data), a.dy.batch_stride},
                  device_pointer(a.dx.data), a.dx.batch_stride, a.shape.batch, a.shape.channels, a.shape.spatial,
                  a.mean, a.invstd, a.gamma, a.beta, a.batch_statistics, a.fuse_relu, a.dgamma, a.dbeta, a.workspace,
                  q.stream);
}

}  // namespace chex::kernels::CHEX_GPU_NAMESPACE

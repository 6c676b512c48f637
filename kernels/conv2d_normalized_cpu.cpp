// 1x1 convolutions by tiles of columns: the forward (pointwise_forward, which is also the plain
// 1x1 GEMM), and the weight and input gradients of a 1x1 that reads its input normalised
// (InputNormalization: BN + ReLU fused into the read). conv2d_cpu.cpp owns the threading and the
// workspace sizes.
#include <vector>

#include "chex/error.h"
#include "conv2d_cpu_internal.h"
#include "gemm.h"

namespace chex::kernels::cpu::conv2d_detail {
namespace {

// A 1x1 convolution that normalises its input (InputNormalization) has no im2col to do it in: it
// normalises a tile of columns of every input channel into a buffer of the thread's and runs the
// GEMM on that, from cache. A tile keeps near 512 KB (L2 is 1 MB per core on Zen 4) but takes at
// least 256 columns, below which the GEMM's packing of the weight would dominate.
constexpr int64_t kTileFloats = 1 << 17;

// tile [C_in, end - begin] = x' of one image's columns [begin, end).
void normalize_tile(const Conv2dGeometry& g, const float* image, const InputNormalization& norm, int64_t begin,
                    int64_t end, float* tile) {
  const int64_t n = end - begin;
  for (int64_t c = 0; c < g.in_channels; ++c)
    read_channel(&norm, c, image + c * g.in_plane() + begin, 1, tile + c * n, n);
}

// One channel's tile of conv2d_backward_data_normalized: the ReLU mask on the GEMM's tile g of
// weight^T dy, the two sums (in float along the tile, vectorised) and, with kAddsDx, dx += scale dy'.
// The mask is the forward's own test (its ReLU passed a positive value), as a multiplication: GCC
// vectorises that, not a select.
template <bool kAddsDx>
void normalized_pointwise_data_channel(const float* x, const float* g, int64_t n, float mean, float scale, float beta,
                                       float* dx, double& sum_dy, double& sum_dy_centered) {
  float s = 0.f, s_centered = 0.f;
#pragma omp simd reduction(+ : s, s_centered)
  for (int64_t i = 0; i < n; ++i) {
    const float masked = g[i] * (batch_norm_relu(x[i], mean, scale, beta) > 0.f ? 1.f : 0.f);
    s += masked;
    s_centered += masked * (x[i] - mean);
    if constexpr (kAddsDx) dx[i] += scale * masked;
  }
  sum_dy += s;
  sum_dy_centered += s_centered;
}

// One sample of conv2d_backward_data_normalized, per tile of columns: the GEMM's tile [C_in, n] of
// weight^T dy, then each channel's part from cache (sums in double across tiles).
void normalized_pointwise_data_sample(const Conv2dGeometry& g, const float* dy, const float* weight,
                                      const float* image, const InputNormalization& norm, float* dx, double* sum_dy,
                                      double* sum_dy_centered, float* tile) {
  const int64_t p = g.out_plane(), k = g.in_channels;
  for (int64_t j = 0, step = tile_columns(g); j < p; j += step) {
    const int64_t n = std::min(step, p - j);
    sgemm(true, false, k, n, g.out_channels, 1.f, weight, k, dy + j, p, 0.f, tile, n);
    for (int64_t c = 0; c < k; ++c) {
      const float mean = norm.mean[c], scale = norm.invstd[c] * norm.gamma[c], beta = norm.beta[c];
      const float* xc = image + c * p + j;
      if (dx)
        normalized_pointwise_data_channel<true>(xc, tile + c * n, n, mean, scale, beta, dx + c * p + j, sum_dy[c],
                                                sum_dy_centered[c]);
      else
        normalized_pointwise_data_channel<false>(xc, tile + c * n, n, mean, scale, beta, nullptr, sum_dy[c],
                                                 sum_dy_centered[c]);
    }
  }
}

}  // namespace

int64_t tile_columns(const Conv2dGeometry& g) {
  const int64_t columns = std::max<int64_t>(256, (kTileFloats / std::max<int64_t>(g.in_channels, 1) + 15) / 16 * 16);
  return std::max<int64_t>(1, std::min(columns, g.out_plane()));
}
int64_t tile_size(const Conv2dGeometry& g) { return g.in_channels * tile_columns(g); }

// Columns [begin, end) of one sample's 1x1 output: one GEMM on the image, or tile by tile on x'.
void pointwise_forward(const Conv2dGeometry& g, const float* image, const InputNormalization* norm,
                       const float* weight, float* out, int64_t begin, int64_t end, float* tile) {
  const int64_t p = g.out_plane(), k = g.in_channels;
  if (!norm) {
    if (end > begin) sgemm(false, false, g.out_channels, end - begin, k, 1.f, weight, k, image + begin, p, 0.f, out + begin, p);
    return;
  }
  for (int64_t j = begin, step = tile_columns(g); j < end; j += step) {
    const int64_t n = std::min(step, end - j);
    normalize_tile(g, image, *norm, j, j + n, tile);
    sgemm(false, false, g.out_channels, n, k, 1.f, weight, k, tile, n, 0.f, out + j, p);
  }
}

// sum += dy_n [C_out, P] * x'_n^T [P, C_in] for a 1x1 convolution with a normalised input, tile by
// tile of columns (see pointwise_forward); overwrites sum when `overwrite`.
void normalized_pointwise_weight_sample(const Conv2dGeometry& g, const float* image, const InputNormalization& norm,
                                        const float* dy, float* sum, bool overwrite, float* tile) {
  const int64_t p = g.out_plane(), k = g.in_channels;
  for (int64_t j = 0, step = tile_columns(g); j < p; j += step) {
    const int64_t n = std::min(step, p - j);
    normalize_tile(g, image, norm, j, j + n, tile);
    sgemm(false, true, g.out_channels, k, n, 1.f, dy + j, p, tile, n, overwrite && j == 0 ? 0.f : 1.f, sum, k);
  }
}

}  // namespace chex::kernels::cpu::conv2d_detail

namespace chex::kernels::cpu {
using namespace conv2d_detail;

void conv2d_backward_data_normalized(const Queue& /*q*/, const Conv2dBackwardDataNormalizedArgs& a) {
  const Conv2dGeometry& g = a.geometry;
  const float* dy = a.dy.data;
  const float* weight = a.weight;
  const float* x = a.x.data;
  const InputNormalization& norm = a.norm;
  float* dx = a.dx.data;
  const int64_t dy_batch_stride = a.dy.batch_stride, x_batch_stride = a.x.batch_stride,
                dx_batch_stride = a.dx.batch_stride;
  double* sum_dy = a.sum_dy;
  double* sum_dy_centered = a.sum_dy_centered;
  float* workspace = static_cast<float*>(a.workspace);
  CHEX_CHECK(g.is_pointwise(), "conv2d_backward_data_normalized: only for 1x1, stride-1, unpadded convolutions");
  const int slots = sample_slots(g);
  const int64_t k = g.in_channels;
  // Each thread's sums, added in thread order: deterministic for a given thread count.
  std::vector<double> partial(static_cast<size_t>(2 * slots * k), 0.0);
  in_sample_slots(slots, [&] {
    const int t = omp_get_thread_num();
    const SampleRange range = samples_of_this_thread(g.batch);
    double* sums = partial.data() + 2 * t * k;
    for (int64_t n = range.begin; n < range.end; ++n)
      normalized_pointwise_data_sample(g, dy + n * dy_batch_stride, weight, x + n * x_batch_stride, norm,
                                       dx ? dx + n * dx_batch_stride : nullptr, sums, sums + k,
                                       workspace + t * tile_size(g));
  });
  for (int64_t c = 0; c < k; ++c) {
    double s = 0.0, s_centered = 0.0;
    for (int t = 0; t < slots; ++t) {
      s += partial[static_cast<size_t>(2 * t * k + c)];
      s_centered += partial[static_cast<size_t>((2 * t + 1) * k + c)];
    }
    sum_dy[c] = s;
    sum_dy_centered[c] = s_centered;
  }
}

}  // namespace chex::kernels::cpu

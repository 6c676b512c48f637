#include "batchnorm.h"

#include <cmath>

namespace chex::kernels::cpu {
namespace {

// Below this many elements a parallel region costs more than it saves.
constexpr int64_t kParallelThreshold = 1 << 15;

// The one formula of a normalised output, shared by the forward and the backward's ReLU mask so
// that both see the same value.
inline float normalized(float x, float mean, float scale, float beta) { return (x - mean) * scale + beta; }

// Sum over one channel of every image, in double.
double channel_sum(const float* x, int64_t x_batch_stride, int64_t batch, int64_t spatial) {
  double sum = 0.0;
  for (int64_t n = 0; n < batch; ++n) {
    const float* xn = x + n * x_batch_stride;
#pragma omp simd reduction(+ : sum)
    for (int64_t i = 0; i < spatial; ++i) sum += xn[i];
  }
  return sum;
}

// Sum of squared deviations from `mean` over one channel of every image, in double (two passes
// over x rather than E[x^2] - E[x]^2, which cancels badly when |mean| >> std).
double channel_squared_deviation(const float* x, int64_t x_batch_stride, int64_t batch, int64_t spatial,
                                 double mean) {
  double sum = 0.0;
  for (int64_t n = 0; n < batch; ++n) {
    const float* xn = x + n * x_batch_stride;
#pragma omp simd reduction(+ : sum)
    for (int64_t i = 0; i < spatial; ++i) {
      const double d = static_cast<double>(xn[i]) - mean;
      sum += d * d;
    }
  }
  return sum;
}

// y = normalized(x) (then ReLU) over one channel of every image. x and y point at the channel.
void normalize_channel(const float* x, int64_t x_batch_stride, float* y, int64_t y_batch_stride, int64_t batch,
                       int64_t spatial, float mean, float invstd, float gamma, float beta, bool fuse_relu) {
  const float scale = invstd * gamma;
  for (int64_t n = 0; n < batch; ++n) {
    const float* xn = x + n * x_batch_stride;
    float* yn = y + n * y_batch_stride;
    if (fuse_relu) {
#pragma omp simd
      for (int64_t i = 0; i < spatial; ++i) {
        const float v = normalized(xn[i], mean, scale, beta);
        yn[i] = v < 0.f ? 0.f : v;  // NaN passes, as in PyTorch: a diverged step must show
      }
    } else {
#pragma omp simd
      for (int64_t i = 0; i < spatial; ++i) yn[i] = normalized(xn[i], mean, scale, beta);
    }
  }
}

}  // namespace

void batch_norm_forward_training(const float* x, int64_t x_batch_stride, float* y, int64_t y_batch_stride,
                                 int64_t batch, int64_t channels, int64_t spatial, const float* gamma,
                                 const float* beta, float momentum, float eps, float* running_mean,
                                 float* running_var, float* save_mean, float* save_invstd, bool fuse_relu) {
  const int64_t count = batch * spatial;
  const double unbiased_factor = count > 1 ? static_cast<double>(count) / static_cast<double>(count - 1) : 1.0;
#pragma omp parallel for schedule(static) if (batch * channels * spatial > kParallelThreshold)
  for (int64_t c = 0; c < channels; ++c) {
    const float* xc = x + c * spatial;
    const double mean = channel_sum(xc, x_batch_stride, batch, spatial) / static_cast<double>(count);
    const double var = channel_squared_deviation(xc, x_batch_stride, batch, spatial, mean) / static_cast<double>(count);
    // Normalise with the float-rounded statistics that are saved, so that a recomputation from
    // them (batch_norm_apply) reproduces y exactly.
    const auto mean_f = static_cast<float>(mean);
    const auto invstd_f = static_cast<float>(1.0 / std::sqrt(var + static_cast<double>(eps)));
    normalize_channel(xc, x_batch_stride, y + c * spatial, y_batch_stride, batch, spatial, mean_f, invstd_f, gamma[c],
                      beta[c], fuse_relu);
    if (save_mean) save_mean[c] = mean_f;
    if (save_invstd) save_invstd[c] = invstd_f;
    const double m = momentum;
    running_mean[c] = static_cast<float>((1.0 - m) * running_mean[c] + m * mean);
    running_var[c] = static_cast<float>((1.0 - m) * running_var[c] + m * var * unbiased_factor);
  }
}

void batch_norm_forward_inference(const float* x, int64_t x_batch_stride, float* y, int64_t y_batch_stride,
                                  int64_t batch, int64_t channels, int64_t spatial, const float* gamma,
                                  const float* beta, const float* running_mean, const float* running_var, float eps,
                                  float* save_mean, float* save_invstd, bool fuse_relu) {
#pragma omp parallel for schedule(static) if (batch * channels * spatial > kParallelThreshold)
  for (int64_t c = 0; c < channels; ++c) {
    const float mean = running_mean[c];
    const auto invstd = static_cast<float>(1.0 / std::sqrt(static_cast<double>(running_var[c]) + eps));
    normalize_channel(x + c * spatial, x_batch_stride, y + c * spatial, y_batch_stride, batch, spatial, mean, invstd,
                      gamma[c], beta[c], fuse_relu);
    if (save_mean) save_mean[c] = mean;
    if (save_invstd) save_invstd[c] = invstd;
  }
}

void batch_norm_apply(const float* x, int64_t x_batch_stride, float* y, int64_t y_batch_stride, int64_t batch,
                      int64_t channels, int64_t spatial, const float* mean, const float* invstd, const float* gamma,
                      const float* beta, bool fuse_relu) {
#pragma omp parallel for schedule(static) if (batch * channels * spatial > kParallelThreshold)
  for (int64_t c = 0; c < channels; ++c)
    normalize_channel(x + c * spatial, x_batch_stride, y + c * spatial, y_batch_stride, batch, spatial, mean[c],
                      invstd[c], gamma[c], beta[c], fuse_relu);
}

void batch_norm_backward(const float* x, int64_t x_batch_stride, const float* dy, int64_t dy_batch_stride, float* dx,
                         int64_t dx_batch_stride, int64_t batch, int64_t channels, int64_t spatial, const float* mean,
                         const float* invstd, const float* gamma, const float* beta, bool batch_statistics,
                         bool fuse_relu, float* dgamma, float* dbeta) {
  const int64_t count = batch * spatial;
#pragma omp parallel for schedule(static) if (batch * channels * spatial > kParallelThreshold)
  for (int64_t c = 0; c < channels; ++c) {
    const float mean_c = mean[c];
    const float invstd_c = invstd[c];
    const float scale = invstd_c * gamma[c];
    const float beta_c = fuse_relu ? beta[c] : 0.f;
    // dy' = dy where the fused ReLU passed its input, else 0.
    auto masked = [&](float x_value, float dy_value) {
      return !fuse_relu || normalized(x_value, mean_c, scale, beta_c) > 0.f ? dy_value : 0.f;
    };

    // Pass 1: sum(dy') and sum(dy' * (x - mean)), in double. The ReLU mask is a multiplication
    // by 0 or 1: GCC vectorises that, not a select of a load ("control flow in loop": scalar, 10x slower).
    double sum_dy = 0.0;
    double sum_dy_centered = 0.0;
    for (int64_t n = 0; n < batch; ++n) {
      const float* xn = x + n * x_batch_stride + c * spatial;
      const float* dyn = dy + n * dy_batch_stride + c * spatial;
      if (fuse_relu) {
#pragma omp simd reduction(+ : sum_dy, sum_dy_centered)
        for (int64_t i = 0; i < spatial; ++i) {
          const float keep = normalized(xn[i], mean_c, scale, beta_c) > 0.f ? 1.f : 0.f;
          const auto g = static_cast<double>(dyn[i] * keep);
          sum_dy += g;
          sum_dy_centered += g * (static_cast<double>(xn[i]) - mean_c);
        }
      } else {
#pragma omp simd reduction(+ : sum_dy, sum_dy_centered)
        for (int64_t i = 0; i < spatial; ++i) {
          sum_dy += dyn[i];
          sum_dy_centered += static_cast<double>(dyn[i]) * (static_cast<double>(xn[i]) - mean_c);
        }
      }
    }
    if (dbeta) dbeta[c] = static_cast<float>(sum_dy);
    if (dgamma) dgamma[c] = static_cast<float>(sum_dy_centered * invstd_c);
    if (!dx) continue;

    // Pass 2: dx. Through the batch statistics, dx = scale * (dy' - k_mean - (x - mean) * k_centered)
    // with k_mean = mean(dy') and k_centered = invstd^2 * mean(dy' * (x - mean)).
    const auto k_mean = batch_statistics ? static_cast<float>(sum_dy / static_cast<double>(count)) : 0.f;
    const auto k_centered =
        batch_statistics
            ? static_cast<float>(sum_dy_centered / static_cast<double>(count) * invstd_c * invstd_c)
            : 0.f;
    for (int64_t n = 0; n < batch; ++n) {
      const float* xn = x + n * x_batch_stride + c * spatial;
      const float* dyn = dy + n * dy_batch_stride + c * spatial;
      float* dxn = dx + n * dx_batch_stride + c * spatial;
#pragma omp simd
      for (int64_t i = 0; i < spatial; ++i)
        dxn[i] = scale * (masked(xn[i], dyn[i]) - k_mean - (xn[i] - mean_c) * k_centered);
    }
  }
}

}  // namespace chex::kernels::cpu

#include "batchnorm.h"

#include <cmath>

namespace chex::kernels::cpu {
namespace {

// Below this many elements a parallel region costs more than it saves.
constexpr int64_t kParallelThreshold = 1 << 15;

// The one formula of a normalised output, shared by the forward and the backward's ReLU mask so
// that both see the same value (batch_norm_relu in batchnorm.h adds the ReLU).
inline float normalized(float x, float mean, float scale, float beta) { return (x - mean) * scale + beta; }

// Sum over one channel of every image, in double. T, here and below, is the element type of the
// images (float or BFloat16): each value widened to float, then to double.
template <typename T>
double channel_sum(const T* x, int64_t x_batch_stride, int64_t batch, int64_t spatial) {
  double sum = 0.0;
  for (int64_t n = 0; n < batch; ++n) {
    const T* xn = x + n * x_batch_stride;
#pragma omp simd reduction(+ : sum)
    for (int64_t i = 0; i < spatial; ++i) sum += to_float(xn[i]);
  }
  return sum;
}

// Sum of squared deviations from `mean` over one channel of every image, in double (two passes
// over x rather than E[x^2] - E[x]^2, which cancels badly when |mean| >> std).
template <typename T>
double channel_squared_deviation(const T* x, int64_t x_batch_stride, int64_t batch, int64_t spatial, double mean) {
  double sum = 0.0;
  for (int64_t n = 0; n < batch; ++n) {
    const T* xn = x + n * x_batch_stride;
#pragma omp simd reduction(+ : sum)
    for (int64_t i = 0; i < spatial; ++i) {
      const double d = static_cast<double>(to_float(xn[i])) - mean;
      sum += d * d;
    }
  }
  return sum;
}

// y = normalized(x) (then ReLU) over one channel of every image. x and y point at the channel; each
// x widened, the result rounded once.
template <typename T>
void normalize_channel(const T* x, int64_t x_batch_stride, T* y, int64_t y_batch_stride, int64_t batch,
                       int64_t spatial, float mean, float invstd, float gamma, float beta, bool fuse_relu) {
  const float scale = invstd * gamma;
  for (int64_t n = 0; n < batch; ++n) {
    const T* xn = x + n * x_batch_stride;
    T* yn = y + n * y_batch_stride;
    if (fuse_relu) {
#pragma omp simd
      for (int64_t i = 0; i < spatial; ++i) yn[i] = from_float<T>(batch_norm_relu(to_float(xn[i]), mean, scale, beta));
    } else {
#pragma omp simd
      for (int64_t i = 0; i < spatial; ++i) yn[i] = from_float<T>(normalized(to_float(xn[i]), mean, scale, beta));
    }
  }
}

struct Moments {
  double mean, var;
};
template <typename T>
Moments channel_moments(const T* x, int64_t x_batch_stride, int64_t batch, int64_t spatial) {
  const auto count = static_cast<double>(batch * spatial);
  const double mean = channel_sum(x, x_batch_stride, batch, spatial) / count;
  return {mean, channel_squared_deviation(x, x_batch_stride, batch, spatial, mean) / count};
}

// Channel c's saved (mean, invstd), float-rounded: the forward normalises with these, so that a
// recomputation from them (batch_norm_apply) reproduces y exactly. Also moves the running ones.
void use_moments(int64_t c, const Moments& m, int64_t count, float momentum, float eps, float* running_mean,
                 float* running_var, float& mean_f, float& invstd_f) {
  const double unbiased_factor = count > 1 ? static_cast<double>(count) / static_cast<double>(count - 1) : 1.0;
  mean_f = static_cast<float>(m.mean);
  invstd_f = static_cast<float>(1.0 / std::sqrt(m.var + static_cast<double>(eps)));
  const double w = momentum;
  running_mean[c] = static_cast<float>((1.0 - w) * running_mean[c] + w * m.mean);
  running_var[c] = static_cast<float>((1.0 - w) * running_var[c] + w * m.var * unbiased_factor);
}

float inference_invstd(float running_var, float eps) {
  return static_cast<float>(1.0 / std::sqrt(static_cast<double>(running_var) + eps));
}

template <typename T>
void moments(const BasicBatchNormMomentsArgs<T>& a) {
  const T* x = a.x.data;
  const int64_t x_batch_stride = a.x.batch_stride, batch = a.shape.batch, channels = a.shape.channels,
                spatial = a.shape.spatial;
  double* mean = a.mean;
  double* var = a.var;
#pragma omp parallel for schedule(static) if (batch * channels * spatial > kParallelThreshold)
  for (int64_t c = 0; c < channels; ++c) {
    const Moments m = channel_moments(x + c * spatial, x_batch_stride, batch, spatial);
    mean[c] = m.mean;
    var[c] = m.var;
  }
}

template <typename T>
void forward_training(const BasicBatchNormForwardArgs<T>& a) {
  const int64_t batch = a.shape.batch, channels = a.shape.channels, spatial = a.shape.spatial;
  const int64_t count = batch * spatial;
#pragma omp parallel for schedule(static) if (batch * channels * spatial > kParallelThreshold)
  for (int64_t c = 0; c < channels; ++c) {
    const T* xc = a.x.data + c * spatial;
    float mean_f = 0.f, invstd_f = 0.f;
    use_moments(c, channel_moments(xc, a.x.batch_stride, batch, spatial), count, a.momentum, a.eps, a.running_mean,
                a.running_var, mean_f, invstd_f);
    normalize_channel(xc, a.x.batch_stride, a.y.data + c * spatial, a.y.batch_stride, batch, spatial, mean_f,
                      invstd_f, a.gamma[c], a.beta[c], a.fuse_relu);
    if (a.save_mean) a.save_mean[c] = mean_f;
    if (a.save_invstd) a.save_invstd[c] = invstd_f;
  }
}

}  // namespace

void batch_norm_moments(const Queue& /*q*/, const BatchNormMomentsArgs& a) { moments(a); }
void batch_norm_moments_bf16(const Queue& /*q*/, const BatchNormMomentsArgsBf16& a) { moments(a); }

void batch_norm_statistics_from_moments(const Queue& /*q*/, const BatchNormStatisticsFromMomentsArgs& a) {
  for (int64_t c = 0; c < a.channels; ++c)
    use_moments(c, {a.mean[c], a.var[c]}, a.count, a.momentum, a.eps, a.running_mean, a.running_var, a.save_mean[c],
                a.save_invstd[c]);
}

void batch_norm_inference_statistics(const Queue& /*q*/, const BatchNormInferenceStatisticsArgs& a) {
  for (int64_t c = 0; c < a.channels; ++c) {
    a.save_mean[c] = a.running_mean[c];
    a.save_invstd[c] = inference_invstd(a.running_var[c], a.eps);
  }
}

void batch_norm_forward_training(const Queue&, const BatchNormForwardArgs& a) { forward_training(a); }
void batch_norm_forward_training_bf16(const Queue&, const BatchNormForwardArgsBf16& a) { forward_training(a); }

namespace {
template <typename T>
void forward_inference(const BasicBatchNormForwardArgs<T>& a) {
  const int64_t batch = a.shape.batch, channels = a.shape.channels, spatial = a.shape.spatial;
#pragma omp parallel for schedule(static) if (batch * channels * spatial > kParallelThreshold)
  for (int64_t c = 0; c < channels; ++c) {
    const float mean = a.running_mean[c];
    const float invstd = inference_invstd(a.running_var[c], a.eps);
    normalize_channel(a.x.data + c * spatial, a.x.batch_stride, a.y.data + c * spatial, a.y.batch_stride, batch,
                      spatial, mean, invstd, a.gamma[c], a.beta[c], a.fuse_relu);
    if (a.save_mean) a.save_mean[c] = mean;
    if (a.save_invstd) a.save_invstd[c] = invstd;
  }
}

template <typename T>
void apply(const BasicBatchNormApplyArgs<T>& a) {
  const int64_t batch = a.shape.batch, channels = a.shape.channels, spatial = a.shape.spatial;
#pragma omp parallel for schedule(static) if (batch * channels * spatial > kParallelThreshold)
  for (int64_t c = 0; c < channels; ++c)
    normalize_channel(a.x.data + c * spatial, a.x.batch_stride, a.y.data + c * spatial, a.y.batch_stride, batch,
                      spatial, a.mean[c], a.invstd[c], a.gamma[c], a.beta[c], a.fuse_relu);
}
}  // namespace

void batch_norm_forward_inference(const Queue&, const BatchNormForwardArgs& a) { forward_inference(a); }
void batch_norm_forward_inference_bf16(const Queue&, const BatchNormForwardArgsBf16& a) { forward_inference(a); }
void batch_norm_apply(const Queue&, const BatchNormApplyArgs& a) { apply(a); }
void batch_norm_apply_bf16(const Queue&, const BatchNormApplyArgsBf16& a) { apply(a); }

size_t batch_norm_workspace_bytes(const Queue&, const ImageShape&) { return 0; }

namespace {

// batch_norm_backward, under a name of its own for profiles (bench/profile_breakdown.py). Each x and dy
// widened, the sums in double, dx rounded once.
template <typename T>
void backward_batch_norm(const T* x, int64_t x_batch_stride, const T* dy, int64_t dy_batch_stride, T* dx,
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
    // by 0 or 1: GCC vectorises that, not a select of a load ("control flow in loop": scalar).
    double sum_dy = 0.0;
    double sum_dy_centered = 0.0;
    for (int64_t n = 0; n < batch; ++n) {
      const T* xn = x + n * x_batch_stride + c * spatial;
      const T* dyn = dy + n * dy_batch_stride + c * spatial;
      if (fuse_relu) {
#pragma omp simd reduction(+ : sum_dy, sum_dy_centered)
        for (int64_t i = 0; i < spatial; ++i) {
          const float xi = to_float(xn[i]);
          const float keep = normalized(xi, mean_c, scale, beta_c) > 0.f ? 1.f : 0.f;
          const auto g = static_cast<double>(to_float(dyn[i]) * keep);
          sum_dy += g;
          sum_dy_centered += g * (static_cast<double>(xi) - mean_c);
        }
      } else {
#pragma omp simd reduction(+ : sum_dy, sum_dy_centered)
        for (int64_t i = 0; i < spatial; ++i) {
          const float gi = to_float(dyn[i]);
          sum_dy += gi;
          sum_dy_centered += static_cast<double>(gi) * (static_cast<double>(to_float(xn[i])) - mean_c);
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
      const T* xn = x + n * x_batch_stride + c * spatial;
      const T* dyn = dy + n * dy_batch_stride + c * spatial;
      T* dxn = dx + n * dx_batch_stride + c * spatial;
#pragma omp simd
      for (int64_t i = 0; i < spatial; ++i) {
        const float xi = to_float(xn[i]);
        dxn[i] = from_float<T>(scale * (masked(xi, to_float(dyn[i])) - k_mean - (xi - mean_c) * k_centered));
      }
    }
  }
}

template <typename T>
void backward(const BasicBatchNormBackwardArgs<T>& a) {
  backward_batch_norm(a.x.data, a.x.batch_stride, a.dy.data, a.dy.batch_stride, a.dx.data, a.dx.batch_stride,
                      a.shape.batch, a.shape.channels, a.shape.spatial, a.mean, a.invstd, a.gamma, a.beta,
                      a.batch_statistics, a.fuse_relu, a.dgamma, a.dbeta);
}

}  // namespace

void batch_norm_backward(const Queue&, const BatchNormBackwardArgs& a) { backward(a); }
void batch_norm_backward_bf16(const Queue&, const BatchNormBackwardArgsBf16& a) { backward(a); }

void batch_norm_backward_statistics_term(const Queue& /*q*/, const BatchNormStatisticsTermArgs& a) {
  const auto count = static_cast<double>(a.count);
  for (int64_t c = 0; c < a.channels; ++c) {
    const double is = a.invstd[c], scale = is * a.gamma[c];
    a.alpha[c] -= scale * a.sum_dy[c] / count;
    a.beta[c] -= scale * a.sum_dy_centered[c] / count * is * is;
  }
}

void add_affine_of_input(const Queue& /*q*/, const AddAffineOfInputArgs& args) {
  const float* x = args.x.data;
  float* dx = args.dx.data;
  const int64_t x_batch_stride = args.x.batch_stride, dx_batch_stride = args.dx.batch_stride,
                batch = args.shape.batch, channels = args.shape.channels, spatial = args.shape.spatial;
  const float* center = args.center;
  const double* alpha = args.alpha;
  const double* beta = args.beta;
#pragma omp parallel for schedule(static) if (batch * channels * spatial > kParallelThreshold)
  for (int64_t c = 0; c < channels; ++c) {
    const auto a = static_cast<float>(alpha[c]), b = static_cast<float>(beta[c]);
    const float m = center[c];
    for (int64_t n = 0; n < batch; ++n) {
      const float* xn = x + n * x_batch_stride + c * spatial;
      float* dxn = dx + n * dx_batch_stride + c * spatial;
#pragma omp simd
      for (int64_t i = 0; i < spatial; ++i) dxn[i] += a + b * (xn[i] - m);
    }
  }
}

}  // namespace chex::kernels::cpu

// Batch norm, pooling, channel concatenation and the weighted BCE loss: forward against direct
// references written here, gradients by finite differences, and the argument checks.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/batchnorm.h"
#include "chex/autograd.h"
#include "chex/error.h"
#include "chex/ops.h"
#include "chex/parallel.h"
#include "chex/random.h"
#include "chex/tensor.h"
#include "support/gradcheck.h"

namespace {

using namespace chex;
using testing::check_gradients;
using testing::max_scaled_error;

constexpr float kBnEps = 1e-5f;

// Per-channel (mean, biased variance) of an NCHW tensor, in double.
struct ChannelStats {
  std::vector<double> mean, var;
};
ChannelStats channel_stats(const Tensor& x) {
  const std::vector<float> v = x.to_vector();
  const int64_t n = x.size(0), c = x.size(1), hw = x.size(2) * x.size(3);
  ChannelStats s{std::vector<double>(c, 0.0), std::vector<double>(c, 0.0)};
  for (int64_t ch = 0; ch < c; ++ch) {
    for (int64_t b = 0; b < n; ++b)
      for (int64_t i = 0; i < hw; ++i) s.mean[ch] += v[(b * c + ch) * hw + i];
    s.mean[ch] /= static_cast<double>(n * hw);
    for (int64_t b = 0; b < n; ++b)
      for (int64_t i = 0; i < hw; ++i) {
        const double d = v[(b * c + ch) * hw + i] - s.mean[ch];
        s.var[ch] += d * d;
      }
    s.var[ch] /= static_cast<double>(n * hw);
  }
  return s;
}

// (x - mean_c) / sqrt(var_c + eps) * gamma_c + beta_c, in double.
std::vector<float> normalize_reference(const Tensor& x, const std::vector<double>& mean, const std::vector<double>& var,
                                       const Tensor& gamma, const Tensor& beta) {
  const std::vector<float> v = x.to_vector(), g = gamma.to_vector(), b = beta.to_vector();
  const int64_t n = x.size(0), c = x.size(1), hw = x.size(2) * x.size(3);
  std::vector<float> out(v.size());
  for (int64_t i = 0; i < n * c * hw; ++i) {
    const int64_t ch = (i / hw) % c;
    out[i] = static_cast<float>((v[i] - mean[ch]) / std::sqrt(var[ch] + kBnEps) * g[ch] + b[ch]);
  }
  return out;
}

double max_abs_difference(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  double worst = 0.0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::fabs(static_cast<double>(a[i]) - b[i]));
  return worst;
}

// The parameters and buffers of one batch norm layer over `channels` channels.
struct BatchNormLayer {
  Tensor weight, bias, running_mean, running_var;
  BatchNormLayer(int64_t channels, Generator& gen) {
    weight = Tensor::uniform({channels}, gen, 0.5f, 1.5f).set_requires_grad();
    bias = Tensor::uniform({channels}, gen, -0.5f, 0.5f).set_requires_grad();
    running_mean = Tensor::zeros({channels});
    running_var = Tensor::ones({channels});
  }
  Tensor operator()(const Tensor& x, ops::BatchNormOptions options = {}) const {
    return ops::batch_norm2d(x, weight, bias, running_mean, running_var, options);
  }
};

// An NCHW tensor whose every channel holds a shuffled, scaled and shifted copy of the symmetric
// grid +-(0.3 + 0.4 k): its normalised values are at least 0.3 / std ~ 0.13 away from 0, so a BN
// with |bias| <= 0.02 and weight >= 0.5 keeps every output clear of the ReLU's kink.
Tensor kink_free_bn_input(int64_t n, int64_t c, int64_t h, int64_t w, Generator& gen) {
  const int64_t count = n * h * w;
  REQUIRE(count % 2 == 0);
  std::vector<float> values(static_cast<size_t>(n * c * h * w));
  for (int64_t ch = 0; ch < c; ++ch) {
    std::vector<float> grid;
    for (int64_t k = 0; k < count / 2; ++k) {
      grid.push_back(0.3f + 0.4f * static_cast<float>(k));
      grid.push_back(-(0.3f + 0.4f * static_cast<float>(k)));
    }
    for (size_t i = grid.size(); i > 1; --i) std::swap(grid[i - 1], grid[gen.below(i)]);
    const float scale = 0.5f + gen.uniform(), shift = 2.f * gen.uniform() - 1.f;
    for (int64_t b = 0; b < n; ++b)
      for (int64_t i = 0; i < h * w; ++i) values[((b * c + ch) * h * w) + i] = grid[b * h * w + i] * scale + shift;
  }
  return Tensor::from_vector(values, {n, c, h, w});
}

// The gradients of sum(f(x) * projection) with respect to the given leaves.
std::vector<std::vector<float>> gradients_of(const Tensor& output, const Tensor& projection,
                                             const std::vector<Tensor>& leaves) {
  for (const Tensor& leaf : leaves) leaf.zero_grad();
  ops::sum(ops::mul(output, projection)).backward();
  std::vector<std::vector<float>> grads;
  for (const Tensor& leaf : leaves) grads.push_back(leaf.grad().to_vector());
  return grads;
}

// A tensor holding a random permutation of 0, 0.1, 0.2, ...: no ties, and every pair of values is
// further apart than the finite-difference step, so a window's maximum never changes under it.
Tensor distinct_values(const Shape& shape, Generator& gen) {
  const int64_t n = shape_numel(shape);
  std::vector<float> values(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) values[i] = 0.1f * static_cast<float>(i) - 0.05f * static_cast<float>(n);
  for (size_t i = values.size(); i > 1; --i) std::swap(values[i - 1], values[gen.below(i)]);
  return Tensor::from_vector(values, shape);
}

// Pooling reference: every window of every plane reduced with `reduce`, padding excluded; max
// pooling pads with -inf (so excluding padding is the same), average pooling has none.
template <typename Reduce>
std::vector<float> pool_reference(const Tensor& x, int64_t kernel, int64_t stride, int64_t padding, Reduce reduce) {
  const std::vector<float> v = x.to_vector();
  const int64_t planes = x.size(0) * x.size(1), h = x.size(2), w = x.size(3);
  const int64_t oh = (h + 2 * padding - kernel) / stride + 1, ow = (w + 2 * padding - kernel) / stride + 1;
  std::vector<float> out;
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t i = 0; i < oh; ++i)
      for (int64_t j = 0; j < ow; ++j) {
        std::vector<float> window;
        for (int64_t r = i * stride - padding; r < i * stride - padding + kernel; ++r)
          for (int64_t s = j * stride - padding; s < j * stride - padding + kernel; ++s)
            if (r >= 0 && r < h && s >= 0 && s < w) window.push_back(v[(p * h + r) * w + s]);
        out.push_back(reduce(window));
      }
  return out;
}

float window_max(const std::vector<float>& window) { return *std::max_element(window.begin(), window.end()); }

double sigmoid_reference(double x) { return 1.0 / (1.0 + std::exp(-x)); }

}  // namespace

// --- Batch norm --------------------------------------------------------------------------------

TEST_CASE("batch_norm2d training normalises each channel with the batch statistics", "[batchnorm]") {
  Generator gen(11);
  const Tensor x = Tensor::randn({4, 3, 5, 5}, gen, 1.5f, 2.f);
  const ChannelStats stats = channel_stats(x);

  SECTION("mean 0 and variance 1 per channel before the affine part") {
    const Tensor gamma = Tensor::ones({3}), beta = Tensor::zeros({3});
    const Tensor y = ops::batch_norm2d(x, gamma, beta, Tensor::zeros({3}), Tensor::ones({3}));
    const ChannelStats out = channel_stats(y);
    for (int c = 0; c < 3; ++c) {
      CHECK(std::fabs(out.mean[c]) < 1e-5);
      // var / (var + eps) with var ~ 4: 1 - 2.5e-6.
      CHECK(out.var[c] == Approx(1.0).margin(1e-4));
    }
  }
  SECTION("with weight and bias, equal to the reference within 1e-5") {
    BatchNormLayer bn(3, gen);
    const Tensor y = bn(x);
    CHECK(max_abs_difference(y.to_vector(), normalize_reference(x, stats.mean, stats.var, bn.weight, bn.bias)) < 1e-5);
  }
}

TEST_CASE("batch_norm2d running statistics follow PyTorch's momentum update", "[batchnorm]") {
  Generator gen(12);
  const float momentum = GENERATE(0.1f, 0.3f);
  BatchNormLayer bn(3, gen);
  bn.running_mean.copy_(Tensor::from_vector({0.5f, -1.f, 2.f}, {3}));
  bn.running_var.copy_(Tensor::from_vector({1.f, 0.25f, 3.f}, {3}));
  std::vector<double> mean = {0.5, -1.0, 2.0}, var = {1.0, 0.25, 3.0};
  ops::BatchNormOptions options;
  options.momentum = momentum;

  for (int step = 0; step < 2; ++step) {
    const Tensor x = Tensor::randn({2, 3, 3, 4}, gen, static_cast<float>(step) - 0.5f, 1.f + static_cast<float>(step));
    const ChannelStats stats = channel_stats(x);
    const double n = 2 * 3 * 4;
    for (int c = 0; c < 3; ++c) {
      mean[c] = (1 - momentum) * mean[c] + momentum * stats.mean[c];
      var[c] = (1 - momentum) * var[c] + momentum * stats.var[c] * n / (n - 1);  // unbiased
    }
    bn(x, options);
    const std::vector<float> rm = bn.running_mean.to_vector(), rv = bn.running_var.to_vector();
    INFO("after step " << step + 1);
    for (int c = 0; c < 3; ++c) {
      CHECK(rm[c] == Approx(mean[c]).epsilon(1e-6).margin(1e-6));
      CHECK(rv[c] == Approx(var[c]).epsilon(1e-6));
    }
  }
}

TEST_CASE("batch_norm2d in eval mode uses the running statistics and leaves them alone", "[batchnorm]") {
  Generator gen(13);
  BatchNormLayer bn(2, gen);
  bn.running_mean.copy_(Tensor::from_vector({0.25f, -3.f}, {2}));
  bn.running_var.copy_(Tensor::from_vector({2.f, 0.5f}, {2}));
  const Tensor x = Tensor::randn({3, 2, 4, 3}, gen);
  ops::BatchNormOptions eval;
  eval.training = false;
  const Tensor y = bn(x, eval);
  CHECK(max_abs_difference(y.to_vector(), normalize_reference(x, {0.25, -3.0}, {2.0, 0.5}, bn.weight, bn.bias)) < 1e-5);
  CHECK(bn.running_mean.to_vector() == std::vector<float>{0.25f, -3.f});
  CHECK(bn.running_var.to_vector() == std::vector<float>{2.f, 0.5f});

  SECTION("a single value per channel is fine in eval mode") {
    CHECK(bn(Tensor::randn({1, 2, 1, 1}, gen), eval).shape() == Shape{1, 2, 1, 1});
  }
}

TEST_CASE("batch_norm2d with fused ReLU equals relu(batch_norm2d), forward and backward", "[batchnorm]") {
  Generator gen(14);
  const bool training = GENERATE(true, false);
  INFO((training ? "training" : "eval"));
  const Tensor x = testing::random_leaf({3, 4, 5, 3}, gen);
  BatchNormLayer fused_bn(4, gen);
  BatchNormLayer plain_bn(4, gen);
  plain_bn.weight.detach().copy_(fused_bn.weight);
  plain_bn.bias.detach().copy_(fused_bn.bias);
  ops::BatchNormOptions options;
  options.training = training;
  const Tensor plain = ops::relu(plain_bn(x, options));
  options.fuse_relu = true;
  const Tensor fused = fused_bn(x, options);
  CHECK(max_abs_difference(fused.to_vector(), plain.to_vector()) < 1e-6);
  // A sizeable share of the outputs is clipped, so the mask matters.
  const std::vector<float> values = fused.to_vector();
  CHECK(std::count(values.begin(), values.end(), 0.f) > static_cast<long>(values.size() / 5));

  const Tensor projection = Tensor::randn(x.shape(), gen);
  const auto fused_grads = gradients_of(fused, projection, {x, fused_bn.weight, fused_bn.bias});
  const auto plain_grads = gradients_of(plain, projection, {x, plain_bn.weight, plain_bn.bias});
  for (size_t i = 0; i < fused_grads.size(); ++i) {
    INFO("gradient " << i << " (x, weight, bias)");
    CHECK(max_scaled_error(fused_grads[i], plain_grads[i]) < 1e-5);
  }
}

TEST_CASE("batch_norm2d gradients match finite differences", "[batchnorm][gradcheck]") {
  Generator gen(15);
  const bool training = GENERATE(true, false);
  const bool fuse_relu = GENERATE(false, true);
  INFO((training ? "training" : "eval") << (fuse_relu ? " with fused ReLU" : ""));
  const Tensor x = kink_free_bn_input(3, 2, 2, 3, gen).set_requires_grad();
  BatchNormLayer bn(2, gen);
  bn.bias.detach().copy_(Tensor::from_vector({0.02f, -0.015f}, {2}));
  // Running statistics near the batch's keep the eval-mode outputs off the ReLU's kink too.
  const ChannelStats stats = channel_stats(x);
  bn.running_mean.copy_(Tensor::from_vector({static_cast<float>(stats.mean[0]) + 0.01f, static_cast<float>(stats.mean[1]) - 0.01f}, {2}));
  bn.running_var.copy_(Tensor::from_vector({static_cast<float>(stats.var[0]) * 1.1f, static_cast<float>(stats.var[1]) * 0.9f}, {2}));
  ops::BatchNormOptions options;
  options.training = training;
  options.fuse_relu = fuse_relu;
  // Every pre-activation must be clear of 0 by more than a finite-difference step can move it.
  if (fuse_relu) {
    ops::BatchNormOptions plain = options;
    plain.fuse_relu = false;
    const std::vector<float> pre = bn(x.detach(), plain).to_vector();
    for (float v : pre) REQUIRE(std::fabs(v) > 0.02f);
  }
  testing::GradcheckOptions check;
  check.eps = 2e-3f;
  check.tolerance = 5e-3f;
  check_gradients([&](const std::vector<Tensor>& in) { return ops::batch_norm2d(in[0], in[1], in[2], bn.running_mean, bn.running_var, options); },
                  {x, bn.weight, bn.bias}, check);
}

TEST_CASE("batch_norm2d reads a channel slice of a wider buffer in place", "[batchnorm]") {
  Generator gen(16);
  const bool training = GENERATE(true, false);
  const bool fuse_relu = GENERATE(false, true);
  INFO((training ? "training" : "eval") << (fuse_relu ? " with fused ReLU" : ""));
  const Tensor big = testing::random_leaf({3, 7, 4, 5}, gen);
  const Tensor slice = big.narrow(1, 2, 4);  // batch stride 7*4*5, not 4*4*5
  REQUIRE(slice.is_batch_strided());
  REQUIRE_FALSE(slice.is_contiguous());
  const Tensor copy = slice.detach().clone().set_requires_grad();
  BatchNormLayer a(4, gen);
  BatchNormLayer b(4, gen);
  b.weight.detach().copy_(a.weight);
  b.bias.detach().copy_(a.bias);
  ops::BatchNormOptions options;
  options.training = training;
  options.fuse_relu = fuse_relu;
  const Tensor from_slice = a(slice, options);
  const Tensor from_copy = b(copy, options);
  CHECK(from_slice.to_vector() == from_copy.to_vector());
  CHECK(a.running_mean.to_vector() == b.running_mean.to_vector());
  CHECK(a.running_var.to_vector() == b.running_var.to_vector());

  const Tensor projection = Tensor::randn(from_slice.shape(), gen);
  gradients_of(from_slice, projection, {big, a.weight});
  gradients_of(from_copy, projection, {copy, b.weight});
  CHECK(big.grad().narrow(1, 2, 4).to_vector() == copy.grad().to_vector());
  const std::vector<float> outside = big.grad().narrow(1, 0, 2).to_vector();
  CHECK(std::all_of(outside.begin(), outside.end(), [](float v) { return v == 0.f; }));
  CHECK(a.weight.grad().to_vector() == b.weight.grad().to_vector());
}

TEST_CASE("batch_norm_apply recomputes a training forward bitwise from the saved statistics", "[batchnorm]") {
  // The memory-efficient dense block recomputes BN+ReLU outputs in backward this way.
  Generator gen(17);
  const int64_t n = 2, c = 3, hw = 6;
  const Tensor x = Tensor::randn({n, c, 2, 3}, gen, 0.5f, 2.f);
  const Tensor gamma = Tensor::uniform({c}, gen, 0.5f, 1.5f), beta = Tensor::uniform({c}, gen, -0.5f, 0.5f);
  Tensor running_mean = Tensor::zeros({c}), running_var = Tensor::ones({c});
  Tensor y = Tensor::empty(x.shape()), recomputed = Tensor::empty(x.shape());
  Tensor mean = Tensor::empty({c}), invstd = Tensor::empty({c});
  kernels::cpu::batch_norm_forward_training({}, {.shape = {n, c, hw},
                                                 .x = {x.data(), c * hw},
                                                 .y = {y.data(), c * hw},
                                                 .gamma = gamma.data(),
                                                 .beta = beta.data(),
                                                 .running_mean = running_mean.data(),
                                                 .running_var = running_var.data(),
                                                 .momentum = 0.1f,
                                                 .eps = kBnEps,
                                                 .save_mean = mean.data(),
                                                 .save_invstd = invstd.data(),
                                                 .fuse_relu = true});
  kernels::cpu::batch_norm_apply({}, {.shape = {n, c, hw},
                                      .x = {x.data(), c * hw},
                                      .y = {recomputed.data(), c * hw},
                                      .mean = mean.data(),
                                      .invstd = invstd.data(),
                                      .gamma = gamma.data(),
                                      .beta = beta.data(),
                                      .fuse_relu = true});
  CHECK(recomputed.to_vector() == y.to_vector());
  const ChannelStats stats = channel_stats(x);
  for (int ch = 0; ch < c; ++ch) {
    CHECK(mean.to_vector()[ch] == Approx(stats.mean[ch]).margin(1e-6));
    CHECK(invstd.to_vector()[ch] == Approx(1.0 / std::sqrt(stats.var[ch] + kBnEps)).epsilon(1e-6));
  }
}

// --- Pooling -----------------------------------------------------------------------------------

TEST_CASE("max_pool2d forward matches a direct reference", "[pooling]") {
  Generator gen(21);
  struct Case { Shape shape; int64_t kernel, stride, padding; Shape out; };
  const Case c = GENERATE(Case{{2, 3, 7, 5}, 3, 2, 1, {2, 3, 4, 3}}, Case{{2, 2, 6, 7}, 2, 2, 0, {2, 2, 3, 3}},
                          Case{{1, 2, 9, 9}, 3, 2, 1, {1, 2, 5, 5}});
  INFO("input " << shape_str(c.shape) << " kernel " << c.kernel << " stride " << c.stride << " padding " << c.padding);
  const Tensor x = Tensor::randn(c.shape, gen);
  const Tensor y = ops::max_pool2d(x, c.kernel, c.stride, c.padding);
  REQUIRE(y.shape() == c.out);
  CHECK(y.to_vector() == pool_reference(x, c.kernel, c.stride, c.padding, window_max));
}

TEST_CASE("max_pool2d pads with -inf and gives ties to the first maximum", "[pooling]") {
  SECTION("padding never wins, even against negative inputs") {
    const Tensor y = ops::max_pool2d(Tensor::full({1, 1, 3, 3}, -5.f), 3, 2, 1);
    CHECK(y.to_vector() == std::vector<float>{-5.f, -5.f, -5.f, -5.f});
  }
  SECTION("equal values: the gradient goes to each window's first element in row-major order") {
    const Tensor x = Tensor::ones({1, 1, 3, 3}).set_requires_grad();
    ops::sum(ops::max_pool2d(x, 2, 1)).backward();
    // Windows start at (0,0), (0,1), (1,0), (1,1): each credits its top-left element.
    CHECK(x.grad().to_vector() == std::vector<float>{1, 1, 0, 1, 1, 0, 0, 0, 0});
  }
  SECTION("overlapping windows add their gradients at a shared maximum") {
    const Tensor x = Tensor::from_vector({0, 1, 0, 1, 9, 1, 0, 1, 0}, {1, 1, 3, 3}).set_requires_grad();
    ops::sum(ops::max_pool2d(x, 2, 1)).backward();
    CHECK(x.grad().to_vector() == std::vector<float>{0, 0, 0, 0, 4, 0, 0, 0, 0});
  }
}

TEST_CASE("max_pool2d picks the first maximum in row-major order, ties and NaNs included", "[pooling]") {
  // The kernel finds each window's maximum row by row of the window; here against a scan of the
  // whole window in row-major order (ties go to the first, a NaN beats anything, the first NaN
  // wins), on values from {0, 0.5, 1} (ReLU outputs tie a lot) with some NaNs, at geometries
  // whose windows the plane's edges cut on every side.
  struct Case {
    Shape shape;
    int64_t kernel, stride, padding;
  };
  const Case c = GENERATE(Case{{2, 3, 13, 11}, 3, 2, 1}, Case{{1, 2, 12, 9}, 2, 2, 0}, Case{{1, 2, 9, 10}, 3, 1, 1},
                          Case{{1, 1, 11, 14}, 5, 2, 2}, Case{{1, 2, 10, 8}, 3, 3, 1});
  INFO("input " << shape_str(c.shape) << " kernel " << c.kernel << " stride " << c.stride << " padding " << c.padding);
  Generator gen(25);
  std::vector<float> values = Tensor::uniform(c.shape, gen, 0.f, 3.f).to_vector();
  for (size_t i = 0; i < values.size(); ++i)
    values[i] = i % 29 == 7 ? std::numeric_limits<float>::quiet_NaN() : std::floor(values[i]) * 0.5f;
  const Tensor x = Tensor::from_vector(values, c.shape).set_requires_grad();
  const Tensor y = ops::max_pool2d(x, c.kernel, c.stride, c.padding);
  const Tensor dy = Tensor::uniform(y.shape(), gen, 0.5f, 1.5f);
  ops::sum(ops::mul(y, dy)).backward();

  const int64_t planes = c.shape[0] * c.shape[1], H = c.shape[2], W = c.shape[3];
  const int64_t OH = y.size(2), OW = y.size(3);
  const std::vector<float> got = y.to_vector(), g = dy.to_vector();
  std::vector<float> dx(values.size(), 0.f);
  int64_t mismatches = 0, nan_windows = 0, tied_windows = 0;
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        int64_t best = -1, maxima = 0;
        for (int64_t h = oh * c.stride - c.padding; h < oh * c.stride - c.padding + c.kernel; ++h)
          for (int64_t w = ow * c.stride - c.padding; w < ow * c.stride - c.padding + c.kernel; ++w) {
            if (h < 0 || h >= H || w < 0 || w >= W) continue;
            const int64_t i = (p * H + h) * W + w;
            const float v = values[static_cast<size_t>(i)];
            const float b = best < 0 ? 0.f : values[static_cast<size_t>(best)];
            if (best < 0 || v > b || (std::isnan(v) && !std::isnan(b))) best = i;
          }
        REQUIRE(best >= 0);
        const float expected = values[static_cast<size_t>(best)];
        for (int64_t h = std::max<int64_t>(oh * c.stride - c.padding, 0); h < std::min(oh * c.stride - c.padding + c.kernel, H); ++h)
          for (int64_t w = std::max<int64_t>(ow * c.stride - c.padding, 0); w < std::min(ow * c.stride - c.padding + c.kernel, W); ++w)
            maxima += values[static_cast<size_t>((p * H + h) * W + w)] == expected;
        nan_windows += std::isnan(expected);
        tied_windows += maxima > 1;
        const size_t o = static_cast<size_t>((p * OH + oh) * OW + ow);
        const bool same = std::isnan(expected) ? std::isnan(got[o]) : got[o] == expected;
        mismatches += !same;
        dx[static_cast<size_t>(best)] += g[o];
      }
  CHECK(mismatches == 0);
  const std::vector<float> grad = x.grad().to_vector();
  CHECK(std::equal(grad.begin(), grad.end(), dx.begin()));  // the same routing and the same sums, bitwise
  // The cases that the rule is about do occur.
  CHECK(nan_windows > 0);
  CHECK(tied_windows > 0);
}

TEST_CASE("max_pool2d gradient matches finite differences", "[pooling][gradcheck]") {
  Generator gen(22);
  testing::GradcheckOptions check;
  check.eps = 1e-3f;  // far below the 0.1 spacing of the values: no window changes its maximum
  check.tolerance = 5e-3f;
  SECTION("3x3, stride 2, padding 1 on an odd-sized input") {
    const Tensor x = distinct_values({2, 2, 7, 5}, gen).set_requires_grad();
    check_gradients([](const std::vector<Tensor>& in) { return ops::max_pool2d(in[0], 3, 2, 1); }, {x}, check);
  }
  SECTION("2x2, stride 2 on an odd-sized input (the last row and column are dropped)") {
    const Tensor x = distinct_values({2, 3, 5, 7}, gen).set_requires_grad();
    check_gradients([](const std::vector<Tensor>& in) { return ops::max_pool2d(in[0], 2, 2); }, {x}, check);
  }
}

TEST_CASE("max_pool2d reads a channel slice of a wider buffer in place", "[pooling]") {
  Generator gen(23);
  const Tensor big = distinct_values({2, 5, 7, 7}, gen).set_requires_grad();
  const Tensor slice = big.narrow(1, 1, 3);
  const Tensor copy = slice.detach().clone().set_requires_grad();
  const Tensor from_slice = ops::max_pool2d(slice, 3, 2, 1);
  const Tensor from_copy = ops::max_pool2d(copy, 3, 2, 1);
  CHECK(from_slice.to_vector() == from_copy.to_vector());
  const Tensor projection = Tensor::randn(from_slice.shape(), gen);
  gradients_of(from_slice, projection, {big});
  gradients_of(from_copy, projection, {copy});
  CHECK(big.grad().narrow(1, 1, 3).to_vector() == copy.grad().to_vector());
}

TEST_CASE("avg_pool2d 2x2 stride 2: forward and gradient", "[pooling]") {
  Generator gen(24);
  const Tensor x = testing::random_leaf({2, 3, 5, 7}, gen);
  const Tensor y = ops::avg_pool2d(x, 2, 2);
  REQUIRE(y.shape() == Shape{2, 3, 2, 3});
  const auto mean_of = [](const std::vector<float>& w) {
    double s = 0;
    for (float v : w) s += v;
    return static_cast<float>(s / static_cast<double>(w.size()));
  };
  CHECK(max_abs_difference(y.to_vector(), pool_reference(x, 2, 2, 0, mean_of)) < 1e-6);
  check_gradients([](const std::vector<Tensor>& in) { return ops::avg_pool2d(in[0], 2, 2); }, {x});
  SECTION("on a channel slice of a wider buffer") {
    const Tensor big = Tensor::randn({2, 6, 5, 7}, gen);
    CHECK(ops::avg_pool2d(big.narrow(1, 3, 3), 2, 2).to_vector() ==
          ops::avg_pool2d(big.narrow(1, 3, 3).contiguous(), 2, 2).to_vector());
  }
}

TEST_CASE("global_avg_pool: forward and gradient", "[pooling]") {
  Generator gen(25);
  const Tensor x = testing::random_leaf({3, 4, 5, 3}, gen);
  const Tensor y = ops::global_avg_pool(x);
  REQUIRE(y.shape() == Shape{3, 4});
  const std::vector<float> v = x.to_vector(), out = y.to_vector();
  for (int64_t p = 0; p < 12; ++p) {
    double s = 0;
    for (int64_t i = 0; i < 15; ++i) s += v[p * 15 + i];
    CHECK(out[p] == Approx(s / 15).margin(1e-6));
  }
  check_gradients([](const std::vector<Tensor>& in) { return ops::global_avg_pool(in[0]); }, {x});
  SECTION("on a channel slice of a wider buffer") {
    const Tensor big = Tensor::randn({3, 9, 5, 3}, gen);
    CHECK(ops::global_avg_pool(big.narrow(1, 5, 4)).to_vector() ==
          ops::global_avg_pool(big.narrow(1, 5, 4).contiguous()).to_vector());
  }
}

// --- Concatenation -----------------------------------------------------------------------------

TEST_CASE("cat_channels joins along dimension 1 and splits the gradient", "[concat]") {
  Generator gen(31);
  const Tensor a = testing::random_leaf({2, 1, 3, 4}, gen);
  const Tensor b = Tensor::randn({2, 3, 3, 4}, gen);  // no gradient wanted
  const Tensor wide = testing::random_leaf({2, 5, 3, 4}, gen);
  const Tensor c = wide.narrow(1, 1, 2);  // a batch-strided slice
  const Tensor y = ops::cat_channels({a, b, c});
  REQUIRE(y.shape() == Shape{2, 6, 3, 4});
  CHECK(y.narrow(1, 0, 1).to_vector() == a.to_vector());
  CHECK(y.narrow(1, 1, 3).to_vector() == b.to_vector());
  CHECK(y.narrow(1, 4, 2).to_vector() == c.to_vector());

  const Tensor projection = Tensor::randn(y.shape(), gen);
  ops::sum(ops::mul(y, projection)).backward();
  CHECK(a.grad().to_vector() == projection.narrow(1, 0, 1).to_vector());
  CHECK_FALSE(b.grad().defined());
  CHECK(wide.grad().narrow(1, 1, 2).to_vector() == projection.narrow(1, 4, 2).to_vector());
  const std::vector<float> untouched = wide.grad().narrow(1, 3, 2).to_vector();
  CHECK(std::all_of(untouched.begin(), untouched.end(), [](float v) { return v == 0.f; }));
}

// --- Loss --------------------------------------------------------------------------------------

TEST_CASE("bce_with_logits equals the weighted formula", "[bce]") {
  Generator gen(41);
  const int64_t n = 5, classes = 4;
  const Tensor logits = Tensor::randn({n, classes}, gen, 0.f, 3.f);
  std::vector<float> target_values(n * classes);
  for (auto& t : target_values) t = gen.below(3) == 0 ? 0.3f : static_cast<float>(gen.below(2));  // soft labels too
  const Tensor targets = Tensor::from_vector(target_values, {n, classes});
  const bool weighted = GENERATE(false, true);
  INFO((weighted ? "weighted" : "unweighted"));
  const Tensor pos = weighted ? Tensor::from_vector({0.8f, 2.f, 1.f, 3.5f}, {classes}) : Tensor();
  const Tensor neg = weighted ? Tensor::from_vector({1.2f, 0.5f, 1.f, 0.25f}, {classes}) : Tensor();
  const std::vector<float> wp = weighted ? pos.to_vector() : std::vector<float>(classes, 1.f);
  const std::vector<float> wn = weighted ? neg.to_vector() : std::vector<float>(classes, 1.f);

  const std::vector<float> x = logits.to_vector();
  double expected = 0;
  for (int64_t i = 0; i < n * classes; ++i) {
    const double s = sigmoid_reference(x[i]), y = target_values[i];
    expected -= wp[i % classes] * y * std::log(s) + wn[i % classes] * (1 - y) * std::log(1 - s);
  }
  expected /= static_cast<double>(n * classes);
  CHECK(ops::bce_with_logits(logits, targets, pos, neg).item() == Approx(expected).epsilon(1e-6));

  const Tensor leaf = logits.detach().clone().set_requires_grad();
  testing::GradcheckOptions check;
  check.eps = 1e-3f;
  check_gradients([&](const std::vector<Tensor>& in) { return ops::bce_with_logits(in[0], targets, pos, neg); },
                  {leaf}, check);
}

TEST_CASE("bce_with_logits stays finite for logits of +-100 and beyond", "[bce]") {
  // Confidently wrong (loss |x| each) and confidently right (loss ~e^-|x|) at |x| = 100, and wrong
  // at |x| = 1000, where e^|x| overflows even a double.
  const Tensor logits =
      Tensor::from_vector({100.f, -100.f, 100.f, -100.f, 1000.f, -1000.f}, {1, 6}).set_requires_grad();
  const Tensor targets = Tensor::from_vector({0.f, 1.f, 1.f, 0.f, 0.f, 1.f}, {1, 6});
  const Tensor pos = Tensor::from_vector({1.f, 2.f, 1.f, 1.f, 1.f, 1.f}, {6});
  const Tensor loss = ops::bce_with_logits(logits, targets, pos);
  REQUIRE(std::isfinite(loss.item()));
  CHECK(loss.item() == Approx((100.0 + 2 * 100.0 + 1000.0 + 1000.0) / 6).epsilon(1e-6));
  loss.backward();
  const std::vector<float> g = logits.grad().to_vector();
  for (float v : g) CHECK(std::isfinite(v));
  CHECK(g[0] == Approx(1.0 / 6).epsilon(1e-6));   // w- * sigmoid(100) / 6
  CHECK(g[1] == Approx(-2.0 / 6).epsilon(1e-6));  // w+ * (sigmoid(-100) - 1) / 6
  CHECK(std::fabs(g[2]) < 1e-30);
  CHECK(std::fabs(g[3]) < 1e-30);
  CHECK(g[4] == Approx(1.0 / 6).epsilon(1e-6));
  CHECK(g[5] == Approx(-1.0 / 6).epsilon(1e-6));
}

// --- Determinism -------------------------------------------------------------------------------

TEST_CASE("batch norm and pooling give bitwise the same results with 1 and 3 threads", "[batchnorm][pooling]") {
  // Large enough (> 2^15 elements) for the kernels to go parallel.
  auto run = [](int threads) {
    const int previous = num_threads();
    set_num_threads(threads);
    Generator gen(61);
    const Tensor x = testing::random_leaf({4, 8, 33, 33}, gen);
    BatchNormLayer bn(8, gen);
    ops::BatchNormOptions options;
    options.fuse_relu = true;
    const Tensor y = ops::max_pool2d(bn(x, options), 3, 2, 1);
    const Tensor z = ops::global_avg_pool(ops::avg_pool2d(y, 2, 2));
    const auto grads = gradients_of(z, Tensor::randn(z.shape(), gen), {x, bn.weight, bn.bias});
    set_num_threads(previous);
    std::vector<std::vector<float>> results{z.to_vector(), bn.running_mean.to_vector(), bn.running_var.to_vector()};
    results.insert(results.end(), grads.begin(), grads.end());
    return results;
  };
  CHECK(run(1) == run(3));
}

// --- Argument checks ---------------------------------------------------------------------------

TEST_CASE("the ops reject bad arguments with errors that name them", "[errors]") {
  using Catch::Contains;
  Generator gen(51);
  const Tensor x = Tensor::randn({2, 4, 3, 3}, gen);
  const Tensor c4 = Tensor::ones({4});
  SECTION("batch_norm2d") {
    REQUIRE_THROWS_WITH(ops::batch_norm2d(Tensor::ones({2, 4, 3}), c4, c4, c4, c4), Contains("batch_norm2d"));
    REQUIRE_THROWS_WITH(ops::batch_norm2d(x, Tensor::ones({5}), c4, c4, c4),
                        Contains("batch_norm2d: weight has shape [5] but the input [2, 4, 3, 3] has 4 channels"));
    REQUIRE_THROWS_WITH(ops::batch_norm2d(x, c4, Tensor::ones({4, 1}), c4, c4), Contains("bias"));
    REQUIRE_THROWS_WITH(ops::batch_norm2d(x, c4, c4, Tensor::ones({3}), c4), Contains("running_mean"));
    REQUIRE_THROWS_WITH(ops::batch_norm2d(x, c4, c4, c4, Tensor()), Contains("batch_norm2d"));
    REQUIRE_THROWS_WITH(ops::batch_norm2d(Tensor::ones({1, 4, 1, 1}), c4, c4, c4, c4),
                        Contains("batch_norm2d") && Contains("expected more than 1 value per channel when training"));
  }
  SECTION("pooling") {
    REQUIRE_THROWS_WITH(ops::max_pool2d(Tensor::ones({4, 3, 3}), 2, 2), Contains("max_pool2d"));
    REQUIRE_THROWS_WITH(ops::max_pool2d(x, 3, 2, 2), Contains("max_pool2d") && Contains("padding"));
    REQUIRE_THROWS_WITH(ops::max_pool2d(x, 6, 1, 1), Contains("max_pool2d") && Contains("larger than the input"));
    REQUIRE_NOTHROW(ops::max_pool2d(x, 5, 1, 1));  // fits once padded
    REQUIRE_THROWS_WITH(ops::max_pool2d(x, 2, 0), Contains("max_pool2d"));
    REQUIRE_THROWS_WITH(ops::avg_pool2d(x, 4, 4), Contains("avg_pool2d") && Contains("larger than the input"));
    REQUIRE_THROWS_WITH(ops::global_avg_pool(Tensor::ones({2, 4})), Contains("global_avg_pool"));
  }
  SECTION("cat_channels") {
    REQUIRE_THROWS_WITH(ops::cat_channels({}), Contains("cat_channels"));
    REQUIRE_THROWS_WITH(ops::cat_channels({x, Tensor::ones({2, 1, 3, 4})}),
                        Contains("cat_channels: tensor 1 has shape [2, 1, 3, 4]"));
    REQUIRE_THROWS_WITH(ops::cat_channels({x, Tensor::ones({2, 4, 9})}), Contains("cat_channels"));
  }
  SECTION("bce_with_logits") {
    const Tensor logits = Tensor::zeros({2, 4});
    REQUIRE_THROWS_WITH(ops::bce_with_logits(logits, Tensor::zeros({2, 3})),
                        Contains("bce_with_logits: targets have shape [2, 3] but the logits [2, 4]"));
    REQUIRE_THROWS_WITH(ops::bce_with_logits(logits, logits, Tensor::ones({3})),
                        Contains("bce_with_logits: pos_weight has shape [3]"));
    REQUIRE_THROWS_WITH(ops::bce_with_logits(logits, logits, Tensor(), Tensor::ones({2, 4})),
                        Contains("neg_weight"));
    REQUIRE_THROWS_WITH(ops::bce_with_logits(Tensor::zeros({8}), Tensor::zeros({8})), Contains("bce_with_logits"));
  }
  SECTION("CUDA tensors, until the CUDA kernels land") {
    if (cuda_device_count() == 0) return;  // needs a GPU to make a CUDA tensor at all
    const Tensor on_gpu = x.to(Device::cuda());
    REQUIRE_THROWS_WITH(ops::batch_norm2d(on_gpu, c4, c4, c4, c4), Contains("batch_norm2d"));
    REQUIRE_THROWS_WITH(ops::max_pool2d(on_gpu, 2, 2), Contains("max_pool2d"));
    REQUIRE_THROWS_WITH(ops::cat_channels({x, on_gpu}), Contains("cat_channels") && Contains("different devices"));
    REQUIRE_THROWS_WITH(ops::bce_with_logits(Tensor::zeros({2, 4}), Tensor::zeros({2, 4}).to(Device::cuda())),
                        Contains("bce_with_logits") && Contains("different devices"));
  }
}

// A diverged step must show as a NaN loss (train_chexnet stops on it): ReLU lets NaN through, as
// PyTorch's does, instead of turning it into 0 and training on silently.
TEST_CASE("ReLU, fused BN + ReLU and max pooling propagate NaN", "[relu][nan]") {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const Tensor x = Tensor::from_vector({-1.f, nan, 2.f, -0.5f}, {1, 1, 2, 2});
  const std::vector<float> y = ops::relu(x).to_vector();
  CHECK(y[0] == 0.f);
  CHECK(std::isnan(y[1]));
  CHECK(y[2] == 2.f);
  CHECK(y[3] == 0.f);

  ops::BatchNormOptions options;
  options.training = false;
  options.fuse_relu = true;
  const Tensor ones = Tensor::from_vector({1.f}, {1}), zeros = Tensor::from_vector({0.f}, {1});
  const std::vector<float> bn = ops::batch_norm2d(x, ones, zeros, zeros, ones, options).to_vector();
  CHECK(bn[0] == 0.f);
  CHECK(std::isnan(bn[1]));
  CHECK(bn[2] > 1.9f);

  CHECK(std::isnan(ops::max_pool2d(x, 2, 2).to_vector()[0]));
}

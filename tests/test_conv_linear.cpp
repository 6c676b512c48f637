// conv2d and linear: forward against direct-loop references, gradients by finite differences,
// batch-strided inputs read in place, determinism, and the argument checks.
#include <catch2/catch.hpp>

#include <cmath>
#include <string>
#include <vector>

#include "chex/allocator.h"
#include "chex/autograd.h"
#include "chex/error.h"
#include "chex/ops.h"
#include "chex/random.h"
#include "kernels/batchnorm.h"
#include "kernels/conv2d.h"
#include "kernels/conv2d_winograd.h"
#include "support/gradcheck.h"
#include "support/thread_count.h"

namespace {
using namespace chex;

struct ConvCase {
  const char* name;
  int64_t batch, in_channels, height, width, out_channels, kernel_h, kernel_w, stride, padding;
  bool bias;
};

// The cases cover the paths of the kernel (direct GEMM for 1x1, im2col otherwise) and the
// DenseNet geometries, with odd, non-square images so that row/column mix-ups show.
const std::vector<ConvCase> kForwardCases = {
    {"1x1 (direct GEMM)", 3, 8, 5, 7, 6, 1, 1, 1, 0, true},
    {"1x1 batch 1 no bias", 1, 5, 4, 3, 7, 1, 1, 1, 0, false},
    {"1x1 stride 2 (im2col)", 2, 4, 7, 6, 3, 1, 1, 2, 0, true},
    {"3x3 pad 1", 1, 4, 9, 9, 5, 3, 3, 1, 1, true},
    {"3x3 pad 1 non-square", 3, 3, 6, 11, 4, 3, 3, 1, 1, false},
    {"7x7 stride 2 pad 3 (stem)", 2, 3, 23, 19, 4, 7, 7, 2, 3, true},
    {"3x3 stride 2 no pad", 3, 2, 11, 8, 3, 3, 3, 2, 0, false},
    {"2x3 kernel stride 3 pad 2", 2, 3, 10, 7, 2, 2, 3, 3, 2, true},
    {"kernel as large as the padded input", 1, 2, 3, 4, 3, 5, 6, 1, 1, true},
    // >= 64 input channels: k^2 shifted GEMMs on a padded copy; batch 1 splits columns over threads.
    {"3x3 shifted GEMMs, batch 1", 1, 64, 9, 11, 16, 3, 3, 1, 1, false},
    {"3x3 shifted GEMMs, batch 3", 3, 64, 7, 6, 16, 3, 3, 1, 1, true},
    {"1x1 batch 1, columns over threads", 1, 8, 13, 11, 6, 1, 1, 1, 0, true},
    // 3x3, stride 1, pad 1 from 16 x 16 up with whole samples per thread: Winograd's F(2x2, 3x3);
    // odd sizes leave tiles hanging over the bottom and right edges.
    {"3x3 Winograd, odd sizes, batch 3", 3, 5, 17, 19, 6, 3, 3, 1, 1, true},
    {"3x3 Winograd at DenseNet's 128 -> 32, batch 3", 3, 128, 16, 16, 32, 3, 3, 1, 1, false},
};

// Direct loops in double: y[n, o, i, j] = b[o] + sum_{c, r, s} x[n, c, i*st - p + r, j*st - p + s] w[o, c, r, s].
std::vector<float> conv2d_reference(const ConvCase& c, const std::vector<float>& x, const std::vector<float>& w,
                                    const std::vector<float>& b) {
  const int64_t out_h = (c.height + 2 * c.padding - c.kernel_h) / c.stride + 1;
  const int64_t out_w = (c.width + 2 * c.padding - c.kernel_w) / c.stride + 1;
  std::vector<float> y(static_cast<size_t>(c.batch * c.out_channels * out_h * out_w));
  for (int64_t n = 0; n < c.batch; ++n)
    for (int64_t o = 0; o < c.out_channels; ++o)
      for (int64_t i = 0; i < out_h; ++i)
        for (int64_t j = 0; j < out_w; ++j) {
          double acc = b.empty() ? 0.0 : b[o];
          for (int64_t ci = 0; ci < c.in_channels; ++ci)
            for (int64_t r = 0; r < c.kernel_h; ++r)
              for (int64_t s = 0; s < c.kernel_w; ++s) {
                const int64_t h = i * c.stride - c.padding + r, v = j * c.stride - c.padding + s;
                if (h < 0 || h >= c.height || v < 0 || v >= c.width) continue;
                acc += static_cast<double>(x[((n * c.in_channels + ci) * c.height + h) * c.width + v]) *
                       w[((o * c.in_channels + ci) * c.kernel_h + r) * c.kernel_w + s];
              }
          y[((n * c.out_channels + o) * out_h + i) * out_w + j] = static_cast<float>(acc);
        }
  return y;
}

// Forward results of float sums of at most a few hundred N(0, 1) products: 1e-4 relative to
// max(|ref|, 1) leaves room for the GEMM's summation order and no room for a wrong index.
constexpr double kForwardTolerance = 1e-4;

Tensor conv_of(const ConvCase& c, const std::vector<Tensor>& in) {
  return ops::conv2d(in[0], in[1], c.bias ? in[2] : Tensor(), {c.stride, c.padding});
}

std::vector<Tensor> conv_inputs(const ConvCase& c, Generator& gen) {
  std::vector<Tensor> in = {testing::random_leaf({c.batch, c.in_channels, c.height, c.width}, gen),
                            testing::random_leaf({c.out_channels, c.in_channels, c.kernel_h, c.kernel_w}, gen, 0.3f)};
  if (c.bias) in.push_back(testing::random_leaf({c.out_channels}, gen));
  return in;
}

}  // namespace

TEST_CASE("conv2d forward matches a direct-loop reference", "[conv]") {
  // Thread counts above and below the batch take different paths (whole samples per thread, or
  // each sample's columns split over the threads).
  const int threads = GENERATE(1, 2, 3);
  const testing::ThreadCount thread_count(threads);
  Generator gen(11);
  for (const ConvCase& c : kForwardCases) {
    INFO("case: " << c.name << ", " << threads << " threads");
    const std::vector<Tensor> in = conv_inputs(c, gen);
    const Tensor y = conv_of(c, in);
    const int64_t out_h = (c.height + 2 * c.padding - c.kernel_h) / c.stride + 1;
    const int64_t out_w = (c.width + 2 * c.padding - c.kernel_w) / c.stride + 1;
    REQUIRE(y.shape() == Shape{c.batch, c.out_channels, out_h, out_w});
    const std::vector<float> expected =
        conv2d_reference(c, in[0].to_vector(), in[1].to_vector(), c.bias ? in[2].to_vector() : std::vector<float>{});
    CHECK(testing::max_scaled_error(y.to_vector(), expected) <= kForwardTolerance);
  }
}

TEST_CASE("conv2d gradients match finite differences", "[conv][gradcheck]") {
  // Small sizes: each checked element costs two forward passes. conv2d is linear in each input,
  // so the central difference is exact but for float rounding of the loss (~1e-4 here); the
  // default tolerance (1e-2 scaled error) therefore only hides rounding.
  const std::vector<ConvCase> cases = {
      {"1x1", 3, 4, 3, 5, 2, 1, 1, 1, 0, true},
      {"3x3 pad 1", 2, 3, 5, 6, 4, 3, 3, 1, 1, true},
      {"7x7 stride 2 pad 3", 1, 2, 9, 8, 3, 7, 7, 2, 3, true},
      {"3x3 stride 2 no pad", 2, 2, 7, 6, 3, 3, 3, 2, 0, false},
      {"2x3 kernel stride 3 pad 2", 2, 2, 6, 5, 2, 2, 3, 3, 2, true},
  };
  Generator gen(12);
  for (const ConvCase& c : cases) {
    INFO("case: " << c.name);
    testing::check_gradients([&c](const std::vector<Tensor>& in) { return conv_of(c, in); }, conv_inputs(c, gen));
  }
}

TEST_CASE("conv2d gradients of DenseNet's 3x3 (shifted GEMMs, Winograd, flipped kernel) match direct loops",
          "[conv]") {
  // 64+ input channels take the shifted-GEMM weight gradient (Winograd's from 16 x 16 up) and the
  // flipped-kernel input gradient, a forward convolution (Winograd's where whole samples go to
  // threads), too wide for finite differences; with the loss sum(y * r), dy = r and both gradients have
  // exact sums: dW[o,c,u,v] = sum dy[n,o,i,j] x[n,c,i+u-p,j+v-p], dx[n,c,h,w] = sum dy[n,o,i,j] w[o,c,h-i+p,w-j+p].
  const int threads = GENERATE(1, 2, 3);
  const testing::ThreadCount thread_count(threads);
  const ConvCase c = GENERATE(ConvCase{"64 -> 16, batch 1", 1, 64, 7, 9, 16, 3, 3, 1, 1, false},
                              ConvCase{"64 -> 16, batch 3", 3, 64, 6, 5, 16, 3, 3, 1, 1, false},
                              // Channels not a multiple of the channels-last copy's groups of 16, and wider than 16.
                              ConvCase{"72 -> 16, batch 2, 19 wide", 2, 72, 5, 19, 16, 3, 3, 1, 1, false},
                              ConvCase{"Winograd, DenseNet's 128 -> 32, batch 2, 16 x 17", 2, 128, 16, 17, 32, 3, 3,
                                       1, 1, false});
  INFO("case: " << c.name << ", " << threads << " threads");
  const auto geometry = kernels::Conv2dGeometry::make(c.batch, c.in_channels, c.height, c.width, c.out_channels,
                                                           c.kernel_h, c.kernel_w, c.stride, c.padding);
  CHECK(kernels::cpu::winograd::applies(geometry) == (c.height >= 16));  // the case takes the path it names
  Generator gen(19);
  const std::vector<Tensor> in = conv_inputs(c, gen);
  const Tensor r = Tensor::randn({c.batch, c.out_channels, c.height, c.width}, gen);
  ops::sum(ops::mul(conv_of(c, in), r)).backward();
  const std::vector<float> x = in[0].to_vector(), w = in[1].to_vector(), dy = r.to_vector();
  const int64_t k = c.kernel_h, p = c.padding, H = c.height, W = c.width, C = c.in_channels, O = c.out_channels;
  std::vector<double> dw(static_cast<size_t>(O * C * k * k)), dx(x.size());
  for (int64_t n = 0; n < c.batch; ++n)
    for (int64_t o = 0; o < O; ++o)
      for (int64_t i = 0; i < H; ++i)
        for (int64_t j = 0; j < W; ++j) {
          const double g = dy[((n * O + o) * H + i) * W + j];
          for (int64_t ci = 0; ci < C; ++ci)
            for (int64_t u = 0; u < k; ++u)
              for (int64_t v = 0; v < k; ++v) {
                const int64_t h = i + u - p, q = j + v - p;
                if (h < 0 || h >= H || q < 0 || q >= W) continue;
                const size_t xi = static_cast<size_t>(((n * C + ci) * H + h) * W + q);
                const size_t wi = static_cast<size_t>(((o * C + ci) * k + u) * k + v);
                dw[wi] += g * x[xi];
                dx[xi] += g * w[wi];
              }
        }
  CHECK(testing::max_scaled_error(in[1].grad().to_vector(), std::vector<float>(dw.begin(), dw.end())) <=
        kForwardTolerance);
  CHECK(testing::max_scaled_error(in[0].grad().to_vector(), std::vector<float>(dx.begin(), dx.end())) <=
        kForwardTolerance);
}

TEST_CASE("conv2d with a normalised input equals batch_norm_apply then conv2d", "[conv][batchnorm]") {
  // The memory-efficient dense block's BN-ReLU-conv pairs: the convolution applies BN + ReLU as it
  // reads x (in im2col, the shifted GEMMs' padded copy, Winograd's input transform, or tiles of
  // columns for 1x1). Reference: the same kernels on batch_norm_apply's output. The GEMMs' operands are bitwise the same, only
  // their blocking differs, so 1e-5 of max(|ref|, 1) forward. beta > 0 in some channels, so normalising the
  // padding (not 0 after BN + ReLU) would show; x is a batch-strided channel slice.
  namespace k = kernels::cpu;
  const int threads = GENERATE(1, 2, 3);
  const testing::ThreadCount thread_count(threads);
  const ConvCase c = GENERATE(ConvCase{"1x1, two tiles of columns, batch 1", 1, 600, 20, 20, 8, 1, 1, 1, 0, false},
                              ConvCase{"1x1, two tiles of columns, batch 3", 3, 600, 17, 19, 8, 1, 1, 1, 0, false},
                              ConvCase{"1x1 DenseNet-like, batch 3", 3, 96, 7, 9, 32, 1, 1, 1, 0, false},
                              ConvCase{"3x3 shifted GEMMs, batch 1", 1, 64, 9, 11, 16, 3, 3, 1, 1, false},
                              ConvCase{"3x3 shifted GEMMs, batch 3", 3, 64, 7, 6, 16, 3, 3, 1, 1, false},
                              ConvCase{"3x3 im2col, batch 3", 3, 5, 6, 7, 4, 3, 3, 1, 1, false},
                              ConvCase{"3x3 Winograd, batch 2, 17 x 16", 2, 24, 17, 16, 8, 3, 3, 1, 1, false},
                              ConvCase{"7x7 stride 2 pad 3, batch 2", 2, 3, 15, 13, 4, 7, 7, 2, 3, false},
                              ConvCase{"1x1 stride 2 (im2col), batch 1", 1, 6, 9, 8, 5, 1, 1, 2, 0, false});
  INFO("case: " << c.name << ", " << threads << " threads");
  const auto g = kernels::Conv2dGeometry::make(c.batch, c.in_channels, c.height, c.width, c.out_channels, c.kernel_h,
                                         c.kernel_w, c.stride, c.padding);
  Generator gen(29);
  const int64_t extra = 2;  // channels around the slice in its buffer
  const int64_t x_stride = (c.in_channels + extra) * g.in_plane();
  const Tensor buffer = Tensor::randn({c.batch, c.in_channels + extra, c.height, c.width}, gen, 0.3f, 1.5f);
  const float* x = buffer.data() + g.in_plane();
  const Tensor mean = Tensor::randn({c.in_channels}, gen, 0.3f, 0.5f);
  const Tensor invstd = Tensor::uniform({c.in_channels}, gen, 0.5f, 1.5f);
  const Tensor gamma = Tensor::uniform({c.in_channels}, gen, -1.5f, 1.5f);
  const Tensor beta = Tensor::uniform({c.in_channels}, gen, -0.5f, 1.f);
  const Tensor weight = Tensor::randn({c.out_channels, c.in_channels, c.kernel_h, c.kernel_w}, gen, 0.f, 0.3f);
  const Tensor dy = Tensor::randn({c.batch, c.out_channels, g.out_height, g.out_width}, gen);
  const kernels::InputNormalization norm{mean.data(), invstd.data(), gamma.data(), beta.data()};

  const Tensor applied = Tensor::empty({c.batch, c.in_channels, c.height, c.width});
  k::batch_norm_apply({}, {.shape = {c.batch, c.in_channels, g.in_plane()},
                           .x = {x, x_stride},
                           .y = {applied.data(), g.in_sample()},
                           .mean = mean.data(),
                           .invstd = invstd.data(),
                           .gamma = gamma.data(),
                           .beta = beta.data(),
                           .fuse_relu = true});
  const Tensor workspace = Tensor::empty(
      {std::max(k::conv2d_normalized_workspace_size(g), k::conv2d_normalized_backward_workspace_size(g))});
  const Tensor y = Tensor::empty(dy.shape()), y_ref = Tensor::empty(dy.shape());
  k::conv2d_forward_normalized({}, {g, {x, x_stride}, norm, weight.data(), nullptr, {y.data(), g.out_sample()},
                                   workspace.data()});
  k::conv2d_forward({}, {g, {applied.data(), g.in_sample()}, weight.data(), nullptr, {y_ref.data(), g.out_sample()},
                        workspace.data()});
  CHECK(testing::max_scaled_error(y.to_vector(), y_ref.to_vector()) <= 1e-5);

  const Tensor dw = Tensor::empty(weight.shape()), dw_ref = Tensor::empty(weight.shape());
  k::conv2d_backward_weight_normalized({}, {g, {x, x_stride}, norm, {dy.data(), g.out_sample()}, dw.data(), nullptr,
                                           workspace.data()});
  k::conv2d_backward_weight({}, {g, {applied.data(), g.in_sample()}, {dy.data(), g.out_sample()}, dw_ref.data(),
                                nullptr, workspace.data()});
  // Tiles of columns split the weight gradient's K = H W: another summation order, 1e-4.
  CHECK(testing::max_scaled_error(dw.to_vector(), dw_ref.to_vector()) <= 1e-4);
  // Not vacuous: the normalisation changes the result.
  const Tensor y_raw = Tensor::empty(dy.shape());
  k::conv2d_forward({}, {g, {x, x_stride}, weight.data(), nullptr, {y_raw.data(), g.out_sample()}, workspace.data()});
  CHECK(testing::max_scaled_error(y_raw.to_vector(), y_ref.to_vector()) > 1e-2);
}

TEST_CASE("conv2d's 1x1 input gradient through a normalised input equals conv2d then batch_norm_backward",
          "[conv][batchnorm]") {
  // The dense block's conv1 + norm1 + relu1 backward on the CPU: the input gradient goes through
  // the BN + ReLU tile by tile and is added into the block's gradient; the batch statistics' term
  // (affine in x) is added afterwards. Reference: conv2d_backward_data into a buffer, then
  // batch_norm_backward. Float sums in another order (tiles, threads): 1e-5 of max(|ref|, 1).
  namespace k = kernels::cpu;
  const int threads = GENERATE(1, 2, 3);
  const testing::ThreadCount thread_count(threads);
  const bool batch_statistics = GENERATE(true, false);
  const ConvCase c = GENERATE(ConvCase{"DenseNet-like, batch 3", 3, 96, 7, 9, 32, 1, 1, 1, 0, false},
                              ConvCase{"two tiles of columns, batch 2", 2, 600, 17, 19, 8, 1, 1, 1, 0, false},
                              ConvCase{"batch 1", 1, 40, 6, 5, 16, 1, 1, 1, 0, false});
  INFO("case: " << c.name << ", " << threads << " threads, batch statistics " << batch_statistics);
  const auto g = kernels::Conv2dGeometry::make(c.batch, c.in_channels, c.height, c.width, c.out_channels, 1, 1, 1, 0);
  Generator gen(31);
  const int64_t extra = 3, x_stride = (c.in_channels + extra) * g.in_plane(), hw = g.in_plane();
  const Tensor buffer = Tensor::randn({c.batch, c.in_channels + extra, c.height, c.width}, gen, 0.3f, 1.5f);
  const float* x = buffer.data();  // a channel prefix of a wider buffer, as in a dense block
  const Tensor mean = Tensor::randn({c.in_channels}, gen, 0.3f, 0.5f);
  const Tensor invstd = Tensor::uniform({c.in_channels}, gen, 0.5f, 1.5f);
  const Tensor gamma = Tensor::uniform({c.in_channels}, gen, -1.5f, 1.5f);
  const Tensor beta = Tensor::uniform({c.in_channels}, gen, -0.5f, 1.f);
  const Tensor weight = Tensor::randn({c.out_channels, c.in_channels, 1, 1}, gen, 0.f, 0.3f);
  const Tensor dy = Tensor::randn({c.batch, c.out_channels, c.height, c.width}, gen);
  const kernels::InputNormalization norm{mean.data(), invstd.data(), gamma.data(), beta.data()};
  const Tensor workspace = Tensor::empty({std::max<int64_t>(1, k::conv2d_normalized_backward_workspace_size(g))});

  const Tensor through_conv = Tensor::empty({c.batch, c.in_channels, c.height, c.width});
  k::conv2d_backward_data({}, {g, {dy.data(), g.out_sample()}, weight.data(), {through_conv.data(), g.in_sample()},
                              workspace.data()});
  const Tensor dx_ref = Tensor::empty(through_conv.shape());
  const Tensor dgamma_ref = Tensor::empty({c.in_channels}), dbeta_ref = Tensor::empty({c.in_channels});
  k::batch_norm_backward({}, {.shape = {c.batch, c.in_channels, hw},
                              .x = {x, x_stride},
                              .dy = {through_conv.data(), g.in_sample()},
                              .dx = {dx_ref.data(), g.in_sample()},
                              .mean = mean.data(),
                              .invstd = invstd.data(),
                              .gamma = gamma.data(),
                              .beta = beta.data(),
                              .batch_statistics = batch_statistics,
                              .fuse_relu = true,
                              .dgamma = dgamma_ref.data(),
                              .dbeta = dbeta_ref.data()});

  // Added into an existing gradient, batch-strided like the block's.
  const Tensor existing = Tensor::randn({c.batch, c.in_channels + extra, c.height, c.width}, gen);
  const Tensor grad = existing.clone();
  std::vector<double> sum_dy(static_cast<size_t>(c.in_channels)), sum_centered(sum_dy.size());
  k::conv2d_backward_data_normalized({}, {g, {dy.data(), g.out_sample()}, weight.data(), {x, x_stride}, norm,
                                         {grad.data(), x_stride}, sum_dy.data(), sum_centered.data(),
                                         workspace.data()});
  if (batch_statistics) {
    // Two halves of one vector (two vectors here trip GCC 12's -Wfree-nonheap-object, a false positive).
    std::vector<double> terms(2 * sum_dy.size(), 0.0);
    double* alpha = terms.data();
    double* beta_term = alpha + sum_dy.size();
    k::batch_norm_backward_statistics_term({}, {sum_dy.data(), sum_centered.data(), c.in_channels, c.batch * hw,
                                                invstd.data(), gamma.data(), alpha, beta_term});
    k::add_affine_of_input({}, {{c.batch, c.in_channels, hw}, {x, x_stride}, {grad.data(), x_stride}, mean.data(),
                                alpha, beta_term});
  }
  const Tensor added = ops::sub(grad, existing).narrow(1, 0, c.in_channels);
  CHECK(testing::max_scaled_error(added.contiguous().to_vector(), dx_ref.to_vector()) <= 1e-5);
  // The channels beyond the prefix are untouched.
  CHECK(grad.narrow(1, c.in_channels, extra).contiguous().to_vector() ==
        existing.narrow(1, c.in_channels, extra).contiguous().to_vector());
  std::vector<float> dgamma(sum_dy.size()), dbeta(sum_dy.size());
  for (size_t ch = 0; ch < sum_dy.size(); ++ch) {
    dbeta[ch] = static_cast<float>(sum_dy[ch]);
    dgamma[ch] = static_cast<float>(sum_centered[ch] * invstd.to_vector()[ch]);
  }
  CHECK(testing::max_scaled_error(dgamma, dgamma_ref.to_vector()) <= 1e-5);
  CHECK(testing::max_scaled_error(dbeta, dbeta_ref.to_vector()) <= 1e-5);
  // Without dx, the same sums (its loop may be vectorised differently: to rounding).
  std::vector<double> sum_dy_only(sum_dy.size()), sum_centered_only(sum_dy.size());
  k::conv2d_backward_data_normalized({}, {g, {dy.data(), g.out_sample()}, weight.data(), {x, x_stride}, norm,
                                         {nullptr, 0}, sum_dy_only.data(), sum_centered_only.data(),
                                         workspace.data()});
  auto as_float = [](const std::vector<double>& v) { return std::vector<float>(v.begin(), v.end()); };
  CHECK(testing::max_scaled_error(as_float(sum_dy_only), as_float(sum_dy)) <= 1e-5);
  CHECK(testing::max_scaled_error(as_float(sum_centered_only), as_float(sum_centered)) <= 1e-5);
  // Not vacuous: the ReLU masks some of dy, and the statistics term moves the result.
  CHECK(testing::max_scaled_error(added.contiguous().to_vector(), through_conv.to_vector()) > 1e-2);
}

TEST_CASE("conv2d computes only the gradients that are asked for", "[conv][gradcheck]") {
  // The stem's input image wants no gradient; a frozen weight leaves only the bias.
  const ConvCase c{"3x3 pad 1", 2, 3, 5, 4, 2, 3, 3, 1, 1, true};
  Generator gen(13);
  std::vector<Tensor> in = conv_inputs(c, gen);
  in[0].set_requires_grad(false);
  testing::check_gradients([&c](const std::vector<Tensor>& v) { return conv_of(c, v); }, in);
  CHECK_FALSE(in[0].grad().defined());

  in[1].set_requires_grad(false);
  for (const Tensor& t : in) t.zero_grad();
  testing::check_gradients([&c](const std::vector<Tensor>& v) { return conv_of(c, v); }, in);
  CHECK_FALSE(in[1].grad().defined());
}

TEST_CASE("conv2d reads a batch-strided channel slice in place", "[conv]") {
  // A [N, C_final, H, W] dense-block buffer whose first c channels are a layer's input.
  const auto [kernel, padding] = GENERATE(std::pair<int64_t, int64_t>{1, 0}, std::pair<int64_t, int64_t>{3, 1});
  INFO("kernel " << kernel << ", padding " << padding);
  Generator gen(14);
  const Tensor big = testing::random_leaf({3, 7, 5, 6}, gen);
  const Tensor weight = testing::random_leaf({4, 5, kernel, kernel}, gen, 0.3f);
  const Tensor bias = testing::random_leaf({4}, gen);
  const Tensor slice = big.narrow(1, 0, 5);
  REQUIRE(slice.is_batch_strided());
  REQUIRE_FALSE(slice.is_contiguous());
  const Tensor copy = slice.detach().clone().set_requires_grad();

  const Tensor projection = Tensor::randn({3, 4, 5, 6}, gen);
  const Tensor y_slice = ops::conv2d(slice, weight, bias, {1, padding});
  ops::sum(ops::mul(y_slice, projection)).backward();
  const std::vector<float> dweight_slice = weight.grad().to_vector();
  weight.zero_grad();
  const Tensor y_copy = ops::conv2d(copy, weight, bias, {1, padding});
  ops::sum(ops::mul(y_copy, projection)).backward();

  // Same arithmetic on the same values: only the GEMM's blocking could differ, so 1e-6.
  CHECK(testing::max_scaled_error(y_slice.to_vector(), y_copy.to_vector()) <= 1e-6);
  CHECK(testing::max_scaled_error(dweight_slice, weight.grad().to_vector()) <= 1e-6);
  CHECK(testing::max_scaled_error(big.grad().narrow(1, 0, 5).to_vector(), copy.grad().to_vector()) <= 1e-6);
  // Channels outside the slice were not used, so their gradient is zero.
  for (float v : big.grad().narrow(1, 5, 2).to_vector()) REQUIRE(v == 0.f);
}

TEST_CASE("conv2d allocates only its output for a batch-strided 1x1 input", "[conv]") {
  // Proof that the slice is not copied: a pointwise conv needs no workspace, so the output is
  // the one allocation. A non-batch-strided view must be copied first: two allocations.
  Generator gen(15);
  const Tensor big = Tensor::randn({2, 6, 4, 4}, gen);
  const Tensor weight = Tensor::randn({3, 4, 1, 1}, gen);
  Allocator& cpu = allocator_for(Device::cpu());
  auto allocations_of = [&](const Tensor& x) {
    const uint64_t before = cpu.stats().allocations;
    const Tensor y = ops::conv2d(x, weight);
    return cpu.stats().allocations - before;
  };
  CHECK(allocations_of(big.narrow(1, 2, 4)) == 1);
  CHECK(allocations_of(big.narrow(2, 0, 3).narrow(1, 0, 4)) == 2);
}

TEST_CASE("conv2d copies an input that is not batch-strided", "[conv]") {
  // A slice of rows is not batch-strided: the op must make it contiguous and still be right.
  const ConvCase c{"3x3 pad 1", 2, 3, 4, 5, 2, 3, 3, 1, 1, true};
  Generator gen(16);
  const Tensor tall = Tensor::randn({2, 3, 7, 5}, gen);
  const Tensor x = tall.narrow(2, 2, 4);
  REQUIRE_FALSE(x.is_batch_strided());
  const Tensor weight = Tensor::randn({2, 3, 3, 3}, gen);
  const Tensor bias = Tensor::randn({2}, gen);
  const Tensor y = ops::conv2d(x, weight, bias, {1, 1});
  const std::vector<float> expected = conv2d_reference(c, x.to_vector(), weight.to_vector(), bias.to_vector());
  CHECK(testing::max_scaled_error(y.to_vector(), expected) <= kForwardTolerance);
}

TEST_CASE("conv2d forward and backward are deterministic", "[conv]") {
  const ConvCase c{"3x3 pad 1", 4, 16, 12, 12, 16, 3, 3, 1, 1, true};
  Generator gen(17);
  const std::vector<Tensor> in = conv_inputs(c, gen);
  const Tensor projection = Tensor::randn({4, 16, 12, 12}, gen);
  auto run = [&] {
    for (const Tensor& t : in) t.zero_grad();
    const Tensor y = conv_of(c, in);
    ops::sum(ops::mul(y, projection)).backward();
    return std::vector<std::vector<float>>{y.to_vector(), in[0].grad().to_vector(), in[1].grad().to_vector(),
                                           in[2].grad().to_vector()};
  };
  const auto first = run();
  CHECK(run() == first);  // bitwise
}

TEST_CASE("conv2d rejects bad arguments with messages naming the shapes", "[conv][errors]") {
  Generator gen(18);
  const Tensor x = Tensor::randn({2, 3, 8, 8}, gen);
  const Tensor w = Tensor::randn({4, 3, 3, 3}, gen);
  using Catch::Contains;
  REQUIRE_THROWS_WITH(ops::conv2d(Tensor::randn({2, 3, 8}, gen), w),
                      Contains("conv2d") && Contains("input") && Contains("[2, 3, 8]"));
  REQUIRE_THROWS_WITH(ops::conv2d(x, Tensor::randn({4, 3, 3}, gen)), Contains("conv2d") && Contains("[4, 3, 3]"));
  REQUIRE_THROWS_WITH(ops::conv2d(x, Tensor::randn({4, 5, 3, 3}, gen)),
                      Contains("conv2d: input [2, 3, 8, 8] has 3 channels but weight [4, 5, 3, 3] expects 5"));
  REQUIRE_THROWS_WITH(ops::conv2d(x, w, Tensor::randn({3}, gen)),
                      Contains("conv2d: bias [3]") && Contains("[4, 3, 3, 3]"));
  REQUIRE_THROWS_WITH(ops::conv2d(x, w, Tensor::randn({4, 1}, gen)), Contains("conv2d: bias [4, 1]"));
  REQUIRE_THROWS_WITH(ops::conv2d(Tensor::randn({1, 1, 2, 2}, gen), Tensor::randn({1, 1, 5, 5}, gen), Tensor(), {1, 1}),
                      Contains("conv2d") && Contains("larger than input [1, 1, 2, 2] padded by 1"));
  REQUIRE_THROWS_WITH(ops::conv2d(x, Tensor::randn({4, 3, 0, 3}, gen)),
                      Contains("conv2d: weight [4, 3, 0, 3]") && Contains("non-empty kernel"));
  REQUIRE_THROWS_WITH(ops::conv2d(x, w, Tensor(), {0, 1}),
                      Contains("conv2d: stride must be positive, got 0") && Contains("[2, 3, 8, 8]"));
  REQUIRE_THROWS_WITH(ops::conv2d(x, w, Tensor(), {1, -1}),
                      Contains("conv2d: padding must not be negative, got -1") && Contains("[4, 3, 3, 3]"));
  REQUIRE_THROWS_WITH(ops::conv2d(x.to(DType::F16), w), Contains("conv2d") && Contains("float32"));
  REQUIRE_THROWS_WITH(ops::conv2d(Tensor(), w), Contains("conv2d") && Contains("undefined"));
  REQUIRE_THROWS_AS(ops::conv2d(x, Tensor::randn({4, 5, 3, 3}, gen)), chex::Error);
}

TEST_CASE("conv2d refuses CUDA tensors until the CUDA backend exists", "[conv][errors][gpu]") {
  if (cuda_device_count() == 0) {
    WARN("no GPU here: the CUDA-tensor checks of conv2d and linear did not run");
    return;
  }
  Generator gen(19);
  const Tensor x = Tensor::randn({1, 2, 4, 4}, gen);
  const Tensor w = Tensor::randn({2, 2, 3, 3}, gen);
  using Catch::Contains;
  REQUIRE_THROWS_WITH(ops::conv2d(x.to(Device::cuda()), w), Contains("conv2d") && Contains("different devices"));
  REQUIRE_THROWS_WITH(ops::conv2d(x.to(Device::cuda()), w.to(Device::cuda())),
                      Contains("conv2d") && Contains("not implemented on cuda"));
  REQUIRE_THROWS_WITH(ops::linear(x.reshape({2, 16}).to(Device::cuda()), Tensor::randn({3, 16}, gen)),
                      Contains("linear") && Contains("different devices"));
}

// --- linear --------------------------------------------------------------------------------------

namespace {
std::vector<float> linear_reference(const std::vector<float>& x, const std::vector<float>& w,
                                    const std::vector<float>& b, int64_t batch, int64_t in, int64_t out) {
  std::vector<float> y(static_cast<size_t>(batch * out));
  for (int64_t n = 0; n < batch; ++n)
    for (int64_t o = 0; o < out; ++o) {
      double acc = b.empty() ? 0.0 : b[o];
      for (int64_t i = 0; i < in; ++i) acc += static_cast<double>(x[n * in + i]) * w[o * in + i];
      y[n * out + o] = static_cast<float>(acc);
    }
  return y;
}
}  // namespace

TEST_CASE("linear forward matches a direct-loop reference", "[linear]") {
  Generator gen(21);
  struct Case {
    int64_t batch, in, out;
    bool bias;
  };
  for (const Case c : {Case{4, 7, 3, true}, Case{1, 1024, 14, true}, Case{5, 16, 9, false}, Case{3, 0, 2, true},
                       Case{0, 5, 2, true}}) {
    INFO("batch " << c.batch << ", in " << c.in << ", out " << c.out << ", bias " << c.bias);
    const Tensor x = Tensor::randn({c.batch, c.in}, gen);
    const Tensor w = Tensor::randn({c.out, c.in}, gen, 0.f, 0.1f);
    const Tensor b = c.bias ? Tensor::randn({c.out}, gen) : Tensor();
    const Tensor y = ops::linear(x, w, b);
    REQUIRE(y.shape() == Shape{c.batch, c.out});
    const std::vector<float> bias_values = c.bias ? b.to_vector() : std::vector<float>{};
    const std::vector<float> expected = linear_reference(x.to_vector(), w.to_vector(), bias_values, c.batch, c.in, c.out);
    CHECK(testing::max_scaled_error(y.to_vector(), expected) <= kForwardTolerance);
  }
}

TEST_CASE("linear gradients match finite differences", "[linear][gradcheck]") {
  Generator gen(22);
  const std::vector<Tensor> with_bias = {testing::random_leaf({3, 6}, gen), testing::random_leaf({4, 6}, gen),
                                         testing::random_leaf({4}, gen)};
  testing::check_gradients([](const std::vector<Tensor>& in) { return ops::linear(in[0], in[1], in[2]); }, with_bias);
  const std::vector<Tensor> without_bias = {testing::random_leaf({5, 3}, gen), testing::random_leaf({2, 3}, gen)};
  testing::check_gradients([](const std::vector<Tensor>& in) { return ops::linear(in[0], in[1]); }, without_bias);
  // A non-contiguous input (a transposed-in-memory slice) goes through a copy and still differentiates.
  const Tensor wide = testing::random_leaf({3, 8}, gen);
  const std::vector<Tensor> sliced = {wide, testing::random_leaf({2, 5}, gen), testing::random_leaf({2}, gen)};
  testing::check_gradients(
      [](const std::vector<Tensor>& in) { return ops::linear(in[0].narrow(1, 2, 5), in[1], in[2]); }, sliced);
}

TEST_CASE("linear rejects bad arguments with messages naming the shapes", "[linear][errors]") {
  Generator gen(23);
  const Tensor x = Tensor::randn({2, 6}, gen);
  const Tensor w = Tensor::randn({4, 6}, gen);
  using Catch::Contains;
  REQUIRE_THROWS_WITH(ops::linear(Tensor::randn({2, 6, 1}, gen), w), Contains("linear") && Contains("[2, 6, 1]"));
  REQUIRE_THROWS_WITH(ops::linear(x, Tensor::randn({24}, gen)), Contains("linear") && Contains("[24]"));
  REQUIRE_THROWS_WITH(ops::linear(x, Tensor::randn({4, 5}, gen)),
                      Contains("linear: input [2, 6] has 6 features but weight [4, 5] expects 5"));
  REQUIRE_THROWS_WITH(ops::linear(x, w, Tensor::randn({5}, gen)),
                      Contains("linear: bias [5]") && Contains("[4, 6]"));
  REQUIRE_THROWS_AS(ops::linear(x, w, Tensor::randn({5}, gen)), chex::Error);
}

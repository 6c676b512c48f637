// bf16 inference on the CPU (--precision bf16, chex/precision.h): the rounding, the bf16
// convolution kernel against the fp32 one on bf16-rounded operands, and DenseNet-121's logits in
// bf16 against fp32 (training in bf16: test_bf16_training.cpp).
#include <catch2/catch.hpp>
#include <omp.h>

#include <cmath>
#include <algorithm>
#include <cstring>
#include <limits>
#include <vector>

#include "chex/autograd.h"
#include "chex/ops.h"
#include "chex/precision.h"
#include "kernels/batchnorm.h"
#include "kernels/conv2d.h"
#include "models/densenet.h"
#include "support/gradcheck.h"
#include "support/thread_count.h"

using namespace chex;

namespace {

float round_bf16(float v) { return kernels::cpu::bf16_to_float(kernels::cpu::float_to_bf16(v)); }

std::vector<float> rounded(std::vector<float> v) {
  for (float& x : v) x = round_bf16(x);
  return v;
}

// ||a - b|| / ||b||
double norm_relative_error(const std::vector<float>& a, const std::vector<float>& b) {
  double diff = 0, ref = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    ref += double(b[i]) * b[i];
  }
  return std::sqrt(diff / ref);
}

}  // namespace

TEST_CASE("bf16 rounding is to nearest even, keeps infinities and NaNs", "[bf16]") {
  using kernels::cpu::bf16_to_float;
  using kernels::cpu::float_to_bf16;
  CHECK(float_to_bf16(1.f) == 0x3f80);
  CHECK(float_to_bf16(-2.f) == 0xc000);
  // 1 + 2^-8 lies halfway between 1 and 1 + 2^-7: ties go to the even mantissa (1).
  CHECK(float_to_bf16(1.f + std::ldexp(1.f, -8)) == 0x3f80);
  // 1 + 3 * 2^-8 lies halfway between 1 + 2^-7 (odd) and 1 + 2^-6 (even).
  CHECK(bf16_to_float(float_to_bf16(1.f + 3 * std::ldexp(1.f, -8))) == 1.f + std::ldexp(1.f, -6));
  // Just above halfway rounds up.
  CHECK(bf16_to_float(float_to_bf16(1.f + std::ldexp(1.f, -8) + std::ldexp(1.f, -20))) == 1.f + std::ldexp(1.f, -7));
  CHECK(std::isinf(bf16_to_float(float_to_bf16(std::numeric_limits<float>::infinity()))));
  CHECK(std::isinf(bf16_to_float(float_to_bf16(std::numeric_limits<float>::max()))));  // rounds past the largest
  CHECK(std::isnan(bf16_to_float(float_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
  // A NaN whose payload lies only in the low bits must not round to infinity.
  const float low_nan = std::bit_cast<float>(0x7f800001u);
  CHECK(std::isnan(bf16_to_float(float_to_bf16(low_nan))));
}

// [N, C, P] -> [N, P, C] (or back, with c and p swapped), dense.
std::vector<float> transposed(const std::vector<float>& v, int64_t n, int64_t c, int64_t p) {
  std::vector<float> out(v.size());
  for (int64_t s = 0; s < n; ++s)
    for (int64_t i = 0; i < c; ++i)
      for (int64_t j = 0; j < p; ++j) out[(s * p + j) * c + i] = v[(s * c + i) * p + j];
  return out;
}

TEST_CASE("conv2d_forward_bf16 equals the fp32 convolution of the bf16-rounded operands", "[bf16][conv]") {
  // Products of two bf16 values are exact in fp32 (8 + 8 mantissa bits), so the bf16 kernel and the
  // fp32 kernel on operands rounded beforehand differ only in the order of the fp32 sums: 2e-5 of
  // max(|ref|, 1). And against the unrounded fp32 convolution the error is bf16's: between 1e-4
  // (the test is not vacuous) and 1e-2 (norm-relative). Every layout: NCHW or channels-last x and y.
  namespace k = kernels::cpu;
  struct Case {
    const char* name;
    int64_t batch, in_channels, height, width, out_channels, kernel, stride, padding;
  };
  const int threads = GENERATE(1, 2);
  const testing::ThreadCount thread_count(threads);
  const bool normalised = GENERATE(false, true);
  const bool with_bias = GENERATE(false, true);
  const bool x_channels_last = GENERATE(false, true);
  const bool y_channels_last = GENERATE(false, true);
  const Case c = GENERATE(Case{"DenseNet 1x1, batch 3", 3, 96, 7, 9, 32, 1, 1, 0},
                          Case{"DenseNet 3x3, batch 2", 2, 128, 8, 8, 32, 3, 1, 1},
                          Case{"stem 7x7 stride 2 pad 3", 2, 3, 19, 17, 16, 7, 2, 3},
                          Case{"1x1 stride 2, batch 1, odd sizes", 1, 20, 9, 11, 5, 1, 2, 0});
  INFO(c.name << ", " << threads << " threads, normalised " << normalised << ", bias " << with_bias
              << ", x channels-last " << x_channels_last << ", y channels-last " << y_channels_last);
  const auto g = kernels::Conv2dGeometry::make(c.batch, c.in_channels, c.height, c.width, c.out_channels, c.kernel,
                                               c.kernel, c.stride, c.padding);
  Generator gen(41);
  const Tensor mean = Tensor::randn({c.in_channels}, gen, 0.3f, 0.5f);
  const Tensor invstd = Tensor::uniform({c.in_channels}, gen, 0.5f, 1.5f);
  const Tensor gamma = Tensor::uniform({c.in_channels}, gen, -1.5f, 1.5f);
  const Tensor beta = Tensor::uniform({c.in_channels}, gen, -0.5f, 1.f);
  const kernels::InputNormalization norm{mean.data(), invstd.data(), gamma.data(), beta.data()};
  const Tensor weight = Tensor::randn({c.out_channels, c.in_channels, c.kernel, c.kernel}, gen, 0.f, 0.3f);
  const Tensor bias = Tensor::randn({c.out_channels}, gen);
  const float* b = with_bias ? bias.data() : nullptr;

  // x (NCHW) is a channel slice of a wider buffer, as in a dense block; a channels-last x is dense
  // per image, with a gap between images.
  const int64_t extra = 2, plane = g.in_plane();
  const Tensor buffer = Tensor::randn({c.batch, c.in_channels + extra, c.height, c.width}, gen, 0.3f, 1.5f);
  std::vector<float> x_nchw;  // x alone, dense
  for (int64_t n = 0; n < c.batch; ++n) {
    const float* image = buffer.data() + (n * (c.in_channels + extra) + 1) * plane;
    x_nchw.insert(x_nchw.end(), image, image + g.in_sample());
  }
  const int64_t cl_stride = g.in_sample() + 5;
  std::vector<float> cl_buffer(static_cast<size_t>(c.batch * cl_stride), 0.f);
  const std::vector<float> x_nhwc = transposed(x_nchw, c.batch, c.in_channels, plane);
  for (int64_t n = 0; n < c.batch; ++n)
    std::copy_n(x_nhwc.begin() + n * g.in_sample(), g.in_sample(), cl_buffer.begin() + n * cl_stride);
  const kernels::StridedIn x = x_channels_last
                                   ? kernels::StridedIn{cl_buffer.data(), cl_stride}
                                   : kernels::StridedIn{buffer.data() + plane, (c.in_channels + extra) * plane};

  // x' as the kernel reads it, in fp32, NCHW.
  const Tensor x_tensor = Tensor::from_vector(x_nchw, {c.batch, c.in_channels, c.height, c.width});
  const Tensor applied = Tensor::empty(x_tensor.shape());
  if (normalised)
    k::batch_norm_apply({}, {.shape = {c.batch, c.in_channels, plane},
                             .x = {x_tensor.data(), g.in_sample()},
                             .y = {applied.data(), g.in_sample()},
                             .mean = mean.data(),
                             .invstd = invstd.data(),
                             .gamma = gamma.data(),
                             .beta = beta.data(),
                             .fuse_relu = true});
  else
    applied.copy_(x_tensor);
  const Tensor applied_bf16 = Tensor::from_vector(rounded(applied.to_vector()), applied.shape());
  const Tensor weight_bf16 = Tensor::from_vector(rounded(weight.to_vector()), weight.shape());

  // y is written into a wider buffer: one plane of sentinels before and after each image.
  const int64_t y_stride = g.out_sample() + 2 * g.out_plane();
  const kernels::Bf16Layout layout{x_channels_last, y_channels_last, y_stride};
  const Tensor wide_y = Tensor::full({c.batch, y_stride}, 7.f);
  const Tensor workspace =
      Tensor::empty({static_cast<int64_t>(k::conv2d_bf16_workspace_bytes({}, g, layout) / 4 + 1)});
  k::conv2d_forward_bf16({}, {g, layout, x, normalised ? &norm : nullptr, weight.data(), b,
                              {wide_y.data() + g.out_plane(), y_stride}, workspace.data()});
  std::vector<float> y;
  const std::vector<float> wide = wide_y.to_vector();
  for (int64_t n = 0; n < c.batch; ++n) {
    const float* row = wide.data() + n * y_stride;
    for (int64_t i = 0; i < g.out_plane(); ++i) {
      REQUIRE(row[i] == 7.f);                                  // the plane before is untouched
      REQUIRE(row[g.out_plane() + g.out_sample() + i] == 7.f);  // and the plane after
    }
    y.insert(y.end(), row + g.out_plane(), row + g.out_plane() + g.out_sample());
  }
  if (y_channels_last) y = transposed(y, c.batch, g.out_plane(), c.out_channels);  // back to NCHW

  const Tensor conv_workspace = Tensor::empty({std::max<int64_t>(1, k::conv2d_workspace_size(g))});
  auto fp32_conv = [&](const Tensor& input, const Tensor& w) {
    const Tensor out = Tensor::empty({c.batch, c.out_channels, g.out_height, g.out_width});
    k::conv2d_forward({}, {g, {input.data(), g.in_sample()}, w.data(), b, {out.data(), g.out_sample()},
                           conv_workspace.data()});
    return out.to_vector();
  };
  CHECK(testing::max_scaled_error(y, fp32_conv(applied_bf16, weight_bf16)) <= 2e-5);
  const std::vector<float> exact = fp32_conv(applied, weight);
  CHECK(norm_relative_error(y, exact) < 1e-2);
  CHECK(norm_relative_error(y, exact) > 1e-4);
}

TEST_CASE("conv2d_backward_*_bf16 equal the fp32 backward passes of the bf16-rounded operands", "[bf16][conv]") {
  // The bf16 backward kernels (oneDNN's matmuls and backward convolutions in a oneDNN build) against
  // the fp32 kernels on operands rounded to bf16 beforehand: products of two bf16 values are exact
  // in fp32, so only the order of the fp32 sums differs, 1e-5 of the result's norm. Against the
  // unrounded fp32 passes the error is bf16's: between 1e-4 (the rounding happened: not the fp32
  // result) and 1e-2 (norm-relative). DenseNet-121's geometries, with dy and x channel slices of
  // wider buffers (batch-strided), and dx written dense or into a wider buffer.
  namespace k = kernels::cpu;
  struct Case {
    const char* name;
    int64_t in_channels, size, out_channels, kernel, stride, padding;
  };
  const int threads = GENERATE(1, 2);
  const testing::ThreadCount thread_count(threads);
  const int64_t batch = GENERATE(1, 3);
  const bool dense_dx = GENERATE(false, true);
  const Case c = GENERATE(Case{"dense layer conv1, 1x1 64 -> 128 at 56x56", 64, 56, 128, 1, 1, 0},
                          Case{"dense layer conv1, 1x1 256 -> 128 at 56x56", 256, 56, 128, 1, 1, 0},
                          Case{"dense layer conv2, 3x3 128 -> 32 pad 1 at 56x56", 128, 56, 32, 3, 1, 1},
                          Case{"transition 1x1 512 -> 256 at 14x14", 512, 14, 256, 1, 1, 0},
                          Case{"stem 7x7 stride 2 pad 3, 3 -> 64 at 112x112", 3, 112, 64, 7, 2, 3});
  INFO(c.name << ", batch " << batch << ", " << threads << " threads, dense dx " << dense_dx);
  const auto g = kernels::Conv2dGeometry::make(batch, c.in_channels, c.size, c.size, c.out_channels, c.kernel,
                                               c.kernel, c.stride, c.padding);
  Generator gen(43);
  const Tensor weight = Tensor::randn({c.out_channels, c.in_channels, c.kernel, c.kernel}, gen, 0.f, 0.3f);
  // x and dy: channel slices (from channel 1 and 2) of wider buffers, as in a dense block.
  const Tensor x_buffer = Tensor::randn({batch, c.in_channels + 2, c.size, c.size}, gen, 0.3f, 1.f);
  const Tensor dy_buffer = Tensor::randn({batch, c.out_channels + 3, g.out_height, g.out_width}, gen, 0.f, 0.1f);
  const kernels::StridedIn x{x_buffer.data() + g.in_plane(), (c.in_channels + 2) * g.in_plane()};
  const kernels::StridedIn dy{dy_buffer.data() + 2 * g.out_plane(), (c.out_channels + 3) * g.out_plane()};
  auto dense = [&](const kernels::StridedIn& t, int64_t sample, bool round) {
    std::vector<float> out;
    for (int64_t n = 0; n < batch; ++n)
      out.insert(out.end(), t.data + n * t.batch_stride, t.data + n * t.batch_stride + sample);
    return round ? rounded(out) : out;
  };

  // The bf16 kernels; dx either dense or one plane of sentinels before and after each image.
  const int64_t dx_stride = dense_dx ? g.in_sample() : g.in_sample() + 2 * g.in_plane();
  const int64_t dx_offset = dense_dx ? 0 : g.in_plane();
  std::vector<float> wide_dx(static_cast<size_t>(batch * dx_stride), 7.f);
  std::vector<float> dweight(static_cast<size_t>(weight.numel())), dbias(static_cast<size_t>(c.out_channels));
  std::vector<float> workspace(k::conv2d_bf16_backward_workspace_bytes({}, g) / 4 + 1);
  k::conv2d_backward_data_bf16({}, {g, dy, weight.data(), {wide_dx.data() + dx_offset, dx_stride}, workspace.data()});
  k::conv2d_backward_weight_bf16({}, {g, x, dy, dweight.data(), dbias.data(), workspace.data()});
  std::vector<float> dx;
  for (int64_t n = 0; n < batch; ++n) {
    const float* image = wide_dx.data() + n * dx_stride;
    if (!dense_dx) {  // the planes before and after the image are untouched
      const float* after = image + g.in_plane() + g.in_sample();
      CHECK(std::all_of(image, image + g.in_plane(), [](float v) { return v == 7.f; }));
      CHECK(std::all_of(after, after + g.in_plane(), [](float v) { return v == 7.f; }));
    }
    dx.insert(dx.end(), image + dx_offset, image + dx_offset + g.in_sample());
  }

  // The fp32 kernels, on rounded or unrounded dense copies.
  std::vector<float> fp32_workspace(static_cast<size_t>(std::max<int64_t>(1, k::conv2d_backward_workspace_size(g))));
  struct Gradients {
    std::vector<float> dx, dweight, dbias;
  };
  auto fp32_backward = [&](bool round) {
    const std::vector<float> xs = dense(x, g.in_sample(), round), dys = dense(dy, g.out_sample(), round);
    const std::vector<float> w = round ? rounded(weight.to_vector()) : weight.to_vector();
    Gradients out{std::vector<float>(static_cast<size_t>(batch * g.in_sample())), std::vector<float>(w.size()),
                  std::vector<float>(static_cast<size_t>(c.out_channels))};
    k::conv2d_backward_data({}, {g, {dys.data(), g.out_sample()}, w.data(), {out.dx.data(), g.in_sample()},
                                 fp32_workspace.data()});
    k::conv2d_backward_weight({}, {g, {xs.data(), g.in_sample()}, {dys.data(), g.out_sample()}, out.dweight.data(),
                                   nullptr, fp32_workspace.data()});
    k::conv2d_backward_weight({}, {g, x, dy, nullptr, out.dbias.data(), nullptr});  // of dy as given
    return out;
  };
  const Gradients oracle = fp32_backward(true), exact = fp32_backward(false);
  INFO("dx: " << norm_relative_error(dx, oracle.dx) << " from the rounded oracle, " << norm_relative_error(dx, exact.dx)
              << " from fp32; dweight: " << norm_relative_error(dweight, oracle.dweight) << ", "
              << norm_relative_error(dweight, exact.dweight));
  CHECK(norm_relative_error(dx, oracle.dx) <= 1e-5);
  CHECK(norm_relative_error(dweight, oracle.dweight) <= 1e-5);
  CHECK(dbias == oracle.dbias);  // fp32, bit for bit
  for (const auto& [bf16, fp32] : {std::pair{&dx, &exact.dx}, std::pair{&dweight, &exact.dweight}}) {
    CHECK(norm_relative_error(*bf16, *fp32) < 1e-2);
    CHECK(norm_relative_error(*bf16, *fp32) > 1e-4);  // rounded: not the fp32 result
  }

  // The reference kernels (the oracle, and the kernels of a build without oneDNN) are the fp32
  // kernels on the rounded operands, bit for bit: the same kernels on the same values.
  std::vector<float> reference_workspace(k::conv2d_bf16_backward_reference_workspace_bytes({}, g) / 4 + 1);
  std::vector<float> reference_dx(static_cast<size_t>(batch * g.in_sample())), reference_dweight(dweight.size()),
      reference_dbias(dbias.size());
  k::conv2d_backward_data_bf16_reference(
      {}, {g, dy, weight.data(), {reference_dx.data(), g.in_sample()}, reference_workspace.data()});
  k::conv2d_backward_weight_bf16_reference(
      {}, {g, x, dy, reference_dweight.data(), reference_dbias.data(), reference_workspace.data()});
  CHECK(reference_dx == oracle.dx);
  CHECK(reference_dweight == oracle.dweight);
  CHECK(reference_dbias == oracle.dbias);
}

// Built without oneDNN (CHEX_GEMM=openblas) the bf16 kernels are the reference ones over the fp32
// kernels, and OpenBLAS called from inside a parallel region hung or crashed there (not investigated; chex
// calls no kernel inside one): this test is about oneDNN's primitives only.
#if defined(CHEX_GEMM_ONEDNN)
TEST_CASE("the bf16 convolutions called inside a parallel region compute the whole results", "[bf16][conv]") {
  // oneDNN runs a primitive on the calling thread alone inside a parallel region; one built for
  // two threads would compute only the first thread's share there, or wait forever for the second
  // (seen: with the kernels' primitives built for two threads, this test hung). They build theirs for
  // the threads they will run on (the conv2d.h contract: inside a parallel region, the calling
  // thread alone). The backward against the reference kernels called outside, the forward against
  // itself called outside first.
  namespace k = kernels::cpu;
  const testing::ThreadCount thread_count(2);
  const auto g = GENERATE(kernels::Conv2dGeometry::make(3, 128, 28, 28, 32, 3, 3, 1, 1),
                          kernels::Conv2dGeometry::make(3, 3, 64, 64, 64, 7, 7, 2, 3),
                          kernels::Conv2dGeometry::make(3, 256, 14, 14, 128, 1, 1, 1, 0));
  INFO(g.in_channels << " -> " << g.out_channels << ", " << g.kernel_h << "x" << g.kernel_w);
  Generator gen(44);
  const Tensor x = Tensor::randn({g.batch, g.in_channels, g.height, g.width}, gen);
  const Tensor dy = Tensor::randn({g.batch, g.out_channels, g.out_height, g.out_width}, gen);
  const Tensor weight = Tensor::randn({g.out_channels, g.in_channels, g.kernel_h, g.kernel_w}, gen, 0.f, 0.3f);
  std::vector<float> dx(static_cast<size_t>(x.numel())), dweight(static_cast<size_t>(weight.numel()));
  std::vector<float> y(static_cast<size_t>(dy.numel())), y_outside(y.size());
  const kernels::Bf16Layout nchw{.y_batch_stride = g.out_sample()};
  auto forward = [&](std::vector<float>& out) {
    std::vector<float> workspace(k::conv2d_bf16_workspace_bytes({}, g, nchw) / 4 + 1);
    k::conv2d_forward_bf16({}, {g, nchw, {x.data(), g.in_sample()}, nullptr, weight.data(), nullptr,
                                {out.data(), g.out_sample()}, workspace.data()});
  };
  forward(y_outside);  // first: its primitives are built for the two threads outside
  bool in_parallel = false;
#pragma omp parallel num_threads(2)
#pragma omp single
  {
    in_parallel = omp_in_parallel();
    forward(y);
    std::vector<float> workspace(k::conv2d_bf16_backward_workspace_bytes({}, g) / 4 + 1);
    k::conv2d_backward_data_bf16({}, {g, {dy.data(), g.out_sample()}, weight.data(), {dx.data(), g.in_sample()},
                                      workspace.data()});
    k::conv2d_backward_weight_bf16({}, {g, {x.data(), g.in_sample()}, {dy.data(), g.out_sample()}, dweight.data(),
                                        nullptr, workspace.data()});
  }
  REQUIRE(in_parallel);
  std::vector<float> reference_dx(dx.size()), reference_dweight(dweight.size());
  std::vector<float> workspace(k::conv2d_bf16_backward_reference_workspace_bytes({}, g) / 4 + 1);
  k::conv2d_backward_data_bf16_reference({}, {g, {dy.data(), g.out_sample()}, weight.data(),
                                              {reference_dx.data(), g.in_sample()}, workspace.data()});
  k::conv2d_backward_weight_bf16_reference({}, {g, {x.data(), g.in_sample()}, {dy.data(), g.out_sample()},
                                                reference_dweight.data(), nullptr, workspace.data()});
  CHECK(norm_relative_error(dx, reference_dx) <= 1e-5);
  CHECK(norm_relative_error(dweight, reference_dweight) <= 1e-5);
  CHECK(norm_relative_error(y, y_outside) <= 1e-5);
}
#endif

TEST_CASE("DenseNet-121's logits in bf16 are within 2e-2 of fp32's", "[bf16][densenet]") {
  // Issue 16's bound for the whole network, norm-relative, on a small input (64 px, batch 2) with
  // running statistics made non-trivial so that every batch norm scales and shifts.
  Generator gen(3);
  models::DenseNet model(models::DenseNetConfig::densenet121(14), gen);
  for (auto& [name, t] : model.state_dict()) {
    if (name.ends_with("running_mean")) t.copy_(Tensor::randn(t.shape(), gen, 0.f, 0.1f));
    if (name.ends_with("running_var")) t.copy_(Tensor::uniform(t.shape(), gen, 0.5f, 1.5f));
  }
  model.eval();
  const Tensor images = Tensor::randn({2, 3, 64, 64}, gen);
  const NoGradGuard no_grad;
  const std::vector<float> fp32 = model.forward(images).to_vector();
  std::vector<float> bf16;
  {
    const PrecisionScope scope(Precision::bf16);
    CHECK(current_precision() == Precision::bf16);
    bf16 = model.forward(images).to_vector();
  }
  CHECK(current_precision() == Precision::fp32);  // the scope restored it
  INFO("norm-relative error " << norm_relative_error(bf16, fp32));
  CHECK(norm_relative_error(bf16, fp32) < 2e-2);
  CHECK(norm_relative_error(bf16, fp32) > 1e-5);  // bf16 did run
}

TEST_CASE("the --precision choices are planned per device", "[bf16]") {
  CHECK(parse_precision("bf16") == Precision::bf16);
  CHECK_THROWS_WITH(parse_precision("fp16"), Catch::Contains("fp32, tf32 or bf16"));
  CHECK(plan_precision(Precision::tf32, Device::cpu(), false).precision == Precision::fp32);
  CHECK_FALSE(plan_precision(Precision::tf32, Device::cpu(), false).note.empty());
  const PrecisionPlan cpu_bf16 = plan_precision(Precision::bf16, Device::cpu(), false);
  CHECK(cpu_bf16.precision == (cpu_has_native_bf16() ? Precision::bf16 : Precision::fp32));
  CHECK(cpu_bf16.note.empty() == cpu_has_native_bf16());
}

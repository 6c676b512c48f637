// Batch-norm GPU kernels (kernels/batchnorm.cu) emulated against their CPU twins
// (kernels/batchnorm_cpu.cpp), forward and backward, at DenseNet-121's batch-norm shapes and at
// awkward ones, under the forward, reverse and random schedules (which must agree bit for bit).
//
// Tolerances, as max |a - b| / max(|b|, 1) (kernel_test_support.h): both sides sum in double and
// normalise with the same float-rounded statistics, so they differ by float rounding of the
// elementwise formulas only (operation order, fma contraction): 1e-6 for statistics and parameter
// gradients, 1e-5 for y and dx. Buffers are compared whole, padding included, so a write outside a
// batch-strided slice shows up as a difference from the untouched sentinel.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include "batchnorm_test_support.h"
#include "kernel_test_support.h"
#include "kernels/batchnorm.h"

using namespace chex;

namespace {

constexpr double kStatsTolerance = 1e-6;
constexpr double kValueTolerance = 1e-5;
constexpr float kSentinel = -7.f;

using Case = testing::StridedCase;
using testing::batch_norm_awkward_cases;
using testing::batch_norm_densenet_cases;
using testing::Workspace;

// Inputs of one case: x with a per-channel mean far from 0 (so a one-pass E[x^2] - E[x]^2 would
// lose digits), parameters, running statistics and an output gradient.
struct Inputs {
  std::vector<float> x, dy, gamma, beta, running_mean, running_var;
  Inputs(const Case& k, Generator& gen) {
    x = testing::random_vector(k.buffer(), gen, 2.f);
    dy = testing::random_vector(k.buffer(), gen);
    for (int64_t n = 0; n < k.batch; ++n)
      for (int64_t c = 0; c < k.channels; ++c)
        for (int64_t i = 0; i < k.spatial; ++i) x[k.offset + n * k.stride() + c * k.spatial + i] += 0.5f * c - 3.f;
    for (int64_t c = 0; c < k.channels; ++c) {
      gamma.push_back(1.f + 0.3f * gen.normal());
      beta.push_back(0.5f * gen.normal());
      running_mean.push_back(0.5f * gen.normal());
      running_var.push_back(0.5f + gen.uniform());
    }
  }
};

constexpr float kMomentum = 0.1f, kEps = 1e-5f;

// The forward's arguments on one case's buffers; the CPU twin and the emulated launcher take the
// same ones.
kernels::BatchNormForwardArgs forward_args(const Case& k, const Inputs& in, float* y, float* running_mean,
                                           float* running_var, float* mean, float* invstd, bool relu) {
  return {.shape = {k.batch, k.channels, k.spatial},
          .x = {in.x.data() + k.offset, k.stride()},
          .y = {y + k.offset, k.stride()},
          .gamma = in.gamma.data(),
          .beta = in.beta.data(),
          .running_mean = running_mean,
          .running_var = running_var,
          .momentum = kMomentum,
          .eps = kEps,
          .save_mean = mean,
          .save_invstd = invstd,
          .fuse_relu = relu};
}

// Training forward, then batch_norm_apply with the saved statistics (the dense block's recompute),
// then inference.
void check_forward(const Case& k, bool relu, Generator& gen) {
  const Inputs in(k, gen);
  const int64_t C = k.channels;
  const kernels::Queue q;
  std::vector<float> y_ref(k.buffer(), kSentinel), mean_ref(C), invstd_ref(C);
  std::vector<float> rm_ref = in.running_mean, rv_ref = in.running_var;
  kernels::cpu::batch_norm_forward_training(
      q, forward_args(k, in, y_ref.data(), rm_ref.data(), rv_ref.data(), mean_ref.data(), invstd_ref.data(), relu));
  std::vector<float> inf_ref(k.buffer(), kSentinel), inf_mean_ref(C), inf_invstd_ref(C);
  std::vector<float> rm_fixed = in.running_mean, rv_fixed = in.running_var;  // read only
  kernels::cpu::batch_norm_forward_inference(q, forward_args(k, in, inf_ref.data(), rm_fixed.data(), rv_fixed.data(),
                                                             inf_mean_ref.data(), inf_invstd_ref.data(), relu));
  testing::check_outputs_against_twin(
      "batch-norm forward " + k.name() + (relu ? " + relu" : ""),
      [&] {
        std::vector<float> y(k.buffer(), kSentinel), mean(C), invstd(C), applied(k.buffer(), kSentinel);
        std::vector<float> rm = in.running_mean, rv = in.running_var;
        Workspace ws(k);
        kernels::BatchNormForwardArgs training =
            forward_args(k, in, y.data(), rm.data(), rv.data(), mean.data(), invstd.data(), relu);
        training.workspace = ws.get();
        kernels::emu::batch_norm_forward_training(q, training);
        kernels::emu::batch_norm_apply(q, {.shape = training.shape,
                                           .x = training.x,
                                           .y = {applied.data() + k.offset, k.stride()},
                                           .mean = mean.data(),
                                           .invstd = invstd.data(),
                                           .gamma = in.gamma.data(),
                                           .beta = in.beta.data(),
                                           .fuse_relu = relu});
        std::vector<float> inf(k.buffer(), kSentinel), inf_mean(C), inf_invstd(C);
        std::vector<float> rm_in = in.running_mean, rv_in = in.running_var;
        kernels::emu::batch_norm_forward_inference(
            q, forward_args(k, in, inf.data(), rm_in.data(), rv_in.data(), inf_mean.data(), inf_invstd.data(), relu));
        // The recompute must reproduce the training output exactly, as the twin's does.
        const bool recompute_exact = applied == y;
        CHECK(recompute_exact);
        return std::vector<std::vector<float>>{y, mean, invstd, rm, rv, inf, inf_mean, inf_invstd};
      },
      {{"y", y_ref, kValueTolerance},
       {"save_mean", mean_ref, kStatsTolerance},
       {"save_invstd", invstd_ref, kStatsTolerance},
       {"running_mean", rm_ref, kStatsTolerance},
       {"running_var", rv_ref, kStatsTolerance},
       {"inference y", inf_ref, kValueTolerance},
       {"inference mean", inf_mean_ref, kStatsTolerance},
       {"inference invstd", inf_invstd_ref, kStatsTolerance}});
}

// The backward at the twin's saved statistics: dx, dgamma, dbeta.
void check_backward(const Case& k, bool relu, bool batch_statistics, Generator& gen) {
  const Inputs in(k, gen);
  const int64_t C = k.channels;
  const kernels::Queue q;
  std::vector<float> y(k.buffer()), mean(C), invstd(C), rm = in.running_mean, rv = in.running_var;
  kernels::cpu::batch_norm_forward_training(
      q, forward_args(k, in, y.data(), rm.data(), rv.data(), mean.data(), invstd.data(), relu));
  auto backward_args = [&](float* dx, float* dgamma, float* dbeta) {
    return kernels::BatchNormBackwardArgs{.shape = {k.batch, C, k.spatial},
                                          .x = {in.x.data() + k.offset, k.stride()},
                                          .dy = {in.dy.data() + k.offset, k.stride()},
                                          .dx = {dx + k.offset, k.stride()},
                                          .mean = mean.data(),
                                          .invstd = invstd.data(),
                                          .gamma = in.gamma.data(),
                                          .beta = in.beta.data(),
                                          .batch_statistics = batch_statistics,
                                          .fuse_relu = relu,
                                          .dgamma = dgamma,
                                          .dbeta = dbeta};
  };
  std::vector<float> dx_ref(k.buffer(), kSentinel), dgamma_ref(C), dbeta_ref(C);
  kernels::cpu::batch_norm_backward(q, backward_args(dx_ref.data(), dgamma_ref.data(), dbeta_ref.data()));
  testing::check_outputs_against_twin(
      std::string("batch-norm backward ") + (batch_statistics ? "(training) " : "(eval) ") + k.name() +
          (relu ? " + relu" : ""),
      [&] {
        std::vector<float> dx(k.buffer(), kSentinel), dgamma(C), dbeta(C);
        Workspace ws(k);
        kernels::BatchNormBackwardArgs args = backward_args(dx.data(), dgamma.data(), dbeta.data());
        args.workspace = ws.get();
        kernels::emu::batch_norm_backward(q, args);
        return std::vector<std::vector<float>>{dx, dgamma, dbeta};
      },
      {{"dx", dx_ref, kValueTolerance}, {"dgamma", dgamma_ref, kStatsTolerance}, {"dbeta", dbeta_ref, kStatsTolerance}});
}

// The training forward in parts, as the dense block keeps its buffer's moments: batch_norm_moments
// then batch_norm_statistics_from_moments, against the twin's parts (the moments within 1e-12 in
// double, the statistics as the forward's), and bit for bit the statistics and running update of
// the emulated training forward of the same x (whose y keeps x's alignment, so both sum the same
// items).
void check_moments(const Case& k, Generator& gen) {
  const Inputs in(k, gen);
  const int64_t C = k.channels;
  const kernels::Queue q;
  const kernels::ImageShape shape{k.batch, C, k.spatial};
  const kernels::StridedIn x{in.x.data() + k.offset, k.stride()};
  std::vector<double> mean_ref(static_cast<size_t>(C)), var_ref(static_cast<size_t>(C));
  kernels::cpu::batch_norm_moments(q, {.shape = shape, .x = x, .mean = mean_ref.data(), .var = var_ref.data()});
  auto statistics_args = [&](const std::vector<double>& mean, const std::vector<double>& var, float* running_mean,
                             float* running_var, float* save_mean, float* save_invstd) {
    return kernels::BatchNormStatisticsFromMomentsArgs{.mean = mean.data(),
                                                       .var = var.data(),
                                                       .channels = C,
                                                       .count = k.batch * k.spatial,
                                                       .momentum = kMomentum,
                                                       .eps = kEps,
                                                       .running_mean = running_mean,
                                                       .running_var = running_var,
                                                       .save_mean = save_mean,
                                                       .save_invstd = save_invstd};
  };
  std::vector<float> rm_ref = in.running_mean, rv_ref = in.running_var, mean_f_ref(C), invstd_ref(C);
  kernels::cpu::batch_norm_statistics_from_moments(
      q, statistics_args(mean_ref, var_ref, rm_ref.data(), rv_ref.data(), mean_f_ref.data(), invstd_ref.data()));
  auto as_floats = [](const std::vector<double>& v) { return std::vector<float>(v.begin(), v.end()); };
  testing::check_outputs_against_twin(
      "batch-norm moments and statistics " + k.name(),
      [&] {
        std::vector<double> mean(static_cast<size_t>(C), std::nan("")), var(static_cast<size_t>(C), std::nan(""));
        Workspace ws(k);
        kernels::emu::batch_norm_moments(
            q, {.shape = shape, .x = x, .mean = mean.data(), .var = var.data(), .workspace = ws.get()});
        for (int64_t c = 0; c < C; ++c) {
          const auto i = static_cast<size_t>(c);
          INFO("channel " << c << ": mean " << mean[i] << " vs " << mean_ref[i] << ", var " << var[i] << " vs "
                          << var_ref[i]);
          CHECK(std::fabs(mean[i] - mean_ref[i]) <= 1e-12 * std::max(1.0, std::fabs(mean_ref[i])));
          CHECK(std::fabs(var[i] - var_ref[i]) <= 1e-12 * std::max(1.0, std::fabs(var_ref[i])));
        }
        std::vector<float> rm = in.running_mean, rv = in.running_var, mean_f(C), invstd(C);
        kernels::emu::batch_norm_statistics_from_moments(
            q, statistics_args(mean, var, rm.data(), rv.data(), mean_f.data(), invstd.data()));
        std::vector<float> y(k.buffer(), kSentinel), fwd_mean(C), fwd_invstd(C);
        std::vector<float> fwd_rm = in.running_mean, fwd_rv = in.running_var;
        Workspace fwd_ws(k);
        kernels::BatchNormForwardArgs training =
            forward_args(k, in, y.data(), fwd_rm.data(), fwd_rv.data(), fwd_mean.data(), fwd_invstd.data(), true);
        training.workspace = fwd_ws.get();
        kernels::emu::batch_norm_forward_training(q, training);
        const bool forward_bits = mean_f == fwd_mean && invstd == fwd_invstd && rm == fwd_rm && rv == fwd_rv;
        CHECK(forward_bits);
        return std::vector<std::vector<float>>{as_floats(mean), as_floats(var), mean_f, invstd, rm, rv};
      },
      {{"mean", as_floats(mean_ref), kStatsTolerance},
       {"var", as_floats(var_ref), kStatsTolerance},
       {"save_mean", mean_f_ref, kStatsTolerance},
       {"save_invstd", invstd_ref, kStatsTolerance},
       {"running_mean", rm_ref, kStatsTolerance},
       {"running_var", rv_ref, kStatsTolerance}});
}

}  // namespace

TEST_CASE("batch-norm forward kernels match the CPU twin at awkward sizes", "[emu][batchnorm]") {
  Generator gen(21);
  for (const Case& k : batch_norm_awkward_cases())
    for (bool relu : {false, true}) DYNAMIC_SECTION(k.name() << (relu ? " relu" : "")) { check_forward(k, relu, gen); }
}

TEST_CASE("batch-norm moments and statistics from moments match the twin and the training forward",
          "[emu][batchnorm]") {
  Generator gen(24);
  std::vector<Case> cases = batch_norm_awkward_cases();
  // A dense layer's 32 new channels in a block buffer of 128 at 28x28 (from channel 64), as the
  // block computes their moments: several blocks per channel at batch 24 (4,704 float4 items), one
  // pass at batch 2.
  for (const int64_t batch : {24, 2}) cases.push_back({batch, 32, 784, 64 * 784, 96 * 784});
  for (const Case& k : cases) DYNAMIC_SECTION(k.name()) { check_moments(k, gen); }
}

TEST_CASE("batch-norm backward kernels match the CPU twin at awkward sizes", "[emu][batchnorm]") {
  Generator gen(22);
  for (const Case& k : batch_norm_awkward_cases())
    for (bool relu : {false, true})
      for (bool batch_statistics : {true, false})
        DYNAMIC_SECTION(k.name() << (relu ? " relu" : "") << (batch_statistics ? " training" : " eval")) {
          check_backward(k, relu, batch_statistics, gen);
        }
}

TEST_CASE("batch-norm kernels match the CPU twin at DenseNet-121 shapes", "[emu][batchnorm][densenet]") {
  Generator gen(23);
  for (const Case& k : batch_norm_densenet_cases()) {
    DYNAMIC_SECTION(k.name()) {
      check_forward(k, true, gen);
      check_backward(k, true, true, gen);
    }
  }
}

TEST_CASE("batch-norm workspace is needed only beyond one block's registers", "[emu][batchnorm]") {
  auto bytes = [](int64_t batch, int64_t channels, int64_t spatial) {
    return kernels::emu::batch_norm_workspace_bytes({}, {batch, channels, spatial});
  };
  // DenseNet-121 at batch 16: 7x7 and 14x14 channels (784 and 3,136 values) run in one pass.
  CHECK(bytes(16, 1024, 49) == 0);
  CHECK(bytes(16, 512, 196) == 0);
  CHECK(bytes(4, 3, 1024) == 0);  // 4,096 values
  CHECK(bytes(1, 3, 4097) > 0);
  CHECK(bytes(16, 128, 784) > 0);  // 12,544 values: fused only as float4 items, so a workspace is asked for
  // What bench_kernels counts as one pass (contiguous, aligned tensors: float4 items where H*W % 4 == 0).
  CHECK(kernels::emu::batch_norm_one_pass({16, 1024, 49}));
  CHECK(kernels::emu::batch_norm_one_pass({16, 128, 784}));
  CHECK_FALSE(kernels::emu::batch_norm_one_pass({64, 128, 784}));
  CHECK_FALSE(kernels::emu::batch_norm_one_pass({1, 3, 4097}));
  CHECK_FALSE(kernels::emu::batch_norm_one_pass({0, 3, 49}));
}

// The batch-norm moments kernels on a GPU (label gpu): batch_norm_moments then
// batch_norm_statistics_from_moments, the training forward in parts that the CUDA dense block runs
// for norm1, against the training forward's launcher on the same GPU, bit for bit, and against the
// CPU twins within the emulated tests' tolerances (tests/emu/test_kernel_batchnorm.cpp). What only
// hardware can say: that nvcc compiled the shared sums and formulas into the same instructions in
// both kernels (a different fma contraction would change the last bits), and that the moments
// read a channel slice of a wider buffer in device memory as the emulator does.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "chex/random.h"
#include "gpu_test_support.h"
#include "kernels/batchnorm.h"

using namespace chex;
using testing::DeviceVector;

namespace {

constexpr float kMomentum = 0.1f, kEps = 1e-5f;

// [batch, channels, spatial] in a buffer of `buffer_channels` per image, from channel `first`.
struct Slice {
  int64_t batch, channels, spatial, first = 0, buffer_channels = 0;
  int64_t stride() const { return (buffer_channels ? buffer_channels : channels) * spatial; }
  int64_t offset() const { return first * spatial; }
  size_t buffer() const { return static_cast<size_t>(batch * stride()); }
  kernels::ImageShape shape() const { return {batch, channels, spatial}; }
};

double max_scaled_difference(const std::vector<float>& a, const std::vector<float>& b) {
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i)
    worst = std::max(worst, std::fabs(static_cast<double>(a[i]) - b[i]) / std::max(1.0, std::fabs(static_cast<double>(b[i]))));
  return worst;
}

}  // namespace

TEST_CASE("GPU batch-norm moments give the training forward's statistics bit for bit", "[gpu][batchnorm]") {
  testing::require_gpu();
  const kernels::Queue q{};
  // DenseNet's: 56x56 at batch 16 (several blocks per channel, float4), a layer's new channels at
  // 28x28 in a 128-channel buffer (one pass at batch 16, several blocks at batch 64), 7x7 (one
  // pass, scalar), and an odd plane (several blocks, scalar).
  for (const Slice& s : {Slice{16, 64, 3136}, Slice{16, 32, 784, 64, 128}, Slice{64, 32, 784, 64, 128},
                         Slice{16, 32, 49, 512, 1024}, Slice{5, 3, 4099}}) {
    INFO("[" << s.batch << ", " << s.channels << ", " << s.spatial << "] from channel " << s.first);
    const auto C = static_cast<size_t>(s.channels);
    Generator gen(41);
    std::vector<float> x(s.buffer()), gamma(C), beta(C), running_mean(C), running_var(C);
    for (float& v : x) v = 2.f * gen.normal() + 1.5f;
    for (size_t c = 0; c < C; ++c) {
      gamma[c] = 1.f + 0.3f * gen.normal();
      beta[c] = 0.5f * gen.normal();
      running_mean[c] = 0.5f * gen.normal();
      running_var[c] = 0.5f + gen.uniform();
    }
    const DeviceVector<float> x_d(x), gamma_d(gamma), beta_d(beta);
    const size_t workspace_floats = kernels::cuda::batch_norm_workspace_bytes(q, s.shape()) / sizeof(float) + 1;
    const DeviceVector<float> workspace{std::vector<float>(workspace_floats)};

    // The training forward: y, its statistics and the running update.
    const DeviceVector<float> y_d{std::vector<float>(s.buffer())}, applied_d{std::vector<float>(s.buffer())};
    const DeviceVector<float> forward_rm(running_mean), forward_rv(running_var);
    const DeviceVector<float> forward_mean{std::vector<float>(C)}, forward_invstd{std::vector<float>(C)};
    kernels::cuda::batch_norm_forward_training(q, {.shape = s.shape(),
                                                   .x = {x_d.get() + s.offset(), s.stride()},
                                                   .y = {y_d.get() + s.offset(), s.stride()},
                                                   .gamma = gamma_d.get(),
                                                   .beta = beta_d.get(),
                                                   .running_mean = forward_rm.get(),
                                                   .running_var = forward_rv.get(),
                                                   .momentum = kMomentum,
                                                   .eps = kEps,
                                                   .save_mean = forward_mean.get(),
                                                   .save_invstd = forward_invstd.get(),
                                                   .fuse_relu = true,
                                                   .workspace = workspace.get()});
    // In parts, as the dense block: moments, statistics, apply.
    const DeviceVector<double> moment_mean{std::vector<double>(C)}, moment_var{std::vector<double>(C)};
    const DeviceVector<float> rm(running_mean), rv(running_var);
    const DeviceVector<float> mean{std::vector<float>(C)}, invstd{std::vector<float>(C)};
    kernels::cuda::batch_norm_moments(q, {.shape = s.shape(),
                                          .x = {x_d.get() + s.offset(), s.stride()},
                                          .mean = moment_mean.get(),
                                          .var = moment_var.get(),
                                          .workspace = workspace.get()});
    kernels::cuda::batch_norm_statistics_from_moments(q, {.mean = moment_mean.get(),
                                                          .var = moment_var.get(),
                                                          .channels = s.channels,
                                                          .count = s.batch * s.spatial,
                                                          .momentum = kMomentum,
                                                          .eps = kEps,
                                                          .running_mean = rm.get(),
                                                          .running_var = rv.get(),
                                                          .save_mean = mean.get(),
                                                          .save_invstd = invstd.get()});
    kernels::cuda::batch_norm_apply(q, {.shape = s.shape(),
                                        .x = {x_d.get() + s.offset(), s.stride()},
                                        .y = {applied_d.get() + s.offset(), s.stride()},
                                        .mean = mean.get(),
                                        .invstd = invstd.get(),
                                        .gamma = gamma_d.get(),
                                        .beta = beta_d.get(),
                                        .fuse_relu = true});
    const bool same_mean = mean.read() == forward_mean.read(), same_invstd = invstd.read() == forward_invstd.read();
    const bool same_running = rm.read() == forward_rm.read() && rv.read() == forward_rv.read();
    const bool same_y = applied_d.read() == y_d.read();
    CHECK(same_mean);
    CHECK(same_invstd);
    CHECK(same_running);
    CHECK(same_y);

    // Against the twins: the moments to 1e-12 (both in double), the statistics as the emulated tests.
    std::vector<double> mean_ref(C), var_ref(C);
    kernels::cpu::batch_norm_moments(q, {.shape = s.shape(),
                                         .x = {x.data() + s.offset(), s.stride()},
                                         .mean = mean_ref.data(),
                                         .var = var_ref.data()});
    std::vector<float> rm_ref = running_mean, rv_ref = running_var, mean_f_ref(C), invstd_ref(C);
    kernels::cpu::batch_norm_statistics_from_moments(q, {.mean = mean_ref.data(),
                                                         .var = var_ref.data(),
                                                         .channels = s.channels,
                                                         .count = s.batch * s.spatial,
                                                         .momentum = kMomentum,
                                                         .eps = kEps,
                                                         .running_mean = rm_ref.data(),
                                                         .running_var = rv_ref.data(),
                                                         .save_mean = mean_f_ref.data(),
                                                         .save_invstd = invstd_ref.data()});
    const std::vector<double> got_mean = moment_mean.read(), got_var = moment_var.read();
    double worst_moment = 0;
    for (size_t c = 0; c < C; ++c) {
      worst_moment = std::max(worst_moment, std::fabs(got_mean[c] - mean_ref[c]) / std::max(1.0, std::fabs(mean_ref[c])));
      worst_moment = std::max(worst_moment, std::fabs(got_var[c] - var_ref[c]) / std::max(1.0, std::fabs(var_ref[c])));
    }
    INFO("moments: max scaled difference from the twin " << worst_moment);
    CHECK(worst_moment <= 1e-12);
    CHECK(max_scaled_difference(mean.read(), mean_f_ref) <= 1e-6);
    CHECK(max_scaled_difference(invstd.read(), invstd_ref) <= 1e-6);
    CHECK(max_scaled_difference(rm.read(), rm_ref) <= 1e-6);
    CHECK(max_scaled_difference(rv.read(), rv_ref) <= 1e-6);
  }
}

// The memory-efficient dense block's paths on the CPU, chosen by the kernels the backend has
// (KernelCallRecorder's CpuPath, chex/kernel_calls.h):
//  - CUDA's (CpuPath::like_cuda: no normalising convolutions, but the batch-norm moments): norm1's
//    statistics from moments kept per channel of the block buffer, then batch_norm_apply;
//  - the plain unfused one (every optional kernel hidden): norm1 a full training BN over the
//    prefix at every layer;
//  - the CPU's own, fused one.
// A tiny DenseNet's training step (logits, loss, every gradient, the running statistics after it),
// a training-mode forward without a backward (norm1's statistics then have no saved slot), and the
// eval logits. CUDA's path must equal the plain one bit for bit (the same moments, the same
// formulas), and the fused one within the tolerances with which tests/test_densenet.cpp compares
// the memory-efficient block with the concatenating composition, as max |a - b| / max(|b|, 1):
// 1e-5 for outputs, 1e-4 for gradients, 1e-6 for the running statistics.
#include <catch2/catch.hpp>

#include <map>
#include <string>
#include <vector>

#include "chex/autograd.h"
#include "chex/kernel_calls.h"
#include "chex/ops.h"
#include "models/densenet.h"
#include "support/gradcheck.h"
#include "support/tiny_densenet.h"

using namespace chex;

namespace {

constexpr double kOutputTolerance = 1e-5, kGradientTolerance = 1e-4, kBufferTolerance = 1e-6;

struct Results {
  std::vector<std::string> names;
  std::vector<std::vector<float>> values;
  std::vector<double> tolerances;  // against the fused path
  void add(const std::string& name, const Tensor& t, double tolerance) {
    names.push_back(name);
    values.push_back(t.to_vector());
    tolerances.push_back(tolerance);
  }
};

// Blocks of 3 and 4 layers from 8 channels: several layers read x's channels and earlier layers'
// in each block.
models::DenseNetConfig tiny_config() { return testing::tiny_densenet_config({3, 4}, 3); }

// One model from fixed seeds (batch-norm parameters and running statistics away from their
// initial values, so every term matters), a training step, a forward in training mode without a
// backward, then eval logits; counts the kernels the path called into `recorder`.
Results run(CpuPath path, std::map<std::string, int64_t>& kernel_counts) {
  Generator gen(31);
  models::DenseNet model(tiny_config(), gen);
  for (auto& [name, t] : model.state_dict()) {
    if (name.find("norm") == std::string::npos || name.ends_with("num_batches_tracked")) continue;
    if (name.ends_with("running_var") || name.ends_with("weight"))
      t.copy_(Tensor::uniform(t.shape(), gen, 0.5f, 1.5f));
    else
      t.copy_(Tensor::randn(t.shape(), gen, 0.f, 0.3f));
  }
  Generator data(32);
  const Tensor images = Tensor::randn({4, 3, 24, 24}, data, 0.5f, 1.f);
  const Tensor targets = Tensor::from_vector({1, 0, 0, 0, 1, 1, 0, 0, 1, 1, 1, 0}, {4, 3});

  KernelCallRecorder recorder(path);
  Results r;
  model.train();
  const Tensor logits = model(images);
  const Tensor loss = ops::bce_with_logits(logits, targets);
  loss.backward();
  r.add("logits", logits.detach(), kOutputTolerance);
  r.add("loss", loss.detach(), kOutputTolerance);
  for (const auto& [name, p] : model.named_parameters()) r.add("grad " + name, p.grad(), kGradientTolerance);
  {
    const NoGradGuard no_grad;
    r.add("training forward without backward", model(images), kOutputTolerance);
  }
  for (const auto& [name, b] : model.named_buffers()) r.add(name, b, kBufferTolerance);  // moved by both passes
  model.eval();
  {
    const NoGradGuard no_grad;
    r.add("eval logits", model(images), kOutputTolerance);
  }
  for (const char* kernel : {"batch_norm_moments", "batch_norm_statistics_from_moments", "batch_norm_apply",
                             "batch_norm_forward_training", "conv2d_forward_normalized"})
    kernel_counts[kernel] = recorder.count(kernel);
  return r;
}

}  // namespace

TEST_CASE("dense blocks on CUDA's path equal the plain unfused path bitwise and the fused path within rounding",
          "[densenet][dense_block][kernel-calls]") {
  std::map<std::string, int64_t> cuda_calls, plain_calls, fused_calls;
  const Results cuda = run(CpuPath::like_cuda, cuda_calls);
  const Results plain = run(CpuPath::without_optional_kernels, plain_calls);
  const Results fused = run(CpuPath::as_is, fused_calls);

  // The paths taken: CUDA's keeps moments and applies norm1 (7 layers' norm1 in each of the two
  // training passes) instead of a training BN; the plain one has no moments; the fused one
  // normalises in its convolutions.
  CHECK(cuda_calls["conv2d_forward_normalized"] == 0);
  CHECK(cuda_calls["batch_norm_statistics_from_moments"] == 2 * 7);
  CHECK(cuda_calls["batch_norm_moments"] == 2 * ((1 + 2) + (1 + 3)));  // x's, every layer's but each block's last
  CHECK(plain_calls["batch_norm_moments"] == 0);
  CHECK(plain_calls["conv2d_forward_normalized"] == 0);
  CHECK(cuda_calls["batch_norm_forward_training"] == plain_calls["batch_norm_forward_training"] - 2 * 7);
  CHECK(fused_calls["conv2d_forward_normalized"] > 0);

  REQUIRE(cuda.names == plain.names);
  REQUIRE(cuda.names == fused.names);
  CHECK(cuda.names.size() > 40);
  for (size_t i = 0; i < cuda.names.size(); ++i) {
    INFO(cuda.names[i]);
    const bool same_bits = cuda.values[i] == plain.values[i];
    CHECK(same_bits);
    const double error = testing::max_scaled_error(cuda.values[i], fused.values[i]);
    INFO("against the fused path: max |a - b| / max(|b|, 1) = " << error << ", tolerance " << cuda.tolerances[i]);
    CHECK(error <= cuda.tolerances[i]);
  }
}

// bench_kernels weights each case by how often one DenseNet-121 step runs that kernel at that
// shape (models::densenet_kernel_calls). These tests run a real step and count: a training step as
// train_chexnet runs it (apps/train_chexnet/train_step.h: forward, weighted BCE, backward, Adam) and
// an inference pass, DenseNet-121 at 32 px, batch 2, on the CPU with only the optional kernels the
// CUDA backend has too (CpuPath::like_cuda), which is the path the CUDA backend takes: its kernel
// table has the batch-norm moments but not the normalising convolutions (the "cuda-host:" test
// checks that), so the dense blocks run unfused there, norm1's moments kept per channel.
#include <catch2/catch.hpp>

#include <cmath>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include "chex/autograd.h"
#include "chex/kernel_calls.h"
#include "chex/ops.h"
#include "chex/optim/adam.h"
#include "models/densenet.h"
#include "models/densenet_shapes.h"
#include "train_step.h"

using namespace chex;

namespace {

constexpr int64_t kBatch = 2, kSize = 32, kClasses = 14;

// The kernels the analysis covers, and those it says the step never runs (ReLU is fused into every
// BN, concatenation replaced by the block buffer).
const std::set<std::string> kCounted = {
    "batch_norm_forward_training", "batch_norm_forward_inference", "batch_norm_apply", "batch_norm_backward",
    "batch_norm_moments", "batch_norm_statistics_from_moments",
    "max_pool2d_forward", "max_pool2d_backward", "avg_pool2d_forward", "avg_pool2d_backward",
    "global_avg_pool_forward", "global_avg_pool_backward", "bce_with_logits", "copy_channels", "add_channels",
    "relu_forward", "relu_backward", "concat_channels", "split_channels"};

std::map<KernelCall, int64_t> counted(const std::map<KernelCall, int64_t>& all) {
  std::map<KernelCall, int64_t> out;
  for (const auto& [call, n] : all)
    if (kCounted.contains(call.kernel)) out[call] = n;
  return out;
}

std::string text(const KernelCall& c) {
  std::ostringstream out;
  out << c.kernel << " [";
  for (size_t i = 0; i < c.shape.size(); ++i) out << (i ? ", " : "") << c.shape[i];
  out << "]";
  return out.str();
}

// Every (kernel, shape) with its count on both sides, each difference reported.
// `at_least` calls in all, so that the comparison is not vacuous (DenseNet-121 has 121 BNs).
void check_same(const std::map<KernelCall, int64_t>& expected, const std::map<KernelCall, int64_t>& actual,
                int64_t at_least) {
  std::map<KernelCall, std::pair<int64_t, int64_t>> both;
  for (const auto& [c, n] : expected) both[c].first = n;
  for (const auto& [c, n] : actual) both[c].second = n;
  int64_t expected_total = 0;
  for (const auto& [c, counts] : both) {
    INFO(text(c) << ": analysis " << counts.first << ", step " << counts.second);
    CHECK(counts.first == counts.second);
    expected_total += counts.first;
  }
  CHECK(expected_total >= at_least);
}

models::DenseNet densenet121(Generator& gen) { return models::DenseNet(models::DenseNetConfig::densenet121(kClasses), gen); }

}  // namespace

TEST_CASE("kernel calls: a DenseNet-121 training step on CUDA's path runs what bench_kernels weights by",
          "[kernel-calls]") {
  Generator gen(3);
  models::DenseNet model = densenet121(gen);
  model.train();
  optim::Adam optimizer(model.parameters(), {.lr = 1e-3});
  std::vector<float> pos(kClasses, 0.8f), neg(kClasses, 0.2f);
  const Tensor pos_weight = Tensor::from_vector(pos, {kClasses}), neg_weight = Tensor::from_vector(neg, {kClasses});
  const train::LossFunction loss = [&](const Tensor& logits, const Tensor& targets) {
    return ops::scale(ops::bce_with_logits(logits, targets, pos_weight, neg_weight), static_cast<float>(kClasses));
  };
  Generator data(4);
  const Tensor images = Tensor::randn({kBatch, 3, kSize, kSize}, data);
  std::vector<float> labels(kBatch * kClasses, 0.f);
  labels[1] = labels[20] = 1.f;
  const Tensor targets = Tensor::from_vector(labels, {kBatch, kClasses});

  KernelCallRecorder recorder(CpuPath::like_cuda);
  const HostCopy value = train::train_step(model, loss, optimizer, images, targets);
  CHECK(std::isfinite(value.item()));
  // The unfused path it took: plain convolutions, no normalising ones, norm1's moments kept.
  CHECK(recorder.count("conv2d_forward_normalized") == 0);
  CHECK(recorder.count("batch_norm_moments") > 0);
  CHECK(recorder.count("conv2d_forward") > 0);
  check_same(models::densenet_kernel_calls(models::DenseNetPass::training_step, kBatch, kSize),
             counted(recorder.counts()), 3 * 121);
}

TEST_CASE("kernel calls: a DenseNet-121 inference pass on CUDA's path, and the same logits as the CPU's fused path",
          "[kernel-calls]") {
  Generator gen(5);
  models::DenseNet model = densenet121(gen);
  model.eval();
  Generator data(6);
  const Tensor images = Tensor::randn({kBatch, 3, kSize, kSize}, data);
  const NoGradGuard no_grad;
  Tensor unfused, fused;
  {
    KernelCallRecorder recorder(CpuPath::like_cuda);
    unfused = model(images);
    check_same(models::densenet_kernel_calls(models::DenseNetPass::inference, kBatch, kSize),
               counted(recorder.counts()), 121);
  }
  {
    // With the recorder gone the CPU's own table is back: the fused path.
    KernelCallRecorder recorder(CpuPath::as_is);
    fused = model(images);
    CHECK(recorder.count("conv2d_forward_normalized") > 0);
  }
  const std::vector<float> a = unfused.to_vector(), b = fused.to_vector();
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) CHECK(std::fabs(a[i] - b[i]) <= 1e-4f);
}

TEST_CASE("kernel calls: one recorder at a time", "[kernel-calls]") {
  KernelCallRecorder first;
  CHECK_THROWS_WITH(KernelCallRecorder(), Catch::Contains("one at a time"));
}

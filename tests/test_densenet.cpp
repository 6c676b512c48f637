// DenseNet's structure and its memory-efficient dense blocks: the efficient op against the plain
// composition of (PyTorch-checked) ops, finite differences, and the memory claim. Parity of the
// whole model with torchvision is in tests/torch/test_densenet_parity.cpp.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include "chex/allocator.h"
#include "chex/autograd.h"
#include "chex/ops.h"
#include "models/dense_block.h"
#include "models/densenet.h"
#include "support/gradcheck.h"
#include "support/thread_count.h"

using namespace chex;
using models::DenseBlock;

namespace {

int64_t parameter_count(const nn::Module& m) {
  int64_t n = 0;
  for (const Tensor& p : m.parameters()) n += p.numel();
  return n;
}

// Two blocks with the same weights and running statistics, one memory-efficient, one not.
struct BlockPair {
  std::shared_ptr<DenseBlock> efficient, plain;
  BlockPair(int64_t layers, int64_t in_channels, int64_t growth, int64_t bn_size, uint64_t seed) {
    Generator gen(seed);
    efficient = std::make_shared<DenseBlock>(layers, in_channels, growth, bn_size, true, gen);
    plain = std::make_shared<DenseBlock>(layers, in_channels, growth, bn_size, false, gen);
    // Non-trivial affine parameters and running statistics, so that every term matters.
    for (auto& [name, t] : efficient->state_dict()) {
      if (name.ends_with("num_batches_tracked")) continue;
      if (name.ends_with("running_var") || name.ends_with("norm1.weight") || name.ends_with("norm2.weight"))
        t.copy_(Tensor::uniform(t.shape(), gen, 0.5f, 1.5f));
      else if (!name.ends_with("conv1.weight") && !name.ends_with("conv2.weight"))
        t.copy_(Tensor::randn(t.shape(), gen, 0.f, 0.3f));
    }
    plain->load_state_dict(efficient->state_dict());
  }
};

void check_close(const std::string& what, const Tensor& ours, const Tensor& ref, double tolerance) {
  INFO(what << ": " << ours.str() << " vs " << ref.str());
  REQUIRE(ours.defined());
  REQUIRE(ours.shape() == ref.shape());
  const double error = testing::max_scaled_error(ours.to_vector(), ref.to_vector());
  INFO(what << ": max |a - b| / max(|b|, 1) = " << error << " (tolerance " << tolerance << ")");
  CHECK(error <= tolerance);
}

}  // namespace

TEST_CASE("DenseNet-121/169/201 have torchvision's size and widths", "[densenet]") {
  using models::DenseNetConfig;
  CHECK(DenseNetConfig::densenet121().num_features() == 1024);
  CHECK(DenseNetConfig::densenet169().num_features() == 1664);
  CHECK(DenseNetConfig::densenet201().num_features() == 1920);
  // torchvision's parameter count for densenet121() with its 1000 ImageNet classes.
  Generator gen(1);
  models::DenseNet imagenet(DenseNetConfig::densenet121(1000), gen);
  CHECK(parameter_count(imagenet) == 7978856);
  const auto state = imagenet.state_dict();
  REQUIRE(state.size() == 727);  // 121 batch norms x 5 entries, 120 convolutions, the classifier's 2
  CHECK(state.front().first == "features.conv0.weight");
  CHECK(state.back().first == "classifier.bias");
  // The initialisation of torchvision: BN weight 1, bias 0; classifier bias 0.
  for (auto& [name, t] : state) {
    INFO(name);
    if (name.ends_with("norm5.weight") || name.ends_with("norm0.weight")) CHECK(t.to_vector() == std::vector<float>(t.numel(), 1.f));
    if (name.ends_with("norm1.bias") || name == "classifier.bias") CHECK(t.to_vector() == std::vector<float>(t.numel(), 0.f));
  }
}

// Both blocks' output, every gradient and the running statistics after one step.
void check_efficient_equals_plain(BlockPair& blocks, bool training, const Shape& x_shape, uint64_t seed) {
  blocks.efficient->train(training);
  blocks.plain->train(training);
  Generator gen(seed);
  const Tensor x_data = Tensor::randn(x_shape, gen);
  Tensor x_efficient = x_data.clone().set_requires_grad(), x_plain = x_data.clone().set_requires_grad();
  Tensor y_efficient = blocks.efficient->forward(x_efficient);
  Tensor y_plain = blocks.plain->forward(x_plain);
  check_close("output", y_efficient, y_plain, 1e-5);
  const Tensor projection = Tensor::randn(y_plain.shape(), gen);
  y_efficient.backward(projection);
  y_plain.backward(projection);
  check_close("grad x", x_efficient.grad(), x_plain.grad(), 1e-4);
  const auto p_efficient = blocks.efficient->named_parameters(), p_plain = blocks.plain->named_parameters();
  REQUIRE(p_efficient.size() == p_plain.size());
  for (size_t i = 0; i < p_efficient.size(); ++i)
    check_close("grad " + p_efficient[i].first, p_efficient[i].second.grad(), p_plain[i].second.grad(), 1e-4);
  // Running statistics moved exactly once (in training), in both.
  const auto b_efficient = blocks.efficient->named_buffers(), b_plain = blocks.plain->named_buffers();
  for (size_t i = 0; i < b_efficient.size(); ++i)
    check_close(b_efficient[i].first, b_efficient[i].second, b_plain[i].second, 1e-6);
  for (auto& [name, t] : b_efficient)
    if (name.ends_with("num_batches_tracked")) CHECK(t.item() == (training ? 1.f : 0.f));
}

TEST_CASE("the memory-efficient dense block equals the concatenating composition", "[densenet][dense_block]") {
  const bool training = GENERATE(true, false);
  DYNAMIC_SECTION((training ? "training" : "eval")) {
    BlockPair blocks(4, 5, 3, 2, 11);
    check_efficient_equals_plain(blocks, training, {3, 5, 6, 5}, 12);
  }
}

TEST_CASE("the memory-efficient dense block equals the composition at DenseNet's widths", "[densenet][dense_block]") {
  // Growth 32, bottleneck 128: on the CPU the efficient block's convolutions normalise their input
  // as they read it (3x3 through shifted GEMMs, 1x1 through tiles of columns, two tiles in the
  // 512-channel case) and norm1's moments are kept per channel; the plain composition runs every
  // op on its own. Batch 1 splits columns over the threads; 1-3 threads.
  struct Case {
    const char* name;
    int64_t layers, in_channels;
    Shape x;
  };
  const Case c = GENERATE(Case{"2 layers from 64 channels, batch 3", 2, 64, {3, 64, 6, 5}},
                          Case{"2 layers from 64 channels, batch 1", 2, 64, {1, 64, 5, 7}},
                          Case{"1 layer from 512 channels at 17x17, batch 2", 1, 512, {2, 512, 17, 17}});
  const int threads = GENERATE(1, 2, 3);
  const bool training = GENERATE(true, false);
  INFO(c.name << ", " << threads << " threads, " << (training ? "training" : "eval"));
  const testing::ThreadCount thread_count(threads);
  BlockPair blocks(c.layers, c.in_channels, 32, 4, 13);
  check_efficient_equals_plain(blocks, training, c.x, 14);
}

// Central differences against the analytic gradient, skipping the elements whose step crosses a
// ReLU kink: there the differences at eps and eps/2 disagree (a block has hundreds of ReLUs, so a
// few crossings are likely for any seed). The skipped ones must stay a small minority.
void check_gradients_away_from_kinks(const testing::TensorFunction& f, const std::vector<Tensor>& inputs) {
  constexpr float kEps = 5e-3f;
  constexpr double kTolerance = 1e-2, kMaxSkipped = 0.1;
  Generator gen(23);
  const Tensor projection = [&] {
    NoGradGuard no_grad;
    return Tensor::randn(f(inputs).shape(), gen);
  }();
  auto loss = [&] {
    NoGradGuard no_grad;
    return static_cast<double>(ops::sum(ops::mul(f(inputs), projection)).item());
  };
  for (const Tensor& t : inputs) t.zero_grad();
  ops::sum(ops::mul(f(inputs), projection)).backward();
  int checked = 0, skipped = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const std::vector<float> analytic = inputs[i].grad().to_vector();
    float* data = inputs[i].data();
    // Up to 12 distinct elements, evenly spread.
    const int64_t n = inputs[i].numel(), samples = std::min<int64_t>(n, 12);
    for (int64_t s = 0; s < samples; ++s) {
      const int64_t j = s * n / samples;
      const float original = data[j];
      auto central = [&](float eps) {
        data[j] = original + eps;
        const double plus = loss();
        data[j] = original - eps;
        const double minus = loss();
        data[j] = original;
        return (plus - minus) / (2.0 * eps);
      };
      const double coarse = central(kEps), fine = central(kEps / 2);
      auto scaled = [](double a, double b) { return std::fabs(a - b) / std::max({std::fabs(a), std::fabs(b), 1.0}); };
      if (scaled(coarse, fine) > kTolerance) {
        ++skipped;
        continue;
      }
      ++checked;
      INFO("input " << i << " element " << j << ": analytic " << analytic[static_cast<size_t>(j)] << ", numeric "
                    << fine << " (tolerance " << kTolerance << ")");
      CHECK(scaled(analytic[static_cast<size_t>(j)], fine) <= kTolerance);
    }
  }
  INFO(skipped << " of " << checked + skipped << " elements skipped at ReLU kinks");
  CHECK(skipped <= kMaxSkipped * (checked + skipped));
}

TEST_CASE("the memory-efficient dense block's gradients match finite differences", "[densenet][dense_block][gradcheck]") {
  const bool training = GENERATE(true, false);
  DYNAMIC_SECTION((training ? "training" : "eval")) {
    BlockPair blocks(2, 3, 2, 2, 21);
    blocks.efficient->train(training);
    Generator gen(22);
    // Positive BN shifts put most ReLU inputs away from 0 (some stay negative, so the masks are
    // still exercised), which makes kink crossings rare.
    for (auto& [name, t] : blocks.efficient->named_parameters())
      if (name.ends_with(".bias")) t.copy_(Tensor::uniform(t.shape(), gen, 0.5f, 1.5f));
    std::vector<Tensor> inputs{testing::random_leaf({2, 3, 3, 3}, gen)};
    for (const Tensor& p : blocks.efficient->parameters()) inputs.push_back(p);
    check_gradients_away_from_kinks([&](const std::vector<Tensor>& in) { return blocks.efficient->forward(in[0]); },
                                    inputs);
  }
}

TEST_CASE("dense blocks reject bad inputs with clear errors", "[densenet][dense_block]") {
  Generator gen(3);
  DenseBlock block(2, 4, 2, 2, true, gen);
  CHECK_THROWS_WITH(block.forward(Tensor::randn({2, 5, 4, 4}, gen)),
                    Catch::Contains("norm1.weight") && Catch::Contains("[5]"));
  CHECK_THROWS_WITH(block.forward(Tensor::randn({1, 4, 1, 1}, gen)), Catch::Contains("more than 1 value per channel"));
}

// The allocator's peak over one training step (forward + backward) of a block of `depth` layers,
// less the parameter gradients it leaves behind (those are as large as the parameters, which grow
// quadratically with depth in any DenseNet; the claim concerns the activations).
size_t activation_peak_over_step(int64_t depth, bool memory_efficient) {
  // Sizes chosen so that every depth-dependent allocation of the efficient path is exactly one of
  // the allocator's size classes (C_final = 8 * (8 + depth) channels: 12, 16, 24, 40 times 8), so
  // that rounding does not blur the comparison.
  constexpr int64_t kInChannels = 64, kGrowth = 8, kBnSize = 4, kBatch = 4, kSize = 16;
  Generator gen(5);
  DenseBlock block(depth, kInChannels, kGrowth, kBnSize, memory_efficient, gen);
  Tensor x = testing::random_leaf({kBatch, kInChannels, kSize, kSize}, gen);
  const Tensor grad_output = Tensor::randn({kBatch, block.out_channels(), kSize, kSize}, gen);
  Allocator& allocator = allocator_for(Device::cpu());
  const size_t before = allocator.stats().current_bytes;
  allocator.reset_peak();
  block.forward(x).backward(grad_output);
  const size_t peak = allocator.stats().peak_bytes - before;
  size_t gradient_bytes = 0;
  for (const Tensor& p : block.parameters()) gradient_bytes += allocation_size_class(p.numel() * sizeof(float));
  gradient_bytes += allocation_size_class(x.numel() * sizeof(float));
  return peak - gradient_bytes;
}

TEST_CASE("memory-efficient dense blocks use memory linear in depth but concatenating ones do not", "[densenet][memory]") {
  const std::vector<int64_t> depths{4, 8, 16, 32};
  std::vector<double> efficient, plain;
  for (int64_t d : depths) {
    efficient.push_back(static_cast<double>(activation_peak_over_step(d, true)));
    plain.push_back(static_cast<double>(activation_peak_over_step(d, false)));
  }
  std::printf("dense block training step, activation peak (allocator bytes, excluding parameter gradients):\n");
  std::printf("  depth  memory-efficient  concatenating\n");
  for (size_t i = 0; i < depths.size(); ++i)
    std::printf("  %5lld  %16.0f  %13.0f\n", static_cast<long long>(depths[i]), efficient[i], plain[i]);
  // Doubling the depth from d to 2d adds d layers: linear growth adds twice as much from 16 to 32
  // as from 8 to 16 (ratio 2); quadratic growth four times as much (here ~3, with the linear terms).
  for (size_t i = 2; i < depths.size(); ++i) {
    const double ratio_efficient = (efficient[i] - efficient[i - 1]) / (efficient[i - 1] - efficient[i - 2]);
    const double ratio_plain = (plain[i] - plain[i - 1]) / (plain[i - 1] - plain[i - 2]);
    std::printf("  growth ratio %lld->%lld over %lld->%lld: memory-efficient %.3f, concatenating %.3f\n",
                static_cast<long long>(depths[i - 1]), static_cast<long long>(depths[i]),
                static_cast<long long>(depths[i - 2]), static_cast<long long>(depths[i - 1]), ratio_efficient,
                ratio_plain);
    INFO("depths " << depths[i - 2] << ", " << depths[i - 1] << ", " << depths[i]);
    // Linear within 5% (what is left: the per-layer statistics, rounded up to 64 bytes).
    CHECK(ratio_efficient == Approx(2.0).epsilon(0.05));
    CHECK(ratio_plain > 2.6);
  }
  CHECK(plain.back() > 2.0 * efficient.back());
}

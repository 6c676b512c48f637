// The layers over the real ops: output shapes, batch-norm modes, and a tiny CNN that learns.
// (Pending: becomes tests/test_nn_layers.cpp once conv2d, batch_norm2d, pooling and linear are merged.)
#include <catch2/catch.hpp>

#include <cmath>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "chex/chex.h"

namespace {
using namespace chex;

// Per-channel mean and unbiased variance of an [N, C, H, W] tensor, on the host.
std::pair<std::vector<double>, std::vector<double>> channel_statistics(const Tensor& x) {
  const auto values = x.to_vector();
  const int64_t n = x.size(0), c = x.size(1), hw = x.size(2) * x.size(3);
  std::vector<double> mean(c, 0.0), var(c, 0.0);
  for (int64_t ch = 0; ch < c; ++ch) {
    for (int64_t i = 0; i < n; ++i)
      for (int64_t k = 0; k < hw; ++k) mean[ch] += values[(i * c + ch) * hw + k];
    mean[ch] /= double(n * hw);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t k = 0; k < hw; ++k) {
        const double d = values[(i * c + ch) * hw + k] - mean[ch];
        var[ch] += d * d;
      }
    var[ch] /= double(n * hw - 1);
  }
  return {mean, var};
}

}  // namespace

TEST_CASE("nn layers: forward shapes", "[nn][layers]") {
  Generator gen(1);
  const Tensor x = Tensor::randn({2, 3, 9, 9}, gen);
  CHECK(nn::Conv2d(3, 8, 3, 1, 1, true, gen)(x).shape() == Shape{2, 8, 9, 9});
  CHECK(nn::Conv2d(3, 8, 3, 2, 1, false, gen)(x).shape() == Shape{2, 8, 5, 5});
  CHECK(nn::Conv2d(3, 4, 1, 1, 0, false, gen)(x).shape() == Shape{2, 4, 9, 9});
  CHECK(nn::BatchNorm2d(3)(x).shape() == Shape{2, 3, 9, 9});
  CHECK(nn::ReLU()(x).shape() == Shape{2, 3, 9, 9});

  const Tensor y = Tensor::randn({2, 8, 8, 8}, gen);
  CHECK(nn::MaxPool2d(3, 2, 1)(y).shape() == Shape{2, 8, 4, 4});  // DenseNet's stem pooling
  CHECK(nn::MaxPool2d(2, 2)(y).shape() == Shape{2, 8, 4, 4});
  CHECK(nn::AvgPool2d(2, 2)(y).shape() == Shape{2, 8, 4, 4});     // DenseNet's transitions
  CHECK(nn::GlobalAvgPool()(y).shape() == Shape{2, 8});
  CHECK(nn::Linear(8, 3, true, gen)(Tensor::randn({5, 8}, gen)).shape() == Shape{5, 3});
}

TEST_CASE("nn layers: values of the parameter-free layers and of Linear", "[nn][layers]") {
  const Tensor x = Tensor::from_vector({-1.f, 2.f, -3.f, 4.f, 5.f, -6.f, 7.f, 8.f}, {1, 2, 2, 2});
  CHECK(nn::ReLU()(x).to_vector() == std::vector<float>{0, 2, 0, 4, 5, 0, 7, 8});
  const auto pooled = nn::GlobalAvgPool()(x).to_vector();  // channel means: 2/4, 14/4
  CHECK(pooled[0] == Approx(0.5));
  CHECK(pooled[1] == Approx(3.5));
  CHECK(nn::MaxPool2d(2, 2)(x).to_vector() == std::vector<float>{4, 8});

  // weight [[1, 2], [3, 4]], bias [0.5, -0.5]: [1, -1] -> [1 − 2 + 0.5, 3 − 4 − 0.5] = [−0.5, −1.5].
  nn::Linear linear(2, 2);
  linear.load_state_dict(std::map<std::string, Tensor>{{"weight", Tensor::from_vector({1, 2, 3, 4}, {2, 2})},
                                                       {"bias", Tensor::from_vector({0.5f, -0.5f}, {2})}});
  const auto out = linear(Tensor::from_vector({1.f, -1.f}, {1, 2})).to_vector();
  CHECK(out[0] == Approx(-0.5));
  CHECK(out[1] == Approx(-1.5));
}

TEST_CASE("nn::BatchNorm2d: training updates the running statistics and the counter, eval uses them", "[nn][layers]") {
  Generator gen(2);
  nn::BatchNorm2d bn(3, 1e-5f, 0.1f);
  const Tensor x = Tensor::randn({4, 3, 5, 5}, gen, 2.f, 3.f);
  const auto [batch_mean, batch_var] = channel_statistics(x);

  bn(x);
  // running = 0.9·initial + 0.1·batch statistic (the variance unbiased, as PyTorch's).
  const auto running_mean = bn.running_mean().to_vector(), running_var = bn.running_var().to_vector();
  for (int ch = 0; ch < 3; ++ch) {
    CHECK(running_mean[ch] == Approx(0.1 * batch_mean[ch]).epsilon(1e-4));
    CHECK(running_var[ch] == Approx(0.9 + 0.1 * batch_var[ch]).epsilon(1e-4));
  }
  bn(x);
  CHECK(bn.num_batches_tracked().item() == 2.f);

  // In eval mode nothing changes, and the output is (x − running_mean)/sqrt(running_var + eps).
  bn.eval();
  const auto mean_before = bn.running_mean().to_vector(), var_before = bn.running_var().to_vector();
  const auto y = bn(x).to_vector();
  CHECK(bn.num_batches_tracked().item() == 2.f);
  CHECK(bn.running_mean().to_vector() == mean_before);
  CHECK(bn.running_var().to_vector() == var_before);
  const auto xs = x.to_vector();
  for (size_t i = 0; i < xs.size(); i += 7) {
    const size_t ch = (i / 25) % 3;
    CHECK(y[i] == Approx((xs[i] - mean_before[ch]) / std::sqrt(var_before[ch] + 1e-5)).epsilon(1e-4).margin(1e-5));
  }
}

TEST_CASE("nn layers: a tiny CNN's loss goes down under Adam", "[nn][layers][optim]") {
  manual_seed(7);
  Generator data(8);
  nn::Sequential model;
  model.add("conv0", std::make_shared<nn::Conv2d>(3, 8, 3, 1, 1));
  model.add("norm0", std::make_shared<nn::BatchNorm2d>(8));
  model.add("relu0", std::make_shared<nn::ReLU>());
  model.add("pool0", std::make_shared<nn::MaxPool2d>(2, 2));
  model.add("gap", std::make_shared<nn::GlobalAvgPool>());
  model.add("classifier", std::make_shared<nn::Linear>(8, 2));
  optim::Adam adam(model.parameters(), {.lr = 0.01});

  const Tensor images = Tensor::randn({8, 3, 8, 8}, data);
  const Tensor targets = Tensor::randn({8, 2}, data);
  auto mse = [&] {
    const Tensor error = ops::sub(model(images), targets);
    return ops::mean(ops::mul(error, error));
  };

  // 40 steps fit 16 random targets: PyTorch's same network ends at 0.005–0.25 of its first loss
  // over ten seeds, so half is a safe bar.
  float first = 0, last = 0;
  for (int step = 0; step < 40; ++step) {
    adam.zero_grad();
    Tensor loss = mse();
    loss.backward();
    if (step == 0)
      for (const auto& [name, p] : model.named_parameters()) {
        INFO(name);
        CHECK(p.grad().defined());
      }
    adam.step();
    (step == 0 ? first : last) = loss.item();
  }
  INFO("loss " << first << " -> " << last);
  CHECK(std::isfinite(last));
  CHECK(last < 0.5f * first);
  CHECK(model.child("norm0")->is_training());
  CHECK(std::static_pointer_cast<nn::BatchNorm2d>(model.child("norm0"))->num_batches_tracked().item() == 40.f);
}

TEST_CASE("nn::Module::to keeps every handle: a no-op to the CPU, a clear error without a GPU", "[nn][device]") {
  struct Net : nn::Module {
    std::shared_ptr<nn::Conv2d> conv;
    std::shared_ptr<nn::BatchNorm2d> norm;
    explicit Net(Generator& gen)
        : conv(register_module("conv", std::make_shared<nn::Conv2d>(3, 4, 3, 1, 1, true, gen))),
          norm(register_module("norm", std::make_shared<nn::BatchNorm2d>(4))) {}
    Tensor forward(const Tensor& x) override { return (*norm)((*conv)(x)); }
  };
  Generator gen(8);
  Net net(gen);
  ops::sum(net(Tensor::randn({2, 3, 5, 5}, gen))).backward();

  nn::NamedTensors before = net.named_parameters();
  const nn::NamedTensors buffers = net.named_buffers();
  before.insert(before.end(), buffers.begin(), buffers.end());
  std::vector<std::vector<float>> values, grads;
  std::vector<const void*> storages;
  for (const auto& [name, t] : before) {
    values.push_back(t.to_vector());
    grads.push_back(t.grad().defined() ? t.grad().to_vector() : std::vector<float>{});
    storages.push_back(t.storage().get());
  }
  auto check_unchanged = [&] {
    nn::NamedTensors after = net.named_parameters();
    const nn::NamedTensors after_buffers = net.named_buffers();
    after.insert(after.end(), after_buffers.begin(), after_buffers.end());
    REQUIRE(after.size() == before.size());
    for (size_t i = 0; i < after.size(); ++i) {
      INFO(after[i].first);
      CHECK(after[i].second.impl() == before[i].second.impl());  // the same handle the optimizer holds
      CHECK(after[i].second.storage().get() == storages[i]);     // and the same storage: nothing copied
      CHECK(after[i].second.device() == Device::cpu());
      CHECK(after[i].second.requires_grad() == (i < 4));  // conv weight and bias, norm weight and bias
      CHECK(after[i].second.to_vector() == values[i]);
      CHECK((after[i].second.grad().defined() ? after[i].second.grad().to_vector() : std::vector<float>{}) == grads[i]);
    }
  };

  CHECK(&net.to(Device::cpu()) == &net);
  check_unchanged();

  if (cuda_device_count() == 0) {
    CHECK_THROWS_WITH(net.to(Device::cuda()), Catch::Contains("cuda:0") && Catch::Contains("use --device cpu"));
    check_unchanged();  // the device is checked before anything moves
  }
}

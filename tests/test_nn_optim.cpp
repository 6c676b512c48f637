// nn::Module (names, state dicts, modes), initialisation, and the Adam and SGD optimizers.
// Every expected optimizer value below is derived by hand in the comment above it from the update
// formulas of PyTorch 1.13 (they agree with torch.optim to float32 precision).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "chex/chex.h"

namespace {
using namespace chex;
using Catch::Matchers::Contains;

// torchvision's _DenseLayer, structure only (no forward needed to check names).
struct DenseLayerLike : nn::Module {
  DenseLayerLike(int64_t in_channels, int64_t growth) {
    register_module("norm1", std::make_shared<nn::BatchNorm2d>(in_channels));
    register_module("relu1", std::make_shared<nn::ReLU>());
    register_module("conv1", std::make_shared<nn::Conv2d>(in_channels, 2 * growth, 1, 1, 0, false));
    register_module("norm2", std::make_shared<nn::BatchNorm2d>(2 * growth));
    register_module("relu2", std::make_shared<nn::ReLU>());
    register_module("conv2", std::make_shared<nn::Conv2d>(2 * growth, growth, 3, 1, 1, false));
  }
};

// A root with its own parameter and buffer (to pin down PyTorch's order: own parameters, own
// buffers, then children), a torchvision-style "features" Sequential and a classifier.
struct NetLike : nn::Module {
  explicit NetLike(uint64_t seed) {
    Generator gen(seed);
    scale = register_parameter("scale", Tensor::ones({2}));
    count = register_buffer("count", Tensor::zeros({}));
    features = register_module("features", std::make_shared<nn::Sequential>());
    features->add("conv0", std::make_shared<nn::Conv2d>(3, 4, 3, 1, 0, false, gen));
    features->add("norm0", std::make_shared<nn::BatchNorm2d>(4));
    features->add("relu0", std::make_shared<nn::ReLU>());
    auto block = features->add("denseblock1", std::make_shared<nn::Module>());
    block->register_module("denselayer1", std::make_shared<DenseLayerLike>(4, 2));
    classifier = register_module("classifier", std::make_shared<nn::Linear>(6, 2, true, gen));
  }
  Tensor scale, count;
  std::shared_ptr<nn::Sequential> features;
  std::shared_ptr<nn::Linear> classifier;
};

// torch's state_dict() of the same structure, names and shapes.
const std::vector<std::pair<std::string, Shape>> kNetLikeState = {
    {"scale", {2}},
    {"count", {}},
    {"features.conv0.weight", {4, 3, 3, 3}},
    {"features.norm0.weight", {4}},
    {"features.norm0.bias", {4}},
    {"features.norm0.running_mean", {4}},
    {"features.norm0.running_var", {4}},
    {"features.norm0.num_batches_tracked", {}},
    {"features.denseblock1.denselayer1.norm1.weight", {4}},
    {"features.denseblock1.denselayer1.norm1.bias", {4}},
    {"features.denseblock1.denselayer1.norm1.running_mean", {4}},
    {"features.denseblock1.denselayer1.norm1.running_var", {4}},
    {"features.denseblock1.denselayer1.norm1.num_batches_tracked", {}},
    {"features.denseblock1.denselayer1.conv1.weight", {4, 4, 1, 1}},
    {"features.denseblock1.denselayer1.norm2.weight", {4}},
    {"features.denseblock1.denselayer1.norm2.bias", {4}},
    {"features.denseblock1.denselayer1.norm2.running_mean", {4}},
    {"features.denseblock1.denselayer1.norm2.running_var", {4}},
    {"features.denseblock1.denselayer1.norm2.num_batches_tracked", {}},
    {"features.denseblock1.denselayer1.conv2.weight", {2, 4, 3, 3}},
    {"classifier.weight", {2, 6}},
    {"classifier.bias", {2}},
};

std::vector<std::string> names_of(const nn::NamedTensors& entries) {
  std::vector<std::string> names;
  for (const auto& entry : entries) names.push_back(entry.first);
  return names;
}

std::map<std::string, Tensor> as_map(const nn::NamedTensors& entries) {
  return {entries.begin(), entries.end()};
}

// y = x * weight + bias, elementwise: a trainable module that needs only the elementwise ops.
struct Affine : nn::Module {
  explicit Affine(const Shape& shape) {
    weight = register_parameter("weight", Tensor::ones(shape));
    bias = register_parameter("bias", Tensor::zeros(shape));
  }
  Tensor forward(const Tensor& x) override { return ops::add(ops::mul(x, weight), bias); }
  Tensor weight, bias;
};

// Sets the gradient of `param` to `grad` and steps, once per gradient; returns the parameter's
// values after each step.
std::vector<std::vector<float>> run_steps(optim::Optimizer& optimizer, const Tensor& param,
                                          const std::vector<std::vector<float>>& grads) {
  std::vector<std::vector<float>> trajectory;
  for (const auto& g : grads) {
    param.set_grad(Tensor::from_vector(g, param.shape()));
    optimizer.step();
    trajectory.push_back(param.to_vector());
  }
  return trajectory;
}

void require_close(const std::vector<std::vector<float>>& actual, const std::vector<std::vector<double>>& expected) {
  REQUIRE(actual.size() == expected.size());
  for (size_t step = 0; step < expected.size(); ++step) {
    INFO("after step " << step + 1);
    REQUIRE(actual[step].size() == expected[step].size());
    for (size_t i = 0; i < expected[step].size(); ++i)
      CHECK(actual[step][i] == Approx(expected[step][i]).epsilon(1e-6).margin(1e-7));
  }
}

// The gradients every optimizer test uses, on p0 = [1, -2].
const std::vector<std::vector<float>> kGrads = {{0.5f, -1.0f}, {0.1f, 0.2f}, {-0.3f, 0.4f}};
Tensor initial_param() { return Tensor::from_vector({1.f, -2.f}, {2}).set_requires_grad(); }

}  // namespace

// --- Module: names and order -------------------------------------------------------------------

TEST_CASE("nn::Module: state_dict names and orders entries as PyTorch's", "[nn]") {
  NetLike net(1);
  const nn::NamedTensors state = net.state_dict();
  REQUIRE(state.size() == kNetLikeState.size());
  for (size_t i = 0; i < state.size(); ++i) {
    INFO("entry " << i);
    CHECK(state[i].first == kNetLikeState[i].first);
    CHECK(state[i].second.shape() == kNetLikeState[i].second);
  }
}

TEST_CASE("nn::Module: named_parameters, named_buffers and named_modules, pre-order", "[nn]") {
  NetLike net(1);
  const std::string layer = "features.denseblock1.denselayer1.";
  CHECK(names_of(net.named_parameters()) ==
        std::vector<std::string>{"scale", "features.conv0.weight", "features.norm0.weight", "features.norm0.bias",
                                 layer + "norm1.weight", layer + "norm1.bias", layer + "conv1.weight",
                                 layer + "norm2.weight", layer + "norm2.bias", layer + "conv2.weight",
                                 "classifier.weight", "classifier.bias"});
  CHECK(names_of(net.named_buffers()) ==
        std::vector<std::string>{"count", "features.norm0.running_mean", "features.norm0.running_var",
                                 "features.norm0.num_batches_tracked", layer + "norm1.running_mean",
                                 layer + "norm1.running_var", layer + "norm1.num_batches_tracked",
                                 layer + "norm2.running_mean", layer + "norm2.running_var",
                                 layer + "norm2.num_batches_tracked"});
  CHECK(names_of(net.named_parameters(false)) == std::vector<std::string>{"scale"});

  std::vector<std::string> module_names;
  for (const auto& [name, module] : net.named_modules()) module_names.push_back(name);
  CHECK(module_names == std::vector<std::string>{"", "features", "features.conv0", "features.norm0",
                                                 "features.relu0", "features.denseblock1",
                                                 "features.denseblock1.denselayer1", layer + "norm1", layer + "relu1",
                                                 layer + "conv1", layer + "norm2", layer + "relu2", layer + "conv2",
                                                 "classifier"});

  for (const Tensor& p : net.parameters()) CHECK(p.requires_grad());
  for (const auto& [name, buffer] : net.named_buffers()) CHECK_FALSE(buffer.requires_grad());
  CHECK(net.parameters().size() == 12);
  CHECK(net.child("classifier") == net.classifier);
  CHECK_THROWS_WITH(net.child("fc"), Contains("fc"));
}

TEST_CASE("nn::Module: a tensor registered twice is listed once by named_parameters", "[nn]") {
  nn::Module root;
  auto a = root.register_module("a", std::make_shared<nn::Linear>(3, 2));
  auto b = root.register_module("b", std::make_shared<nn::Module>());
  b->register_parameter("tied", a->weight());
  CHECK(names_of(root.named_parameters()) == std::vector<std::string>{"a.weight", "a.bias"});
  // state_dict keeps every name, as PyTorch's does.
  CHECK(names_of(root.state_dict()) == std::vector<std::string>{"a.weight", "a.bias", "b.tied"});
}

TEST_CASE("nn::Module: registration rejects bad and duplicate names", "[nn]") {
  nn::Module m;
  m.register_parameter("weight", Tensor::zeros({2}));
  CHECK_THROWS_WITH(m.register_buffer("weight", Tensor::zeros({2})), Contains("already registered"));
  CHECK_THROWS_WITH(m.register_module("weight", std::make_shared<nn::ReLU>()), Contains("already registered"));
  CHECK_THROWS_WITH(m.register_parameter("a.b", Tensor::zeros({2})), Contains("'.'"));
  CHECK_THROWS(m.register_parameter("", Tensor::zeros({2})));
  CHECK_THROWS(m.register_buffer("undefined", Tensor()));
  // An op's result is not a leaf: it cannot become a parameter.
  const Tensor leaf = Tensor::ones({2}).set_requires_grad();
  CHECK_THROWS_WITH(m.register_parameter("computed", ops::scale(leaf, 2.f)), Contains("leaf"));
}

TEST_CASE("nn::Module: the default forward names the module's type", "[nn]") {
  NetLike net(1);
  CHECK_THROWS_WITH(net(Tensor::zeros({1})), Contains("NetLike"));
}

TEST_CASE("nn::Sequential: push_back numbers children, add names them, forward chains them", "[nn]") {
  nn::Sequential numbered;
  auto first = numbered.push_back(std::make_shared<Affine>(Shape{2}));
  numbered.push_back(std::make_shared<Affine>(Shape{2}));
  CHECK(names_of(numbered.state_dict()) == std::vector<std::string>{"0.weight", "0.bias", "1.weight", "1.bias"});

  nn::Sequential mixed;
  mixed.add("conv0", std::make_shared<Affine>(Shape{2}));
  mixed.push_back(std::make_shared<Affine>(Shape{2}));  // named after its position, as PyTorch's append
  CHECK(mixed.named_children()[1].first == "1");
  CHECK(mixed.size() == 2);

  // (x·2 + 1)·3 − 1 with first = (2, 1) and second = (3, −1).
  first->weight.fill_(2.f);
  first->bias.fill_(1.f);
  auto second = std::static_pointer_cast<Affine>(numbered.child("1"));
  second->weight.fill_(3.f);
  second->bias.fill_(-1.f);
  CHECK(numbered(Tensor::from_vector({1.f, -1.f}, {2})).to_vector() == std::vector<float>{8.f, -4.f});

  nn::Sequential listed({std::make_shared<nn::ReLU>(), std::make_shared<Affine>(Shape{2})});
  CHECK(names_of(listed.state_dict()) == std::vector<std::string>{"1.weight", "1.bias"});
}

// --- Module: state dicts -----------------------------------------------------------------------

TEST_CASE("nn::Module: state_dict shares storage with the live tensors", "[nn]") {
  NetLike net(1);
  const auto state = as_map(net.state_dict());
  CHECK(state.at("classifier.weight").storage() == net.classifier->weight().storage());
  CHECK_FALSE(state.at("classifier.weight").requires_grad());  // detached, as PyTorch's
}

TEST_CASE("nn::Module: load_state_dict round trip copies every value", "[nn]") {
  NetLike source(1), target(2);
  source.count.fill_(5.f);
  const auto classifier_before = target.classifier->weight().to_vector();
  REQUIRE(classifier_before != source.classifier->weight().to_vector());

  const nn::LoadStateDictResult result = target.load_state_dict(source.state_dict());
  CHECK(result.missing_keys.empty());
  CHECK(result.unexpected_keys.empty());
  const auto loaded = as_map(target.state_dict());
  for (const auto& [name, tensor] : source.state_dict()) {
    INFO(name);
    CHECK(loaded.at(name).to_vector() == tensor.to_vector());
  }
  // Values were copied, not aliased: training the source later leaves the target alone.
  CHECK(target.classifier->weight().storage() != source.classifier->weight().storage());
  source.classifier->weight().fill_(0.f);
  CHECK(target.classifier->weight().to_vector() != source.classifier->weight().to_vector());
}

TEST_CASE("nn::Module: load_state_dict converts half-precision values", "[nn]") {
  nn::Module m;
  const Tensor w = m.register_parameter("w", Tensor::zeros({3}));
  m.load_state_dict(std::map<std::string, Tensor>{{"w", Tensor::from_vector({0.5f, -2.f, 3.f}, {3}).to(DType::F16)}});
  CHECK(w.to_vector() == std::vector<float>{0.5f, -2.f, 3.f});
}

TEST_CASE("nn::Module: strict load_state_dict lists every problem in one error and loads nothing", "[nn]") {
  NetLike net(1);
  auto state = as_map(NetLike(2).state_dict());
  state.erase("features.norm0.running_var");
  state.erase("features.denseblock1.denselayer1.conv2.weight");
  state["features.extra.weight"] = Tensor::zeros({1});
  state["fc.bias"] = Tensor::zeros({2});
  state["classifier.weight"] = Tensor::zeros({14, 6});
  state["features.norm0.weight"] = Tensor::zeros({5});
  state["scale"] = Tensor::full({2}, 7.f);  // fits, but must not be loaded either

  std::string message;
  try {
    net.load_state_dict(state);
  } catch (const Error& e) {
    message = e.what();
  }
  REQUIRE_FALSE(message.empty());
  CHECK_THAT(message, Contains("missing: features.norm0.running_var"));
  CHECK_THAT(message, Contains("missing: features.denseblock1.denselayer1.conv2.weight"));
  CHECK_THAT(message, Contains("unexpected: features.extra.weight"));
  CHECK_THAT(message, Contains("unexpected: fc.bias"));
  CHECK_THAT(message, Contains("wrong shape: classifier.weight: [14, 6] in the state dict, [2, 6] in the model"));
  CHECK_THAT(message, Contains("wrong shape: features.norm0.weight: [5] in the state dict, [4] in the model"));
  CHECK_THAT(message, Contains("6 problems"));
  CHECK(net.scale.to_vector() == std::vector<float>{1.f, 1.f});
}

TEST_CASE("nn::Module: non-strict load_state_dict skips missing and unexpected names, never wrong shapes", "[nn]") {
  NetLike net(1);
  auto state = as_map(NetLike(2).state_dict());
  state.erase("classifier.weight");
  state.erase("classifier.bias");
  state["fc.weight"] = Tensor::zeros({14, 6});
  state["scale"] = Tensor::full({2}, 7.f);

  const auto classifier_before = net.classifier->weight().to_vector();
  const nn::LoadStateDictResult result = net.load_state_dict(state, /*strict=*/false);
  CHECK(result.missing_keys == std::vector<std::string>{"classifier.weight", "classifier.bias"});
  CHECK(result.unexpected_keys == std::vector<std::string>{"fc.weight"});
  CHECK(net.scale.to_vector() == std::vector<float>{7.f, 7.f});
  CHECK(net.classifier->weight().to_vector() == classifier_before);

  state["features.conv0.weight"] = Tensor::zeros({4, 3, 1, 1});
  CHECK_THROWS_WITH(net.load_state_dict(state, false), Contains("wrong shape: features.conv0.weight"));
}

// --- Module: modes and gradients ---------------------------------------------------------------

TEST_CASE("nn::Module: train and eval propagate to every descendant", "[nn]") {
  NetLike net(1);
  auto all_training = [&](bool expected) {
    for (const auto& [name, module] : net.named_modules())
      if (module->is_training() != expected) return false;
    return true;
  };
  CHECK(all_training(true));
  net.eval();
  CHECK(all_training(false));
  net.train();
  CHECK(all_training(true));
  // A subtree can be switched alone.
  net.features->eval();
  CHECK(net.is_training());
  CHECK_FALSE(net.features->child("denseblock1")->child("denselayer1")->child("norm1")->is_training());
  CHECK(net.classifier->is_training());
}

TEST_CASE("nn::Module: zero_grad clears every parameter's gradient", "[nn]") {
  NetLike net(1);
  for (const Tensor& p : net.parameters()) p.set_grad(Tensor::ones(p.shape()));
  net.zero_grad(/*set_to_none=*/false);
  for (const Tensor& p : net.parameters()) CHECK(p.grad().to_vector() == std::vector<float>(p.numel(), 0.f));
  net.zero_grad();
  for (const Tensor& p : net.parameters()) CHECK_FALSE(p.grad().defined());
}

// --- Initialisation ------------------------------------------------------------------------------

TEST_CASE("nn: Conv2d and Linear start as PyTorch's: U(±1/sqrt(fan_in))", "[nn][init]") {
  Generator gen(11);
  nn::Conv2d conv(16, 32, 3, 1, 1, true, gen);
  const double bound = 1.0 / std::sqrt(16.0 * 3 * 3);  // = 1/12
  const auto w = conv.weight().to_vector();
  const auto [w_min, w_max] = std::minmax_element(w.begin(), w.end());
  CHECK(*w_min >= -bound);
  CHECK(*w_max <= bound);
  // 4608 draws: the extremes come within 2% of the bound.
  CHECK(*w_min < -0.98 * bound);
  CHECK(*w_max > 0.98 * bound);
  for (float b : conv.bias().to_vector()) CHECK(std::abs(b) <= bound);
  CHECK(conv.weight().shape() == Shape{32, 16, 3, 3});

  nn::Linear linear(100, 10, true, gen);
  for (float v : linear.weight().to_vector()) CHECK(std::abs(v) <= 0.1);
  for (float v : linear.bias().to_vector()) CHECK(std::abs(v) <= 0.1);
  CHECK_FALSE(nn::Linear(4, 2, false, gen).bias().defined());
  CHECK(names_of(nn::Conv2d(4, 2, 1, 1, 0, false, gen).state_dict()) == std::vector<std::string>{"weight"});
}

TEST_CASE("nn: BatchNorm2d starts at weight 1, bias 0, mean 0, var 1, count 0", "[nn][init]") {
  nn::BatchNorm2d bn(3);
  CHECK(bn.weight().to_vector() == std::vector<float>{1, 1, 1});
  CHECK(bn.bias().to_vector() == std::vector<float>{0, 0, 0});
  CHECK(bn.running_mean().to_vector() == std::vector<float>{0, 0, 0});
  CHECK(bn.running_var().to_vector() == std::vector<float>{1, 1, 1});
  CHECK(bn.num_batches_tracked().shape() == Shape{});
  CHECK(bn.num_batches_tracked().item() == 0.f);
}

TEST_CASE("nn: layers built after manual_seed are reproducible", "[nn][init]") {
  manual_seed(42);
  const auto first = nn::Conv2d(3, 8, 3).weight().to_vector();
  const auto next = nn::Conv2d(3, 8, 3).weight().to_vector();
  manual_seed(42);
  CHECK(nn::Conv2d(3, 8, 3).weight().to_vector() == first);
  CHECK(first != next);
}

TEST_CASE("nn::init: kaiming_normal_ has std gain/sqrt(fan)", "[nn][init]") {
  Generator gen(5);
  const Tensor w = Tensor::empty({256, 128, 3, 3});  // 294912 draws: the std is known to ~0.2%
  auto moments = [&] {
    const auto v = w.to_vector();
    double sum = 0, sum_sq = 0;
    for (float x : v) sum += x, sum_sq += double(x) * x;
    const double mean = sum / double(v.size());
    return std::pair{mean, std::sqrt(sum_sq / double(v.size()) - mean * mean)};
  };

  nn::init::kaiming_normal_(w, gen);  // ReLU gain sqrt(2), fan_in = 128·9
  auto [mean, stddev] = moments();
  CHECK(std::abs(mean) < 1e-3);
  CHECK(stddev == Approx(std::sqrt(2.0 / 1152.0)).epsilon(0.02));

  nn::init::kaiming_normal_(w, gen, {.mode = nn::init::FanMode::Out});  // fan_out = 256·9
  std::tie(mean, stddev) = moments();
  CHECK(stddev == Approx(std::sqrt(2.0 / 2304.0)).epsilon(0.02));

  nn::init::kaiming_uniform_(w, gen);  // bound sqrt(2)·sqrt(3/1152); the std is bound/sqrt(3)
  std::tie(mean, stddev) = moments();
  CHECK(stddev == Approx(std::sqrt(2.0 / 1152.0)).epsilon(0.02));
  for (float x : w.to_vector()) REQUIRE(std::abs(x) <= std::sqrt(6.0 / 1152.0));
}

TEST_CASE("nn::init: uniform_, constant_, gains and fans", "[nn][init]") {
  Generator gen(3);
  const Tensor t = Tensor::empty({1000});
  nn::init::uniform_(t, 2.f, 3.f, gen);
  for (float v : t.to_vector()) REQUIRE((v >= 2.f && v < 3.f));
  nn::init::constant_(t, 0.25f);
  CHECK(t.to_vector() == std::vector<float>(1000, 0.25f));

  CHECK(nn::init::calculate_gain(nn::init::Nonlinearity::ReLU) == Approx(std::sqrt(2.0)));
  CHECK(nn::init::calculate_gain(nn::init::Nonlinearity::LeakyReLU, std::sqrt(5.0)) == Approx(std::sqrt(1.0 / 3.0)));
  CHECK(nn::init::fan(Tensor::empty({8, 4, 3, 3}), nn::init::FanMode::In) == 36);
  CHECK(nn::init::fan(Tensor::empty({8, 4, 3, 3}), nn::init::FanMode::Out) == 72);
  CHECK_THROWS_WITH(nn::init::kaiming_normal_(t, gen), Contains("at least 2"));
}

// --- Adam ----------------------------------------------------------------------------------------

// lr = 0.1, β1 = 0.9, β2 = 0.999, eps = 1e-8; p0 = [1, -2]; gradients [0.5, -1], [0.1, 0.2], [-0.3, 0.4].
// Bias corrections: bc1 = 1 − 0.9^t = 0.1, 0.19, 0.271; bc2 = 1 − 0.999^t = 0.001, 0.001999, 0.002997001.
// Element 0 (element 1 likewise):
//   t=1: m = 0.1·0.5 = 0.05, v = 0.001·0.25 = 0.00025, denom = sqrt(0.00025)/sqrt(0.001) + 1e-8 = 0.50000001
//        p = 1 − (0.1/0.1)·0.05/0.50000001 = 0.900000002
//   t=2: m = 0.9·0.05 + 0.1·0.1 = 0.055, v = 0.999·0.00025 + 0.001·0.01 = 0.00025975,
//        denom = sqrt(0.00025975)/sqrt(0.001999) + 1e-8 = 0.3604718813
//        p = 0.900000002 − (0.1/0.19)·0.055/0.3604718813 = 0.8196959064
//   t=3: m = 0.9·0.055 − 0.1·0.3 = 0.0195, v = 0.999·0.00025975 + 0.001·0.09 = 0.00034949025,
//        denom = sqrt(0.00034949025)/sqrt(0.002997001) + 1e-8 = 0.3414869416
//        p = 0.8196959064 − (0.1/0.271)·0.0195/0.3414869416 = 0.7986246118
// Element 1: m = −0.1, −0.07, −0.023; v = 0.001, 0.001039, 0.001197961; denom = 1.00000001, 0.7209437526,
//        0.6322340806; p = −1.900000001, −1.848897394, −1.835473434.
TEST_CASE("optim::Adam: three steps match the hand-derived values", "[optim]") {
  const Tensor p = initial_param();
  optim::Adam adam({p}, {.lr = 0.1});
  require_close(run_steps(adam, p, kGrads), {{0.900000002, -1.900000001},
                                             {0.8196959064, -1.848897394},
                                             {0.7986246118, -1.835473434}});
  CHECK(adam.state_dict().steps == std::vector<int64_t>{3});
}

// As above with weight_decay = 0.1: the gradient becomes g + 0.1·p before the moments.
//   t=1: g = [0.5 + 0.1·1, −1 + 0.1·(−2)] = [0.6, −1.2]; m̂ = g, v̂ = g², so p −= 0.1·g/(|g| + 1e-8):
//        p = [1 − 0.06/0.60000001, −2 + 0.12/1.20000001] = [0.9000000017, −1.900000001]
//   t=2: g = [0.1 + 0.09, 0.2 − 0.19] = [0.19, 0.01]; m = [0.9·0.06 + 0.1·0.19, 0.9·(−0.12) + 0.1·0.01]
//        = [0.073, −0.107]; v = [0.999·0.00036 + 0.001·0.0361, 0.999·0.00144 + 0.001·0.0001]
//        = [0.00039574, 0.00143866]; denom = sqrt(v)/sqrt(0.001999) + 1e-8 = [0.4449370668, 0.8483453671]
//        p = [0.9000000017 − (0.1/0.19)·0.073/0.4449370668, −1.900000001 + (0.1/0.19)·0.107/0.8483453671]
//          = [0.8136483454, −1.833616908]
//   t=3: g = [−0.3 + 0.08136483454, 0.4 − 0.1833616908] = [−0.2186351655, 0.2166383092];
//        m = [0.9·0.073 + 0.1·g0, 0.9·(−0.107) + 0.1·g1] = [0.04383648345, −0.07463616908];
//        v = [0.999·0.00039574 + 0.001·g0², 0.999·0.00143866 + 0.001·g1²] = [0.0004431455956, 0.001484153497];
//        denom = sqrt(v)/sqrt(0.002997001) + 1e-8 = [0.3845296087, 0.703713645];
//        p = [0.8136483454 − (0.1/0.271)·0.04383648345/0.3845296087,
//             −1.833616908 + (0.1/0.271)·0.07463616908/0.703713645] = [0.7715818211, −1.794480219]
TEST_CASE("optim::Adam: weight decay is added to the gradient (L2, not decoupled)", "[optim]") {
  const Tensor p = initial_param();
  optim::Adam adam({p}, {.lr = 0.1, .weight_decay = 0.1});
  require_close(run_steps(adam, p, kGrads), {{0.9000000017, -1.900000001},
                                             {0.8136483454, -1.833616908},
                                             {0.7715818211, -1.794480219}});
}

// With a constant gradient g the bias-corrected moments are exactly m̂ = g and v̂ = g², so each step
// moves p by lr·g/(|g| + eps) ≈ lr: 1 − 0.1 = 0.9, then 0.9 − 0.01 = 0.89 after set_lr(0.01).
TEST_CASE("optim: set_lr takes effect from the next step", "[optim]") {
  const Tensor p = Tensor::from_vector({1.f}, {1}).set_requires_grad();
  optim::Adam adam({p}, {.lr = 0.1});
  p.set_grad(Tensor::ones({1}));
  adam.step();
  CHECK(p.item() == Approx(0.9).epsilon(1e-6));
  adam.set_lr(0.01);
  CHECK(adam.lr() == 0.01);
  adam.step();
  CHECK(p.item() == Approx(0.89).epsilon(1e-6));

  // SGD: p −= lr·g with g = 1: 1 − 0.1 = 0.9, then 0.9 − 0.01 = 0.89.
  const Tensor q = Tensor::from_vector({1.f}, {1}).set_requires_grad();
  optim::SGD sgd({q}, {.lr = 0.1});
  q.set_grad(Tensor::ones({1}));
  sgd.step();
  sgd.set_lr(0.01);
  sgd.step();
  CHECK(q.item() == Approx(0.89).epsilon(1e-6));
  CHECK_THROWS(sgd.set_lr(-1.0));
}

TEST_CASE("optim: a parameter without a gradient is left unchanged and keeps its own step count", "[optim]") {
  const Tensor a = Tensor::from_vector({1.f, 2.f}, {2}).set_requires_grad();
  const Tensor b = Tensor::from_vector({3.f}, {1}).set_requires_grad();
  optim::Adam adam({a, b}, {.lr = 0.1});
  a.set_grad(Tensor::ones({2}));
  adam.step();
  adam.step();
  CHECK(b.item() == 3.f);
  CHECK(adam.state_dict().steps == std::vector<int64_t>{2, 0});
  CHECK_FALSE(adam.state_dict().tensors.contains("1.exp_avg"));

  // b's first step is its own t = 1 (m̂ = g, v̂ = g²): b = 3 − 0.1·2/(2 + 1e-8) = 2.9; a is skipped.
  adam.zero_grad();
  b.set_grad(Tensor::full({1}, 2.f));
  const auto a_before = a.to_vector();
  adam.step();
  CHECK(b.item() == Approx(2.9).epsilon(1e-6));
  CHECK(a.to_vector() == a_before);
  CHECK(adam.state_dict().steps == std::vector<int64_t>{2, 1});

  optim::SGD sgd({a}, {.lr = 0.1, .momentum = 0.9});
  sgd.zero_grad();
  sgd.step();
  CHECK(a.to_vector() == a_before);
}

// --- SGD -----------------------------------------------------------------------------------------

// lr = 0.1, momentum 0.9; p0 = [1, -2]; gradients [0.5, -1], [0.1, 0.2], [-0.3, 0.4].
// The buffer starts as the first gradient, then b = 0.9·b + g; p −= 0.1·b:
//   b = [0.5, −1]     p = [0.95, −1.9]
//   b = [0.55, −0.7]  p = [0.895, −1.83]
//   b = [0.195, −0.23] p = [0.8755, −1.807]
TEST_CASE("optim::SGD: momentum, first buffer = gradient", "[optim]") {
  const Tensor p = initial_param();
  optim::SGD sgd({p}, {.lr = 0.1, .momentum = 0.9});
  require_close(run_steps(sgd, p, kGrads), {{0.95, -1.9}, {0.895, -1.83}, {0.8755, -1.807}});
}

// Nesterov: same buffers as above, but the step uses d = g + 0.9·b:
//   d = [0.5 + 0.45, −1 − 0.9] = [0.95, −1.9]        p = [0.905, −1.81]
//   d = [0.1 + 0.495, 0.2 − 0.63] = [0.595, −0.43]   p = [0.8455, −1.767]
//   d = [−0.3 + 0.1755, 0.4 − 0.207] = [−0.1245, 0.193] p = [0.85795, −1.7863]
TEST_CASE("optim::SGD: nesterov momentum", "[optim]") {
  const Tensor p = initial_param();
  optim::SGD sgd({p}, {.lr = 0.1, .momentum = 0.9, .nesterov = true});
  require_close(run_steps(sgd, p, kGrads), {{0.905, -1.81}, {0.8455, -1.767}, {0.85795, -1.7863}});
}

// momentum 0.9, dampening 0.5, weight_decay 0.01: g' = g + 0.01·p; b = g' first, then 0.9·b + 0.5·g'.
//   t=1: g' = [0.51, −1.02];                 b = [0.51, −1.02];          p = [0.949, −1.898]
//   t=2: g' = [0.1 + 0.00949, 0.2 − 0.01898] = [0.10949, 0.18102];
//        b = [0.459 + 0.054745, −0.918 + 0.09051] = [0.513745, −0.82749];  p = [0.8976255, −1.815251]
//   t=3: g' = [−0.3 + 0.008976255, 0.4 − 0.01815251] = [−0.291023745, 0.38184749];
//        b = [0.4623705 − 0.1455118725, −0.744741 + 0.190923745] = [0.3168586275, −0.553817255];
//        p = [0.8976255 − 0.03168586275, −1.815251 + 0.0553817255] = [0.8659396373, −1.759869275]
TEST_CASE("optim::SGD: dampening and weight decay", "[optim]") {
  const Tensor p = initial_param();
  optim::SGD sgd({p}, {.lr = 0.1, .momentum = 0.9, .dampening = 0.5, .weight_decay = 0.01});
  require_close(run_steps(sgd, p, kGrads),
                {{0.949, -1.898}, {0.8976255, -1.815251}, {0.8659396373, -1.759869275}});
}

// No momentum, weight_decay 0.1: p −= 0.1·(g + 0.1·p).
//   p = [1 − 0.1·0.6, −2 + 0.1·1.2] = [0.94, −1.88]
//   p = [0.94 − 0.1·0.194, −1.88 − 0.1·0.012] = [0.9206, −1.8812]
//   p = [0.9206 + 0.1·0.20794, −1.8812 − 0.1·0.21188] = [0.941394, −1.902388]
TEST_CASE("optim::SGD: plain with weight decay", "[optim]") {
  const Tensor p = initial_param();
  optim::SGD sgd({p}, {.lr = 0.1, .weight_decay = 0.1});
  require_close(run_steps(sgd, p, kGrads), {{0.94, -1.88}, {0.9206, -1.8812}, {0.941394, -1.902388}});
  CHECK(sgd.state_dict().tensors.empty());  // no momentum, no state tensors
}

TEST_CASE("optim: options are validated", "[optim]") {
  const Tensor p = initial_param();
  CHECK_THROWS_WITH(optim::SGD({p}, {.lr = 0.1, .momentum = 0.0, .nesterov = true}), Contains("nesterov"));
  CHECK_THROWS_WITH(optim::SGD({p}, {.lr = 0.1, .momentum = 0.9, .dampening = 0.1, .nesterov = true}),
                    Contains("nesterov"));
  CHECK_THROWS_WITH(optim::Adam({p}, {.beta1 = 1.0}), Contains("beta1"));
  CHECK_THROWS_WITH(optim::Adam({p}, {.beta2 = -0.1}), Contains("beta2"));
  CHECK_THROWS_WITH(optim::Adam({p, p}), Contains("more than once"));
  CHECK_THROWS_WITH(optim::Adam({}), Contains("empty"));
  CHECK_THROWS(optim::Adam({p}, {.lr = -1.0}));
}

// --- Optimizer state ---------------------------------------------------------------------------

namespace {
// Runs `optimizer` on p for the given gradients, then checks that a fresh optimizer loaded from its
// state (on a copy of p) continues bit for bit identically.
template <typename MakeOptimizer>
void check_resumes_identically(MakeOptimizer make_optimizer) {
  const std::vector<std::vector<float>> more = {{0.2f, 0.7f}, {-0.6f, 0.05f}, {0.3f, -0.3f}};
  const Tensor p = initial_param();
  auto original = make_optimizer(p);
  run_steps(*original, p, kGrads);

  const Tensor resumed_p = p.detach().clone().set_requires_grad();
  auto resumed = make_optimizer(resumed_p);
  resumed->load_state_dict(original->state_dict());
  CHECK(resumed->state_dict().steps == original->state_dict().steps);
  CHECK(resumed->lr() == original->lr());

  const auto expected = run_steps(*original, p, more);
  CHECK(run_steps(*resumed, resumed_p, more) == expected);
}
}  // namespace

TEST_CASE("optim: state_dict round trip resumes identically", "[optim]") {
  SECTION("Adam") {
    check_resumes_identically([](const Tensor& p) {
      auto adam = std::make_unique<optim::Adam>(std::vector<Tensor>{p}, optim::AdamOptions{.lr = 0.05});
      adam->set_lr(0.02);  // a schedule's change is part of the state
      return adam;
    });
  }
  SECTION("SGD with momentum") {
    check_resumes_identically([](const Tensor& p) {
      return std::make_unique<optim::SGD>(std::vector<Tensor>{p}, optim::SGDOptions{.lr = 0.1, .momentum = 0.9});
    });
  }
}

TEST_CASE("optim: the state holds named moments and copies on load", "[optim]") {
  const Tensor p = initial_param();
  optim::Adam adam({p}, {.lr = 0.1});
  run_steps(adam, p, {kGrads[0]});
  const optim::OptimizerState state = adam.state_dict();
  CHECK(state.type == "Adam");
  CHECK(state.steps == std::vector<int64_t>{1});
  // After one step: m = 0.1·g, v = 0.001·g².
  const auto m = state.tensors.at("0.exp_avg").to_vector();
  const auto v = state.tensors.at("0.exp_avg_sq").to_vector();
  CHECK(m[0] == Approx(0.05));
  CHECK(m[1] == Approx(-0.1));
  CHECK(v[0] == Approx(0.00025));
  CHECK(v[1] == Approx(0.001));

  const Tensor q = initial_param();
  optim::Adam other({q}, {.lr = 0.1});
  other.load_state_dict(state);
  state.tensors.at("0.exp_avg").fill_(100.f);  // the loaded state is a copy
  CHECK(other.state_dict().tensors.at("0.exp_avg").to_vector()[0] == Approx(0.05));
}

TEST_CASE("optim: load_state_dict refuses a state that does not fit, changing nothing", "[optim]") {
  const Tensor p = initial_param();
  optim::Adam adam({p}, {.lr = 0.1});
  run_steps(adam, p, {kGrads[0]});
  const optim::OptimizerState good = adam.state_dict();

  optim::SGD sgd({initial_param()}, {.lr = 0.1, .momentum = 0.9});
  CHECK_THROWS_WITH(sgd.load_state_dict(good), Contains("Adam"));

  optim::Adam two({initial_param(), initial_param()}, {.lr = 0.1});
  CHECK_THROWS_WITH(two.load_state_dict(good), Contains("1 parameters"));

  optim::OptimizerState bad = good;
  bad.tensors.erase("0.exp_avg_sq");
  bad.tensors["0.exp_avg"] = Tensor::zeros({3});
  bad.tensors["5.exp_avg"] = Tensor::zeros({2});
  optim::Adam fresh({initial_param()}, {.lr = 0.3});
  std::string message;
  try {
    fresh.load_state_dict(bad);
  } catch (const Error& e) {
    message = e.what();
  }
  CHECK_THAT(message, Contains("missing: 0.exp_avg_sq"));
  CHECK_THAT(message, Contains("wrong shape: 0.exp_avg"));
  CHECK_THAT(message, Contains("unexpected: 5.exp_avg"));
  CHECK(fresh.lr() == 0.3);
  CHECK(fresh.state_dict().steps == std::vector<int64_t>{0});
}

// --- Module and optimizer together ---------------------------------------------------------------

TEST_CASE("nn + optim: an elementwise model fits its target with Adam", "[nn][optim]") {
  Generator gen(9);
  const Tensor x = Tensor::randn({64}, gen);
  const Tensor target = ops::add(ops::scale(x, 3.f), Tensor::full({64}, -1.f));  // y = 3x − 1 per element
  Affine model(Shape{64});
  optim::Adam adam(model.parameters(), {.lr = 0.05});
  auto loss_now = [&] {
    const Tensor error = ops::sub(model(x), target);
    return ops::mean(ops::mul(error, error));
  };
  const float initial = loss_now().item();
  for (int step = 0; step < 200; ++step) {
    adam.zero_grad();
    loss_now().backward();
    adam.step();
  }
  const float final_loss = loss_now().item();
  INFO("loss " << initial << " -> " << final_loss);
  CHECK(final_loss < 0.05f * initial);
}

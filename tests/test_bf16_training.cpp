// bf16 mixed-precision training (--precision bf16, chex/precision.h): under a bf16 scope the
// convolutions multiply bf16-rounded operands in both passes and everything else stays fp32. The
// conv2d op's gradients against the fp32 op on rounded operands; the memory-efficient dense block
// in bf16 against the concatenating composition in bf16; DenseNet-121's gradients against fp32's
// (issue 16's bound, 5e-2, with fixed statistics; in training mode, against PyTorch's autocast:
// tests/torch/test_densenet_parity.cpp).
#include <catch2/catch.hpp>

#include <cmath>
#include <string>
#include <vector>

#include "chex/autograd.h"
#include "chex/ops.h"
#include "chex/precision.h"
#include "kernels/conv2d.h"
#include "models/densenet.h"
#include "support/tiny_densenet.h"

using namespace chex;

namespace {

float round_bf16(float v) { return kernels::cpu::bf16_to_float(kernels::cpu::float_to_bf16(v)); }

Tensor rounded(const Tensor& t) {
  std::vector<float> v = t.to_vector();
  for (float& x : v) x = round_bf16(x);
  return Tensor::from_vector(v, t.shape());
}

// ||a - b|| / ||b||
double norm_relative_error(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  double diff = 0, ref = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    ref += double(b[i]) * b[i];
  }
  return ref > 0 ? std::sqrt(diff / ref) : std::sqrt(diff);
}
double norm_relative_error(const Tensor& a, const Tensor& b) {
  return norm_relative_error(a.to_vector(), b.to_vector());
}

struct ConvCase {
  std::string name;
  Shape x, w;
  ops::Conv2dOptions options;
  bool bias;
};

}  // namespace

TEST_CASE("conv2d under a bf16 scope trains on bf16-rounded operands", "[bf16][conv][training]") {
  // DenseNet's geometries, small: a dense layer's 1x1 and 3x3, a transition's 1x1, the 7x7/2 stem.
  const ConvCase c = GENERATE(ConvCase{"1x1", {3, 24, 7, 7}, {16, 24, 1, 1}, {}, false},
                              ConvCase{"3x3", {2, 16, 9, 9}, {8, 16, 3, 3}, {.stride = 1, .padding = 1}, true},
                              ConvCase{"7x7/2", {2, 3, 20, 20}, {8, 3, 7, 7}, {.stride = 2, .padding = 3}, true});
  DYNAMIC_SECTION(c.name) {
    Generator gen(21);
    const Tensor x_data = Tensor::randn(c.x, gen), w_data = Tensor::randn(c.w, gen);
    const Tensor b_data = c.bias ? Tensor::randn({c.w[0]}, gen) : Tensor();
    // The output's gradient is bf16-representable, so that the bf16 backward's rounding of dy
    // changes nothing and the fp32 op on rounded x and w is the exact reference.
    auto run = [&](bool bf16, const Tensor& x0, const Tensor& w0, const Tensor& projection) {
      Tensor x = x0.clone().set_requires_grad(), w = w0.clone().set_requires_grad();
      Tensor b = c.bias ? b_data.clone().set_requires_grad() : Tensor();
      const PrecisionScope scope(bf16 ? Precision::bf16 : Precision::fp32);
      const Tensor y = ops::conv2d(x, w, b, c.options);
      ops::sum(ops::mul(y, projection)).backward();
      return std::vector<Tensor>{y.detach(), x.grad(), w.grad(), c.bias ? b.grad() : Tensor()};
    };
    const Shape y_shape = ops::conv2d(x_data, w_data, b_data, c.options).shape();
    const Tensor projection = rounded(Tensor::randn(y_shape, gen));
    const std::vector<Tensor> bf16 = run(true, x_data, w_data, projection);
    const std::vector<Tensor> reference = run(false, rounded(x_data), rounded(w_data), projection);
    const std::vector<Tensor> fp32 = run(false, x_data, w_data, projection);
    const char* names[] = {"y", "dx", "dw", "dbias"};
    for (size_t i = 0; i < 4; ++i) {
      if (!reference[i].defined()) continue;
      INFO(names[i] << ": vs the rounded reference " << norm_relative_error(bf16[i], reference[i]) << ", vs fp32 "
                    << norm_relative_error(bf16[i], fp32[i]));
      // The same products, summed in another order at most.
      CHECK(norm_relative_error(bf16[i], reference[i]) < 1e-5);
      if (i == 3) {
        CHECK(norm_relative_error(bf16[i], fp32[i]) < 1e-6);  // the bias gradient is dy's fp32 sum
      } else {
        CHECK(norm_relative_error(bf16[i], fp32[i]) < 2e-2);
        CHECK(norm_relative_error(bf16[i], fp32[i]) > 1e-4);  // the operands were rounded
      }
    }
  }
}

TEST_CASE("the memory-efficient dense block in bf16 equals the concatenating one in bf16", "[bf16][dense_block][training]") {
  // Both round the same convolution operands; their batch norms differ in the last fp32 bits, which
  // can move a value across a bf16 rounding boundary (2^-8 relative on that element): hence a
  // tolerance well below bf16's error against fp32, which is checked to be larger.
  Generator init(4);
  models::DenseNet efficient(testing::tiny_densenet_config({3, 2}, 5, true), init);
  models::DenseNet plain(testing::tiny_densenet_config({3, 2}, 5, false), init);
  plain.load_state_dict(efficient.state_dict());
  Generator gen(8);
  const Tensor images = Tensor::randn({3, 3, 32, 32}, gen);
  const Tensor projection = Tensor::randn({3, 5}, gen);
  auto step = [&](models::DenseNet& model, Precision precision) {
    model.train();
    model.zero_grad();
    const PrecisionScope scope(precision);
    const Tensor logits = model.forward(images);
    ops::sum(ops::mul(logits, projection)).backward();
    std::vector<std::pair<std::string, Tensor>> out{{"logits", logits.detach()}};
    for (auto& [name, p] : model.named_parameters()) out.emplace_back(name, p.grad());
    return out;
  };
  const auto a = step(efficient, Precision::bf16);
  const auto b = step(plain, Precision::bf16);
  const auto fp32 = step(efficient, Precision::fp32);
  REQUIRE(a.size() == b.size());
  double largest_vs_fp32 = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    INFO(a[i].first);
    CHECK(norm_relative_error(a[i].second, b[i].second) < 3e-3);
    largest_vs_fp32 = std::max(largest_vs_fp32, norm_relative_error(a[i].second, fp32[i].second));
  }
  CHECK(largest_vs_fp32 > 1e-3);  // bf16 did run
}

TEST_CASE("a DenseNet-121 backward in bf16 with fixed statistics has gradients within 5e-2 of fp32's",
          "[bf16][densenet][training]") {
  // Issue 16's bound, norm-relative over all the parameters' gradients together, for the CheXNet
  // loss (weighted BCE over 14 labels) at 64 px, batch 4, with the batch norms on their running
  // statistics (made non-trivial). With batch statistics a randomly initialised network's gradients
  // are ill-conditioned: there PyTorch's own bf16 autocast lies ~0.75 from its fp32 (chex ~0.5), and
  // the torch parity test holds chex to PyTorch's distance instead.
  Generator init(3);
  models::DenseNet model(models::DenseNetConfig::densenet121(14), init);
  for (auto& [name, t] : model.state_dict()) {
    if (name.ends_with("running_mean")) t.copy_(Tensor::randn(t.shape(), init, 0.f, 0.1f));
    if (name.ends_with("running_var")) t.copy_(Tensor::uniform(t.shape(), init, 0.5f, 1.5f));
  }
  Generator gen(5);
  const Tensor images = Tensor::randn({4, 3, 64, 64}, gen);
  std::vector<float> labels(4 * 14);
  for (size_t i = 0; i < labels.size(); ++i) labels[i] = (i * 7 % 5) == 0 ? 1.f : 0.f;
  const Tensor targets = Tensor::from_vector(labels, {4, 14});
  const Tensor pos_weight = Tensor::full({14}, 3.f);
  auto gradients = [&](Precision precision) {
    model.eval();
    model.zero_grad();
    const PrecisionScope scope(precision);
    ops::bce_with_logits(model.forward(images), targets, pos_weight).backward();
    std::vector<float> all;
    for (auto& [name, p] : model.named_parameters()) {
      const std::vector<float> g = p.grad().to_vector();
      all.insert(all.end(), g.begin(), g.end());
    }
    return all;
  };
  const std::vector<float> fp32 = gradients(Precision::fp32);
  const std::vector<float> bf16 = gradients(Precision::bf16);
  const double error = norm_relative_error(bf16, fp32);
  INFO("norm-relative error of the gradients " << error);
  CHECK(error < 5e-2);
  CHECK(error > 1e-4);
}

TEST_CASE("bf16 training is planned per device", "[bf16][training]") {
  const PrecisionPlan cpu = plan_precision(Precision::bf16, Device::cpu(), /*training=*/true);
  CHECK(cpu.precision == (cpu_has_native_bf16() ? Precision::bf16 : Precision::fp32));
  CHECK(cpu.note.empty() == cpu_has_native_bf16());  // a fallback to fp32 says so
}

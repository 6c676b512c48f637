// A whole (tiny) DenseNet, one training step and an evaluation, on every available device against
// the CPU (see device_test.h), with memory-efficient dense blocks on and off: the logits, the
// loss, every parameter's gradient, every buffer after the step (running statistics and counters)
// and the eval-mode logits that use them. On every device the two block implementations must also
// agree with each other.
//
// Tolerances (float32 throughout; cuDNN without TF32, batch-norm sums in double): each compared
// tensor t must satisfy max|got - want| <= tolerance * max(max|want|, 1e-6), the maximum norm
// scaled by the tensor's own size, since gradients that cancel elementwise have no meaningful
// relative error:
//   CUDA vs CPU: 1e-3 (a step's gradients pass through up to 13 training-mode normalisations,
//   each of which can amplify rounding where its sums cancel; an indexing or stride bug is O(1));
//   memory-efficient vs concatenating: 1e-5 on the CPU (the same kernels on differently strided
//   buffers), 1e-3 on CUDA (cuDNN may pick other algorithms for other strides).
// On the CPU, two runs must be bitwise equal.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "chex/nn/module.h"
#include "device/device_test.h"
#include "models/densenet.h"

using namespace chex;
using testing::random_on;

namespace {

constexpr double kDeviceTolerance = 1e-3;
// The two CPU block implementations differ by float rounding alone: below 1e-6 of each tensor's
// largest entry, except the stem BN's (norm0) weight and bias gradients, sums over everything
// downstream that mostly cancel (their largest entry is ~5e-4): 4e-6 to 2e-5 of it, as the
// summation orders of the kernels change. Those get 5e-5.
constexpr double kCpuImplementationTolerance = 1e-5;
constexpr double kCpuCancellingGradientTolerance = 5e-5;

models::DenseNetConfig tiny_densenet(bool memory_efficient) {
  return testing::tiny_densenet_config({2, 3}, 3, memory_efficient);
}

struct StepResults {
  std::vector<std::string> names;
  std::vector<Tensor> values;
  void add(const std::string& name, const Tensor& t) {
    names.push_back(name);
    values.push_back(t);
  }
};

// Builds the model on the CPU from fixed seeds (with non-trivial batch-norm parameters and running
// statistics, so that every term matters), moves it to `device` with Module::to, and runs one
// training forward + backward, then an eval-mode forward.
StepResults train_step(Device device, bool memory_efficient) {
  Generator gen(17);
  models::DenseNet model(tiny_densenet(memory_efficient), gen);
  for (auto& [name, t] : model.state_dict()) {
    const bool batch_norm = name.find("norm") != std::string::npos && !name.ends_with("num_batches_tracked");
    if (!batch_norm) continue;
    if (name.ends_with("running_var") || name.ends_with("weight"))
      t.copy_(Tensor::uniform(t.shape(), gen, 0.5f, 1.5f));
    else  // bias, running_mean
      t.copy_(Tensor::randn(t.shape(), gen, 0.f, 0.3f));
  }
  model.to(device);
  const std::vector<Tensor> parameters = model.parameters();
  for (const Tensor& p : parameters) REQUIRE(p.device() == device);

  const Tensor images = random_on(device, {4, 3, 32, 32}, 23);
  std::vector<float> labels(4 * 3);
  for (size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<float>((i * 7) % 3 == 0);
  const Tensor targets = Tensor::from_vector(labels, {4, 3}).to(device);

  StepResults r;
  model.train();
  const Tensor logits = model(images);
  const Tensor loss = ops::bce_with_logits(logits, targets);
  loss.backward();
  r.add("logits", logits.detach());
  r.add("loss", loss.detach());
  for (const auto& [name, p] : model.named_parameters()) r.add("grad " + name, p.grad());
  for (const auto& [name, b] : model.named_buffers()) r.add(name, b);
  model.eval();
  {
    NoGradGuard no_grad;
    r.add("eval logits", model(images));
  }
  return r;
}

void check_close(const StepResults& got, const StepResults& want, double default_tolerance, const std::string& what,
                 double stem_norm_gradient_tolerance = 0) {
  REQUIRE(got.values.size() == want.values.size());
  for (size_t i = 0; i < want.values.size(); ++i) {
    const bool stem_norm_gradient = want.names[i].starts_with("grad features.norm0.");
    const double tolerance =
        stem_norm_gradient && stem_norm_gradient_tolerance > 0 ? stem_norm_gradient_tolerance : default_tolerance;
    INFO(what << ": " << want.names[i]);
    REQUIRE(got.names[i] == want.names[i]);
    REQUIRE(got.values[i].defined());
    REQUIRE(want.values[i].defined());
    REQUIRE(got.values[i].shape() == want.values[i].shape());
    const std::vector<float> g = got.values[i].to_vector(), w = want.values[i].to_vector();
    double scale = 1e-6, worst = 0;
    for (float v : w) scale = std::max(scale, std::fabs(static_cast<double>(v)));
    for (size_t j = 0; j < w.size(); ++j) worst = std::max(worst, std::fabs(static_cast<double>(g[j]) - w[j]));
    INFO("max |got - want| = " << worst << ", max |want| = " << scale << ", tolerance " << tolerance);
    CHECK(worst <= tolerance * scale);
  }
}

}  // namespace

CHEX_DEVICE_TEST("a tiny DenseNet's training step matches the CPU, memory-efficient or not", "[device][densenet]") {
  for (const bool memory_efficient : {true, false}) {
    INFO("memory_efficient " << memory_efficient << " on " << device.str());
    const StepResults want = train_step(Device::cpu(), memory_efficient);
    const StepResults got = train_step(device, memory_efficient);
    for (const Tensor& t : got.values) REQUIRE(t.device() == device);
    if (device.is_cpu()) {
      for (size_t i = 0; i < want.values.size(); ++i) {
        INFO(want.names[i]);
        CHECK(got.values[i].to_vector() == want.values[i].to_vector());  // the same code: bitwise
      }
    } else {
      check_close(got, want, kDeviceTolerance, "device vs CPU");
    }
  }
  check_close(train_step(device, true), train_step(device, false),
              device.is_cpu() ? kCpuImplementationTolerance : kDeviceTolerance, "memory-efficient vs concatenating",
              device.is_cpu() ? kCpuCancellingGradientTolerance : 0);
}

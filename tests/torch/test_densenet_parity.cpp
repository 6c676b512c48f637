// DenseNet-121 against torchvision's, with the same weights and inputs: state_dict names, eval-mode
// logits (random inputs and real NIH images at 224x224), one training step's loss, gradients and
// running statistics, and five Adam steps. Both dense-block paths (memory-efficient and
// concatenating) must match. References: tests/reference/make_densenet_references.py, run by CTest
// at test time into the build tree. The numeric cases run on the CPU ([on-cpu], CTest label torch)
// and again on every GPU ([on-cuda], CTest label gpu) against the same references.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "chex/autograd.h"
#include "chex/io/safetensors.h"
#include "chex/ops.h"
#include "chex/optim/adam.h"
#include "chex/precision.h"
#include "device/device_test.h"
#include "models/densenet.h"

using namespace chex;
using models::DenseNet;
using models::DenseNetConfig;

namespace {

std::string reference_path(const std::string& file) { return std::string(CHEX_DENSENET_REF_DIR) + "/" + file; }

std::map<std::string, Tensor> load_reference(const std::string& file) {
  const std::string path = reference_path(file);
  INFO("reference file " << path << " (made by tests/reference/make_densenet_references.py)");
  REQUIRE(std::filesystem::exists(path));
  std::map<std::string, Tensor> tensors;
  for (auto& [name, t] : io::load_safetensors(path).tensors) tensors[name] = t;
  return tensors;
}

const Tensor& at(const std::map<std::string, Tensor>& tensors, const std::string& name) {
  const auto it = tensors.find(name);
  INFO("reference tensor " << name);
  REQUIRE(it != tensors.end());
  return it->second;
}

// A DenseNet-121 (14 classes) holding the reference weights, loaded strictly by torchvision's names.
std::unique_ptr<DenseNet> reference_model(bool memory_efficient, Device device) {
  DenseNetConfig config = DenseNetConfig::densenet121(14);
  config.memory_efficient = memory_efficient;
  auto model = std::make_unique<DenseNet>(config);
  const io::SafetensorsFile weights = io::load_safetensors(reference_path("weights.safetensors"));
  // torchvision's counters are int64; the loader converts them.
  CHECK(weights.source_dtypes.at("features.norm0.num_batches_tracked") == "I64");
  model->load_state_dict(weights.tensors, /*strict=*/true);
  model->to(device);
  return model;
}

double max_abs(const std::vector<float>& v) {
  double m = 0.0;
  for (float x : v) m = std::max(m, static_cast<double>(std::fabs(x)));
  return m;
}

// max |ours - ref| / max |ref|: the error relative to the tensor's scale.
double error_relative_to_scale(const Tensor& ours, const Tensor& ref) {
  REQUIRE(ours.shape() == ref.shape());
  const std::vector<float> a = ours.to(Device::cpu()).to_vector(), b = ref.to_vector();
  double worst = 0.0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::fabs(static_cast<double>(a[i]) - b[i]));
  return worst / std::max(max_abs(b), 1e-30);
}

// ||ours - ref|| / ||ref||.
double relative_norm_error(const Tensor& ours, const Tensor& ref) {
  REQUIRE(ours.shape() == ref.shape());
  const std::vector<float> a = ours.to(Device::cpu()).to_vector(), b = ref.to_vector();
  double diff = 0.0, norm = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = static_cast<double>(a[i]) - b[i];
    diff += d * d;
    norm += static_cast<double>(b[i]) * b[i];
  }
  return std::sqrt(diff) / std::max(std::sqrt(norm), 1e-30);
}

const char* path_name(bool memory_efficient) { return memory_efficient ? "memory-efficient" : "concatenating"; }

bool nih_images_present() {
  const std::filesystem::path dir(CHEX_NIH_IMAGES_DIR);
  if (!std::filesystem::is_directory(dir)) return false;
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    if (entry.path().extension() == ".png") return true;
  return false;
}

constexpr double kLogitTolerance = 1e-4;     // relative to the logit scale (max |logit|)
constexpr double kGradientTolerance = 1e-3;  // ||g - g_ref|| / ||g_ref||, per tensor
constexpr double kWellDetermined = 1e-4;     // PyTorch float32 vs float64 below this: a float32-stable gradient
constexpr double kAdamLossTolerance = 1e-2;  // relative, per step

void check_eval_case(const std::string& file, bool memory_efficient, Device device) {
  const auto ref = load_reference(file);
  auto model = reference_model(memory_efficient, device);
  model->eval();
  NoGradGuard no_grad;
  const DenseNet::Outputs out = model->forward_with_features(at(ref, "images").to(device));
  const double logit_error = error_relative_to_scale(out.logits, at(ref, "logits"));
  const double feature_error = error_relative_to_scale(out.features, at(ref, "features"));
  std::printf("eval %s (%s): logits max error %.3g of scale %.3g; features %.3g of scale\n", file.c_str(),
              path_name(memory_efficient), logit_error, max_abs(at(ref, "logits").to_vector()), feature_error);
  INFO(file << ", " << path_name(memory_efficient) << ": logits error " << logit_error << ", features error "
            << feature_error << " relative to scale (tolerance " << kLogitTolerance << ")");
  CHECK(logit_error <= kLogitTolerance);
  CHECK(feature_error <= kLogitTolerance);
}

Tensor weighted_loss(DenseNet& model, const std::map<std::string, Tensor>& ref, Device device, Tensor* logits = nullptr) {
  Tensor y = model(at(ref, "images").to(device));
  if (logits) *logits = y;
  return ops::bce_with_logits(y, at(ref, "targets").to(device), at(ref, "pos_weight").to(device),
                              at(ref, "neg_weight").to(device));
}

}  // namespace

TEST_CASE("DenseNet state_dict names, order and shapes equal torchvision's", "[torch][densenet]") {
  const std::vector<std::pair<std::string, DenseNetConfig>> variants{{"densenet121", DenseNetConfig::densenet121(14)},
                                                                     {"densenet169", DenseNetConfig::densenet169(14)},
                                                                     {"densenet201", DenseNetConfig::densenet201(14)}};
  for (const auto& [name, config] : variants) {
    DYNAMIC_SECTION(name) {
      const std::string path = reference_path("state_dict_" + name + ".json");
      REQUIRE(std::filesystem::exists(path));
      std::ifstream in(path);
      const nlohmann::json expected = nlohmann::json::parse(in);
      const DenseNet model(config);
      const nn::NamedTensors ours = model.state_dict();
      REQUIRE(ours.size() == expected.size());
      for (size_t i = 0; i < ours.size(); ++i) {
        INFO(name << " entry " << i);
        REQUIRE(ours[i].first == expected[i][0].get<std::string>());
        const Shape shape(expected[i][1].get<std::vector<int64_t>>());
        INFO(ours[i].first << ": ours " << shape_str(ours[i].second.shape()) << ", torchvision " << shape_str(shape));
        CHECK(ours[i].second.shape() == shape);
      }
    }
  }
}

// --precision bf16: chex's bf16 logits against chex's fp32 and PyTorch's bf16 autocast,
// norm-relative. PyTorch's autocast also runs the stem and the classifier in bf16 (chex keeps both
// fp32): two bf16 computations, each off fp32 by its own rounding. Bounds: against fp32, issue 16's
// 2e-2 and no worse than PyTorch's own bf16 (x 1.1); against PyTorch's bf16, 2e-2 on real X-rays,
// and on random-normal images, where PyTorch's bf16 alone is 2.4e-2 off fp32, 3e-2. On CUDA the
// references are the same (PyTorch on the CPU).
void check_bf16_eval_case(const std::string& file, double against_torch_bound, Device device) {
  const auto ref = load_reference(file);
  auto model = reference_model(/*memory_efficient=*/true, device);
  model->eval();
  NoGradGuard no_grad;
  const Tensor images = at(ref, "images").to(device);
  const std::vector<float> fp32 = model->forward(images).to(Device::cpu()).to_vector();
  std::vector<float> bf16;
  {
    const PrecisionScope scope(Precision::bf16);
    bf16 = model->forward(images).to(Device::cpu()).to_vector();
  }
  auto norm_relative = [](const std::vector<float>& a, const std::vector<float>& b) {
    double diff = 0, norm = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      diff += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
      norm += double(b[i]) * b[i];
    }
    return std::sqrt(diff / norm);
  };
  const double against_torch = norm_relative(bf16, at(ref, "logits_bf16").to_vector());
  const double against_fp32 = norm_relative(bf16, fp32);
  const double torch_bf16_against_fp32 = norm_relative(at(ref, "logits_bf16").to_vector(), at(ref, "logits").to_vector());
  std::printf("bf16 %s on %s: chex bf16 vs PyTorch bf16 autocast %.3g, vs chex fp32 %.3g (PyTorch's bf16 vs fp32: %.3g)\n",
              file.c_str(), device.str().c_str(), against_torch, against_fp32, torch_bf16_against_fp32);
  INFO(file << ": against PyTorch's autocast " << against_torch << ", against fp32 " << against_fp32);
  CHECK(against_fp32 < 2e-2);
  CHECK(against_fp32 <= 1.1 * torch_bf16_against_fp32);
  CHECK(against_torch < against_torch_bound);
  CHECK(against_fp32 > 1e-5);  // bf16 did run
}

static void bf16_logits_match(Device device) {
  SECTION("random images") { check_bf16_eval_case("eval_random.safetensors", 3e-2, device); }
  SECTION("real NIH chest X-rays") {
    if (!std::filesystem::exists(reference_path("eval_nih.safetensors"))) {
      REQUIRE_FALSE(nih_images_present());
      WARN("NIH sample images not found in " CHEX_NIH_IMAGES_DIR ": the real-image bf16 check did NOT run");
      return;
    }
    check_bf16_eval_case("eval_nih.safetensors", 2e-2, device);
  }
}

static void eval_logits_match(Device device) {
  const bool memory_efficient = GENERATE(true, false);
  DYNAMIC_SECTION(path_name(memory_efficient)) {
    SECTION("random images") { check_eval_case("eval_random.safetensors", memory_efficient, device); }
    SECTION("real NIH chest X-rays") {
      if (!std::filesystem::exists(reference_path("eval_nih.safetensors"))) {
        // The generator writes this case whenever the images exist: missing it with data present fails.
        REQUIRE_FALSE(nih_images_present());
        WARN("NIH sample images not found in " CHEX_NIH_IMAGES_DIR
             ": the real-image parity check did NOT run (only random inputs were compared)");
        return;
      }
      check_eval_case("eval_nih.safetensors", memory_efficient, device);
    }
  }
}

static void training_step_matches(Device device) {
  const bool memory_efficient = GENERATE(true, false);
  DYNAMIC_SECTION(path_name(memory_efficient) << ", batch 4 at 64x64") {
    const auto ref = load_reference("train_step.safetensors");
    auto model = reference_model(memory_efficient, device);
    model->train();
    Tensor logits;
    Tensor loss = weighted_loss(*model, ref, device, &logits);
    loss.backward();

    const double logit_error = error_relative_to_scale(logits, at(ref, "logits"));
    const float loss_value = loss.to(Device::cpu()).item();
    const double loss_error = std::fabs(loss_value - at(ref, "loss").item()) / std::fabs(at(ref, "loss").item());
    std::printf("training step (%s): loss %.7f vs PyTorch %.7f (relative error %.2g), logits error %.3g of scale\n",
                path_name(memory_efficient), static_cast<double>(loss_value),
                static_cast<double>(at(ref, "loss").item()), loss_error, logit_error);
    CHECK(logit_error <= kLogitTolerance);
    CHECK(loss_error <= kLogitTolerance);

    // Gradients against the exact (float64) answer. A randomly initialised 121-layer network in
    // training mode is ill-conditioned: PyTorch's own float32 gradients miss float64 by more than
    // 1e-3 on all but a few tensors (up to ~4e-2), so float64 is the reference. The gap is not
    // smooth rounding but discrete: pre-activations within rounding of 0 flip their ReLU masks, and
    // two float32 implementations that sum in similar orders flip the same ones (ours then follows
    // PyTorch float32 closely while both miss float64 alike), or different ones. So each tensor must
    // be within 1e-3 of float64, or no further from it than 3x PyTorch's float32 is (a real bug
    // errs by O(1)).
    double worst_vs_exact = 0.0, worst_torch_vs_exact = 0.0, worst_vs_torch = 0.0;
    std::string worst_vs_torch_name;
    int within_vs_torch = 0, within_vs_exact = 0, torch_within_exact = 0, well_determined = 0;
    const auto parameters = model->named_parameters();
    for (const auto& [name, p] : parameters) {
      INFO("gradient of " << name);
      REQUIRE(p.grad().defined());
      const Tensor& exact = at(ref, "grad64." + name);
      const Tensor& torch32 = at(ref, "grad." + name);
      const double vs_exact = relative_norm_error(p.grad(), exact);
      const double torch_vs_exact = relative_norm_error(torch32, exact);
      const double vs_torch = relative_norm_error(p.grad(), torch32);
      worst_vs_exact = std::max(worst_vs_exact, vs_exact);
      worst_torch_vs_exact = std::max(worst_torch_vs_exact, torch_vs_exact);
      if (vs_torch > worst_vs_torch) worst_vs_torch = vs_torch, worst_vs_torch_name = name;
      within_vs_torch += vs_torch <= kGradientTolerance;
      within_vs_exact += vs_exact <= kGradientTolerance;
      torch_within_exact += torch_vs_exact <= kGradientTolerance;
      const double tolerance = std::max(kGradientTolerance, 3.0 * torch_vs_exact);
      INFO("||g - g64|| / ||g64||: ours " << vs_exact << ", PyTorch float32 " << torch_vs_exact << " (tolerance "
                                          << tolerance << "); ours vs PyTorch float32 " << vs_torch);
      CHECK(vs_exact <= tolerance);
      // The criterion, ours against PyTorch float32 within 1e-3, wherever float32 can
      // determine the gradient that well: where PyTorch's own float32 is within 1e-4 of float64.
      if (torch_vs_exact <= kWellDetermined) {
        ++well_determined;
        CHECK(vs_torch <= kGradientTolerance);
      }
    }
    std::printf("  gradients, ||g - g_ref|| / ||g_ref|| per tensor over %zu parameters:\n"
                "    ours vs PyTorch float32: %d within 1e-3, worst %.3g (%s)\n"
                "    ours vs float64: %d within 1e-3, worst %.3g; PyTorch float32 vs float64: %d within 1e-3, worst %.3g\n"
                "    %d tensors well determined in float32 (PyTorch's within 1e-4 of float64): each within 1e-3 "
                "of PyTorch's\n",
                parameters.size(), within_vs_torch, worst_vs_torch, worst_vs_torch_name.c_str(), within_vs_exact,
                worst_vs_exact, torch_within_exact, worst_torch_vs_exact, well_determined);

    double worst_buffer = 0.0;
    for (const auto& [name, b] : model->named_buffers()) {
      const Tensor& expected = at(ref, "after." + name);
      INFO("buffer " << name << " after the step");
      if (name.ends_with("num_batches_tracked")) {
        CHECK(b.to(Device::cpu()).item() == expected.item());  // counted exactly once
        continue;
      }
      const double error = error_relative_to_scale(b, expected);
      worst_buffer = std::max(worst_buffer, error);
      CHECK(error <= kLogitTolerance);
    }
    std::printf("  worst running-statistic error %.3g relative to scale\n", worst_buffer);
  }
}

// A training step at --precision bf16 (mixed precision: bf16 convolutions, fp32 master weights and
// everything else) against fp32, and PyTorch's bf16 autocast against its fp32 on the same weights
// and batch: ||g_bf16 - g_fp32|| / ||g_fp32|| over all the gradients together. A randomly
// initialised network in training mode is ill-conditioned (see training_step_matches): here
// PyTorch's own autocast gradients lie about 0.75 from its fp32 ones, far beyond issue 16's 5e-2
// (which holds with fixed statistics: test_bf16_training.cpp), so the bound is PyTorch's own
// distance, x 1.1.
static void bf16_training_step_as_close_as_autocast(Device device) {
  const bool memory_efficient = GENERATE(true, false);
  DYNAMIC_SECTION(path_name(memory_efficient) << ", batch 4 at 64x64") {
    const auto ref = load_reference("train_step.safetensors");
    auto gradients = [&](Precision precision) {
      auto model = reference_model(memory_efficient, device);
      model->train();
      const PrecisionScope scope(precision);
      weighted_loss(*model, ref, device).backward();
      std::vector<float> all;
      for (const auto& [name, p] : model->named_parameters()) {
        const std::vector<float> g = p.grad().to(Device::cpu()).to_vector();
        all.insert(all.end(), g.begin(), g.end());
      }
      return Tensor::from_vector(all, {static_cast<int64_t>(all.size())});
    };
    const Tensor fp32 = gradients(Precision::fp32), bf16 = gradients(Precision::bf16);
    std::vector<float> torch32, torch_bf16;
    for (const auto& [name, p] : reference_model(memory_efficient, Device::cpu())->named_parameters()) {
      const std::vector<float> a = at(ref, "grad." + name).to_vector(), b = at(ref, "grad_bf16." + name).to_vector();
      torch32.insert(torch32.end(), a.begin(), a.end());
      torch_bf16.insert(torch_bf16.end(), b.begin(), b.end());
    }
    const int64_t count = static_cast<int64_t>(torch32.size());
    const double ours = relative_norm_error(bf16, fp32);
    const double theirs = relative_norm_error(Tensor::from_vector(torch_bf16, {count}), Tensor::from_vector(torch32, {count}));
    std::printf("bf16 training step (%s): gradients' distance from fp32: chex %.3g, PyTorch autocast %.3g\n",
                path_name(memory_efficient), ours, theirs);
    INFO("chex bf16 vs fp32 " << ours << ", PyTorch autocast vs fp32 " << theirs);
    CHECK(ours <= 1.1 * theirs);
    CHECK(ours > 1e-4);  // bf16 did run
  }
}

static void adam_steps_follow(Device device) {
  const bool memory_efficient = GENERATE(true, false);
  DYNAMIC_SECTION(path_name(memory_efficient) << ", batch 4 at 64x64") {
    const auto ref = load_reference("adam.safetensors");
    const std::vector<float> expected = at(ref, "losses").to_vector();
    const std::vector<float> exact = at(ref, "losses64").to_vector();
    REQUIRE(expected.size() == 5);
    auto model = reference_model(memory_efficient, device);
    model->train();
    optim::Adam adam(model->parameters(), {.lr = 1e-3});
    std::printf("Adam (%s): step, loss ours, PyTorch float32, relative difference, PyTorch float64\n",
                path_name(memory_efficient));
    for (size_t step = 0; step < expected.size(); ++step) {
      adam.zero_grad();
      Tensor loss = weighted_loss(*model, ref, device);
      loss.backward();
      adam.step();
      const double ours = loss.to(Device::cpu()).item(), theirs = expected[step];
      const double difference = std::fabs(ours - theirs) / std::fabs(theirs);
      std::printf("  %zu  %.6f  %.6f  %.2e  %.6f\n", step + 1, ours, theirs, difference,
                  static_cast<double>(exact[step]));
      INFO("step " << step + 1 << ": ours " << ours << ", PyTorch " << theirs << " (tolerance " << kAdamLossTolerance
                   << " relative)");
      CHECK(difference <= kAdamLossTolerance);
    }
  }
}

// Each numeric case on the CPU and on every GPU, against the same PyTorch (CPU) references.
#define CHEX_PARITY_CASE(title, tags, body)                                              \
  TEST_CASE(title " (cpu)", tags "[on-cpu]") { body(Device::cpu()); }                    \
  TEST_CASE(title " (cuda)", tags "[on-cuda]") { testing::run_on_gpus(body); }

CHEX_PARITY_CASE("DenseNet-121 eval-mode logits match torchvision's at 224x224", "[torch][densenet]", eval_logits_match)
CHEX_PARITY_CASE("DenseNet-121 training step matches torchvision's: logits, loss, gradients, running statistics",
                 "[torch][densenet]", training_step_matches)
CHEX_PARITY_CASE("five Adam steps of DenseNet-121 follow torchvision's losses", "[torch][densenet][adam]",
                 adam_steps_follow)
CHEX_PARITY_CASE("DenseNet-121 bf16 logits match PyTorch's bf16 autocast and chex's fp32", "[torch][densenet][bf16]",
                 bf16_logits_match)
CHEX_PARITY_CASE("a DenseNet-121 bf16 training step's gradients are as close to fp32's as PyTorch autocast's",
                 "[torch][densenet][bf16]", bf16_training_step_as_close_as_autocast)

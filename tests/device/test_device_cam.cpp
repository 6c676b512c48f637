// Class activation maps on every device: the library's CAM (a 1x1 convolution in the engine) against
// the formula M_c(y, x) = Σ_k w_{c,k} f_k(y, x) summed by hand in double from the same forward
// pass's features and the classifier's weights, and the identity that makes CAMs meaningful for
// DenseNet: logit_c = b_c + mean over positions of M_c (global average pooling is linear).
// Tolerance: |got - want| <= 1e-5 + 1e-5·Σ_k |w_{c,k} f_k| (float32 sums of K terms; on CUDA
// cuDNN runs without TF32). The logits check allows 1e-5 of the logits' scale (relative).
#include <cmath>
#include <vector>

#include "chex/autograd.h"
#include "device/device_test.h"
#include "models/cam.h"
#include "models/densenet.h"

using namespace chex;

namespace {

models::DenseNetConfig tiny_config() { return testing::tiny_densenet_config({2, 2}, 14); }

}  // namespace

CHEX_DEVICE_TEST("the CAM is the sum of the features weighted by the classifier, and averages to the logit",
                 "[cam]") {
  Generator gen(31);
  models::DenseNet model(tiny_config(), gen);
  // Non-trivial running statistics and classifier bias, so that the features are not normalised
  // away and the bias term of the identity is tested.
  for (auto& [name, t] : model.state_dict()) {
    if (name.ends_with("running_var")) t.copy_(Tensor::uniform(t.shape(), gen, 0.5f, 1.5f));
    if (name.ends_with("running_mean") || name == "classifier.bias") t.copy_(Tensor::randn(t.shape(), gen, 0.f, 0.3f));
  }
  model.eval();
  model.to(device);
  const Tensor images = testing::random_on(device, {3, 3, 64, 96}, 5);  // non-square: h != w
  models::DenseNet::Outputs out;
  {
    NoGradGuard no_grad;
    out = model.forward_with_features(images);
  }
  const models::CamOutputs cams = models::compute_cams(model, images, models::CamMethod::Cam);
  REQUIRE(cams.maps.device() == device);
  const std::vector<float> f = out.features.to(Device::cpu()).to_vector();
  const std::vector<float> m = cams.maps.to(Device::cpu()).to_vector();
  const std::vector<float> w = model.classifier().weight().to(Device::cpu()).to_vector();
  const std::vector<float> b = model.classifier().bias().to(Device::cpu()).to_vector();
  const std::vector<float> logits = cams.logits.to(Device::cpu()).to_vector();
  const int64_t n = out.features.size(0), k = out.features.size(1), h = out.features.size(2), wd = out.features.size(3);
  const int64_t classes = 14;
  REQUIRE(cams.maps.shape() == Shape{n, classes, h, wd});
  REQUIRE(h == 8);  // stem /4, one transition /2
  REQUIRE(wd == 12);
  size_t bad = 0;
  double worst_logit = 0, logit_scale = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < classes; ++c) {
      double mean = 0;
      for (int64_t p = 0; p < h * wd; ++p) {
        double want = 0, magnitude = 0;
        for (int64_t j = 0; j < k; ++j) {
          const double term = static_cast<double>(w[c * k + j]) * f[(i * k + j) * h * wd + p];
          want += term;
          magnitude += std::fabs(term);
        }
        const double got = m[(i * classes + c) * h * wd + p];
        bad += !(std::fabs(got - want) <= 1e-5 + 1e-5 * magnitude);
        mean += got / static_cast<double>(h * wd);
      }
      const double logit = logits[i * classes + c];
      worst_logit = std::max(worst_logit, std::fabs(mean + b[c] - logit));
      logit_scale = std::max(logit_scale, std::fabs(logit));
    }
  INFO(bad << " CAM values off the hand-computed formula; worst |mean(CAM) + b - logit| " << worst_logit
            << " against logits up to " << logit_scale);
  CHECK(bad == 0);
  CHECK(worst_logit <= 1e-5 * std::max(1.0, logit_scale));
}

// Grad-CAM runs the head through autograd on the device (global average pooling, linear, their
// backward): the maps and logits must match the CPU's (bitwise on the CPU itself: determinism).
// Tolerance rtol 1e-3, atol 1e-5: an eval-mode forward through seven convolutions, cuDNN's sums
// against the CPU's GEMM; an indexing bug is O(1).
CHEX_DEVICE_TEST("Grad-CAM through autograd matches the CPU", "[cam]") {
  testing::check_matches_cpu(device, [](Device d) {
    Generator gen(41);
    models::DenseNet model(tiny_config(), gen);
    model.eval();
    model.to(d);
    const models::CamOutputs cams =
        models::compute_cams(model, testing::random_on(d, {2, 3, 64, 64}, 9), models::CamMethod::GradCam);
    return std::vector<Tensor>{cams.logits, cams.maps};
  }, {1e-3, 1e-5});
}

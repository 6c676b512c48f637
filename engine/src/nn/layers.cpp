#include "chex/nn/layers.h"

#include <cmath>

#include "chex/autograd.h"
#include "chex/error.h"
#include "chex/nn/init.h"
#include "chex/ops.h"

namespace chex::nn {
namespace {

void check_positive(const char* layer, const char* what, int64_t value) {
  CHEX_CHECK(value > 0, layer, ": ", what, " must be positive, got ", value);
}

// PyTorch's reset_parameters() for Conv2d and Linear: kaiming_uniform_(a = sqrt(5)) makes the
// weight bound gain·sqrt(3/fan_in) = sqrt(1/3)·sqrt(3/fan_in) = 1/sqrt(fan_in); the bias uses the
// same bound.
void init_like_pytorch(const Tensor& weight, const Tensor& bias, Generator& gen) {
  init::kaiming_uniform_(weight, gen, {.a = std::sqrt(5.0)});
  if (bias.defined()) {
    const auto bound = static_cast<float>(1.0 / std::sqrt(static_cast<double>(init::fan(weight, init::FanMode::In))));
    init::uniform_(bias, -bound, bound, gen);
  }
}

}  // namespace

Conv2d::Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel, int64_t stride, int64_t padding, bool bias,
               Generator& gen)
    : stride_(stride), padding_(padding) {
  check_positive("Conv2d", "in_channels", in_channels);
  check_positive("Conv2d", "out_channels", out_channels);
  check_positive("Conv2d", "kernel", kernel);
  check_positive("Conv2d", "stride", stride);
  CHEX_CHECK(padding >= 0, "Conv2d: padding must not be negative, got ", padding);
  weight_ = register_parameter("weight", Tensor::empty({out_channels, in_channels, kernel, kernel}));
  if (bias) bias_ = register_parameter("bias", Tensor::empty({out_channels}));
  init_like_pytorch(weight_, bias_, gen);
}

Tensor Conv2d::forward(const Tensor& x) {
  return ops::conv2d(x, weight_, bias_, {.stride = stride_, .padding = padding_});
}

BatchNorm2d::BatchNorm2d(int64_t channels, float eps, float momentum) : eps_(eps), momentum_(momentum) {
  check_positive("BatchNorm2d", "channels", channels);
  CHEX_CHECK(eps > 0.f, "BatchNorm2d: eps must be positive, got ", eps);
  CHEX_CHECK(momentum >= 0.f && momentum <= 1.f, "BatchNorm2d: momentum must lie in [0, 1], got ", momentum);
  weight_ = register_parameter("weight", Tensor::ones({channels}));
  bias_ = register_parameter("bias", Tensor::zeros({channels}));
  running_mean_ = register_buffer("running_mean", Tensor::zeros({channels}));
  running_var_ = register_buffer("running_var", Tensor::ones({channels}));
  num_batches_tracked_ = register_buffer("num_batches_tracked", Tensor::zeros({}));
}

ops::BatchNormOptions BatchNorm2d::options(bool fuse_relu) const {
  return {.training = is_training(), .momentum = momentum_, .eps = eps_, .fuse_relu = fuse_relu, .sync = sync_.get(),
          .groups = groups_};
}

Tensor BatchNorm2d::forward(const Tensor& x) {
  const bool training = is_training();
  Tensor y = ops::batch_norm2d(x, weight_, bias_, running_mean_, running_var_, options());
  if (training) {
    NoGradGuard no_grad;
    ops::add_scalar_(num_batches_tracked_, 1.f);  // on the device: reading it back would synchronise
  }
  return y;
}

Tensor ReLU::forward(const Tensor& x) { return ops::relu(x); }

MaxPool2d::MaxPool2d(int64_t kernel, int64_t stride, int64_t padding)
    : kernel_(kernel), stride_(stride), padding_(padding) {
  check_positive("MaxPool2d", "kernel", kernel);
  check_positive("MaxPool2d", "stride", stride);
  CHEX_CHECK(padding >= 0 && 2 * padding <= kernel, "MaxPool2d: padding must lie in [0, kernel/2], got ", padding,
             " for kernel ", kernel);
}

Tensor MaxPool2d::forward(const Tensor& x) { return ops::max_pool2d(x, kernel_, stride_, padding_); }

AvgPool2d::AvgPool2d(int64_t kernel, int64_t stride) : kernel_(kernel), stride_(stride) {
  check_positive("AvgPool2d", "kernel", kernel);
  check_positive("AvgPool2d", "stride", stride);
}

Tensor AvgPool2d::forward(const Tensor& x) { return ops::avg_pool2d(x, kernel_, stride_); }

Tensor GlobalAvgPool::forward(const Tensor& x) { return ops::global_avg_pool(x); }

Linear::Linear(int64_t in_features, int64_t out_features, bool bias, Generator& gen) {
  check_positive("Linear", "in_features", in_features);
  check_positive("Linear", "out_features", out_features);
  weight_ = register_parameter("weight", Tensor::empty({out_features, in_features}));
  if (bias) bias_ = register_parameter("bias", Tensor::empty({out_features}));
  init_like_pytorch(weight_, bias_, gen);
}

Tensor Linear::forward(const Tensor& x) { return ops::linear(x, weight_, bias_); }

Sequential::Sequential(std::initializer_list<std::shared_ptr<Module>> modules) {
  for (const auto& module : modules) push_back(module);
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor y = x;
  for (const auto& [name, module] : named_children()) y = module->forward(y);
  return y;
}

}  // namespace chex::nn

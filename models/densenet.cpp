#include "models/densenet.h"

#include <string>

#include "chex/error.h"
#include "chex/nn/init.h"
#include "chex/ops.h"
#include "chex/precision.h"
#include "models/dense_block.h"

namespace chex::models {

DenseNetConfig DenseNetConfig::densenet121(int64_t num_classes) {
  DenseNetConfig c;
  c.block_config = {6, 12, 24, 16};
  c.num_classes = num_classes;
  return c;
}

DenseNetConfig DenseNetConfig::densenet169(int64_t num_classes) {
  DenseNetConfig c;
  c.block_config = {6, 12, 32, 32};
  c.num_classes = num_classes;
  return c;
}

DenseNetConfig DenseNetConfig::densenet201(int64_t num_classes) {
  DenseNetConfig c;
  c.block_config = {6, 12, 48, 32};
  c.num_classes = num_classes;
  return c;
}

// Each block adds num_layers * growth_rate channels; each transition halves them.
int64_t DenseNetConfig::num_features() const {
  int64_t features = num_init_features;
  for (size_t i = 0; i < block_config.size(); ++i) {
    features += block_config[i] * growth_rate;
    if (i + 1 < block_config.size()) features /= 2;
  }
  return features;
}

namespace {

void check_config(const DenseNetConfig& c) {
  CHEX_CHECK(c.growth_rate > 0 && c.num_init_features > 0 && c.bn_size > 0 && c.num_classes > 0,
             "DenseNet: growth_rate, num_init_features, bn_size and num_classes must be positive, got ", c.growth_rate,
             ", ", c.num_init_features, ", ", c.bn_size, ", ", c.num_classes);
  CHEX_CHECK(!c.block_config.empty(), "DenseNet: block_config needs at least one block");
  for (int64_t layers : c.block_config)
    CHEX_CHECK(layers > 0, "DenseNet: every block needs at least one layer, got block_config entry ", layers);
}

// torchvision's DenseNet.__init__ re-initialises what the layers' constructors drew.
void init_like_torchvision(nn::Module& model, Generator& gen) {
  for (auto& [name, module] : model.named_modules()) {
    if (auto* conv = dynamic_cast<nn::Conv2d*>(module)) {
      nn::init::kaiming_normal_(conv->weight(), gen);
    } else if (auto* bn = dynamic_cast<nn::BatchNorm2d*>(module)) {
      nn::init::constant_(bn->weight(), 1.f);
      nn::init::constant_(bn->bias(), 0.f);
    } else if (auto* linear = dynamic_cast<nn::Linear*>(module)) {
      if (linear->bias().defined()) nn::init::constant_(linear->bias(), 0.f);
    }
  }
}

}  // namespace

DenseNet::DenseNet(const DenseNetConfig& config, Generator& gen) : config_(config) {
  check_config(config_);
  // features: the stem, then blocks with transitions between them, then norm5 (torchvision's
  // names and registration order, which fix the state_dict).
  auto features = register_module("features", std::make_shared<nn::Sequential>());
  int64_t channels = config_.num_init_features;
  conv0_ = features->add("conv0", std::make_shared<nn::Conv2d>(3, channels, 7, 2, 3, false, gen));
  norm0_ = features->add("norm0", std::make_shared<nn::BatchNorm2d>(channels));
  features->add("relu0", std::make_shared<nn::ReLU>());
  features->add("pool0", std::make_shared<nn::MaxPool2d>(3, 2, 1));
  const size_t blocks = config_.block_config.size();
  for (size_t i = 0; i < blocks; ++i) {
    auto block = std::make_shared<DenseBlock>(config_.block_config[i], channels, config_.growth_rate, config_.bn_size,
                                              config_.memory_efficient, gen);
    body_.push_back(features->add("denseblock" + std::to_string(i + 1), block));
    channels = block->out_channels();
    if (i + 1 < blocks) {
      body_.push_back(features->add("transition" + std::to_string(i + 1),
                                    std::make_shared<Transition>(channels, channels / 2, gen)));
      channels /= 2;
    }
  }
  norm5_ = features->add("norm5", std::make_shared<nn::BatchNorm2d>(channels));
  classifier_ = register_module("classifier", std::make_shared<nn::Linear>(channels, config_.num_classes, true, gen));
  init_like_torchvision(*this, gen);
}

Tensor DenseNet::forward(const Tensor& images) { return forward_with_features(images).logits; }

DenseNet::Outputs DenseNet::forward_with_features(const Tensor& images) {
  CHEX_CHECK(images.defined() && images.dim() == 4 && images.size(1) == 3, "DenseNet: expected images [N, 3, H, W], got ",
             images.defined() ? shape_str(images.shape()) : std::string("an undefined tensor"));
  Tensor y;
  {
    // Under bf16 the stem stays fp32: its input is the image itself (3 channels, 147 products per
    // output), it is 4% of the network's multiplications, and in bf16 it carried a third of the
    // error of the probabilities (on the NIH sample, max |p_bf16 - p_fp32| 6.5e-3 with it, 4.5e-3 without).
    const PrecisionScope stem(current_precision() == Precision::bf16 ? Precision::fp32 : current_precision());
    y = conv0_->forward(images);
  }
  y = batch_norm_relu(*norm0_, y);
  y = ops::max_pool2d(y, 3, 2, 1);
  for (const auto& stage : body_) y = stage->forward(y);
  Outputs out;
  out.features = batch_norm_relu(*norm5_, y);
  out.logits = classifier_->forward(ops::global_avg_pool(out.features));
  return out;
}

}  // namespace chex::models

#include "models/dense_block.h"

#include <string>

#include "chex/autograd.h"
#include "chex/error.h"
#include "chex/ops.h"

namespace chex::models {

void count_batch(nn::BatchNorm2d& norm) {
  const Tensor& counter = norm.num_batches_tracked();
  ops::add_scalar_(counter, 1.f);  // on the device: reading it back would synchronise a GPU every layer
}

Tensor batch_norm_relu(nn::BatchNorm2d& norm, const Tensor& x) {
  const bool training = norm.is_training();
  Tensor y = ops::batch_norm2d(x, norm.weight(), norm.bias(), norm.running_mean(), norm.running_var(),
                               norm.options(/*fuse_relu=*/true));
  if (training) count_batch(norm);
  return y;
}

namespace {
ops::BatchNormTensors tensors_of(const nn::BatchNorm2d& bn) {
  return {bn.weight(), bn.bias(), bn.running_mean(), bn.running_var(), bn.eps(), bn.momentum()};
}
}  // namespace

// --- DenseLayer ----------------------------------------------------------------------------------

DenseLayer::DenseLayer(int64_t in_channels, int64_t growth_rate, int64_t bn_size, Generator& gen) {
  const int64_t bottleneck = bn_size * growth_rate;
  // Registration order is torchvision's, which fixes the state_dict order.
  norm1_ = register_module("norm1", std::make_shared<nn::BatchNorm2d>(in_channels));
  register_module("relu1", std::make_shared<nn::ReLU>());
  conv1_ = register_module("conv1", std::make_shared<nn::Conv2d>(in_channels, bottleneck, 1, 1, 0, false, gen));
  norm2_ = register_module("norm2", std::make_shared<nn::BatchNorm2d>(bottleneck));
  register_module("relu2", std::make_shared<nn::ReLU>());
  conv2_ = register_module("conv2", std::make_shared<nn::Conv2d>(bottleneck, growth_rate, 3, 1, 1, false, gen));
}

Tensor DenseLayer::forward(const Tensor& concatenated) {
  Tensor y = batch_norm_relu(*norm1_, concatenated);
  y = conv1_->forward(y);
  y = batch_norm_relu(*norm2_, y);
  return conv2_->forward(y);
}

ops::DenseLayerTensors DenseLayer::tensors() const {
  return {tensors_of(*norm1_), conv1_->weight(), tensors_of(*norm2_), conv2_->weight()};
}

// --- DenseBlock ----------------------------------------------------------------------------------

DenseBlock::DenseBlock(int64_t num_layers, int64_t in_channels, int64_t growth_rate, int64_t bn_size,
                       bool memory_efficient, Generator& gen)
    : out_channels_(in_channels + num_layers * growth_rate), memory_efficient_(memory_efficient) {
  CHEX_CHECK(num_layers > 0 && in_channels > 0 && growth_rate > 0 && bn_size > 0,
             "DenseBlock: num_layers, in_channels, growth_rate and bn_size must be positive, got ", num_layers, ", ",
             in_channels, ", ", growth_rate, ", ", bn_size);
  for (int64_t i = 0; i < num_layers; ++i)
    layers_.push_back(register_module("denselayer" + std::to_string(i + 1),
                                      std::make_shared<DenseLayer>(in_channels + i * growth_rate, growth_rate,
                                                                   bn_size, gen)));
}

Tensor DenseBlock::forward(const Tensor& x) {
  return memory_efficient_ ? forward_memory_efficient(x) : forward_concatenating(x);
}

Tensor DenseBlock::forward_memory_efficient(const Tensor& x) {
  std::vector<ops::DenseLayerTensors> tensors;
  tensors.reserve(layers_.size());
  for (const auto& layer : layers_) tensors.push_back(layer->tensors());
  const bool training = is_training();
  if (training) {
    const ops::BatchNormOptions first = layers_.front()->norm1().options();
    CHEX_CHECK(!first.sync && first.groups == 1, "sync and ghost batch norm are not in the memory-efficient dense "
               "block; build the DenseNet with memory_efficient = false");
  }
  Tensor y = ops::memory_efficient_dense_block(x, tensors, training);
  if (training)
    for (const auto& layer : layers_) {
      count_batch(layer->norm1());
      count_batch(layer->norm2());
    }
  return y;
}

// As torchvision's memory_efficient=False: each layer concatenates all earlier features.
Tensor DenseBlock::forward_concatenating(const Tensor& x) {
  std::vector<Tensor> features{x};
  for (const auto& layer : layers_) features.push_back(layer->forward(ops::cat_channels(features)));
  return ops::cat_channels(features);
}

// --- Transition ----------------------------------------------------------------------------------

Transition::Transition(int64_t in_channels, int64_t out_channels, Generator& gen) {
  norm_ = register_module("norm", std::make_shared<nn::BatchNorm2d>(in_channels));
  register_module("relu", std::make_shared<nn::ReLU>());
  conv_ = register_module("conv", std::make_shared<nn::Conv2d>(in_channels, out_channels, 1, 1, 0, false, gen));
  register_module("pool", std::make_shared<nn::AvgPool2d>(2, 2));
}

// torchvision's order is conv then pool. A 1x1 convolution without bias is the same linear map at
// every pixel, so it commutes with 2x2 averaging (also where an odd edge is dropped): pooling first
// gives the same result up to float rounding with a quarter of the convolution's work, forward and
// backward. At 224 px the three transitions' convolutions are 308 M of DenseNet-121's 2833 M
// multiply-adds; pooled first, 77 M.
Tensor Transition::forward(const Tensor& x) {
  return conv_->forward(ops::avg_pool2d(batch_norm_relu(*norm_, x), 2, 2));
}

}  // namespace chex::models

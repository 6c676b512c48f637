#pragma once
// The modules of a DenseNet's body, with torchvision's names: _DenseLayer (norm1, relu1, conv1,
// norm2, relu2, conv2), _DenseBlock (denselayer1..n) and _Transition (norm, relu, conv, pool).
#include <cstdint>
#include <memory>
#include <vector>

#include "chex/dense_block.h"
#include "chex/nn/layers.h"
#include "chex/nn/module.h"
#include "chex/random.h"

namespace chex::models {

// relu(norm(x)) in one pass (BatchNormOptions::fuse_relu), with the module's parameters, running
// statistics and mode; counts the batch in num_batches_tracked when training, as the module does.
Tensor batch_norm_relu(nn::BatchNorm2d& norm, const Tensor& x);
// Adds one to num_batches_tracked (what BatchNorm2d::forward does in training).
void count_batch(nn::BatchNorm2d& norm);

class DenseLayer : public nn::Module {
 public:
  DenseLayer(int64_t in_channels, int64_t growth_rate, int64_t bn_size, Generator& gen = default_generator());

  // The plain composition: `concatenated` holds all earlier features; returns the growth_rate new
  // channels. (The memory-efficient path reads tensors() instead.)
  Tensor forward(const Tensor& concatenated) override;

  ops::DenseLayerTensors tensors() const;
  nn::BatchNorm2d& norm1() { return *norm1_; }
  nn::BatchNorm2d& norm2() { return *norm2_; }

 private:
  std::shared_ptr<nn::BatchNorm2d> norm1_, norm2_;
  std::shared_ptr<nn::Conv2d> conv1_, conv2_;
};

class DenseBlock : public nn::Module {
 public:
  DenseBlock(int64_t num_layers, int64_t in_channels, int64_t growth_rate, int64_t bn_size, bool memory_efficient,
             Generator& gen = default_generator());

  // x [N, in_channels, H, W] -> [N, out_channels(), H, W]: x and every layer's new channels.
  Tensor forward(const Tensor& x) override;

  int64_t out_channels() const { return out_channels_; }
  bool memory_efficient() const { return memory_efficient_; }
  void set_memory_efficient(bool on) { memory_efficient_ = on; }
  const std::vector<std::shared_ptr<DenseLayer>>& layers() const { return layers_; }

 private:
  Tensor forward_memory_efficient(const Tensor& x);
  Tensor forward_concatenating(const Tensor& x);

  std::vector<std::shared_ptr<DenseLayer>> layers_;
  int64_t out_channels_;
  bool memory_efficient_;
};

// Between blocks: BN+ReLU, a 1x1 convolution to out_channels, 2x2 average pooling (run pooling
// first, which is the same map: see forward).
class Transition : public nn::Module {
 public:
  Transition(int64_t in_channels, int64_t out_channels, Generator& gen = default_generator());
  Tensor forward(const Tensor& x) override;

 private:
  std::shared_ptr<nn::BatchNorm2d> norm_;
  std::shared_ptr<nn::Conv2d> conv_;
};

}  // namespace chex::models

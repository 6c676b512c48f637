#pragma once
// The layers DenseNet is built from, each a thin Module over one chex::ops function, with
// PyTorch's parameter names, shapes and default initialisation (drawn from a chex::Generator).
#include <concepts>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>

#include "chex/nn/module.h"
#include "chex/ops.h"
#include "chex/random.h"

namespace chex::nn {

// 2-D convolution, square kernel. weight [out, in, k, k], bias [out] (absent when bias = false).
// Initialised as torch.nn.Conv2d: kaiming_uniform_(a = sqrt(5)), i.e. U(±1/sqrt(fan_in)), and the
// bias U(±1/sqrt(fan_in)), fan_in = in·k·k.
class Conv2d : public Module {
 public:
  Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel, int64_t stride = 1, int64_t padding = 0,
         bool bias = true, Generator& gen = default_generator());
  Tensor forward(const Tensor& x) override;

  const Tensor& weight() const { return weight_; }
  const Tensor& bias() const { return bias_; }  // undefined without a bias
  int64_t stride() const { return stride_; }
  int64_t padding() const { return padding_; }

 private:
  Tensor weight_, bias_;
  int64_t stride_, padding_;
};

// Batch normalisation over [N, C, H, W]. Parameters weight (1), bias (0); buffers running_mean (0),
// running_var (1) and num_batches_tracked. In training mode it normalises with the batch statistics
// and updates the running ones; in eval mode it uses the running ones.
//
// num_batches_tracked is a float32 tensor of shape [] (PyTorch: int64), because float32 is the
// engine's only compute type; it counts exactly up to 2^24 batches, far beyond any training run
// here. It is kept for state-dict compatibility and is not used (momentum is always given).
// A training forward adds one to it with a kernel on its device (ops::add_scalar_), never by
// reading it back: state_dict() hands out handles to the live tensor and load_state_dict() writes
// into it, so the tensor stays the one true count and nothing waits on the device.
class BatchNorm2d : public Module {
 public:
  explicit BatchNorm2d(int64_t channels, float eps = 1e-5f, float momentum = 0.1f);
  Tensor forward(const Tensor& x) override;

  const Tensor& weight() const { return weight_; }
  const Tensor& bias() const { return bias_; }
  const Tensor& running_mean() const { return running_mean_; }
  const Tensor& running_var() const { return running_var_; }
  const Tensor& num_batches_tracked() const { return num_batches_tracked_; }
  float eps() const { return eps_; }
  float momentum() const { return momentum_; }

  // Training statistics from the global batch over `comm`'s ranks (distributed::
  // convert_sync_batch_norm), or from `groups` slices of the batch each (ghost batch norm); see
  // ops::BatchNormOptions.
  void set_sync(std::shared_ptr<distributed::Communicator> comm) { sync_ = std::move(comm); }
  void set_groups(int64_t groups) { groups_ = groups; }
  // The options batch_norm2d is called with in the current mode.
  ops::BatchNormOptions options(bool fuse_relu = false) const;

 private:
  Tensor weight_, bias_, running_mean_, running_var_, num_batches_tracked_;
  float eps_, momentum_;
  std::shared_ptr<distributed::Communicator> sync_;
  int64_t groups_ = 1;
};

class ReLU : public Module {
 public:
  Tensor forward(const Tensor& x) override;
};

// Max pooling with implicit -inf padding.
class MaxPool2d : public Module {
 public:
  MaxPool2d(int64_t kernel, int64_t stride, int64_t padding = 0);
  Tensor forward(const Tensor& x) override;

 private:
  int64_t kernel_, stride_, padding_;
};

// Average pooling without padding.
class AvgPool2d : public Module {
 public:
  AvgPool2d(int64_t kernel, int64_t stride);
  Tensor forward(const Tensor& x) override;

 private:
  int64_t kernel_, stride_;
};

// [N, C, H, W] -> [N, C]: the mean over each channel's feature map.
class GlobalAvgPool : public Module {
 public:
  Tensor forward(const Tensor& x) override;
};

// x [N, in] -> [N, out]. weight [out, in], bias [out]; initialised as Conv2d with fan_in = in.
class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias = true, Generator& gen = default_generator());
  Tensor forward(const Tensor& x) override;

  const Tensor& weight() const { return weight_; }
  const Tensor& bias() const { return bias_; }

 private:
  Tensor weight_, bias_;
};

// Children applied in order. push_back() names them "0", "1", … (PyTorch's append); add() names
// them explicitly, as torchvision's OrderedDict Sequentials do ("conv0", "norm0", …).
class Sequential : public Module {
 public:
  Sequential() = default;
  Sequential(std::initializer_list<std::shared_ptr<Module>> modules);

  template <std::derived_from<Module> M>
  std::shared_ptr<M> push_back(std::shared_ptr<M> module) {
    return register_module(std::to_string(size()), std::move(module));
  }
  template <std::derived_from<Module> M>
  std::shared_ptr<M> add(const std::string& name, std::shared_ptr<M> module) {
    return register_module(name, std::move(module));
  }
  size_t size() const { return named_children().size(); }  // number of children

  Tensor forward(const Tensor& x) override;
};

}  // namespace chex::nn

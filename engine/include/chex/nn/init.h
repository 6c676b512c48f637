#pragma once
// Weight initialisation in place, with torch.nn.init's formulas. The values are drawn from a
// chex::Generator (not PyTorch's generator), so they match PyTorch in distribution, not digit for
// digit. Tensors may live on any device: values are drawn on the host and copied over.
#include "chex/random.h"
#include "chex/tensor.h"

namespace chex::nn::init {

enum class FanMode { In, Out };
enum class Nonlinearity { Linear, ReLU, LeakyReLU, Sigmoid, Tanh };

struct KaimingOptions {
  double a = 0.0;  // negative slope of the leaky ReLU that follows
  FanMode mode = FanMode::In;
  Nonlinearity nonlinearity = Nonlinearity::LeakyReLU;  // with a = 0: the ReLU gain, sqrt(2)
};

// torch.nn.init.calculate_gain; `a` is the leaky ReLU's negative slope.
double calculate_gain(Nonlinearity nonlinearity, double a = 0.0);
// fan_in = size(1)·receptive field, fan_out = size(0)·receptive field (receptive field = the
// product of the dimensions after the first two). Needs at least 2 dimensions.
int64_t fan(const Tensor& tensor, FanMode mode);

// U(low, high).
void uniform_(const Tensor& tensor, float low, float high, Generator& gen = default_generator());
// N(mean, std²).
void normal_(const Tensor& tensor, float mean, float std, Generator& gen = default_generator());
void constant_(const Tensor& tensor, float value);
// N(0, std²) with std = gain / sqrt(fan). DenseNet initialises its convolutions with the defaults.
void kaiming_normal_(const Tensor& tensor, Generator& gen = default_generator(), const KaimingOptions& options = {});
// U(±bound) with bound = gain·sqrt(3 / fan): the same variance as kaiming_normal_.
void kaiming_uniform_(const Tensor& tensor, Generator& gen = default_generator(), const KaimingOptions& options = {});

}  // namespace chex::nn::init

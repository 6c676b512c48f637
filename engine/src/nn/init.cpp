#include "chex/nn/init.h"

#include <cmath>

#include "chex/autograd.h"
#include "chex/error.h"

namespace chex::nn::init {
namespace {

void check_float(const char* fn, const Tensor& tensor) {
  CHEX_CHECK(tensor.defined(), fn, ": the tensor is undefined");
  CHEX_CHECK(tensor.dtype() == DType::F32, fn, ": expected a float32 tensor, got ", tensor.str());
}

// Initialisation overwrites a (usually trainable) leaf in place: never recorded.
void overwrite(const Tensor& tensor, const Tensor& values) {
  NoGradGuard no_grad;
  tensor.copy_(values);
}

}  // namespace

double calculate_gain(Nonlinearity nonlinearity, double a) {
  switch (nonlinearity) {
    case Nonlinearity::Linear:
    case Nonlinearity::Sigmoid: return 1.0;
    case Nonlinearity::ReLU: return std::sqrt(2.0);
    case Nonlinearity::LeakyReLU: return std::sqrt(2.0 / (1.0 + a * a));
    case Nonlinearity::Tanh: return 5.0 / 3.0;
  }
  CHEX_FAIL("calculate_gain: unknown nonlinearity");
}

int64_t fan(const Tensor& tensor, FanMode mode) {
  CHEX_CHECK(tensor.defined() && tensor.dim() >= 2, "init: fan in and fan out need a tensor of at least 2 "
             "dimensions, got ", tensor.defined() ? shape_str(tensor.shape()) : std::string("an undefined tensor"));
  int64_t receptive_field = 1;
  for (int64_t d = 2; d < tensor.dim(); ++d) receptive_field *= tensor.size(d);
  return (mode == FanMode::In ? tensor.size(1) : tensor.size(0)) * receptive_field;
}

void uniform_(const Tensor& tensor, float low, float high, Generator& gen) {
  check_float("uniform_", tensor);
  CHEX_CHECK(low <= high, "uniform_: low ", low, " is above high ", high);
  overwrite(tensor, Tensor::uniform(tensor.shape(), gen, low, high));
}

void normal_(const Tensor& tensor, float mean, float std, Generator& gen) {
  check_float("normal_", tensor);
  CHEX_CHECK(std >= 0.f, "normal_: the standard deviation must not be negative, got ", std);
  overwrite(tensor, Tensor::randn(tensor.shape(), gen, mean, std));
}

void constant_(const Tensor& tensor, float value) {
  check_float("constant_", tensor);
  NoGradGuard no_grad;
  tensor.fill_(value);
}

namespace {
double kaiming_std(const Tensor& tensor, const KaimingOptions& options) {
  const int64_t n = fan(tensor, options.mode);
  CHEX_CHECK(n > 0, "kaiming init: the fan of ", tensor.str(), " is zero");
  return calculate_gain(options.nonlinearity, options.a) / std::sqrt(static_cast<double>(n));
}
}  // namespace

void kaiming_normal_(const Tensor& tensor, Generator& gen, const KaimingOptions& options) {
  check_float("kaiming_normal_", tensor);
  normal_(tensor, 0.f, static_cast<float>(kaiming_std(tensor, options)), gen);
}

void kaiming_uniform_(const Tensor& tensor, Generator& gen, const KaimingOptions& options) {
  check_float("kaiming_uniform_", tensor);
  const auto bound = static_cast<float>(std::sqrt(3.0) * kaiming_std(tensor, options));
  uniform_(tensor, -bound, bound, gen);
}

}  // namespace chex::nn::init

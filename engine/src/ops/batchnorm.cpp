// batch_norm2d: per-channel batch normalisation of NCHW tensors, with an optional fused ReLU.
#include <utility>

#include "chex/autograd.h"
#include "chex/ops.h"
#include "cuda/ops_cuda.h"
#include "kernels/batchnorm.h"
#include "op_utils.h"

namespace chex::ops {
namespace k = chex::kernels::cpu;
namespace gpu = chex::cuda;

Tensor batch_norm2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                    const Tensor& running_var, BatchNormOptions options) {
  constexpr const char* op = "batch_norm2d";
  detail::check_rank(op, "x", x, 4);
  const int64_t batch = x.size(0);
  const int64_t channels = x.size(1);
  const int64_t spatial = x.size(2) * x.size(3);
  auto check_per_channel = [&](const char* arg, const Tensor& t) {
    detail::check_float(op, arg, t);
    CHEX_CHECK(t.shape() == Shape{channels}, op, ": ", arg, " has shape ", shape_str(t.shape()), " but the input ",
               shape_str(x.shape()), " has ", channels, " channels");
  };
  check_per_channel("weight", weight);
  check_per_channel("bias", bias);
  check_per_channel("running_mean", running_mean);
  check_per_channel("running_var", running_var);
  const Device device = detail::common_device(op, {&x, &weight, &bias, &running_mean, &running_var});
  CHEX_CHECK(options.eps > 0.f, op, ": eps must be positive, got ", options.eps);
  CHEX_CHECK(options.momentum >= 0.f && options.momentum <= 1.f, op, ": momentum must be in [0, 1], got ",
             options.momentum);
  if (options.training) {
    CHEX_CHECK(batch * spatial > 1, op, ": expected more than 1 value per channel when training, got input size ",
               shape_str(x.shape()));
    // Updated in place through their data pointers.
    CHEX_CHECK(running_mean.is_contiguous() && running_var.is_contiguous(), op,
               ": the running statistics must be contiguous to be updated in place");
  }

  const Tensor input = detail::detached_batch_strided(x);
  const Tensor gamma = weight.detach().contiguous();
  const Tensor beta = bias.detach().contiguous();
  const Tensor rm = running_mean.contiguous(), rv = running_var.contiguous();
  Tensor y = Tensor::empty(x.shape(), x.device());
  // The statistics the output was normalised with: all that the backward needs besides x.
  const bool backward_follows = any_requires_grad({x, weight, bias});
  Tensor mean, invstd;
  if (backward_follows) {
    mean = Tensor::empty({channels}, x.device());
    invstd = Tensor::empty({channels}, x.device());
  }
  float* mean_out = backward_follows ? mean.data() : nullptr;
  float* invstd_out = backward_follows ? invstd.data() : nullptr;
  const int64_t image = channels * spatial;  // y's batch stride
  const int64_t x_stride = detail::batch_stride(input);
  if (options.training && device.is_cpu()) {
    k::batch_norm_forward_training(input.data(), x_stride, y.data(), image, batch, channels, spatial, gamma.data(),
                                   beta.data(), options.momentum, options.eps, rm.data(), rv.data(), mean_out,
                                   invstd_out, options.fuse_relu);
  } else if (options.training) {
    gpu::batch_norm_forward_training(device.index, input.data(), x_stride, y.data(), image, batch, channels, spatial,
                                     gamma.data(), beta.data(), options.momentum, options.eps, rm.data(), rv.data(),
                                     mean_out, invstd_out, options.fuse_relu);
  } else if (device.is_cpu()) {
    k::batch_norm_forward_inference(input.data(), x_stride, y.data(), image, batch, channels, spatial, gamma.data(),
                                    beta.data(), rm.data(), rv.data(), options.eps, mean_out, invstd_out,
                                    options.fuse_relu);
  } else {
    gpu::batch_norm_forward_inference(device.index, input.data(), x_stride, y.data(), image, batch, channels, spatial,
                                      gamma.data(), beta.data(), rm.data(), rv.data(), options.eps, mean_out,
                                      invstd_out, options.fuse_relu);
  }

  // Saved: x (a view when batch-strided, never the output), gamma, the statistics, and beta only
  // when the ReLU mask must be recomputed.
  const Tensor saved_beta = options.fuse_relu ? beta : Tensor();
  const bool batch_statistics = options.training;
  const bool fuse_relu = options.fuse_relu;
  auto backward = [input, gamma, saved_beta, mean, invstd, batch_statistics, fuse_relu](
                      const Tensor& g, const std::vector<bool>& needs) {
    const Tensor dy = detail::detached_batch_strided(g);
    const int64_t n = input.size(0), c = input.size(1), hw = input.size(2) * input.size(3);
    Tensor dx = needs[0] ? Tensor::empty(input.shape(), input.device()) : Tensor();
    Tensor dgamma = needs[1] ? Tensor::empty({c}, input.device()) : Tensor();
    Tensor dbeta = needs[2] ? Tensor::empty({c}, input.device()) : Tensor();
    auto data_or_null = [](const Tensor& t) { return t.defined() ? t.data() : nullptr; };
    const Device dev = input.device();
    if (dev.is_cpu())
      k::batch_norm_backward(input.data(), detail::batch_stride(input), dy.data(), detail::batch_stride(dy),
                             data_or_null(dx), c * hw, n, c, hw, mean.data(), invstd.data(), gamma.data(),
                             data_or_null(saved_beta), batch_statistics, fuse_relu, data_or_null(dgamma),
                             data_or_null(dbeta));
    else
      gpu::batch_norm_backward(dev.index, input.data(), detail::batch_stride(input), dy.data(),
                               detail::batch_stride(dy), data_or_null(dx), c * hw, n, c, hw, mean.data(),
                               invstd.data(), gamma.data(), data_or_null(saved_beta), batch_statistics, fuse_relu,
                               data_or_null(dgamma), data_or_null(dbeta));
    return std::vector<Tensor>{dx, dgamma, dbeta};
  };
  return record(op, y, {x, weight, bias}, std::move(backward));
}

}  // namespace chex::ops

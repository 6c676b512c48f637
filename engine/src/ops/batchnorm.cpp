// batch_norm2d: per-channel batch normalisation of NCHW tensors, with an optional fused ReLU.
#include <utility>

#include "chex/autograd.h"
#include "chex/ops.h"
#include "backend/backend.h"
#include "batchnorm_groups.h"
#include "kernels/batchnorm.h"
#include "op_utils.h"

namespace chex::ops {
using detail::data_or_null;

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
    // Sync batch norm needs more than one value over all the ranks, which it checks itself.
    CHEX_CHECK(batch * spatial > 1 || options.sync, op, ": expected more than 1 value per channel when training, got input size ",
               shape_str(x.shape()));
    // Updated in place through their data pointers.
    CHEX_CHECK(running_mean.is_contiguous() && running_var.is_contiguous(), op,
               ": the running statistics must be contiguous to be updated in place");
  }

  CHEX_CHECK(options.groups >= 1, op, ": groups must be at least 1, got ", options.groups);
  CHEX_CHECK(!(options.sync && options.groups > 1), op, ": sync and ghost batch norm exclude each other");
  if (options.training && options.sync) return detail::sync_batch_norm2d(x, weight, bias, running_mean, running_var, options);
  if (options.training && options.groups > 1)
    return detail::ghost_batch_norm2d(x, weight, bias, running_mean, running_var, options);

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
  const backend::Backend be = backend::backend(device);
  kernels::BatchNormForwardArgs args{.shape = {batch, channels, spatial},
                                     .x = {input.data(), detail::batch_stride(input)},
                                     .y = {y.data(), channels * spatial},
                                     .gamma = gamma.data(),
                                     .beta = beta.data(),
                                     .running_mean = rm.data(),
                                     .running_var = rv.data(),
                                     .momentum = options.momentum,
                                     .eps = options.eps,
                                     .save_mean = data_or_null(mean),
                                     .save_invstd = data_or_null(invstd),
                                     .fuse_relu = options.fuse_relu};
  if (options.training) {
    const backend::Workspace workspace = be.workspace(be.batch_norm_workspace_bytes(args.shape));
    args.workspace = workspace.get();
    be.batch_norm_forward_training(args);
  } else {
    be.batch_norm_forward_inference(args);
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
    const backend::Backend device_kernels = backend::backend(input.device());
    kernels::BatchNormBackwardArgs grad_args{.shape = {n, c, hw},
                                        .x = {input.data(), detail::batch_stride(input)},
                                        .dy = {dy.data(), detail::batch_stride(dy)},
                                        .dx = {data_or_null(dx), c * hw},
                                        .mean = mean.data(),
                                        .invstd = invstd.data(),
                                        .gamma = gamma.data(),
                                        .beta = data_or_null(saved_beta),
                                        .batch_statistics = batch_statistics,
                                        .fuse_relu = fuse_relu,
                                        .dgamma = data_or_null(dgamma),
                                        .dbeta = data_or_null(dbeta)};
    const backend::Workspace workspace =
        device_kernels.workspace(device_kernels.batch_norm_workspace_bytes(grad_args.shape));
    grad_args.workspace = workspace.get();
    device_kernels.batch_norm_backward(grad_args);
    return std::vector<Tensor>{dx, dgamma, dbeta};
  };
  return record(op, y, {x, weight, bias}, std::move(backward));
}

}  // namespace chex::ops

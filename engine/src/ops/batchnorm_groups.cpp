// The training batch norms whose statistics are not those of the local batch: sync batch norm
// (the moments of the global batch, summed over the ranks) and ghost batch norm (each slice of the
// batch on its own). batch_norm2d (batchnorm.cpp) checks the arguments and calls these.
#include <algorithm>
#include <utility>
#include <vector>

#include "batchnorm_groups.h"
#include "chex/autograd.h"
#include "chex/distributed.h"
#include "chex/ops.h"
#include "backend/backend.h"
#include "kernels/batchnorm.h"
#include "op_utils.h"

namespace chex::ops::detail {
namespace {

kernels::ImageShape image_shape(const Tensor& t) { return {t.size(0), t.size(1), t.size(2) * t.size(3)}; }

}  // namespace

// Forward: local moments -> (count * mean, count * E[x^2], count) summed over the ranks -> the
// global mean and biased variance -> the statistics and running statistics as the fused forward
// makes them -> y. Backward: the local dbeta = sum(dy') and dgamma = sum(dy' xhat) (with the
// global statistics) summed over the ranks give the batch-statistics term of dx, which is affine
// in x - mean. dgamma and dbeta stay local: DataParallel averages them with the other gradients.
Tensor sync_batch_norm2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                         const Tensor& running_var, const BatchNormOptions& options) {
  const backend::Backend be = backend::backend(x.device());
  CHEX_CHECK(be.has(&backend::KernelTable::batch_norm_moments) &&
                 be.has(&backend::KernelTable::batch_norm_statistics_from_moments) &&
                 be.has(&backend::KernelTable::batch_norm_backward_statistics_term) &&
                 be.has(&backend::KernelTable::add_affine_of_input),
             "sync batch norm needs the batch-norm parts that only the CPU backend has so far, not ",
             x.device().str(), "; train without --sync-bn there");
  distributed::Communicator* comm = options.sync;
  const Tensor input = detached_batch_strided(x);
  const Tensor gamma = weight.detach().contiguous(), beta = bias.detach().contiguous();
  const kernels::ImageShape shape = image_shape(input);
  const int64_t c = shape.channels;
  const auto cs = static_cast<size_t>(c);

  std::vector<double> mean(cs), var(cs);
  be.batch_norm_moments(kernels::BatchNormMomentsArgs{.shape = shape, .x = {input.data(), batch_stride(input)}, .mean = mean.data(), .var = var.data()});
  const auto local_count = static_cast<double>(shape.batch * shape.spatial);
  std::vector<double> sums(2 * cs + 1);
  for (size_t i = 0; i < cs; ++i) {
    sums[i] = local_count * mean[i];
    sums[cs + i] = local_count * (var[i] + mean[i] * mean[i]);
  }
  sums[2 * cs] = local_count;
  comm->all_reduce_sum(sums.data(), sums.size());
  const double total = sums[2 * cs];
  CHEX_CHECK(total > 1, "sync batch_norm2d: expected more than 1 value per channel over all ranks when training, got ",
             total);
  for (size_t i = 0; i < cs; ++i) {
    mean[i] = sums[i] / total;
    var[i] = std::max(0.0, sums[cs + i] / total - mean[i] * mean[i]);
  }
  Tensor save_mean = Tensor::empty({c}, x.device()), save_invstd = Tensor::empty({c}, x.device());
  be.batch_norm_statistics_from_moments(kernels::BatchNormStatisticsFromMomentsArgs{.mean = mean.data(), .var = var.data(), .channels = c,
                                         .count = static_cast<int64_t>(total), .momentum = options.momentum,
                                         .eps = options.eps, .running_mean = running_mean.data(),
                                         .running_var = running_var.data(), .save_mean = save_mean.data(),
                                         .save_invstd = save_invstd.data()});
  Tensor y = Tensor::empty(x.shape(), x.device());
  be.batch_norm_apply(kernels::BatchNormApplyArgs{.shape = shape, .x = {input.data(), batch_stride(input)}, .y = {y.data(), c * shape.spatial},
                       .mean = save_mean.data(), .invstd = save_invstd.data(), .gamma = gamma.data(),
                       .beta = beta.data(), .fuse_relu = options.fuse_relu});

  const bool fuse_relu = options.fuse_relu;
  const auto count = static_cast<int64_t>(total);
  auto backward = [input, gamma, beta, save_mean, save_invstd, fuse_relu, comm, count](
                      const Tensor& g, const std::vector<bool>& needs) {
    const Tensor dy = detached_batch_strided(g);
    const kernels::ImageShape s = image_shape(input);
    const int64_t ch = s.channels;
    const auto chs = static_cast<size_t>(ch);
    Tensor dx = needs[0] ? Tensor::empty(input.shape(), input.device()) : Tensor();
    Tensor dgamma = Tensor::empty({ch}, input.device()), dbeta = Tensor::empty({ch}, input.device());
    const backend::Backend kernels_of = backend::backend(input.device());
    const backend::Workspace workspace = kernels_of.workspace(kernels_of.batch_norm_workspace_bytes(s));
    // With fixed statistics: dx = gamma invstd dy', and the local sums.
    kernels_of.batch_norm_backward(kernels::BatchNormBackwardArgs{.shape = s, .x = {input.data(), batch_stride(input)},
                                    .dy = {dy.data(), batch_stride(dy)}, .dx = {data_or_null(dx), ch * s.spatial},
                                    .mean = save_mean.data(), .invstd = save_invstd.data(), .gamma = gamma.data(),
                                    .beta = fuse_relu ? beta.data() : nullptr, .batch_statistics = false,
                                    .fuse_relu = fuse_relu, .dgamma = dgamma.data(), .dbeta = dbeta.data(),
                                    .workspace = workspace.get()});
    // Every rank's graph is the same, so every rank takes this branch or none does.
    if (needs[0]) {
      const float* invstd = save_invstd.data();
      std::vector<double> global(2 * chs);
      for (size_t i = 0; i < chs; ++i) {
        global[i] = dbeta.data()[i];
        global[chs + i] = static_cast<double>(dgamma.data()[i]) / invstd[i];  // sum dy' (x - mean)
      }
      comm->all_reduce_sum(global.data(), global.size());
      std::vector<double> alpha(chs, 0.0), slope(chs, 0.0);
      kernels_of.batch_norm_backward_statistics_term(kernels::BatchNormStatisticsTermArgs{.sum_dy = global.data(), .sum_dy_centered = global.data() + chs,
                                                      .channels = ch, .count = count, .invstd = invstd,
                                                      .gamma = gamma.data(), .alpha = alpha.data(), .beta = slope.data()});
      kernels_of.add_affine_of_input(kernels::AddAffineOfInputArgs{.shape = s, .x = {input.data(), batch_stride(input)},
                                      .dx = {dx.data(), ch * s.spatial}, .center = save_mean.data(),
                                      .alpha = alpha.data(), .beta = slope.data()});
    }
    return std::vector<Tensor>{dx, needs[1] ? dgamma : Tensor(), needs[2] ? dbeta : Tensor()};
  };
  return record("sync_batch_norm2d", y, {x, weight, bias}, std::move(backward));
}

// Each slice through the ordinary training kernels with its own statistics; only the first moves
// the running statistics.
Tensor ghost_batch_norm2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                          const Tensor& running_var, const BatchNormOptions& options) {
  const int64_t groups = options.groups;
  CHEX_CHECK(x.size(0) % groups == 0, "batch_norm2d: a batch of ", x.size(0), " does not split into ", groups,
             " equal groups");
  const int64_t n = x.size(0) / groups;
  const backend::Backend be = backend::backend(x.device());
  const Tensor input = detached_batch_strided(x);
  const Tensor gamma = weight.detach().contiguous(), beta = bias.detach().contiguous();
  const int64_t c = x.size(1);
  Tensor y = Tensor::empty(x.shape(), x.device());
  const Tensor spare_mean = running_mean.clone(), spare_var = running_var.clone();
  std::vector<Tensor> means, invstds;
  for (int64_t g = 0; g < groups; ++g) {
    const Tensor xs = input.narrow(0, g * n, n), ys = y.narrow(0, g * n, n);
    means.push_back(Tensor::empty({c}, x.device()));
    invstds.push_back(Tensor::empty({c}, x.device()));
    kernels::BatchNormForwardArgs args{.shape = image_shape(xs), .x = {xs.data(), batch_stride(xs)},
                                       .y = {ys.data(), batch_stride(ys)}, .gamma = gamma.data(),
                                       .beta = beta.data(),
                                       .running_mean = (g == 0 ? running_mean : spare_mean).data(),
                                       .running_var = (g == 0 ? running_var : spare_var).data(),
                                       .momentum = options.momentum, .eps = options.eps,
                                       .save_mean = means.back().data(), .save_invstd = invstds.back().data(),
                                       .fuse_relu = options.fuse_relu};
    const backend::Workspace workspace = be.workspace(be.batch_norm_workspace_bytes(args.shape));
    args.workspace = workspace.get();
    be.batch_norm_forward_training(args);
  }
  const bool fuse_relu = options.fuse_relu;
  auto backward = [input, gamma, beta, means, invstds, fuse_relu, n](const Tensor& grad, const std::vector<bool>& needs) {
    const Tensor dy = detached_batch_strided(grad);
    const int64_t ch = input.size(1);
    Tensor dx = needs[0] ? Tensor::empty(input.shape(), input.device()) : Tensor();
    Tensor dgamma, dbeta;
    const backend::Backend kernels_of = backend::backend(input.device());
    for (size_t g = 0; g < means.size(); ++g) {
      const auto first = static_cast<int64_t>(g) * n;
      const Tensor xs = input.narrow(0, first, n), dys = dy.narrow(0, first, n);
      const Tensor dxs = needs[0] ? dx.narrow(0, first, n) : Tensor();
      Tensor dgamma_g = Tensor::empty({ch}, input.device()), dbeta_g = Tensor::empty({ch}, input.device());
      const kernels::ImageShape s = image_shape(xs);
      const backend::Workspace workspace = kernels_of.workspace(kernels_of.batch_norm_workspace_bytes(s));
      kernels_of.batch_norm_backward(kernels::BatchNormBackwardArgs{.shape = s, .x = {xs.data(), batch_stride(xs)}, .dy = {dys.data(), batch_stride(dys)},
                                      .dx = {data_or_null(dxs), dxs.defined() ? batch_stride(dxs) : 0},
                                      .mean = means[g].data(), .invstd = invstds[g].data(), .gamma = gamma.data(),
                                      .beta = fuse_relu ? beta.data() : nullptr, .batch_statistics = true,
                                      .fuse_relu = fuse_relu, .dgamma = dgamma_g.data(), .dbeta = dbeta_g.data(),
                                      .workspace = workspace.get()});
      dgamma = dgamma.defined() ? ops::add(dgamma, dgamma_g) : dgamma_g;
      dbeta = dbeta.defined() ? ops::add(dbeta, dbeta_g) : dbeta_g;
    }
    return std::vector<Tensor>{dx, needs[1] ? dgamma : Tensor(), needs[2] ? dbeta : Tensor()};
  };
  return record("ghost_batch_norm2d", y, {x, weight, bias}, std::move(backward));
}

}  // namespace chex::ops::detail

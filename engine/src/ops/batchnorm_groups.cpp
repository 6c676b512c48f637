// The training batch norms whose statistics are not those of the local batch: sync batch norm
// (the moments of the global batch, summed over the ranks) and ghost batch norm (each slice of the
// batch on its own). batch_norm2d (batchnorm.cpp) checks the arguments and calls these.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
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

// Built from the kernels every backend has, so that it runs on the CPU and on CUDA alike; the
// per-channel statistics (a few floats) go through the host.
// Forward: each rank's batch mean and biased variance (the training forward's saved statistics on
// a scratch output: var = 1/invstd^2 - eps) -> every rank's (count, mean, var) gathered and
// combined in rank order (Chan et al.'s pairwise update, no cancellation) -> the global statistics,
// the running statistics moved as one process would -> y = batch_norm_apply.
// Backward: with the global statistics held fixed, the kernel gives dx' = gamma invstd dy' and the
// local dbeta = sum(dy'), dgamma = sum(dy' xhat); those two sums over all ranks give the term of dx
// that goes through the batch statistics, which is affine in x - mean and is applied by
// batch_norm_apply as alpha + slope (x - mean). dgamma and dbeta stay local: DataParallel averages
// them with the other gradients.
namespace {

struct GlobalStatistics {
  std::vector<double> mean, var;
  double count = 0;
};

GlobalStatistics global_statistics(distributed::Communicator& comm, const backend::Backend& be, const Tensor& input,
                                   Tensor& scratch_y, float eps) {
  const kernels::ImageShape shape = image_shape(input);
  const int64_t c = shape.channels;
  const Device device = input.device();
  Tensor mean = Tensor::empty({c}, device), invstd = Tensor::empty({c}, device);
  Tensor spare_mean = Tensor::zeros({c}, device), spare_var = Tensor::ones({c}, device);
  const Tensor ones = Tensor::ones({c}, device), zeros = Tensor::zeros({c}, device);
  kernels::BatchNormForwardArgs args{.shape = shape, .x = {input.data(), batch_stride(input)},
                                     .y = {scratch_y.data(), c * shape.spatial}, .gamma = ones.data(),
                                     .beta = zeros.data(), .running_mean = spare_mean.data(),
                                     .running_var = spare_var.data(), .momentum = 0.f, .eps = eps,
                                     .save_mean = mean.data(), .save_invstd = invstd.data()};
  const backend::Workspace workspace = be.workspace(be.batch_norm_workspace_bytes(shape));
  args.workspace = workspace.get();
  be.batch_norm_forward_training(args);
  const std::vector<float> m = mean.to_vector(), is = invstd.to_vector();
  std::vector<double> mine(2 * static_cast<size_t>(c) + 1);
  mine[0] = static_cast<double>(shape.batch * shape.spatial);
  for (size_t i = 0; i < static_cast<size_t>(c); ++i) {
    mine[1 + i] = m[i];
    mine[1 + c + i] = std::max(0.0, 1.0 / (static_cast<double>(is[i]) * is[i]) - eps);
  }
  const std::string bytes(reinterpret_cast<const char*>(mine.data()), mine.size() * sizeof(double));
  GlobalStatistics g{std::vector<double>(static_cast<size_t>(c), 0.0), std::vector<double>(static_cast<size_t>(c), 0.0), 0};
  std::vector<double> m2(static_cast<size_t>(c), 0.0);
  for (const std::string& part : comm.all_gather(bytes)) {
    CHEX_CHECK(part.size() == bytes.size(), "sync batch norm: the ranks disagree on the number of channels");
    std::vector<double> r(mine.size());
    std::memcpy(r.data(), part.data(), part.size());
    const double n = r[0], total = g.count + n;
    for (size_t i = 0; i < static_cast<size_t>(c); ++i) {
      const double delta = r[1 + i] - g.mean[i];
      g.mean[i] += delta * n / total;
      m2[i] += r[1 + c + i] * n + delta * delta * g.count * n / total;
    }
    g.count = total;
  }
  for (size_t i = 0; i < static_cast<size_t>(c); ++i) g.var[i] = m2[i] / g.count;
  return g;
}

Tensor on(Device device, const std::vector<double>& values) {
  return Tensor::from_vector(std::vector<float>(values.begin(), values.end()), {static_cast<int64_t>(values.size())}).to(device);
}

}  // namespace

Tensor sync_batch_norm2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                         const Tensor& running_var, const BatchNormOptions& options) {
  const backend::Backend be = backend::backend(x.device());
  distributed::Communicator* comm = options.sync;
  const Device device = x.device();
  const Tensor input = detached_batch_strided(x);
  const Tensor gamma = weight.detach().contiguous(), beta = bias.detach().contiguous();
  const kernels::ImageShape shape = image_shape(input);
  const int64_t c = shape.channels;
  const auto cs = static_cast<size_t>(c);

  Tensor y = Tensor::empty(x.shape(), device);
  const GlobalStatistics g = global_statistics(*comm, be, input, y, options.eps);
  CHEX_CHECK(g.count > 1, "sync batch_norm2d: expected more than 1 value per channel over all ranks when training, got ",
             g.count);
  // The running statistics, as the fused forward moves them (the unbiased variance).
  std::vector<double> invstd(cs), rm(cs), rv(cs);
  const std::vector<float> old_rm = running_mean.to_vector(), old_rv = running_var.to_vector();
  const double m = options.momentum;
  for (size_t i = 0; i < cs; ++i) {
    invstd[i] = 1.0 / std::sqrt(g.var[i] + options.eps);
    rm[i] = (1 - m) * old_rm[i] + m * g.mean[i];
    rv[i] = (1 - m) * old_rv[i] + m * g.var[i] * g.count / (g.count - 1);
  }
  running_mean.copy_(on(device, rm));
  running_var.copy_(on(device, rv));
  const Tensor save_mean = on(device, g.mean), save_invstd = on(device, invstd);
  be.batch_norm_apply(kernels::BatchNormApplyArgs{.shape = shape, .x = {input.data(), batch_stride(input)},
                                                  .y = {y.data(), c * shape.spatial}, .mean = save_mean.data(),
                                                  .invstd = save_invstd.data(), .gamma = gamma.data(),
                                                  .beta = beta.data(), .fuse_relu = options.fuse_relu});

  const bool fuse_relu = options.fuse_relu;
  const double count = g.count;
  auto backward = [input, gamma, beta, save_mean, save_invstd, fuse_relu, comm, count](
                      const Tensor& grad, const std::vector<bool>& needs) {
    const Tensor dy = detached_batch_strided(grad);
    const kernels::ImageShape s = image_shape(input);
    const int64_t ch = s.channels;
    const auto chs = static_cast<size_t>(ch);
    const Device dev = input.device();
    Tensor dx = needs[0] ? Tensor::empty(input.shape(), dev) : Tensor();
    Tensor dgamma = Tensor::empty({ch}, dev), dbeta = Tensor::empty({ch}, dev);
    const backend::Backend kernels_of = backend::backend(dev);
    const backend::Workspace workspace = kernels_of.workspace(kernels_of.batch_norm_workspace_bytes(s));
    kernels_of.batch_norm_backward(kernels::BatchNormBackwardArgs{
        .shape = s, .x = {input.data(), batch_stride(input)}, .dy = {dy.data(), batch_stride(dy)},
        .dx = {data_or_null(dx), ch * s.spatial}, .mean = save_mean.data(), .invstd = save_invstd.data(),
        .gamma = gamma.data(), .beta = fuse_relu ? beta.data() : nullptr, .batch_statistics = false,
        .fuse_relu = fuse_relu, .dgamma = dgamma.data(), .dbeta = dbeta.data(), .workspace = workspace.get()});
    // Every rank's graph is the same, so every rank takes this branch or none does.
    if (needs[0]) {
      const std::vector<float> is = save_invstd.to_vector(), gm = gamma.to_vector();
      const std::vector<float> local_dgamma = dgamma.to_vector(), local_dbeta = dbeta.to_vector();
      std::vector<double> sums(2 * chs);
      for (size_t i = 0; i < chs; ++i) {
        sums[i] = local_dbeta[i];                                          // sum dy'
        sums[chs + i] = static_cast<double>(local_dgamma[i]) / is[i];      // sum dy' (x - mean)
      }
      comm->all_reduce_sum(sums.data(), sums.size());
      std::vector<double> alpha(chs), slope(chs);
      for (size_t i = 0; i < chs; ++i) {
        const double scale = static_cast<double>(is[i]) * gm[i];
        alpha[i] = -scale * sums[i] / count;
        slope[i] = -scale * sums[chs + i] / count * is[i] * is[i];
      }
      // alpha + slope (x - mean): batch_norm_apply with invstd 1, gamma = slope, beta = alpha.
      const Tensor ones = Tensor::ones({ch}, dev), a = on(dev, alpha), b = on(dev, slope);
      Tensor term = Tensor::empty(input.shape(), dev);
      kernels_of.batch_norm_apply(kernels::BatchNormApplyArgs{
          .shape = s, .x = {input.data(), batch_stride(input)}, .y = {term.data(), ch * s.spatial},
          .mean = save_mean.data(), .invstd = ones.data(), .gamma = b.data(), .beta = a.data(), .fuse_relu = false});
      dx = ops::add(dx, term);
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

// The memory-efficient dense block: one op, one buffer, recomputed BN+ReLU outputs.
//
// What a block of L layers keeps for its backward, and why (sizes in units of N*H*W floats):
// - the block buffer itself, C0 + L*growth: each layer's input is a channel prefix of it, read in
//   place (batch stride = the whole buffer's image), and each conv2 writes its new channels
//   straight into their slice, so the concatenation never exists as a copy;
// - each layer's bottleneck, the conv1 output before norm2, L*bottleneck: recomputing it would
//   cost a convolution (a third of the layer's FLOPs), while keeping it is linear in depth;
// - each layer's batch statistics (mean and 1/std of norm1 and norm2): a few floats per channel.
// What it recomputes: the two BN+ReLU outputs, elementwise from the saved statistics with
// kernels' batch_norm_apply (bitwise what the forward produced), into one scratch buffer shared by
// all layers. The statistics themselves are never recomputed, so the running statistics move
// exactly once per step, as in PyTorch's non-checkpointed model (torchvision's checkpointing
// recomputes the whole forward of each layer and updates them twice).
// Backward walks the layers in reverse, accumulating the gradient of the whole block in one
// block-sized buffer: when layer l is visited, every later layer has added its contribution to
// l's channels, so their gradient is complete; l then adds its own into the prefix it read.
// Altogether memory grows linearly with depth (plus constant scratch), where the plain
// composition keeps every layer's concatenation and BN output: quadratic.
//
// Kernels are called through the device's backend (engine/src/backend/backend.h) only; where it
// has the optional convolutions that normalise their input, the block takes the fused path (see
// fuses_normalization).
#include "chex/dense_block.h"

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "chex/autograd.h"
#include "chex/error.h"
#include "backend/backend.h"
#include "kernels/batchnorm.h"
#include "kernels/concat.h"
#include "kernels/conv2d.h"

namespace chex::ops {
namespace {

using kernels::Conv2dGeometry;
constexpr const char* kOp = "memory_efficient_dense_block";

// The shapes of one block.
struct BlockGeometry {
  int64_t batch = 0, in_channels = 0, height = 0, width = 0;
  int64_t layers = 0, growth = 0, bottleneck = 0;

  int64_t spatial() const { return height * width; }
  int64_t layer_in_channels(int64_t l) const { return in_channels + l * growth; }
  int64_t out_channels() const { return in_channels + layers * growth; }
  // Batch strides: of the block buffer (also of its gradient), and of a bottleneck-wide tensor.
  int64_t image() const { return out_channels() * spatial(); }
  int64_t bottleneck_image() const { return bottleneck * spatial(); }
  // The shared scratch holds one layer's BN+ReLU output (at most C_final channels) or its
  // gradient; sized by C_final rather than C_final - growth to keep its size a function of the
  // block buffer's.
  int64_t scratch_size() const { return batch * std::max(out_channels(), bottleneck) * spatial(); }

  Conv2dGeometry conv1(int64_t l) const {
    return Conv2dGeometry::make(batch, layer_in_channels(l), height, width, bottleneck, 1, 1, 1, 0);
  }
  Conv2dGeometry conv2() const {
    return Conv2dGeometry::make(batch, bottleneck, height, width, growth, 3, 3, 1, 1);
  }
};

void check_vector(const char* what, int64_t layer, const Tensor& t, int64_t channels, bool updated_in_place) {
  CHEX_CHECK(t.defined() && t.dtype() == DType::F32 && t.shape() == Shape{channels} && t.is_contiguous(), kOp,
             ": layer ", layer, " ", what, " must be a contiguous float32 tensor of shape [", channels, "], got ",
             t.defined() ? t.str() + " " + shape_str(t.shape()) : std::string("an undefined tensor"),
             updated_in_place ? " (it is updated in place)" : "");
}

void check_batch_norm(const char* name, int64_t layer, const BatchNormTensors& bn, int64_t channels) {
  const std::string n(name);
  check_vector((n + ".weight").c_str(), layer, bn.weight, channels, false);
  check_vector((n + ".bias").c_str(), layer, bn.bias, channels, false);
  check_vector((n + ".running_mean").c_str(), layer, bn.running_mean, channels, true);
  check_vector((n + ".running_var").c_str(), layer, bn.running_var, channels, true);
  CHEX_CHECK(bn.eps > 0.f && bn.momentum >= 0.f && bn.momentum <= 1.f, kOp, ": layer ", layer, " ", name,
             " needs eps > 0 and momentum in [0, 1], got eps ", bn.eps, ", momentum ", bn.momentum);
}

void check_weight(const char* name, int64_t layer, const Tensor& w, const Shape& expected) {
  CHEX_CHECK(w.defined() && w.dtype() == DType::F32 && w.shape() == expected && w.is_contiguous(), kOp, ": layer ",
             layer, " ", name, " must be a contiguous float32 tensor of shape ", shape_str(expected), ", got ",
             w.defined() ? w.str() + " " + shape_str(w.shape()) : std::string("an undefined tensor"));
}

BlockGeometry check_arguments(const Tensor& x, const std::vector<DenseLayerTensors>& layers, bool training) {
  CHEX_CHECK(x.defined() && x.dtype() == DType::F32 && x.dim() == 4, kOp,
             ": the input must be a float32 [N, C, H, W] tensor, got ",
             x.defined() ? x.str() + " " + shape_str(x.shape()) : std::string("an undefined tensor"));
  CHEX_CHECK(!layers.empty(), kOp, ": a dense block needs at least one layer");
  BlockGeometry g;
  g.batch = x.size(0);
  g.in_channels = x.size(1);
  g.height = x.size(2);
  g.width = x.size(3);
  g.layers = static_cast<int64_t>(layers.size());
  g.bottleneck = layers[0].conv1_weight.defined() && layers[0].conv1_weight.dim() == 4 ? layers[0].conv1_weight.size(0) : 0;
  g.growth = layers[0].conv2_weight.defined() && layers[0].conv2_weight.dim() == 4 ? layers[0].conv2_weight.size(0) : 0;
  CHEX_CHECK(g.bottleneck > 0 && g.growth > 0, kOp, ": layer 0's convolution weights must be 4-dimensional");
  CHEX_CHECK(g.batch > 0 && g.in_channels > 0 && g.spatial() > 0, kOp, ": empty input ", shape_str(x.shape()));
  if (training)
    CHEX_CHECK(g.batch * g.spatial() > 1, kOp,
               ": batch normalisation in training needs more than 1 value per channel, got input ", shape_str(x.shape()));
  for (int64_t l = 0; l < g.layers; ++l) {
    const DenseLayerTensors& layer = layers[static_cast<size_t>(l)];
    const int64_t c = g.layer_in_channels(l);
    check_batch_norm("norm1", l, layer.norm1, c);
    check_weight("conv1.weight", l, layer.conv1_weight, {g.bottleneck, c, 1, 1});
    check_batch_norm("norm2", l, layer.norm2, g.bottleneck);
    check_weight("conv2.weight", l, layer.conv2_weight, {g.growth, g.bottleneck, 3, 3});
  }
  return g;
}

// The op's inputs, in the order the gradients are returned: x, then six tensors per layer.
constexpr size_t kTensorsPerLayer = 6;
enum LayerInput : size_t { kNorm1Weight, kNorm1Bias, kConv1Weight, kNorm2Weight, kNorm2Bias, kConv2Weight };
size_t input_index(int64_t layer, LayerInput which) {
  return 1 + static_cast<size_t>(layer) * kTensorsPerLayer + which;
}

std::vector<Tensor> op_inputs(const Tensor& x, const std::vector<DenseLayerTensors>& layers) {
  std::vector<Tensor> inputs{x};
  for (const DenseLayerTensors& l : layers)
    for (const Tensor& t : {l.norm1.weight, l.norm1.bias, l.conv1_weight, l.norm2.weight, l.norm2.bias, l.conv2_weight})
      inputs.push_back(t);
  return inputs;
}

DenseLayerTensors detached(const DenseLayerTensors& l) {
  auto bn = [](const BatchNormTensors& b) {
    return BatchNormTensors{b.weight.detach(), b.bias.detach(), b.running_mean, b.running_var, b.eps, b.momentum};
  };
  return {bn(l.norm1), l.conv1_weight.detach(), bn(l.norm2), l.conv2_weight.detach()};
}

// One layer's batch statistics, [2 * C_l + 2 * bottleneck] floats: the (mean, 1/std) that norm1
// and norm2 normalised with.
struct LayerStatistics {
  float* mean1 = nullptr;
  float* invstd1 = nullptr;
  float* mean2 = nullptr;
  float* invstd2 = nullptr;
  LayerStatistics() = default;  // none kept (no backward follows)
  LayerStatistics(const Tensor& storage, int64_t in_channels, int64_t bottleneck)
      : mean1(storage.data()),
        invstd1(mean1 + in_channels),
        mean2(invstd1 + in_channels),
        invstd2(mean2 + bottleneck) {}
};

// y = relu(norm(x)), with the batch statistics (updating the running ones) or the running ones;
// writes the statistics used into mean/invstd unless they are null.
void normalize_relu(const backend::Backend& be, const BatchNormTensors& bn, bool batch_statistics,
                    const float* x, int64_t x_batch_stride, float* y, int64_t y_batch_stride, int64_t batch,
                    int64_t channels, int64_t spatial, float* mean, float* invstd) {
  kernels::BatchNormForwardArgs args{.shape = {batch, channels, spatial},
                                     .x = {x, x_batch_stride},
                                     .y = {y, y_batch_stride},
                                     .gamma = bn.weight.data(),
                                     .beta = bn.bias.data(),
                                     .running_mean = bn.running_mean.data(),
                                     .running_var = bn.running_var.data(),
                                     .momentum = bn.momentum,
                                     .eps = bn.eps,
                                     .save_mean = mean,
                                     .save_invstd = invstd,
                                     .fuse_relu = true};
  if (batch_statistics) {
    const backend::Workspace workspace = be.workspace(be.batch_norm_workspace_bytes(args.shape));
    args.workspace = workspace.get();
    be.batch_norm_forward_training(args);
  } else {
    be.batch_norm_forward_inference(args);
  }
}

// relu(norm(x)) with given statistics (the backward's recomputation).
void apply_normalize_relu(const backend::Backend& be, const BatchNormTensors& bn, const float* x,
                          int64_t x_batch_stride, float* y, int64_t y_batch_stride, kernels::ImageShape shape,
                          const float* mean, const float* invstd) {
  be.batch_norm_apply(kernels::BatchNormApplyArgs{.shape = shape,
                                                  .x = {x, x_batch_stride},
                                                  .y = {y, y_batch_stride},
                                                  .mean = mean,
                                                  .invstd = invstd,
                                                  .gamma = bn.weight.data(),
                                                  .beta = bn.bias.data(),
                                                  .fuse_relu = true});
}

// The backward of relu(norm(x)) into dx (which may be dy, or null for the parameters only).
void normalize_relu_backward(const backend::Backend& be, const BatchNormTensors& bn, bool batch_statistics,
                             const float* x, int64_t x_batch_stride, const float* dy, float* dx,
                             int64_t grad_batch_stride, kernels::ImageShape shape, const float* mean,
                             const float* invstd, float* dgamma, float* dbeta) {
  const backend::Workspace workspace = be.workspace(be.batch_norm_workspace_bytes(shape));
  be.batch_norm_backward(kernels::BatchNormBackwardArgs{.shape = shape,
                                                        .x = {x, x_batch_stride},
                                                        .dy = {dy, grad_batch_stride},
                                                        .dx = {dx, grad_batch_stride},
                                                        .mean = mean,
                                                        .invstd = invstd,
                                                        .gamma = bn.weight.data(),
                                                        .beta = bn.bias.data(),
                                                        .batch_statistics = batch_statistics,
                                                        .fuse_relu = true,
                                                        .dgamma = dgamma,
                                                        .dbeta = dbeta,
                                                        .workspace = workspace.get()});
}

// On the CPU the layers' BN+ReLU never write their output: the convolution that reads it applies
// them as it reads its input (kernels/conv2d.h, InputNormalization), from cache. And every layer's
// norm1 reads the same channels of the block buffer, whose batch mean and variance are therefore
// the same for all layers (only gamma and beta differ): they are computed once, when a channel is
// written, instead of by every later layer (which was quadratic in depth). Results are those of
// the unfused kernels: the same moments, the same normalised values. In the backward, conv1's
// input gradient goes through norm1 + relu1 tile by tile, from cache, and into the block's gradient
// (kernels' conv2d_backward_data_normalized), so that it is never written out either; the batch
// statistics' term of norm1's gradient is summed over the layers and added once per channel.
// Taken where the backend has those kernels (optional ones: the CPU's).
bool fuses_normalization(const backend::Backend& be) {
  return be.has(&backend::KernelTable::conv2d_forward_normalized);
}

kernels::InputNormalization input_normalization(const BatchNormTensors& bn, const float* mean, const float* invstd) {
  return {mean, invstd, bn.weight.data(), bn.bias.data()};
}

// The (mean, invstd) that one BN normalises with, on the CPU: from the channels' batch moments
// (moving the running statistics) or the running statistics.
void cpu_statistics(const backend::Backend& be, const BatchNormTensors& bn, bool batch_statistics,
                    const double* moment_mean, const double* moment_var, int64_t channels, int64_t count,
                    float* mean, float* invstd) {
  if (batch_statistics)
    be.batch_norm_statistics_from_moments(kernels::BatchNormStatisticsFromMomentsArgs{
        .mean = moment_mean,
        .var = moment_var,
        .channels = channels,
        .count = count,
        .momentum = bn.momentum,
        .eps = bn.eps,
        .running_mean = bn.running_mean.data(),
        .running_var = bn.running_var.data(),
        .save_mean = mean,
        .save_invstd = invstd});
  else
    be.batch_norm_inference_statistics(kernels::BatchNormInferenceStatisticsArgs{.running_mean = bn.running_mean.data(),
                                                                                 .running_var = bn.running_var.data(),
                                                                                 .channels = channels,
                                                                                 .eps = bn.eps,
                                                                                 .save_mean = mean,
                                                                                 .save_invstd = invstd});
}

// The batch moments of the block buffer's channels, each computed once, when it is written.
struct BufferMoments {
  std::vector<double> mean, var;
  void add(const backend::Backend& be, const BlockGeometry& g, const float* features, int64_t first, int64_t channels) {
    be.batch_norm_moments(kernels::BatchNormMomentsArgs{.shape = {g.batch, channels, g.spatial()},
                                                        .x = {features + first * g.spatial(), g.image()},
                                                        .mean = mean.data() + first,
                                                        .var = var.data() + first});
  }
};

// Everything the backward reads (all detached: the closure must not hold graph history).
struct SavedBlock {
  BlockGeometry geometry;
  bool batch_statistics = true;
  Tensor features;                     // the block buffer: the op's output
  Tensor bottlenecks;                  // [L, N, bottleneck, H, W]: each layer's conv1 output
  std::vector<Tensor> statistics;      // per layer, see LayerStatistics
  std::vector<DenseLayerTensors> layers;
};

float* data_or_null(const Tensor& t) { return t.defined() ? t.data() : nullptr; }

// A workspace of `bytes` as a float tensor's size.
int64_t floats_for(size_t bytes) { return static_cast<int64_t>((bytes + sizeof(float) - 1) / sizeof(float)); }

Tensor empty_if(bool wanted, const Shape& shape, Device device) {
  return wanted ? Tensor::empty(shape, device) : Tensor();
}

std::vector<Tensor> dense_block_backward(const SavedBlock& s, const Tensor& grad_output, const std::vector<bool>& needs) {
  const BlockGeometry& g = s.geometry;
  const Device device = s.features.device();
  const backend::Backend be = backend::backend(device);
  const int64_t hw = g.spatial(), image = g.image(), bottleneck_image = g.bottleneck_image();

  // The block's gradient, accumulated in place, layer by layer in reverse.
  const Tensor grad_features = Tensor::empty(s.features.shape(), device);
  {
    const Tensor dy = grad_output.is_batch_strided() ? grad_output : grad_output.contiguous();
    const int64_t dy_stride = g.batch > 1 ? dy.stride(0) : image;
    be.copy_channels(dy.data(), dy_stride, 0, grad_features.data(), image, 0, g.batch, g.out_channels(), hw);
  }
  const bool fused = fuses_normalization(be);
  // Holds in turn relu2(norm2(z)), relu1(norm1(prefix)) and the gradient of that prefix, where the
  // convolutions do not normalise their input themselves.
  const Tensor scratch = empty_if(!fused, {g.scratch_size()}, device);
  // The gradient of the bottleneck, through conv2 and then (in place) through norm2 + relu2.
  const Tensor grad_bottleneck = Tensor::empty({g.batch, g.bottleneck, g.height, g.width}, device);
  // Shared by conv2 and every conv1, the widest of which is the last layer's.
  const int64_t workspace_size =
      fused ? floats_for(std::max(be.conv2d_normalized_backward_workspace_bytes(g.conv2()),
                                  be.conv2d_normalized_backward_workspace_bytes(g.conv1(g.layers - 1))))
            : floats_for(std::max(be.conv2d_backward_workspace_bytes(g.conv2()),
                                  be.conv2d_backward_workspace_bytes(g.conv1(g.layers - 1))));
  const Tensor workspace = empty_if(workspace_size > 0, {workspace_size}, device);

  // On the CPU, the part of each norm1's input gradient that goes through its batch statistics is
  // affine in the block channel it reads, centred on the channel's batch mean, which all the norm1s
  // share (batch_norm_backward_statistics_term): summed here over the layers, it is added once per
  // channel, when the channel's gradient is otherwise complete. The last layer reads every channel
  // that any layer reads, so its statistics hold the means.
  const bool defers_statistics = fused && s.batch_statistics;
  std::vector<double> deferred_alpha(defers_statistics ? static_cast<size_t>(g.out_channels()) : 0, 0.0);
  std::vector<double> deferred_beta(deferred_alpha.size(), 0.0);
  std::vector<double> sum_dy(fused ? static_cast<size_t>(g.out_channels()) : 0), sum_dy_centered(sum_dy.size());
  const LayerStatistics last_layer(s.statistics.back(), g.layer_in_channels(g.layers - 1), g.bottleneck);
  auto add_deferred = [&](int64_t first, int64_t channels) {
    be.add_affine_of_input(kernels::AddAffineOfInputArgs{.shape = {g.batch, channels, hw},
                                                         .x = {s.features.data() + first * hw, image},
                                                         .dx = {grad_features.data() + first * hw, image},
                                                         .center = last_layer.mean1 + first,
                                                         .alpha = deferred_alpha.data() + first,
                                                         .beta = deferred_beta.data() + first});
  };

  std::vector<Tensor> grads(needs.size());
  for (int64_t l = g.layers - 1; l >= 0; --l) {
    const DenseLayerTensors& w = s.layers[static_cast<size_t>(l)];
    const int64_t c = g.layer_in_channels(l), prefix_image = c * hw;
    const LayerStatistics stats(s.statistics[static_cast<size_t>(l)], c, g.bottleneck);
    const float* z = s.bottlenecks.data() + l * g.batch * bottleneck_image;
    if (defers_statistics && l < g.layers - 1) add_deferred(c, g.growth);  // the last layer's are read by none
    const float* grad_new = grad_features.data() + c * hw;  // complete: later layers have added theirs
    auto grad_of = [&](LayerInput which, const Tensor& like) {
      const size_t i = input_index(l, which);
      if (needs[i]) grads[i] = Tensor::empty(like.shape(), device);
      return data_or_null(grads[i]);
    };

    // conv2, reading relu2(norm2(z)) recomputed (on the CPU as the convolution reads z).
    if (float* dw2 = grad_of(kConv2Weight, w.conv2_weight)) {
      if (fused) {
        be.conv2d_backward_weight_normalized(kernels::Conv2dBackwardWeightNormalizedArgs{
            g.conv2(), {z, bottleneck_image}, input_normalization(w.norm2, stats.mean2, stats.invstd2),
            {grad_new, image}, dw2, nullptr, data_or_null(workspace)});
      } else {
        apply_normalize_relu(be, w.norm2, z, bottleneck_image, scratch.data(), bottleneck_image,
                             {g.batch, g.bottleneck, hw}, stats.mean2, stats.invstd2);
        be.conv2d_backward_weight(kernels::Conv2dBackwardWeightArgs{g.conv2(), {scratch.data(), bottleneck_image},
                                                                    {grad_new, image}, dw2, nullptr,
                                                                    data_or_null(workspace)});
      }
    }
    be.conv2d_backward_data(kernels::Conv2dBackwardDataArgs{g.conv2(), {grad_new, image}, w.conv2_weight.data(),
                                                            {grad_bottleneck.data(), bottleneck_image},
                                                            data_or_null(workspace)});
    // norm2 + relu2, in place (the kernel allows dx == dy).
    normalize_relu_backward(be, w.norm2, s.batch_statistics, z, bottleneck_image, grad_bottleneck.data(),
                            grad_bottleneck.data(), bottleneck_image, {g.batch, g.bottleneck, hw}, stats.mean2,
                            stats.invstd2, grad_of(kNorm2Weight, w.norm2.weight), grad_of(kNorm2Bias, w.norm2.bias));

    // conv1, reading relu1(norm1(prefix)) recomputed (on the CPU as the convolution reads it).
    const float* prefix = s.features.data();
    if (float* dw1 = grad_of(kConv1Weight, w.conv1_weight)) {
      if (fused) {
        be.conv2d_backward_weight_normalized(kernels::Conv2dBackwardWeightNormalizedArgs{
            g.conv1(l), {prefix, image}, input_normalization(w.norm1, stats.mean1, stats.invstd1),
            {grad_bottleneck.data(), bottleneck_image}, dw1, nullptr, data_or_null(workspace)});
      } else {
        apply_normalize_relu(be, w.norm1, prefix, image, scratch.data(), prefix_image, {g.batch, c, hw}, stats.mean1,
                             stats.invstd1);
        be.conv2d_backward_weight(kernels::Conv2dBackwardWeightArgs{g.conv1(l), {scratch.data(), prefix_image},
                                                                    {grad_bottleneck.data(), bottleneck_image}, dw1,
                                                                    nullptr, data_or_null(workspace)});
      }
    }
    // norm1 + relu1, added into the gradient of the prefix (not needed for the block's own input
    // unless x wants a gradient): on the CPU in conv1's input-gradient tiles, straight into it;
    // elsewhere written out by conv1, then taken through norm1 in place and added.
    const bool prefix_needs_grad = l > 0 || needs[0];
    float* dgamma1 = grad_of(kNorm1Weight, w.norm1.weight);
    float* dbeta1 = grad_of(kNorm1Bias, w.norm1.bias);
    if (fused) {
      be.conv2d_backward_data_normalized(kernels::Conv2dBackwardDataNormalizedArgs{
          g.conv1(l), {grad_bottleneck.data(), bottleneck_image}, w.conv1_weight.data(), {prefix, image},
          input_normalization(w.norm1, stats.mean1, stats.invstd1),
          {prefix_needs_grad ? grad_features.data() : nullptr, image}, sum_dy.data(), sum_dy_centered.data(),
          data_or_null(workspace)});
      for (int64_t ch = 0; ch < c; ++ch) {
        if (dbeta1) dbeta1[ch] = static_cast<float>(sum_dy[static_cast<size_t>(ch)]);
        if (dgamma1) dgamma1[ch] = static_cast<float>(sum_dy_centered[static_cast<size_t>(ch)] * stats.invstd1[ch]);
      }
      if (defers_statistics && prefix_needs_grad)
        be.batch_norm_backward_statistics_term(kernels::BatchNormStatisticsTermArgs{.sum_dy = sum_dy.data(),
                                                                                    .sum_dy_centered = sum_dy_centered.data(),
                                                                                    .channels = c,
                                                                                    .count = g.batch * hw,
                                                                                    .invstd = stats.invstd1,
                                                                                    .gamma = w.norm1.weight.data(),
                                                                                    .alpha = deferred_alpha.data(),
                                                                                    .beta = deferred_beta.data()});
    } else {
      be.conv2d_backward_data(kernels::Conv2dBackwardDataArgs{g.conv1(l), {grad_bottleneck.data(), bottleneck_image},
                                                              w.conv1_weight.data(), {scratch.data(), prefix_image},
                                                              data_or_null(workspace)});
      normalize_relu_backward(be, w.norm1, s.batch_statistics, prefix, image, scratch.data(),
                              prefix_needs_grad ? scratch.data() : nullptr, prefix_image, {g.batch, c, hw},
                              stats.mean1, stats.invstd1, dgamma1, dbeta1);
      if (prefix_needs_grad)
        be.add_channels(scratch.data(), prefix_image, 0, grad_features.data(), image, 0, g.batch, c, hw);
    }
  }
  if (defers_statistics && needs[0]) add_deferred(0, g.in_channels);

  if (needs[0]) {
    grads[0] = Tensor::empty({g.batch, g.in_channels, g.height, g.width}, device);
    be.copy_channels(grad_features.data(), image, 0, grads[0].data(), g.in_channels * hw, 0, g.batch,
                       g.in_channels, hw);
  }
  return grads;
}

}  // namespace

Tensor memory_efficient_dense_block(const Tensor& x, const std::vector<DenseLayerTensors>& layers, bool training) {
  const BlockGeometry g = check_arguments(x, layers, training);
  for (const Tensor& t : op_inputs(x, layers))
    CHEX_CHECK(t.device() == x.device(), kOp, ": tensors on different devices (", x.str(), " and ", t.str(), ")");
  const Device device = x.device();
  const backend::Backend be = backend::backend(device);
  const std::vector<Tensor> inputs = op_inputs(x, layers);
  const bool backward_follows = any_requires_grad(inputs);
  const int64_t hw = g.spatial(), image = g.image(), bottleneck_image = g.bottleneck_image();

  // The block buffer starts with x.
  const Tensor features = Tensor::empty({g.batch, g.out_channels(), g.height, g.width}, device);
  {
    const Tensor input = x.is_batch_strided() ? x.detach() : x.contiguous().detach();
    const int64_t x_stride = g.batch > 1 ? input.stride(0) : g.in_channels * hw;
    be.copy_channels(input.data(), x_stride, 0, features.data(), image, 0, g.batch, g.in_channels, hw);
  }
  // Bottlenecks are kept per layer for the backward; without one, a single buffer serves all.
  const Tensor bottlenecks =
      Tensor::empty({backward_follows ? g.layers : 1, g.batch, g.bottleneck, g.height, g.width}, device);
  const bool fused = fuses_normalization(be);
  // Each BN+ReLU output in turn, where the convolutions do not normalise their input themselves.
  const Tensor scratch = empty_if(!fused, {g.scratch_size()}, device);
  const int64_t workspace_size = fused ? floats_for(std::max(be.conv2d_normalized_workspace_bytes(g.conv2()),
                                                             be.conv2d_normalized_workspace_bytes(g.conv1(g.layers - 1))))
                                       : floats_for(be.conv2d_workspace_bytes(g.conv2()));
  const Tensor workspace = empty_if(workspace_size > 0, {workspace_size}, device);
  BufferMoments moments;
  std::vector<double> bottleneck_mean, bottleneck_var;
  if (fused && training) {
    moments.mean.resize(static_cast<size_t>(g.out_channels()));
    moments.var.resize(static_cast<size_t>(g.out_channels()));
    moments.add(be, g, features.data(), 0, g.in_channels);
    bottleneck_mean.resize(static_cast<size_t>(g.bottleneck));
    bottleneck_var.resize(static_cast<size_t>(g.bottleneck));
  }

  std::vector<Tensor> statistics;
  for (int64_t l = 0; l < g.layers; ++l) {
    const DenseLayerTensors& w = layers[static_cast<size_t>(l)];
    const int64_t c = g.layer_in_channels(l), prefix_image = c * hw;
    // The fused convolutions read the statistics even when no backward follows.
    const Tensor stats = empty_if(backward_follows || fused, {2 * c + 2 * g.bottleneck}, device);
    const LayerStatistics saved = stats.defined() ? LayerStatistics(stats, c, g.bottleneck) : LayerStatistics{};
    float* z = bottlenecks.data() + (backward_follows ? l : 0) * g.batch * bottleneck_image;
    // conv1 into z, then conv2's new channels straight into their slice of the block buffer.
    if (fused) {
      const int64_t count = g.batch * hw;
      cpu_statistics(be, w.norm1, training, moments.mean.data(), moments.var.data(), c, count, saved.mean1,
                     saved.invstd1);
      be.conv2d_forward_normalized(kernels::Conv2dForwardNormalizedArgs{
          g.conv1(l), {features.data(), image}, input_normalization(w.norm1, saved.mean1, saved.invstd1),
          w.conv1_weight.data(), nullptr, {z, bottleneck_image}, data_or_null(workspace)});
      if (training)
        be.batch_norm_moments(kernels::BatchNormMomentsArgs{.shape = {g.batch, g.bottleneck, hw},
                                                            .x = {z, bottleneck_image},
                                                            .mean = bottleneck_mean.data(),
                                                            .var = bottleneck_var.data()});
      cpu_statistics(be, w.norm2, training, bottleneck_mean.data(), bottleneck_var.data(), g.bottleneck, count,
                     saved.mean2, saved.invstd2);
      be.conv2d_forward_normalized(kernels::Conv2dForwardNormalizedArgs{
          g.conv2(), {z, bottleneck_image}, input_normalization(w.norm2, saved.mean2, saved.invstd2),
          w.conv2_weight.data(), nullptr, {features.data() + prefix_image, image}, data_or_null(workspace)});
      if (training) moments.add(be, g, features.data(), c, g.growth);
    } else {
      normalize_relu(be, w.norm1, training, features.data(), image, scratch.data(), prefix_image, g.batch, c,
                     hw, saved.mean1, saved.invstd1);
      be.conv2d_forward(kernels::Conv2dForwardArgs{g.conv1(l), {scratch.data(), prefix_image}, w.conv1_weight.data(),
                                                   nullptr, {z, bottleneck_image}, nullptr});
      normalize_relu(be, w.norm2, training, z, bottleneck_image, scratch.data(), bottleneck_image, g.batch,
                     g.bottleneck, hw, saved.mean2, saved.invstd2);
      be.conv2d_forward(kernels::Conv2dForwardArgs{g.conv2(), {scratch.data(), bottleneck_image},
                                                   w.conv2_weight.data(), nullptr,
                                                   {features.data() + prefix_image, image}, data_or_null(workspace)});
    }
    if (backward_follows) statistics.push_back(stats);
  }
  if (!backward_follows) return features;

  auto saved = std::make_shared<SavedBlock>();
  saved->geometry = g;
  saved->batch_statistics = training;
  saved->features = features.detach();
  saved->bottlenecks = bottlenecks;
  saved->statistics = std::move(statistics);
  for (const DenseLayerTensors& l : layers) saved->layers.push_back(detached(l));
  return record(kOp, features, inputs, [saved](const Tensor& grad, const std::vector<bool>& needs) {
    return dense_block_backward(*saved, grad, needs);
  });
}

}  // namespace chex::ops

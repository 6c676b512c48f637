// The memory-efficient dense block's backward (see dense_block.cpp for what the forward saved).
// The layers in reverse, each in three steps: layer_backward_conv2 (conv2's weight gradient and
// the bottleneck's gradient), layer_backward_norm2 (through norm2 + relu2, in place) and
// layer_backward_conv1_norm1 (conv1's weight gradient, and through conv1, norm1 and relu1 into the
// gradient of the prefix the layer read); then finish_block_gradient. The path (fused or not, see
// fuses_normalization) is chosen once per call; the steps the two paths share are free functions.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/batchnorm.h"
#include "kernels/concat.h"
#include "ops/dense_block_internal.h"
#include "ops/op_utils.h"

namespace chex::ops::dense_block {
namespace {

using detail::data_or_null;

// What both paths share: the saved block; the gradient of the whole block, accumulated in place,
// layer by layer in reverse; the bottleneck's gradient (through conv2, then in place through
// norm2 + relu2); the convolutions' workspace; and the op's gradients.
struct BackwardBlock {
  BackwardBlock(const backend::Backend& backend, const SavedBlock& saved, const Tensor& grad_output,
                const std::vector<bool>& needs_grad, int64_t scratch_size, int64_t workspace_size)
      : s(saved),
        g(saved.geometry),
        device(saved.features.device()),
        be(backend),
        needs(needs_grad),
        grads(needs_grad.size()) {
    grad_features = Tensor::empty(s.features.shape(), device);
    const Tensor dy = grad_output.is_batch_strided() ? grad_output : grad_output.contiguous();
    const int64_t dy_stride = g.batch > 1 ? dy.stride(0) : g.image();
    be.copy_channels(kernels::ChannelCopyArgs{.src = {dy.data(), dy_stride},
                                              .dst = {grad_features.data(), g.image()},
                                              .shape = {g.batch, g.out_channels(), g.spatial()}});
    scratch = empty_if(scratch_size > 0, {scratch_size}, device);
    grad_bottleneck = Tensor::empty({g.batch, g.bottleneck, g.height, g.width}, device);
    workspace = empty_if(workspace_size > 0, {workspace_size}, device);
  }

  // Allocates the gradient of layer l's input `which` (shaped like `like`) if it is wanted.
  float* grad_of(int64_t l, LayerInput which, const Tensor& like) {
    const size_t i = input_index(l, which);
    if (needs[i]) grads[i] = Tensor::empty(like.shape(), device);
    return data_or_null(grads[i]);
  }
  // Whether the prefix layer l read needs a gradient: not the block's own input unless x wants one.
  bool prefix_needs_grad(int64_t l) const { return l > 0 || needs[0]; }

  const SavedBlock& s;
  const BlockGeometry& g;
  Device device;
  backend::Backend be;
  const std::vector<bool>& needs;
  std::vector<Tensor> grads;
  Tensor grad_features, scratch, grad_bottleneck, workspace;
};

// One layer as the backward reads it.
struct Layer {
  Layer(const BackwardBlock& b, int64_t l)
      : index(l),
        in_channels(b.g.layer_in_channels(l)),
        w(b.s.layers[static_cast<size_t>(l)]),
        stats(b.s.statistics[static_cast<size_t>(l)], in_channels, b.g.bottleneck),
        z(b.s.bottlenecks.data() + l * b.g.batch * b.g.bottleneck_image()),
        grad_new(b.grad_features.data() + in_channels * b.g.spatial()) {}

  int64_t index;
  int64_t in_channels;     // C_l, the prefix it read
  const DenseLayerTensors& w;
  LayerStatistics stats;
  const float* z;          // its bottleneck
  const float* grad_new;   // the gradient of its new channels: complete once later layers have added theirs
};

// A plain convolution's two backward passes, in fp32 or (bf16 blocks) with bf16 operands.
void backward_data(const BackwardBlock& b, const kernels::Conv2dBackwardDataArgs& args) {
  b.s.bf16 ? b.be.conv2d_backward_data_bf16(args) : b.be.conv2d_backward_data(args);
}
void backward_weight(const BackwardBlock& b, const kernels::Conv2dBackwardWeightArgs& args) {
  b.s.bf16 ? b.be.conv2d_backward_weight_bf16(args) : b.be.conv2d_backward_weight(args);
}

// The bottleneck's gradient through conv2 (both paths).
void conv2_input_gradient(BackwardBlock& b, const Layer& v) {
  backward_data(b, kernels::Conv2dBackwardDataArgs{b.g.conv2(), {v.grad_new, b.g.image()}, v.w.conv2_weight.data(),
                                                   {b.grad_bottleneck.data(), b.g.bottleneck_image()},
                                                   data_or_null(b.workspace)});
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

// norm2 + relu2, in place on the bottleneck's gradient (the kernel allows dx == dy); both paths.
void layer_backward_norm2(BackwardBlock& b, const Layer& v) {
  const BlockGeometry& g = b.g;
  normalize_relu_backward(b.be, v.w.norm2, b.s.batch_statistics, v.z, g.bottleneck_image(), b.grad_bottleneck.data(),
                          b.grad_bottleneck.data(), g.bottleneck_image(), {g.batch, g.bottleneck, g.spatial()},
                          v.stats.mean2, v.stats.invstd2, b.grad_of(v.index, kNorm2Weight, v.w.norm2.weight),
                          b.grad_of(v.index, kNorm2Bias, v.w.norm2.bias));
}

// The block input's gradient: its channels of the block's gradient (both paths).
std::vector<Tensor> finish_block_gradient(BackwardBlock& b) {
  const BlockGeometry& g = b.g;
  if (b.needs[0]) {
    b.grads[0] = Tensor::empty({g.batch, g.in_channels, g.height, g.width}, b.device);
    b.be.copy_channels(kernels::ChannelCopyArgs{.src = {b.grad_features.data(), g.image()},
                                                .dst = {b.grads[0].data(), g.in_channels * g.spatial()},
                                                .shape = {g.batch, g.in_channels, g.spatial()}});
  }
  return std::move(b.grads);
}

// The unfused path: relu2(norm2(z)), relu1(norm1(prefix)) and the gradient of that prefix are
// written in turn into the scratch buffer, which plain convolutions and batch norms read.
class UnfusedBackward {
 public:
  explicit UnfusedBackward(BackwardBlock& b) : b_(b) {}

  std::vector<Tensor> run() {
    for (int64_t l = b_.g.layers - 1; l >= 0; --l) {
      const Layer v(b_, l);
      layer_backward_conv2(v);
      layer_backward_norm2(b_, v);
      layer_backward_conv1_norm1(v);
    }
    return finish_block_gradient(b_);
  }

 private:
  // conv2's weight gradient, reading relu2(norm2(z)) recomputed; then the bottleneck's gradient.
  void layer_backward_conv2(const Layer& v) {
    const BlockGeometry& g = b_.g;
    if (float* dw2 = b_.grad_of(v.index, kConv2Weight, v.w.conv2_weight)) {
      apply_normalize_relu(v.w.norm2, v.z, g.bottleneck_image(), g.bottleneck_image(), g.bottleneck, v.stats.mean2,
                           v.stats.invstd2);
      backward_weight(b_, kernels::Conv2dBackwardWeightArgs{
          g.conv2(), {b_.scratch.data(), g.bottleneck_image()}, {v.grad_new, g.image()}, dw2, nullptr,
          data_or_null(b_.workspace)});
    }
    conv2_input_gradient(b_, v);
  }

  // conv1's weight gradient, reading relu1(norm1(prefix)) recomputed; then the prefix's gradient,
  // written out by conv1, taken through norm1 + relu1 in place and added into the block's.
  void layer_backward_conv1_norm1(const Layer& v) {
    const BlockGeometry& g = b_.g;
    const int64_t c = v.in_channels, prefix_image = c * g.spatial();
    const float* prefix = b_.s.features.data();
    if (float* dw1 = b_.grad_of(v.index, kConv1Weight, v.w.conv1_weight)) {
      apply_normalize_relu(v.w.norm1, prefix, g.image(), prefix_image, c, v.stats.mean1, v.stats.invstd1);
      backward_weight(b_, kernels::Conv2dBackwardWeightArgs{
          g.conv1(v.index), {b_.scratch.data(), prefix_image}, {b_.grad_bottleneck.data(), g.bottleneck_image()},
          dw1, nullptr, data_or_null(b_.workspace)});
    }
    const bool prefix_needs_grad = b_.prefix_needs_grad(v.index);
    float* dgamma1 = b_.grad_of(v.index, kNorm1Weight, v.w.norm1.weight);
    float* dbeta1 = b_.grad_of(v.index, kNorm1Bias, v.w.norm1.bias);
    backward_data(b_, kernels::Conv2dBackwardDataArgs{
        g.conv1(v.index), {b_.grad_bottleneck.data(), g.bottleneck_image()}, v.w.conv1_weight.data(),
        {b_.scratch.data(), prefix_image}, data_or_null(b_.workspace)});
    normalize_relu_backward(b_.be, v.w.norm1, b_.s.batch_statistics, prefix, g.image(), b_.scratch.data(),
                            prefix_needs_grad ? b_.scratch.data() : nullptr, prefix_image, {g.batch, c, g.spatial()},
                            v.stats.mean1, v.stats.invstd1, dgamma1, dbeta1);
    if (prefix_needs_grad)
      b_.be.add_channels(kernels::ChannelCopyArgs{.src = {b_.scratch.data(), prefix_image},
                                                  .dst = {b_.grad_features.data(), g.image()},
                                                  .shape = {g.batch, c, g.spatial()}});
  }

  // relu(norm(x)) of `channels` channels into the scratch buffer, with the saved statistics
  // (bitwise what the forward produced).
  void apply_normalize_relu(const BatchNormTensors& bn, const float* x, int64_t x_batch_stride,
                            int64_t scratch_batch_stride, int64_t channels, const float* mean, const float* invstd) {
    b_.be.batch_norm_apply(kernels::BatchNormApplyArgs{.shape = {b_.g.batch, channels, b_.g.spatial()},
                                                       .x = {x, x_batch_stride},
                                                       .y = {b_.scratch.data(), scratch_batch_stride},
                                                       .mean = mean,
                                                       .invstd = invstd,
                                                       .gamma = bn.weight.data(),
                                                       .beta = bn.bias.data(),
                                                       .fuse_relu = true});
  }

  BackwardBlock& b_;
};

// The fused path (see fuses_normalization): the convolutions recompute BN + ReLU as they read
// their input, and conv1's input gradient goes through norm1 + relu1 into the block's gradient
// tile by tile. The part of each norm1's input gradient that goes through its batch statistics is
// affine in the block channel it reads, centred on the channel's batch mean, which all the norm1s
// share (batch_norm_backward_statistics_term): summed over the layers, it is added once per
// channel, when the channel's gradient is otherwise complete. The last layer reads every channel
// that any layer reads, so its statistics hold the means.
class FusedBackward {
 public:
  explicit FusedBackward(BackwardBlock& b)
      : b_(b),
        defers_statistics_(b.s.batch_statistics),
        statistics_alpha_(defers_statistics_ ? static_cast<size_t>(b.g.out_channels()) : 0, 0.0),
        statistics_beta_(statistics_alpha_.size(), 0.0),
        sum_dy_(static_cast<size_t>(b.g.out_channels())),
        sum_dy_centered_(sum_dy_.size()),
        last_layer_(b.s.statistics.back(), b.g.layer_in_channels(b.g.layers - 1), b.g.bottleneck) {}

  std::vector<Tensor> run() {
    const BlockGeometry& g = b_.g;
    for (int64_t l = g.layers - 1; l >= 0; --l) {
      const Layer v(b_, l);
      // The last layer's new channels are read by none: their gradient has no statistics term.
      if (defers_statistics_ && l < g.layers - 1) add_statistics_term(v.in_channels, g.growth);
      layer_backward_conv2(v);
      layer_backward_norm2(b_, v);
      layer_backward_conv1_norm1(v);
    }
    if (defers_statistics_ && b_.needs[0]) add_statistics_term(0, g.in_channels);
    return finish_block_gradient(b_);
  }

 private:
  // conv2's weight gradient, reading relu2(norm2(z)) as it reads z; then the bottleneck's gradient.
  void layer_backward_conv2(const Layer& v) {
    const BlockGeometry& g = b_.g;
    if (float* dw2 = b_.grad_of(v.index, kConv2Weight, v.w.conv2_weight))
      b_.be.conv2d_backward_weight_normalized(kernels::Conv2dBackwardWeightNormalizedArgs{
          g.conv2(), {v.z, g.bottleneck_image()}, input_normalization(v.w.norm2, v.stats.mean2, v.stats.invstd2),
          {v.grad_new, g.image()}, dw2, nullptr, data_or_null(b_.workspace)});
    conv2_input_gradient(b_, v);
  }

  // conv1's weight gradient, reading relu1(norm1(prefix)) as it reads the prefix; then the
  // prefix's gradient through conv1, norm1 and relu1, added into the block's in conv1's tiles, and
  // norm1's parameter gradients and statistics term from the sums that pass leaves.
  void layer_backward_conv1_norm1(const Layer& v) {
    const BlockGeometry& g = b_.g;
    const int64_t c = v.in_channels;
    const float* prefix = b_.s.features.data();
    const kernels::InputNormalization norm1 = input_normalization(v.w.norm1, v.stats.mean1, v.stats.invstd1);
    if (float* dw1 = b_.grad_of(v.index, kConv1Weight, v.w.conv1_weight))
      b_.be.conv2d_backward_weight_normalized(kernels::Conv2dBackwardWeightNormalizedArgs{
          g.conv1(v.index), {prefix, g.image()}, norm1, {b_.grad_bottleneck.data(), g.bottleneck_image()}, dw1,
          nullptr, data_or_null(b_.workspace)});
    const bool prefix_needs_grad = b_.prefix_needs_grad(v.index);
    float* dgamma1 = b_.grad_of(v.index, kNorm1Weight, v.w.norm1.weight);
    float* dbeta1 = b_.grad_of(v.index, kNorm1Bias, v.w.norm1.bias);
    b_.be.conv2d_backward_data_normalized(kernels::Conv2dBackwardDataNormalizedArgs{
        g.conv1(v.index), {b_.grad_bottleneck.data(), g.bottleneck_image()}, v.w.conv1_weight.data(),
        {prefix, g.image()}, norm1, {prefix_needs_grad ? b_.grad_features.data() : nullptr, g.image()},
        sum_dy_.data(), sum_dy_centered_.data(), data_or_null(b_.workspace)});
    for (int64_t ch = 0; ch < c; ++ch) {
      if (dbeta1) dbeta1[ch] = static_cast<float>(sum_dy_[static_cast<size_t>(ch)]);
      if (dgamma1) dgamma1[ch] = static_cast<float>(sum_dy_centered_[static_cast<size_t>(ch)] * v.stats.invstd1[ch]);
    }
    if (defers_statistics_ && prefix_needs_grad)
      b_.be.batch_norm_backward_statistics_term(kernels::BatchNormStatisticsTermArgs{
          .sum_dy = sum_dy_.data(),
          .sum_dy_centered = sum_dy_centered_.data(),
          .channels = c,
          .count = g.batch * g.spatial(),
          .invstd = v.stats.invstd1,
          .gamma = v.w.norm1.weight.data(),
          .alpha = statistics_alpha_.data(),
          .beta = statistics_beta_.data()});
  }

  // Adds the summed statistics term of `channels` block channels from `first` into their gradient.
  void add_statistics_term(int64_t first, int64_t channels) {
    const BlockGeometry& g = b_.g;
    const int64_t hw = g.spatial();
    b_.be.add_affine_of_input(kernels::AddAffineOfInputArgs{.shape = {g.batch, channels, hw},
                                                            .x = {b_.s.features.data() + first * hw, g.image()},
                                                            .dx = {b_.grad_features.data() + first * hw, g.image()},
                                                            .center = last_layer_.mean1 + first,
                                                            .alpha = statistics_alpha_.data() + first,
                                                            .beta = statistics_beta_.data() + first});
  }

  BackwardBlock& b_;
  bool defers_statistics_;  // with batch statistics only: fixed ones have no such term
  std::vector<double> statistics_alpha_, statistics_beta_;
  std::vector<double> sum_dy_, sum_dy_centered_;
  LayerStatistics last_layer_;
};

}  // namespace

std::vector<Tensor> backward(const SavedBlock& s, const Tensor& grad_output, const std::vector<bool>& needs) {
  const BlockGeometry& g = s.geometry;
  const backend::Backend be = backend::backend(s.features.device());
  // The workspace is shared by conv2 and every conv1, the widest of which is the last layer's.
  // The fused backward has no bf16 form (its convolutions carry the gradient through BN + ReLU as
  // they go): a bf16 block's backward takes the unfused path, whatever path its forward took.
  if (fuses_normalization(be) && !s.bf16) {
    const size_t workspace_bytes = std::max(be.conv2d_normalized_backward_workspace_bytes(g.conv2()),
                                            be.conv2d_normalized_backward_workspace_bytes(g.conv1(g.layers - 1)));
    BackwardBlock b(be, s, grad_output, needs, 0, floats_for(workspace_bytes));
    return FusedBackward(b).run();
  }
  const auto bytes = [&](const kernels::Conv2dGeometry& conv) {
    return s.bf16 ? be.conv2d_bf16_backward_workspace_bytes(conv) : be.conv2d_backward_workspace_bytes(conv);
  };
  const size_t workspace_bytes = std::max(bytes(g.conv2()), bytes(g.conv1(g.layers - 1)));
  BackwardBlock b(be, s, grad_output, needs, g.scratch_size(), floats_for(workspace_bytes));
  return UnfusedBackward(b).run();
}

}  // namespace chex::ops::dense_block

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
// Kernels are called through the device's backend (engine/src/backend/backend.h) only. Where it has
// the optional convolutions that normalise their input (the CPU's), the block takes the fused path
// (see fuses_normalization in dense_block_internal.h); the choice is made once per call, and each
// path is a sequence of named steps: per layer, bottleneck_forward then grow_forward here, and
// the backward's steps in dense_block_backward.cpp. Both paths compute norm1's batch moments once
// per channel where the backend has the batch-norm moments kernels (the CPU and CUDA do).
#include "chex/dense_block.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "chex/autograd.h"
#include "chex/error.h"
#include "kernels/batchnorm.h"
#include "kernels/concat.h"
#include "ops/dense_block_internal.h"
#include "ops/op_utils.h"

namespace chex::ops {
namespace {

using namespace dense_block;
using detail::data_or_null;

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

// What every layer's forward reads and writes: the block buffer, which starts with x, and the
// bottlenecks (conv1's outputs), kept per layer for the backward; without one, a single buffer
// serves all.
struct ForwardBlock {
  BlockGeometry g;
  backend::Backend be;
  bool training = true;
  bool backward_follows = false;
  Tensor features;
  Tensor bottlenecks;
  bool bf16 = false;  // the convolutions in bf16 (under a bf16 PrecisionScope)

  Device device() const { return features.device(); }
  float* bottleneck(int64_t l) const {
    return bottlenecks.data() + (backward_follows ? l : 0) * g.batch * g.bottleneck_image();
  }
  // Where layer l's conv2 writes: its slice of the block buffer.
  float* new_channels(int64_t l) const { return features.data() + g.layer_in_channels(l) * g.spatial(); }
};

// The batch moments (mean and biased variance, double, in the device's memory) of some channels,
// each computed once, and the statistics of a training BN over a prefix of them
// (batch_norm_moments, batch_norm_statistics_from_moments: the training forward's bits). Every
// layer's norm1 reads a prefix of the block buffer's channels with the same batch moments, which
// it would otherwise recompute: quadratic in depth.
class ChannelMoments {
 public:
  ChannelMoments(const ForwardBlock& b, int64_t channels)
      : b_(b),
        storage_(b.device(), 2 * static_cast<size_t>(channels) * sizeof(double)),
        mean_(static_cast<double*>(storage_.get())),
        var_(mean_ + channels) {}

  // The moments of `channels` channels from `first`, of a batch-strided tensor whose channels are
  // these (x points at channel 0).
  void compute(const float* x, int64_t batch_stride, int64_t first, int64_t channels) const {
    const kernels::ImageShape shape{b_.g.batch, channels, b_.g.spatial()};
    const backend::Workspace workspace = b_.be.workspace(b_.be.batch_norm_workspace_bytes(shape));
    b_.be.batch_norm_moments(kernels::BatchNormMomentsArgs{.shape = shape,
                                                           .x = {x + first * b_.g.spatial(), batch_stride},
                                                           .mean = mean_ + first,
                                                           .var = var_ + first,
                                                           .workspace = workspace.get()});
  }

  // The (mean, invstd) a training BN of the first `channels` normalises with; moves its running
  // statistics.
  void statistics(const BatchNormTensors& bn, int64_t channels, float* mean, float* invstd) const {
    b_.be.batch_norm_statistics_from_moments(
        kernels::BatchNormStatisticsFromMomentsArgs{.mean = mean_,
                                                    .var = var_,
                                                    .channels = channels,
                                                    .count = b_.g.batch * b_.g.spatial(),
                                                    .momentum = bn.momentum,
                                                    .eps = bn.eps,
                                                    .running_mean = bn.running_mean.data(),
                                                    .running_var = bn.running_var.data(),
                                                    .save_mean = mean,
                                                    .save_invstd = invstd});
  }

 private:
  const ForwardBlock& b_;
  backend::Workspace storage_;
  double* mean_;
  double* var_;
};

// The unfused path: each BN+ReLU output is written into one scratch buffer, which a plain
// convolution then reads. In training on a backend with the batch-norm moments (CUDA's), norm1's
// statistics come from the block buffer's moments, each channel's computed once when written, and
// the prefix is only normalised (batch_norm_apply); otherwise each norm1 is a full training BN over
// the prefix. The statistics, and so the results, are the same bits either way.
class UnfusedForward {
 public:
  static constexpr bool kReadsStatistics = false;

  explicit UnfusedForward(const ForwardBlock& b)
      : b_(b),
        scratch_(Tensor::empty({b.g.scratch_size()}, b.device())),
        workspace_(empty_if(workspace_size(b) > 0, {workspace_size(b)}, b.device())) {
    if (!keeps_moments(b)) return;
    buffer_moments_.emplace(b, b.g.out_channels());
    buffer_moments_->compute(b.features.data(), b.g.image(), 0, b.g.in_channels);  // x's, which every norm1 reads
    // Somewhere for norm1's statistics when no backward keeps them.
    if (!b.backward_follows) norm1_statistics_ = Tensor::empty({2 * b.g.out_channels()}, b.device());
  }

  // z = conv1(relu1(norm1(prefix))).
  void bottleneck_forward(int64_t l, const DenseLayerTensors& w, const LayerStatistics& saved) const {
    const BlockGeometry& g = b_.g;
    const int64_t c = g.layer_in_channels(l), prefix_image = c * g.spatial();
    if (buffer_moments_) {
      float* mean = saved.mean1 ? saved.mean1 : norm1_statistics_.data();
      float* invstd = saved.invstd1 ? saved.invstd1 : mean + c;
      buffer_moments_->statistics(w.norm1, c, mean, invstd);
      b_.be.batch_norm_apply(kernels::BatchNormApplyArgs{.shape = {g.batch, c, g.spatial()},
                                                         .x = {b_.features.data(), g.image()},
                                                         .y = {scratch_.data(), prefix_image},
                                                         .mean = mean,
                                                         .invstd = invstd,
                                                         .gamma = w.norm1.weight.data(),
                                                         .beta = w.norm1.bias.data(),
                                                         .fuse_relu = true});
    } else {
      normalize_relu(b_.be, w.norm1, b_.training, b_.features.data(), g.image(), scratch_.data(), prefix_image,
                     g.batch, c, g.spatial(), saved.mean1, saved.invstd1);
    }
    convolve(g.conv1(l), {scratch_.data(), prefix_image}, w.conv1_weight, {b_.bottleneck(l), g.bottleneck_image()});
  }

  // The new channels = conv2(relu2(norm2(z))).
  void grow_forward(int64_t l, const DenseLayerTensors& w, const LayerStatistics& saved) const {
    const BlockGeometry& g = b_.g;
    normalize_relu(b_.be, w.norm2, b_.training, b_.bottleneck(l), g.bottleneck_image(), scratch_.data(),
                   g.bottleneck_image(), g.batch, g.bottleneck, g.spatial(), saved.mean2, saved.invstd2);
    convolve(g.conv2(), {scratch_.data(), g.bottleneck_image()}, w.conv2_weight, {b_.new_channels(l), g.image()});
    // Their moments, for the later layers' norm1 (the last layer's channels have none).
    if (buffer_moments_ && l + 1 < g.layers)
      buffer_moments_->compute(b_.features.data(), g.image(), g.layer_in_channels(l), g.growth);
  }

 private:
  // y = conv(x, weight), x the scratch buffer: fp32, or bf16 (NCHW) under a bf16 scope.
  void convolve(const kernels::Conv2dGeometry& geometry, kernels::StridedIn x, const Tensor& weight,
                kernels::StridedOut y) const {
    if (b_.bf16)
      b_.be.conv2d_forward_bf16(kernels::Conv2dForwardBf16Args{geometry, bf16_layout(y), x, nullptr, weight.data(),
                                                               nullptr, y, data_or_null(workspace_)});
    else
      b_.be.conv2d_forward(
          kernels::Conv2dForwardArgs{geometry, x, weight.data(), nullptr, y, data_or_null(workspace_)});
  }
  static kernels::Bf16Layout bf16_layout(kernels::StridedOut y) { return {.y_batch_stride = y.batch_stride}; }

  // Shared by conv2 and every conv1 (in fp32 only conv2 needs one: conv1 is a 1x1).
  static int64_t workspace_size(const ForwardBlock& b) {
    const BlockGeometry& g = b.g;
    if (!b.bf16) return floats_for(b.be.conv2d_workspace_bytes(g.conv2()));
    const kernels::Bf16Layout conv2_layout{.y_batch_stride = g.image()};
    const kernels::Bf16Layout conv1_layout{.y_batch_stride = g.bottleneck_image()};
    return floats_for(std::max(b.be.conv2d_bf16_workspace_bytes(g.conv2(), conv2_layout),
                               b.be.conv2d_bf16_workspace_bytes(g.conv1(g.layers - 1), conv1_layout)));
  }
  static bool keeps_moments(const ForwardBlock& b) {
    return b.training && b.be.has(&backend::KernelTable::batch_norm_moments) &&
           b.be.has(&backend::KernelTable::batch_norm_statistics_from_moments);
  }

  const ForwardBlock& b_;
  Tensor scratch_;    // each BN+ReLU output in turn
  Tensor workspace_;  // the convolutions'
  std::optional<ChannelMoments> buffer_moments_;  // when keeps_moments
  Tensor norm1_statistics_;                       // when keeps_moments and no backward follows
};

// The fused path (see fuses_normalization): the convolutions normalise their input as they read
// it, with statistics from the batch moments of the buffer's channels, each computed once.
class FusedForward {
 public:
  // The fused convolutions read the statistics even when no backward follows.
  static constexpr bool kReadsStatistics = true;

  explicit FusedForward(const ForwardBlock& b) : b_(b) {
    const BlockGeometry& g = b.g;
    const int64_t workspace_size =
        b.bf16 ? floats_for(std::max(b.be.conv2d_bf16_workspace_bytes(g.conv2(), conv2_bf16_layout()),
                                     b.be.conv2d_bf16_workspace_bytes(g.conv1(g.layers - 1), conv1_bf16_layout())))
               : floats_for(std::max(b.be.conv2d_normalized_workspace_bytes(g.conv2()),
                                     b.be.conv2d_normalized_workspace_bytes(g.conv1(g.layers - 1))));
    workspace_ = empty_if(workspace_size > 0, {workspace_size}, b.device());
    if (b.training) {
      buffer_moments_.emplace(b, g.out_channels());
      buffer_moments_->compute(b.features.data(), g.image(), 0, g.in_channels);  // x's, which every norm1 reads
      bottleneck_moments_.emplace(b, g.bottleneck);
    }
  }

  // norm1's statistics from the buffer's moments, then z = conv1 reading relu1(norm1(prefix)).
  void bottleneck_forward(int64_t l, const DenseLayerTensors& w, const LayerStatistics& saved) const {
    const BlockGeometry& g = b_.g;
    statistics(w.norm1, buffer_moments_, g.layer_in_channels(l), saved.mean1, saved.invstd1);
    convolve(g.conv1(l), conv1_bf16_layout(), {b_.features.data(), g.image()},
             input_normalization(w.norm1, saved.mean1, saved.invstd1), w.conv1_weight,
             {b_.bottleneck(l), g.bottleneck_image()});
  }

  // z's moments and norm2's statistics, then the new channels = conv2 reading relu2(norm2(z)), and
  // their moments for the later layers' norm1.
  void grow_forward(int64_t l, const DenseLayerTensors& w, const LayerStatistics& saved) {
    const BlockGeometry& g = b_.g;
    const float* z = b_.bottleneck(l);
    if (b_.training) bottleneck_moments_->compute(z, g.bottleneck_image(), 0, g.bottleneck);
    statistics(w.norm2, bottleneck_moments_, g.bottleneck, saved.mean2, saved.invstd2);
    convolve(g.conv2(), conv2_bf16_layout(), {z, g.bottleneck_image()},
             input_normalization(w.norm2, saved.mean2, saved.invstd2), w.conv2_weight, {b_.new_channels(l), g.image()});
    if (b_.training && l + 1 < g.layers)  // the last layer's channels are read by no norm1 here
      buffer_moments_->compute(b_.features.data(), g.image(), g.layer_in_channels(l), g.growth);
  }

 private:
  // In bf16 inference the bottleneck is kept channels-last, as conv1 writes it and conv2 reads it
  // (see kernels/conv2d.h, Bf16Layout): nothing else reads it. In training its batch moments and
  // the backward read it, NCHW.
  bool bottleneck_channels_last() const { return !b_.training && !b_.backward_follows; }
  kernels::Bf16Layout conv1_bf16_layout() const {
    return {.x_channels_last = false,
            .y_channels_last = bottleneck_channels_last(),
            .y_batch_stride = b_.g.bottleneck_image()};
  }
  kernels::Bf16Layout conv2_bf16_layout() const {
    return {.x_channels_last = bottleneck_channels_last(), .y_channels_last = false, .y_batch_stride = b_.g.image()};
  }

  // y = conv(x normalised, weight): fp32, or bf16 (Conv2dForwardBf16Args) under a bf16 scope.
  void convolve(const kernels::Conv2dGeometry& geometry, const kernels::Bf16Layout& bf16_layout, kernels::StridedIn x,
                const kernels::InputNormalization& norm, const Tensor& weight, kernels::StridedOut y) const {
    if (b_.bf16)
      b_.be.conv2d_forward_bf16(kernels::Conv2dForwardBf16Args{geometry, bf16_layout, x, &norm, weight.data(), nullptr,
                                                               y, data_or_null(workspace_)});
    else
      b_.be.conv2d_forward_normalized(
          kernels::Conv2dForwardNormalizedArgs{geometry, x, norm, weight.data(), nullptr, y, data_or_null(workspace_)});
  }

  // The (mean, invstd) that one BN normalises with: from the channels' batch moments (moving the
  // running statistics) in training, else the running statistics.
  void statistics(const BatchNormTensors& bn, const std::optional<ChannelMoments>& moments, int64_t channels,
                  float* mean, float* invstd) const {
    if (b_.training)
      moments->statistics(bn, channels, mean, invstd);
    else
      b_.be.batch_norm_inference_statistics(
          kernels::BatchNormInferenceStatisticsArgs{.running_mean = bn.running_mean.data(),
                                                    .running_var = bn.running_var.data(),
                                                    .channels = channels,
                                                    .eps = bn.eps,
                                                    .save_mean = mean,
                                                    .save_invstd = invstd});
  }

  const ForwardBlock& b_;
  Tensor workspace_;  // shared by conv2 and every conv1, the widest of which is the last layer's
  std::optional<ChannelMoments> buffer_moments_, bottleneck_moments_;  // in training
};

// The layers in order, on one path: each layer's conv1 into its bottleneck, then its conv2's new
// channels straight into their slice of the block buffer. Returns the statistics kept for the
// backward (none without one).
template <typename Path>
std::vector<Tensor> forward_layers(const ForwardBlock& b, const std::vector<DenseLayerTensors>& layers, Path&& path) {
  const BlockGeometry& g = b.g;
  std::vector<Tensor> statistics;
  for (int64_t l = 0; l < g.layers; ++l) {
    const DenseLayerTensors& w = layers[static_cast<size_t>(l)];
    const int64_t c = g.layer_in_channels(l);
    const Tensor stats = empty_if(b.backward_follows || std::decay_t<Path>::kReadsStatistics,
                                  {2 * c + 2 * g.bottleneck}, b.device());
    const LayerStatistics saved = stats.defined() ? LayerStatistics(stats, c, g.bottleneck) : LayerStatistics{};
    path.bottleneck_forward(l, w, saved);
    path.grow_forward(l, w, saved);
    if (b.backward_follows) statistics.push_back(stats);
  }
  return statistics;
}

}  // namespace

Tensor memory_efficient_dense_block(const Tensor& x, const std::vector<DenseLayerTensors>& layers, bool training) {
  const BlockGeometry g = check_arguments(x, layers, training);
  for (const Tensor& t : op_inputs(x, layers))
    CHEX_CHECK(t.device() == x.device(), kOp, ": tensors on different devices (", x.str(), " and ", t.str(), ")");
  const Device device = x.device();
  const std::vector<Tensor> inputs = op_inputs(x, layers);
  const backend::Backend be = backend::backend(device);
  const bool backward_follows = any_requires_grad(inputs);

  const Tensor features = Tensor::empty({g.batch, g.out_channels(), g.height, g.width}, device);
  {
    const Tensor input = x.is_batch_strided() ? x.detach() : x.contiguous().detach();
    const int64_t x_stride = g.batch > 1 ? input.stride(0) : g.in_channels * g.spatial();
    be.copy_channels(kernels::ChannelCopyArgs{.src = {input.data(), x_stride},
                                              .dst = {features.data(), g.image()},
                                              .shape = {g.batch, g.in_channels, g.spatial()}});
  }
  const Tensor bottlenecks =
      Tensor::empty({backward_follows ? g.layers : 1, g.batch, g.bottleneck, g.height, g.width}, device);
  const bool bf16 = detail::bf16_convolution(kOp, device, backward_follows);
  const ForwardBlock b{g, be, training, backward_follows, features, bottlenecks, bf16};
  std::vector<Tensor> statistics = fuses_normalization(be) ? forward_layers(b, layers, FusedForward(b))
                                                             : forward_layers(b, layers, UnfusedForward(b));
  if (!backward_follows) return features;

  auto saved = std::make_shared<SavedBlock>();
  saved->geometry = g;
  saved->batch_statistics = training;
  saved->bf16 = bf16;
  saved->features = features.detach();
  saved->bottlenecks = bottlenecks;
  saved->statistics = std::move(statistics);
  for (const DenseLayerTensors& l : layers) saved->layers.push_back(detached(l));
  return record(kOp, features, inputs, [saved](const Tensor& grad, const std::vector<bool>& needs) {
    return dense_block::backward(*saved, grad, needs);
  });
}

}  // namespace chex::ops

// conv2d through the device's kernels (kernels/conv2d.h: im2col + GEMM and friends on the CPU,
// cuDNN on CUDA); batch-strided inputs are read in place on both.
#include "backend/backend.h"
#include "chex/autograd.h"
#include "chex/ops.h"
#include "kernels/conv2d.h"
#include "op_utils.h"

namespace chex::ops {
namespace k = chex::kernels;
using detail::data_or_null;

namespace {

// Checks the arguments of conv2d and returns its geometry. Every message names the shapes.
k::Conv2dGeometry conv2d_geometry(const Tensor& x, const Tensor& weight, const Tensor& bias, Conv2dOptions options) {
  constexpr const char* op = "conv2d";
  detail::check_rank(op, "input", x, 4);
  detail::check_rank(op, "weight", weight, 4);
  if (bias.defined()) detail::check_float(op, "bias", bias);
  detail::common_device(op, {&x, &weight, &bias});

  const Shape& xs = x.shape();
  const Shape& ws = weight.shape();
  const std::string shapes = "input " + shape_str(xs) + ", weight " + shape_str(ws);
  CHEX_CHECK(options.stride > 0, "conv2d: stride must be positive, got ", options.stride, " (", shapes, ")");
  CHEX_CHECK(options.padding >= 0, "conv2d: padding must not be negative, got ", options.padding, " (", shapes, ")");
  CHEX_CHECK(xs[1] == ws[1], "conv2d: input ", shape_str(xs), " has ", xs[1], " channels but weight ", shape_str(ws),
             " expects ", ws[1]);
  CHEX_CHECK(ws[0] > 0 && ws[2] > 0 && ws[3] > 0, "conv2d: weight ", shape_str(ws),
             " must have at least one output channel and a non-empty kernel");
  CHEX_CHECK(ws[2] <= xs[2] + 2 * options.padding && ws[3] <= xs[3] + 2 * options.padding, "conv2d: kernel ", ws[2],
             "x", ws[3], " of weight ", shape_str(ws), " is larger than input ", shape_str(xs), " padded by ",
             options.padding);
  if (bias.defined())
    CHEX_CHECK(bias.dim() == 1 && bias.size(0) == ws[0], "conv2d: bias ", shape_str(bias.shape()),
               " must have shape [", ws[0], "] for weight ", shape_str(ws));
  return k::Conv2dGeometry::make(xs[0], xs[1], xs[2], xs[3], ws[0], ws[2], ws[3], options.stride, options.padding);
}

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, Conv2dOptions options) {
  const k::Conv2dGeometry g = conv2d_geometry(x, weight, bias, options);
  const Tensor input = detail::detached_batch_strided(x);
  const Tensor w = weight.contiguous().detach();
  const Tensor b = bias.defined() ? bias.contiguous() : Tensor();
  const backend::Backend be = backend::backend(x.device());
  // Mixed precision: under a bf16 scope both passes multiply bf16-rounded operands (the backward
  // rounds the saved fp32 input and weight again: nothing is kept in bf16).
  const bool bf16 = detail::bf16_convolution("conv2d", x.device(), any_requires_grad({x, weight, bias}));

  Tensor y = Tensor::empty({g.batch, g.out_channels, g.out_height, g.out_width}, x.device());
  if (bf16) {
    const k::Bf16Layout nchw{.y_batch_stride = g.out_sample()};
    const backend::Workspace workspace = be.workspace(be.conv2d_bf16_workspace_bytes(g, nchw));
    be.conv2d_forward_bf16(k::Conv2dForwardBf16Args{g, nchw, {input.data(), detail::batch_stride(input)}, nullptr,
                                                    w.data(), data_or_null(b), {y.data(), g.out_sample()},
                                                    workspace.get()});
  } else {
    const backend::Workspace workspace = be.workspace(be.conv2d_workspace_bytes(g));  // back to the allocator at once
    be.conv2d_forward(k::Conv2dForwardArgs{g, {input.data(), detail::batch_stride(input)}, w.data(), data_or_null(b),
                                           {y.data(), g.out_sample()}, workspace.get()});
  }

  // needs[2] is false when there is no bias (an undefined input wants no gradient).
  auto backward = [g, input, w, bf16](const Tensor& grad, const std::vector<bool>& needs) {
    const Tensor dy = detail::detached_batch_strided(grad);
    const Device device = dy.device();
    const backend::Backend device_kernels = backend::backend(device);
    const size_t workspace_bytes = bf16 ? device_kernels.conv2d_bf16_backward_workspace_bytes(g)
                                        : device_kernels.conv2d_backward_workspace_bytes(g);
    const bool any = needs[0] || needs[1] || needs[2];
    const backend::Workspace workspace = device_kernels.workspace(any ? workspace_bytes : 0);
    const k::StridedIn dy_image{dy.data(), detail::batch_stride(dy)};
    std::vector<Tensor> grads(3);
    if (needs[0]) {
      grads[0] = Tensor::empty(input.shape(), device);
      const k::Conv2dBackwardDataArgs args{g, dy_image, w.data(), {grads[0].data(), g.in_sample()}, workspace.get()};
      bf16 ? device_kernels.conv2d_backward_data_bf16(args) : device_kernels.conv2d_backward_data(args);
    }
    if (needs[1]) grads[1] = Tensor::empty(w.shape(), device);
    if (needs[2]) grads[2] = Tensor::empty({g.out_channels}, device);
    if (needs[1] || needs[2]) {
      const k::Conv2dBackwardWeightArgs args{g, {input.data(), detail::batch_stride(input)}, dy_image,
                                            data_or_null(grads[1]), data_or_null(grads[2]), workspace.get()};
      bf16 ? device_kernels.conv2d_backward_weight_bf16(args) : device_kernels.conv2d_backward_weight(args);
    }
    return grads;
  };
  return record("conv2d", y, {x, weight, bias}, backward);
}

}  // namespace chex::ops

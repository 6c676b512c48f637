// The bf16 convolutions on CUDA (kernels/conv2d.h, CHEX_CONV2D_BF16_KERNELS): fp32 tensors in and
// out, cuDNN's bf16 convolution in between. The operands are rounded to bf16 (nearest even) into
// dense stream-ordered scratch by the hand-written cast kernel (kernels/cast.h), cuDNN multiplies
// them with float accumulation (bf16 descriptors, CUDNN_DATA_FLOAT compute type, tensor-core math;
// conv_plan.h keys these plans apart from the fp32 ones) and writes bf16, which is widened into
// the fp32 destination. So the result is rounded to bf16 once more than the CPU's (2^-8 relative).
// The bias is added, and dbias summed, in fp32 by the fp32 path's means. A batch-strided image
// tensor (a channel slice of a dense block's buffer) is cast in one launch all the same
// (cast_float_to_bf16_images, cast_bf16_to_float_images).
//
// NCHW only, and no input normalisation: the dense block's unfused path normalises into a buffer
// first on CUDA. Nothing here synchronises or reads device memory on the host, so the calls are
// legal inside a CUDA-graph capture, as the fp32 ones are.
#include "chex/error.h"
#include "conv_plan.h"
#include "cudnn_check.h"
#include "cudnn_descriptors.h"
#include "cudnn_legacy.h"
#include "device_buffer.h"
#include "device_context.h"
#include "kernels/cast.h"
#include "library_kernels.h"

CHEX_CUDNN_LEGACY_API_BEGIN
namespace chex::kernels::cuda {
namespace {

using chex::cuda::ConvPass;
using chex::cuda::ConvPlan;
using chex::cuda::current_conv_plan;
using chex::cuda::DeviceBuffer;
using chex::cuda::TensorDescriptor;

// Dense bf16 scratch for `count` elements, from the stream-ordered pool.
class Bf16Buffer {
 public:
  Bf16Buffer(int device, int64_t count) : buffer_(device, sizeof(BFloat16) * static_cast<size_t>(count)) {}
  BFloat16* get() const { return static_cast<BFloat16*>(buffer_.get()); }

 private:
  DeviceBuffer buffer_;
};

// `batch` images of `sample` floats each, batch-strided in x, rounded densely into dst (one launch
// whatever the strides).
void round_images(const Queue& q, StridedIn x, int64_t batch, int64_t sample, BFloat16* dst) {
  cast_float_to_bf16_images(q, x.data, batch > 1 ? x.batch_stride : sample, dst, sample, batch, sample);
}

// The reverse: dense bf16 images widened (exactly) into batch-strided fp32 y.
void widen_images(const Queue& q, const BFloat16* src, int64_t batch, int64_t sample, StridedOut y) {
  cast_bf16_to_float_images(q, src, sample, y.data, batch > 1 ? y.batch_stride : sample, batch, sample);
}

int64_t weight_size(const Conv2dGeometry& g) { return g.out_channels * g.patch_size(); }

// The weight [C_out, C_in, kH, kW] rounded into dst.
void round_weight(const Queue& q, const Conv2dGeometry& g, const float* weight, BFloat16* dst) {
  cast_float_to_bf16(q, weight, dst, weight_size(g));
}

// The plan of one pass over dense bf16 x and y (or dx and dy).
const ConvPlan& bf16_plan(const DeviceContext& ctx, ConvPass pass, const Conv2dGeometry& g,
                          const chex::cuda::ConvBuffers& buffers) {
  return current_conv_plan(ctx, pass, g, g.in_sample(), g.out_sample(), buffers, CUDNN_DATA_BFLOAT16);
}

}  // namespace

size_t conv2d_bf16_workspace_bytes(const Queue& /*q*/, const Conv2dGeometry& /*g*/, const Bf16Layout& /*layout*/) {
  return 0;
}
size_t conv2d_bf16_backward_workspace_bytes(const Queue& /*q*/, const Conv2dGeometry& /*g*/) { return 0; }

void conv2d_forward_bf16(const Queue& q, const Conv2dForwardBf16Args& args) {
  CHEX_CHECK(!args.layout.x_channels_last && !args.layout.y_channels_last,
             "conv2d_forward_bf16 on CUDA takes NCHW images only, but the layout asks for channels-last ",
             args.layout.x_channels_last ? "x" : "y", ": a CUDA caller must pass NCHW (Bf16Layout{})");
  CHEX_CHECK(args.norm == nullptr,
             "conv2d_forward_bf16 on CUDA does not normalise its input (norm is set): normalise into a buffer "
             "first, as the dense block's unfused path does");
  const Conv2dGeometry& g = args.geometry;
  if (g.batch == 0) return;
  const DeviceContext& ctx = context(q.device);
  const Queue cq{ctx.device, ctx.stream};  // the casts go where cuDNN's handle runs
  const Bf16Buffer x(ctx.device, g.batch * g.in_sample()), w(ctx.device, weight_size(g)),
      y(ctx.device, g.batch * g.out_sample());
  round_images(cq, args.x, g.batch, g.in_sample(), x.get());
  round_weight(cq, g, args.weight, w.get());
  const ConvPlan& p = bf16_plan(ctx, ConvPass::forward, g, {x.get(), w.get(), y.get()});
  const DeviceBuffer workspace(ctx.device, p.choice.workspace);
  CHEX_CUDNN_CHECK(cudnnConvolutionForward(ctx.cudnn, &kOne, p.x.get(), x.get(), p.w.get(), w.get(), p.conv.get(),
                                           p.algo<cudnnConvolutionFwdAlgo_t>(), workspace.get(), workspace.bytes(),
                                           &kZero, p.y.get(), y.get()));
  widen_images(cq, y.get(), g.batch, g.out_sample(), args.y);
  if (args.bias) {  // in fp32 on the widened y, as the fp32 path adds it
    const int64_t y_stride = g.batch > 1 ? args.y.batch_stride : g.out_sample();
    const TensorDescriptor y32({g.batch, g.out_channels, g.out_height, g.out_width},
                               {y_stride, g.out_plane(), g.out_width, 1});
    CHEX_CUDNN_CHECK(cudnnAddTensor(ctx.cudnn, &kOne, p.bias.get(), args.bias, &kOne, y32.get(), args.y.data));
  }
}

void conv2d_backward_data_bf16(const Queue& q, const Conv2dBackwardDataArgs& args) {
  const Conv2dGeometry& g = args.geometry;
  if (g.batch == 0) return;
  const DeviceContext& ctx = context(q.device);
  const Queue cq{ctx.device, ctx.stream};  // the casts go where cuDNN's handle runs
  const Bf16Buffer dy(ctx.device, g.batch * g.out_sample()), w(ctx.device, weight_size(g)),
      dx(ctx.device, g.batch * g.in_sample());
  round_images(cq, args.dy, g.batch, g.out_sample(), dy.get());
  round_weight(cq, g, args.weight, w.get());
  const ConvPlan& p = bf16_plan(ctx, ConvPass::backward_data, g, {dx.get(), w.get(), dy.get()});
  const DeviceBuffer workspace(ctx.device, p.choice.workspace);
  CHEX_CUDNN_CHECK(cudnnConvolutionBackwardData(ctx.cudnn, &kOne, p.w.get(), w.get(), p.y.get(), dy.get(),
                                                p.conv.get(), p.algo<cudnnConvolutionBwdDataAlgo_t>(), workspace.get(),
                                                workspace.bytes(), &kZero, p.x.get(), dx.get()));
  widen_images(cq, dx.get(), g.batch, g.in_sample(), args.dx);
}

void conv2d_backward_weight_bf16(const Queue& q, const Conv2dBackwardWeightArgs& args) {
  const Conv2dGeometry& g = args.geometry;
  // dbias is the fp32 sum of dy as given, and an empty batch zeroes both: the fp32 kernel's work.
  if (args.dbias || g.batch == 0) {
    Conv2dBackwardWeightArgs fp32 = args;
    if (g.batch > 0) fp32.dweight = nullptr;
    conv2d_backward_weight(q, fp32);
  }
  if (!args.dweight || g.batch == 0) return;
  const DeviceContext& ctx = context(q.device);
  const Queue cq{ctx.device, ctx.stream};  // the casts go where cuDNN's handle runs
  const Bf16Buffer x(ctx.device, g.batch * g.in_sample()), dy(ctx.device, g.batch * g.out_sample()),
      dw(ctx.device, weight_size(g));
  round_images(cq, args.x, g.batch, g.in_sample(), x.get());
  round_images(cq, args.dy, g.batch, g.out_sample(), dy.get());
  const ConvPlan& p = bf16_plan(ctx, ConvPass::backward_filter, g, {x.get(), dw.get(), dy.get()});
  const DeviceBuffer workspace(ctx.device, p.choice.workspace);
  CHEX_CUDNN_CHECK(cudnnConvolutionBackwardFilter(ctx.cudnn, &kOne, p.x.get(), x.get(), p.y.get(), dy.get(),
                                                  p.conv.get(), p.algo<cudnnConvolutionBwdFilterAlgo_t>(),
                                                  workspace.get(), workspace.bytes(), &kZero, p.w.get(), dw.get()));
  cast_bf16_to_float(cq, dw.get(), args.dweight, weight_size(g));
}

}  // namespace chex::kernels::cuda
CHEX_CUDNN_LEGACY_API_END

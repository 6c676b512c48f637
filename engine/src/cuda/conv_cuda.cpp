// conv2d on CUDA: cuDNN's convolution forward, backward data and backward filter over
// batch-strided NCHW tensors (a channel slice of a dense-block buffer is read in place), with the
// bias through cudnnAddTensor / cudnnConvolutionBackwardBias.
#include "chex/error.h"
#include "conv_plan.h"
#include "cuda_check.h"
#include "cudnn_check.h"
#include "cudnn_descriptors.h"
#include "cudnn_legacy.h"
#include "device_buffer.h"
#include "device_context.h"
#include "library_kernels.h"

CHEX_CUDNN_LEGACY_API_BEGIN
namespace chex::kernels::cuda {
using chex::cuda::ConvPass;
using chex::cuda::ConvPlan;
using chex::cuda::current_conv_plan;
using chex::cuda::DeviceBuffer;
using chex::cuda::TensorDescriptor;

size_t conv2d_workspace_bytes(const Queue& /*q*/, const Conv2dGeometry& /*g*/) { return 0; }
size_t conv2d_backward_workspace_bytes(const Queue& /*q*/, const Conv2dGeometry& /*g*/) { return 0; }

void conv2d_forward(const Queue& q, const Conv2dForwardArgs& args) {
  const Conv2dGeometry& g = args.geometry;
  if (g.batch == 0) return;
  const DeviceContext& ctx = context(q.device);
  const ConvPlan& p = current_conv_plan(ctx, ConvPass::forward, g, args.x.batch_stride, args.y.batch_stride,
                                        {args.x.data, args.weight, args.y.data});
  const DeviceBuffer workspace(ctx.device, p.choice.workspace);
  CHEX_CUDNN_CHECK(cudnnConvolutionForward(ctx.cudnn, &kOne, p.x.get(), args.x.data, p.w.get(), args.weight,
                                           p.conv.get(), p.algo<cudnnConvolutionFwdAlgo_t>(), workspace.get(),
                                           workspace.bytes(), &kZero, p.y.get(), args.y.data));
  if (args.bias)
    CHEX_CUDNN_CHECK(cudnnAddTensor(ctx.cudnn, &kOne, p.bias.get(), args.bias, &kOne, p.y.get(), args.y.data));
}

void conv2d_backward_data(const Queue& q, const Conv2dBackwardDataArgs& args) {
  const Conv2dGeometry& g = args.geometry;
  if (g.batch == 0) return;
  const DeviceContext& ctx = context(q.device);
  const ConvPlan& p = current_conv_plan(ctx, ConvPass::backward_data, g, args.dx.batch_stride,
                                        args.dy.batch_stride, {args.dx.data, args.weight, args.dy.data});
  const DeviceBuffer workspace(ctx.device, p.choice.workspace);
  CHEX_CUDNN_CHECK(cudnnConvolutionBackwardData(ctx.cudnn, &kOne, p.w.get(), args.weight, p.y.get(), args.dy.data,
                                                p.conv.get(), p.algo<cudnnConvolutionBwdDataAlgo_t>(), workspace.get(),
                                                workspace.bytes(), &kZero, p.x.get(), args.dx.data));
}

void conv2d_backward_weight(const Queue& q, const Conv2dBackwardWeightArgs& args) {
  const Conv2dGeometry& g = args.geometry;
  float *dweight = args.dweight, *dbias = args.dbias;
  const DeviceContext& ctx = context(q.device);
  if (g.batch == 0) {  // empty sums
    if (dweight)
      CHEX_CUDA_CHECK(cudaMemsetAsync(dweight, 0, sizeof(float) * static_cast<size_t>(g.out_channels * g.patch_size()),
                                      ctx.stream));
    if (dbias)
      CHEX_CUDA_CHECK(cudaMemsetAsync(dbias, 0, sizeof(float) * static_cast<size_t>(g.out_channels), ctx.stream));
    return;
  }
  const ConvPlan* p = nullptr;
  if (dweight) {
    p = &current_conv_plan(ctx, ConvPass::backward_filter, g, args.x.batch_stride, args.dy.batch_stride,
                           {args.x.data, dweight, args.dy.data});
    const DeviceBuffer workspace(ctx.device, p->choice.workspace);
    CHEX_CUDNN_CHECK(cudnnConvolutionBackwardFilter(ctx.cudnn, &kOne, p->x.get(), args.x.data, p->y.get(),
                                                    args.dy.data, p->conv.get(),
                                                    p->algo<cudnnConvolutionBwdFilterAlgo_t>(), workspace.get(),
                                                    workspace.bytes(), &kZero, p->w.get(), dweight));
  }
  if (dbias) {
    if (p) {  // the filter pass's plan has dy's and the bias's descriptors
      CHEX_CUDNN_CHECK(
          cudnnConvolutionBackwardBias(ctx.cudnn, &kOne, p->y.get(), args.dy.data, &kZero, p->bias.get(), dbias));
      return;
    }
    // A frozen weight with a trained bias (rare): no plan to borrow from, descriptors made here.
    const int64_t dy_stride = g.batch > 1 ? args.dy.batch_stride : g.out_sample();
    const TensorDescriptor dy({g.batch, g.out_channels, g.out_height, g.out_width},
                              {dy_stride, g.out_plane(), g.out_width, 1});
    const TensorDescriptor bias({1, g.out_channels, 1, 1}, {g.out_channels, 1, 1, 1});
    CHEX_CUDNN_CHECK(cudnnConvolutionBackwardBias(ctx.cudnn, &kOne, dy.get(), args.dy.data, &kZero, bias.get(), dbias));
  }
}

}  // namespace chex::kernels::cuda
CHEX_CUDNN_LEGACY_API_END

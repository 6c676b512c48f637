// conv2d on CUDA: cuDNN's convolution forward, backward data and backward filter over
// batch-strided NCHW tensors (a channel slice of a dense-block buffer is read in place), with the
// bias through cudnnAddTensor / cudnnConvolutionBackwardBias.
#include <string>

#include "chex/error.h"
#include "conv_algorithm.h"
#include "cuda_check.h"
#include "cudnn_check.h"
#include "cudnn_descriptors.h"
#include "cudnn_legacy.h"
#include "device_buffer.h"
#include "device_context.h"
#include "library_kernels.h"

CHEX_CUDNN_LEGACY_API_BEGIN
namespace chex::kernels::cuda {
namespace {

using chex::cuda::context;
using chex::cuda::ConvAlgorithm;
using chex::cuda::ConvolutionDescriptor;
using chex::cuda::ConvPass;
using chex::cuda::DeviceBuffer;
using chex::cuda::DeviceContext;
using chex::cuda::FilterDescriptor;
using chex::cuda::TensorDescriptor;
using chex::cuda::tf32_allowed;

constexpr float kOne = 1.f, kZero = 0.f;

// The descriptors of one convolution, and its cache key.
struct ConvSetup {
  TensorDescriptor x, y;
  FilterDescriptor w;
  ConvolutionDescriptor conv;
  TensorDescriptor bias;
  std::string key;

  ConvSetup(int device, const Conv2dGeometry& g, int64_t x_batch_stride, int64_t y_batch_stride)
      : x({g.batch, g.in_channels, g.height, g.width}, {x_batch_stride, g.in_plane(), g.width, 1}),
        y({g.batch, g.out_channels, g.out_height, g.out_width}, {y_batch_stride, g.out_plane(), g.out_width, 1}),
        w({g.out_channels, g.in_channels, g.kernel_h, g.kernel_w}),
        conv(g.padding, g.stride, tf32_allowed()),
        bias({1, g.out_channels, 1, 1}, {g.out_channels, 1, 1, 1}),
        key(chex::detail::concat(device, ':', g.batch, ',', g.in_channels, ',', g.height, ',', g.width, ',', x_batch_stride,
                           '|', g.out_channels, ',', g.kernel_h, ',', g.kernel_w, '|', g.stride, ',', g.padding, '|',
                           y_batch_stride)) {}
};

// With one image the batch stride is never used; give cuDNN the packed one.
int64_t stride_or_packed(int64_t batch, int64_t stride, int64_t packed) { return batch > 1 ? stride : packed; }

}  // namespace

size_t conv2d_workspace_bytes(const Queue& /*q*/, const Conv2dGeometry& /*g*/) { return 0; }
size_t conv2d_backward_workspace_bytes(const Queue& /*q*/, const Conv2dGeometry& /*g*/) { return 0; }

void conv2d_forward(const Queue& q, const Conv2dForwardArgs& args) {
  const Conv2dGeometry& g = args.geometry;
  const int device = q.device;
  const float *x = args.x.data, *weight = args.weight, *bias = args.bias;
  float* y = args.y.data;
  const int64_t x_batch_stride = args.x.batch_stride, y_batch_stride = args.y.batch_stride;
  if (g.batch == 0) return;
  const DeviceContext& ctx = context(device);
  ConvSetup s(device, g, stride_or_packed(g.batch, x_batch_stride, g.in_sample()),
              stride_or_packed(g.batch, y_batch_stride, g.out_sample()));
  const ConvAlgorithm a = conv_algorithm(ctx.cudnn, ConvPass::forward, s.key, {s.x, s.w, s.conv, s.y});
  const DeviceBuffer workspace(device, a.workspace);
  CHEX_CUDNN_CHECK(cudnnConvolutionForward(ctx.cudnn, &kOne, s.x.get(), x, s.w.get(), weight, s.conv.get(),
                                           static_cast<cudnnConvolutionFwdAlgo_t>(a.algo), workspace.get(),
                                           workspace.bytes(), &kZero, s.y.get(), y));
  if (bias) CHEX_CUDNN_CHECK(cudnnAddTensor(ctx.cudnn, &kOne, s.bias.get(), bias, &kOne, s.y.get(), y));
}

void conv2d_backward_data(const Queue& q, const Conv2dBackwardDataArgs& args) {
  const Conv2dGeometry& g = args.geometry;
  const int device = q.device;
  const float *dy = args.dy.data, *weight = args.weight;
  float* dx = args.dx.data;
  const int64_t dy_batch_stride = args.dy.batch_stride, dx_batch_stride = args.dx.batch_stride;
  if (g.batch == 0) return;
  const DeviceContext& ctx = context(device);
  ConvSetup s(device, g, stride_or_packed(g.batch, dx_batch_stride, g.in_sample()),
              stride_or_packed(g.batch, dy_batch_stride, g.out_sample()));
  const ConvAlgorithm a = conv_algorithm(ctx.cudnn, ConvPass::backward_data, s.key, {s.x, s.w, s.conv, s.y});
  const DeviceBuffer workspace(device, a.workspace);
  CHEX_CUDNN_CHECK(cudnnConvolutionBackwardData(ctx.cudnn, &kOne, s.w.get(), weight, s.y.get(), dy, s.conv.get(),
                                                static_cast<cudnnConvolutionBwdDataAlgo_t>(a.algo), workspace.get(),
                                                workspace.bytes(), &kZero, s.x.get(), dx));
}

void conv2d_backward_weight(const Queue& q, const Conv2dBackwardWeightArgs& args) {
  const Conv2dGeometry& g = args.geometry;
  const int device = q.device;
  const float *x = args.x.data, *dy = args.dy.data;
  float *dweight = args.dweight, *dbias = args.dbias;
  const int64_t x_batch_stride = args.x.batch_stride, dy_batch_stride = args.dy.batch_stride;
  const DeviceContext& ctx = context(device);
  if (g.batch == 0) {  // empty sums
    if (dweight)
      CHEX_CUDA_CHECK(cudaMemsetAsync(dweight, 0, sizeof(float) * static_cast<size_t>(g.out_channels * g.patch_size()),
                                      ctx.stream));
    if (dbias)
      CHEX_CUDA_CHECK(cudaMemsetAsync(dbias, 0, sizeof(float) * static_cast<size_t>(g.out_channels), ctx.stream));
    return;
  }
  ConvSetup s(device, g, stride_or_packed(g.batch, x_batch_stride, g.in_sample()),
              stride_or_packed(g.batch, dy_batch_stride, g.out_sample()));
  if (dweight) {
    const ConvAlgorithm a = conv_algorithm(ctx.cudnn, ConvPass::backward_filter, s.key, {s.x, s.w, s.conv, s.y});
    const DeviceBuffer workspace(device, a.workspace);
    CHEX_CUDNN_CHECK(cudnnConvolutionBackwardFilter(ctx.cudnn, &kOne, s.x.get(), x, s.y.get(), dy, s.conv.get(),
                                                    static_cast<cudnnConvolutionBwdFilterAlgo_t>(a.algo),
                                                    workspace.get(), workspace.bytes(), &kZero, s.w.get(), dweight));
  }
  if (dbias)
    CHEX_CUDNN_CHECK(cudnnConvolutionBackwardBias(ctx.cudnn, &kOne, s.y.get(), dy, &kZero, s.bias.get(), dbias));
}

}  // namespace chex::kernels::cuda
CHEX_CUDNN_LEGACY_API_END

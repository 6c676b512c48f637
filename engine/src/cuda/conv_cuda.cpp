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

using chex::cuda::ConvAlgorithm;
using chex::cuda::ConvolutionDescriptor;
using chex::cuda::ConvPass;
using chex::cuda::DeviceBuffer;
using chex::cuda::FilterDescriptor;
using chex::cuda::TensorDescriptor;
using chex::cuda::tf32_allowed;

// With one image the batch stride is never used; give cuDNN the packed one.
int64_t stride_or_packed(int64_t batch, int64_t stride, int64_t packed) { return batch > 1 ? stride : packed; }

// The descriptors of one convolution, and its cache key, for x and y (or dx and dy) of these batch
// strides.
struct ConvSetup {
  TensorDescriptor x, y;
  FilterDescriptor w;
  ConvolutionDescriptor conv;
  TensorDescriptor bias;
  std::string key;

  ConvSetup(int device, const Conv2dGeometry& g, int64_t x_batch_stride, int64_t y_batch_stride)
      : ConvSetup(device, g, {stride_or_packed(g.batch, x_batch_stride, g.in_sample()),
                              stride_or_packed(g.batch, y_batch_stride, g.out_sample())}) {}

 private:
  // The batch strides cuDNN is given, computed once for the descriptors and the key.
  struct Strides {
    int64_t x, y;
  };
  ConvSetup(int device, const Conv2dGeometry& g, Strides st)
      : x({g.batch, g.in_channels, g.height, g.width}, {st.x, g.in_plane(), g.width, 1}),
        y({g.batch, g.out_channels, g.out_height, g.out_width}, {st.y, g.out_plane(), g.out_width, 1}),
        w({g.out_channels, g.in_channels, g.kernel_h, g.kernel_w}),
        conv(g.padding, g.stride, tf32_allowed()),
        bias({1, g.out_channels, 1, 1}, {g.out_channels, 1, 1, 1}),
        key(chex::detail::concat(device, ':', g.batch, ',', g.in_channels, ',', g.height, ',', g.width, ',', st.x, '|',
                                 g.out_channels, ',', g.kernel_h, ',', g.kernel_w, '|', g.stride, ',', g.padding, '|',
                                 st.y)) {}
};

// cuDNN's algorithm for one pass of a convolution, and a workspace of the size it asks for.
struct ChosenAlgorithm {
  ConvAlgorithm algorithm;
  DeviceBuffer workspace;
  ChosenAlgorithm(const DeviceContext& ctx, ConvPass pass, ConvSetup& s)  // sets s.conv's math type
      : algorithm(conv_algorithm(ctx.cudnn, pass, s.key, {s.x, s.w, s.conv, s.y})),
        workspace(ctx.device, algorithm.workspace) {}
  template <typename Algo>
  Algo algo() const {
    return static_cast<Algo>(algorithm.algo);
  }
};

// What a pass's cuDNN call needs: the device, the descriptors, the algorithm and its workspace.
struct Pass {
  const DeviceContext& ctx;
  const ConvSetup& s;
  const ChosenAlgorithm& c;
};

// The forward and the backward data pass: nothing for an empty batch; otherwise the descriptors,
// cuDNN's algorithm and its workspace, then `call(pass)`.
template <typename Call>
void run_pass(const Queue& q, const Conv2dGeometry& g, ConvPass pass, int64_t x_batch_stride, int64_t y_batch_stride,
              Call&& call) {
  if (g.batch == 0) return;
  const DeviceContext& ctx = context(q.device);
  ConvSetup s(q.device, g, x_batch_stride, y_batch_stride);
  const ChosenAlgorithm c(ctx, pass, s);
  call(Pass{ctx, s, c});
}

}  // namespace

size_t conv2d_workspace_bytes(const Queue& /*q*/, const Conv2dGeometry& /*g*/) { return 0; }
size_t conv2d_backward_workspace_bytes(const Queue& /*q*/, const Conv2dGeometry& /*g*/) { return 0; }

void conv2d_forward(const Queue& q, const Conv2dForwardArgs& args) {
  run_pass(q, args.geometry, ConvPass::forward, args.x.batch_stride, args.y.batch_stride, [&](const Pass& p) {
    CHEX_CUDNN_CHECK(cudnnConvolutionForward(p.ctx.cudnn, &kOne, p.s.x.get(), args.x.data, p.s.w.get(), args.weight,
                                             p.s.conv.get(), p.c.algo<cudnnConvolutionFwdAlgo_t>(),
                                             p.c.workspace.get(), p.c.workspace.bytes(), &kZero, p.s.y.get(),
                                             args.y.data));
    if (args.bias)
      CHEX_CUDNN_CHECK(
          cudnnAddTensor(p.ctx.cudnn, &kOne, p.s.bias.get(), args.bias, &kOne, p.s.y.get(), args.y.data));
  });
}

void conv2d_backward_data(const Queue& q, const Conv2dBackwardDataArgs& args) {
  run_pass(q, args.geometry, ConvPass::backward_data, args.dx.batch_stride, args.dy.batch_stride, [&](const Pass& p) {
    CHEX_CUDNN_CHECK(cudnnConvolutionBackwardData(
        p.ctx.cudnn, &kOne, p.s.w.get(), args.weight, p.s.y.get(), args.dy.data, p.s.conv.get(),
        p.c.algo<cudnnConvolutionBwdDataAlgo_t>(), p.c.workspace.get(), p.c.workspace.bytes(), &kZero, p.s.x.get(),
        args.dx.data));
  });
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
  ConvSetup s(q.device, g, args.x.batch_stride, args.dy.batch_stride);
  if (dweight) {
    const ChosenAlgorithm c(ctx, ConvPass::backward_filter, s);
    CHEX_CUDNN_CHECK(cudnnConvolutionBackwardFilter(ctx.cudnn, &kOne, s.x.get(), args.x.data, s.y.get(), args.dy.data,
                                                    s.conv.get(), c.algo<cudnnConvolutionBwdFilterAlgo_t>(),
                                                    c.workspace.get(), c.workspace.bytes(), &kZero, s.w.get(),
                                                    dweight));
  }
  if (dbias)
    CHEX_CUDNN_CHECK(
        cudnnConvolutionBackwardBias(ctx.cudnn, &kOne, s.y.get(), args.dy.data, &kZero, s.bias.get(), dbias));
}

}  // namespace chex::kernels::cuda
CHEX_CUDNN_LEGACY_API_END

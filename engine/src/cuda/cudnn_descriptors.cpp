#include "cudnn_descriptors.h"

#include "chex/error.h"
#include "cudnn_check.h"

namespace chex::cuda {
namespace {
int to_int(int64_t v, const char* what) {
  CHEX_CHECK(v >= 0 && v <= INT32_MAX, what, " ", v, " does not fit cuDNN's int");
  return static_cast<int>(v);
}
}  // namespace

TensorDescriptor::TensorDescriptor(const Shape& shape, const Shape& strides) {
  CHEX_CHECK(shape.size() == 4 && strides.size() == 4, "cuDNN tensor descriptor: expected a 4-d NCHW tensor, got shape ",
             shape_str(shape));
  CHEX_CUDNN_CHECK(cudnnCreateTensorDescriptor(&desc_));
  try {
    CHEX_CUDNN_CHECK(cudnnSetTensor4dDescriptorEx(
        desc_, CUDNN_DATA_FLOAT, to_int(shape[0], "N"), to_int(shape[1], "C"), to_int(shape[2], "H"),
        to_int(shape[3], "W"), to_int(strides[0], "stride"), to_int(strides[1], "stride"), to_int(strides[2], "stride"),
        to_int(strides[3], "stride")));
  } catch (...) {
    cudnnDestroyTensorDescriptor(desc_);
    throw;
  }
}
TensorDescriptor::~TensorDescriptor() { cudnnDestroyTensorDescriptor(desc_); }

void TensorDescriptor::read(Shape& shape, Shape& strides) const {
  cudnnDataType_t type;
  int n, c, h, w, ns, cs, hs, ws;
  CHEX_CUDNN_CHECK(cudnnGetTensor4dDescriptor(desc_, &type, &n, &c, &h, &w, &ns, &cs, &hs, &ws));
  shape = {n, c, h, w};
  strides = {ns, cs, hs, ws};
}

FilterDescriptor::FilterDescriptor(const Shape& shape) {
  CHEX_CHECK(shape.size() == 4, "cuDNN filter descriptor: expected [C_out, C_in, kH, kW], got ", shape_str(shape));
  CHEX_CUDNN_CHECK(cudnnCreateFilterDescriptor(&desc_));
  try {
    CHEX_CUDNN_CHECK(cudnnSetFilter4dDescriptor(desc_, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, to_int(shape[0], "C_out"),
                                                to_int(shape[1], "C_in"), to_int(shape[2], "kH"),
                                                to_int(shape[3], "kW")));
  } catch (...) {
    cudnnDestroyFilterDescriptor(desc_);
    throw;
  }
}
FilterDescriptor::~FilterDescriptor() { cudnnDestroyFilterDescriptor(desc_); }

ConvolutionDescriptor::ConvolutionDescriptor(int64_t padding, int64_t stride, bool allow_tf32) {
  CHEX_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&desc_));
  try {
    const int p = to_int(padding, "padding"), s = to_int(stride, "stride");
    CHEX_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(desc_, p, p, s, s, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    CHEX_CUDNN_CHECK(cudnnSetConvolutionMathType(desc_, allow_tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH));
  } catch (...) {
    cudnnDestroyConvolutionDescriptor(desc_);
    throw;
  }
}
ConvolutionDescriptor::~ConvolutionDescriptor() { cudnnDestroyConvolutionDescriptor(desc_); }

PoolingDescriptor::PoolingDescriptor(Mode mode, int64_t kernel, int64_t stride, int64_t padding) {
  CHEX_CUDNN_CHECK(cudnnCreatePoolingDescriptor(&desc_));
  try {
    const int k = to_int(kernel, "kernel"), s = to_int(stride, "stride"), p = to_int(padding, "padding");
    CHEX_CUDNN_CHECK(cudnnSetPooling2dDescriptor(
        desc_, mode == Mode::max ? CUDNN_POOLING_MAX_DETERMINISTIC : CUDNN_POOLING_AVERAGE_COUNT_EXCLUDE_PADDING,
        CUDNN_NOT_PROPAGATE_NAN, k, k, p, p, s, s));
  } catch (...) {
    cudnnDestroyPoolingDescriptor(desc_);
    throw;
  }
}
PoolingDescriptor::~PoolingDescriptor() { cudnnDestroyPoolingDescriptor(desc_); }

Shape convolution_output_shape(const Shape& x, const Shape& x_strides, const Shape& weight, int64_t padding,
                               int64_t stride) {
  const TensorDescriptor xd(x, x_strides);
  const FilterDescriptor wd(weight);
  const ConvolutionDescriptor cd(padding, stride);
  int n, c, h, w;
  CHEX_CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(cd.get(), xd.get(), wd.get(), &n, &c, &h, &w));
  return {n, c, h, w};
}

Shape pooling_output_shape(const Shape& x, PoolingDescriptor::Mode mode, int64_t kernel, int64_t stride,
                           int64_t padding) {
  const TensorDescriptor xd(x, contiguous_strides(x));
  const PoolingDescriptor pd(mode, kernel, stride, padding);
  int n, c, h, w;
  CHEX_CUDNN_CHECK(cudnnGetPooling2dForwardOutputDim(pd.get(), xd.get(), &n, &c, &h, &w));
  return {n, c, h, w};
}

}  // namespace chex::cuda

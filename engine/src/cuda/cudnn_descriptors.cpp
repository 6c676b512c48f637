#include "cudnn_descriptors.h"

#include <algorithm>
#include <array>

#include "chex/error.h"
#include "cudnn_check.h"
#include "cudnn_legacy.h"

CHEX_CUDNN_LEGACY_API_BEGIN
namespace chex::cuda {
namespace {
int to_int(int64_t v, const char* what) {
  CHEX_CHECK(v >= 0 && v <= INT32_MAX, what, " ", v, " does not fit cuDNN's int");
  return static_cast<int>(v);
}
}  // namespace

TensorDescriptor::TensorDescriptor(const Shape& shape, const Shape& strides, cudnnDataType_t type) {
  CHEX_CHECK(shape.size() == 4 && strides.size() == 4, "cuDNN tensor descriptor: expected a 4-d NCHW tensor, got shape ",
             shape_str(shape));
  CHEX_CUDNN_CHECK(cudnnCreateTensorDescriptor(&desc_));
  try {
    CHEX_CUDNN_CHECK(cudnnSetTensor4dDescriptorEx(
        desc_, type, to_int(shape[0], "N"), to_int(shape[1], "C"), to_int(shape[2], "H"),
        to_int(shape[3], "W"), to_int(strides[0], "stride"), to_int(strides[1], "stride"), to_int(strides[2], "stride"),
        to_int(strides[3], "stride")));
  } catch (...) {
    cudnnDestroyTensorDescriptor(desc_);
    throw;
  }
}
TensorDescriptor::TensorDescriptor(const Shape& shape, const Shape& strides, AnyRank) {
  CHEX_CHECK(shape.size() == strides.size() && shape.size() <= CUDNN_DIM_MAX, "cuDNN tensor descriptor: shape ",
             shape_str(shape), " with strides ", shape_str(strides), " (rank up to ", CUDNN_DIM_MAX, ")");
  // Leading dimensions of size 1 pad the rank to 4; their stride is the extent of what follows.
  const size_t rank = std::max<size_t>(shape.size(), 4);
  const size_t pad = rank - shape.size();
  std::array<int, CUDNN_DIM_MAX> dims{}, steps{};
  int64_t extent = 1;
  for (size_t i = 0; i < shape.size(); ++i) extent = std::max(extent, shape[i] * strides[i]);
  for (size_t i = 0; i < rank; ++i) {
    dims[i] = i < pad ? 1 : to_int(shape[i - pad], "size");
    steps[i] = i < pad ? to_int(extent, "stride") : to_int(std::max<int64_t>(strides[i - pad], 1), "stride");
  }
  CHEX_CUDNN_CHECK(cudnnCreateTensorDescriptor(&desc_));
  try {
    CHEX_CUDNN_CHECK(
        cudnnSetTensorNdDescriptor(desc_, CUDNN_DATA_FLOAT, static_cast<int>(rank), dims.data(), steps.data()));
  } catch (...) {
    cudnnDestroyTensorDescriptor(desc_);
    throw;
  }
}

TensorDescriptor TensorDescriptor::any_rank(const Shape& shape, const Shape& strides) {
  return TensorDescriptor(shape, strides, AnyRank{});
}

TensorDescriptor TensorDescriptor::flat(int64_t n) { return TensorDescriptor({1, 1, 1, n}, {n, n, n, 1}); }

TensorDescriptor::~TensorDescriptor() { cudnnDestroyTensorDescriptor(desc_); }

void TensorDescriptor::read(Shape& shape, Shape& strides) const {
  cudnnDataType_t type;
  int n, c, h, w, ns, cs, hs, ws;
  CHEX_CUDNN_CHECK(cudnnGetTensor4dDescriptor(desc_, &type, &n, &c, &h, &w, &ns, &cs, &hs, &ws));
  shape = {n, c, h, w};
  strides = {ns, cs, hs, ws};
}

cudnnDataType_t TensorDescriptor::data_type() const {
  cudnnDataType_t type;
  int n, c, h, w, ns, cs, hs, ws;
  CHEX_CUDNN_CHECK(cudnnGetTensor4dDescriptor(desc_, &type, &n, &c, &h, &w, &ns, &cs, &hs, &ws));
  return type;
}

FilterDescriptor::FilterDescriptor(const Shape& shape, cudnnDataType_t type) {
  CHEX_CHECK(shape.size() == 4, "cuDNN filter descriptor: expected [C_out, C_in, kH, kW], got ", shape_str(shape));
  CHEX_CUDNN_CHECK(cudnnCreateFilterDescriptor(&desc_));
  try {
    CHEX_CUDNN_CHECK(cudnnSetFilter4dDescriptor(desc_, type, CUDNN_TENSOR_NCHW, to_int(shape[0], "C_out"),
                                                to_int(shape[1], "C_in"), to_int(shape[2], "kH"),
                                                to_int(shape[3], "kW")));
  } catch (...) {
    cudnnDestroyFilterDescriptor(desc_);
    throw;
  }
}
FilterDescriptor::~FilterDescriptor() { cudnnDestroyFilterDescriptor(desc_); }

cudnnDataType_t FilterDescriptor::data_type() const {
  cudnnDataType_t type;
  cudnnTensorFormat_t format;
  int k, c, h, w;
  CHEX_CUDNN_CHECK(cudnnGetFilter4dDescriptor(desc_, &type, &format, &k, &c, &h, &w));
  return type;
}

ConvolutionDescriptor::ConvolutionDescriptor(int64_t padding, int64_t stride, bool allow_tf32)
    : ConvolutionDescriptor(padding, stride, allow_tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH) {}

ConvolutionDescriptor::ConvolutionDescriptor(int64_t padding, int64_t stride, cudnnMathType_t math) {
  CHEX_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&desc_));
  try {
    const int p = to_int(padding, "padding"), s = to_int(stride, "stride");
    CHEX_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(desc_, p, p, s, s, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    CHEX_CUDNN_CHECK(cudnnSetConvolutionMathType(desc_, math));
  } catch (...) {
    cudnnDestroyConvolutionDescriptor(desc_);
    throw;
  }
}
ConvolutionDescriptor::~ConvolutionDescriptor() { cudnnDestroyConvolutionDescriptor(desc_); }

cudnnMathType_t ConvolutionDescriptor::math_type() const {
  cudnnMathType_t math;
  CHEX_CUDNN_CHECK(cudnnGetConvolutionMathType(desc_, &math));
  return math;
}

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

ActivationDescriptor::ActivationDescriptor(cudnnActivationMode_t mode) {
  CHEX_CUDNN_CHECK(cudnnCreateActivationDescriptor(&desc_));
  try {
    CHEX_CUDNN_CHECK(cudnnSetActivationDescriptor(desc_, mode, CUDNN_NOT_PROPAGATE_NAN, 0.0));
  } catch (...) {
    cudnnDestroyActivationDescriptor(desc_);
    throw;
  }
}
ActivationDescriptor::~ActivationDescriptor() { cudnnDestroyActivationDescriptor(desc_); }

OpTensorDescriptor::OpTensorDescriptor(cudnnOpTensorOp_t op) {
  CHEX_CUDNN_CHECK(cudnnCreateOpTensorDescriptor(&desc_));
  try {
    CHEX_CUDNN_CHECK(cudnnSetOpTensorDescriptor(desc_, op, CUDNN_DATA_FLOAT, CUDNN_NOT_PROPAGATE_NAN));
  } catch (...) {
    cudnnDestroyOpTensorDescriptor(desc_);
    throw;
  }
}
OpTensorDescriptor::~OpTensorDescriptor() { cudnnDestroyOpTensorDescriptor(desc_); }

ReduceTensorDescriptor::ReduceTensorDescriptor(cudnnReduceTensorOp_t op) {
  CHEX_CUDNN_CHECK(cudnnCreateReduceTensorDescriptor(&desc_));
  try {
    CHEX_CUDNN_CHECK(cudnnSetReduceTensorDescriptor(desc_, op, CUDNN_DATA_FLOAT, CUDNN_NOT_PROPAGATE_NAN,
                                                    CUDNN_REDUCE_TENSOR_NO_INDICES, CUDNN_32BIT_INDICES));
  } catch (...) {
    cudnnDestroyReduceTensorDescriptor(desc_);
    throw;
  }
}
ReduceTensorDescriptor::~ReduceTensorDescriptor() { cudnnDestroyReduceTensorDescriptor(desc_); }

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
CHEX_CUDNN_LEGACY_API_END

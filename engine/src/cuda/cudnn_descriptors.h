#pragma once
// RAII cuDNN descriptors and the shape logic of the cuDNN paths. Descriptor calls need no GPU, so
// this code is unit-tested on our GPU-less machines (tests/cuda/); only handle creation and the
// compute calls need a device.
#include <cudnn.h>

#include <cstdint>

#include "chex/shape.h"
#include "cudnn_legacy.h"

// Legacy-API types throughout.
CHEX_CUDNN_LEGACY_API_BEGIN
namespace chex::cuda {

// A 4-d tensor [N, C, H, W] with explicit strides, so that a channel slice of a dense-block
// buffer (batch stride C_total·H·W) is described without a copy. float unless `type` says
// otherwise (the bf16 convolutions' operands are CUDNN_DATA_BFLOAT16).
class TensorDescriptor {
 public:
  TensorDescriptor(const Shape& shape, const Shape& strides, cudnnDataType_t type = CUDNN_DATA_FLOAT);
  // Any rank up to 8 (cuDNN's limit), padded to 4 with leading dimensions of size 1: for copies,
  // fills and elementwise ops over tensors that are not NCHW images.
  static TensorDescriptor any_rank(const Shape& shape, const Shape& strides);
  // n contiguous floats, as [1, 1, 1, n] (n < 2^31).
  static TensorDescriptor flat(int64_t n);
  ~TensorDescriptor();
  TensorDescriptor(const TensorDescriptor&) = delete;
  TensorDescriptor& operator=(const TensorDescriptor&) = delete;
  cudnnTensorDescriptor_t get() const { return desc_; }
  // What cuDNN stored, read back (for tests).
  void read(Shape& shape, Shape& strides) const;
  cudnnDataType_t data_type() const;

 private:
  struct AnyRank {};
  TensorDescriptor(const Shape& shape, const Shape& strides, AnyRank);
  cudnnTensorDescriptor_t desc_ = nullptr;
};

// Convolution weights [C_out, C_in, kH, kW], NCHW, float unless `type` says otherwise.
class FilterDescriptor {
 public:
  explicit FilterDescriptor(const Shape& shape, cudnnDataType_t type = CUDNN_DATA_FLOAT);
  ~FilterDescriptor();
  FilterDescriptor(const FilterDescriptor&) = delete;
  FilterDescriptor& operator=(const FilterDescriptor&) = delete;
  cudnnFilterDescriptor_t get() const { return desc_; }
  cudnnDataType_t data_type() const;  // what cuDNN stored (for tests)

 private:
  cudnnFilterDescriptor_t desc_ = nullptr;
};

// 2-d cross-correlation (what deep-learning frameworks call convolution) with float accumulation.
// Tensor cores in TF32 are off unless allowed: parity with the CPU and PyTorch comes first. The
// second form sets the math type itself (bf16 operands: CUDNN_TENSOR_OP_MATH), the accumulation
// still float.
class ConvolutionDescriptor {
 public:
  ConvolutionDescriptor(int64_t padding, int64_t stride, bool allow_tf32 = false);
  ConvolutionDescriptor(int64_t padding, int64_t stride, cudnnMathType_t math);
  ~ConvolutionDescriptor();
  ConvolutionDescriptor(const ConvolutionDescriptor&) = delete;
  ConvolutionDescriptor& operator=(const ConvolutionDescriptor&) = delete;
  cudnnConvolutionDescriptor_t get() const { return desc_; }
  cudnnMathType_t math_type() const;  // what cuDNN stored (for tests)

 private:
  cudnnConvolutionDescriptor_t desc_ = nullptr;
};

// Max pooling with -inf padding, or average pooling over the window (padding excluded).
class PoolingDescriptor {
 public:
  enum class Mode { max, average };
  PoolingDescriptor(Mode mode, int64_t kernel, int64_t stride, int64_t padding);
  ~PoolingDescriptor();
  PoolingDescriptor(const PoolingDescriptor&) = delete;
  PoolingDescriptor& operator=(const PoolingDescriptor&) = delete;
  cudnnPoolingDescriptor_t get() const { return desc_; }

 private:
  cudnnPoolingDescriptor_t desc_ = nullptr;
};

// A pointwise activation (sigmoid, ReLU) without NaN propagation, as the CPU twins.
class ActivationDescriptor {
 public:
  explicit ActivationDescriptor(cudnnActivationMode_t mode);
  ~ActivationDescriptor();
  ActivationDescriptor(const ActivationDescriptor&) = delete;
  ActivationDescriptor& operator=(const ActivationDescriptor&) = delete;
  cudnnActivationDescriptor_t get() const { return desc_; }

 private:
  cudnnActivationDescriptor_t desc_ = nullptr;
};

// A binary elementwise operation computed in float: C = op(alpha1·A, alpha2·B) + beta·C.
class OpTensorDescriptor {
 public:
  explicit OpTensorDescriptor(cudnnOpTensorOp_t op);
  ~OpTensorDescriptor();
  OpTensorDescriptor(const OpTensorDescriptor&) = delete;
  OpTensorDescriptor& operator=(const OpTensorDescriptor&) = delete;
  cudnnOpTensorDescriptor_t get() const { return desc_; }

 private:
  cudnnOpTensorDescriptor_t desc_ = nullptr;
};

// A reduction (sum, mean) computed in float, without indices.
class ReduceTensorDescriptor {
 public:
  explicit ReduceTensorDescriptor(cudnnReduceTensorOp_t op);
  ~ReduceTensorDescriptor();
  ReduceTensorDescriptor(const ReduceTensorDescriptor&) = delete;
  ReduceTensorDescriptor& operator=(const ReduceTensorDescriptor&) = delete;
  cudnnReduceTensorDescriptor_t get() const { return desc_; }

 private:
  cudnnReduceTensorDescriptor_t desc_ = nullptr;
};

// The output shape cuDNN computes for a convolution of x [N, C, H, W] by w [K, C, kH, kW].
Shape convolution_output_shape(const Shape& x, const Shape& x_strides, const Shape& weight, int64_t padding,
                               int64_t stride);
// The output shape cuDNN computes for a pooling.
Shape pooling_output_shape(const Shape& x, PoolingDescriptor::Mode mode, int64_t kernel, int64_t stride,
                           int64_t padding);

}  // namespace chex::cuda
CHEX_CUDNN_LEGACY_API_END

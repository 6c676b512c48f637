#pragma once
// RAII cuDNN descriptors and the shape logic of the cuDNN paths. Descriptor calls need no GPU, so
// this code is unit-tested on our GPU-less machines (tests/cuda/); only handle creation and the
// compute calls need a device.
#include <cudnn.h>

#include <cstdint>

#include "chex/shape.h"

namespace chex::cuda {

// A 4-d float tensor [N, C, H, W] with explicit strides, so that a channel slice of a dense-block
// buffer (batch stride C_total·H·W) is described without a copy.
class TensorDescriptor {
 public:
  TensorDescriptor(const Shape& shape, const Shape& strides);
  ~TensorDescriptor();
  TensorDescriptor(const TensorDescriptor&) = delete;
  TensorDescriptor& operator=(const TensorDescriptor&) = delete;
  cudnnTensorDescriptor_t get() const { return desc_; }
  // What cuDNN stored, read back (for tests).
  void read(Shape& shape, Shape& strides) const;

 private:
  cudnnTensorDescriptor_t desc_ = nullptr;
};

// Convolution weights [C_out, C_in, kH, kW], NCHW.
class FilterDescriptor {
 public:
  explicit FilterDescriptor(const Shape& shape);
  ~FilterDescriptor();
  FilterDescriptor(const FilterDescriptor&) = delete;
  FilterDescriptor& operator=(const FilterDescriptor&) = delete;
  cudnnFilterDescriptor_t get() const { return desc_; }

 private:
  cudnnFilterDescriptor_t desc_ = nullptr;
};

// 2-d cross-correlation (what deep-learning frameworks call convolution) with float accumulation.
// Tensor cores in TF32 are off unless allowed: parity with the CPU and PyTorch comes first.
class ConvolutionDescriptor {
 public:
  ConvolutionDescriptor(int64_t padding, int64_t stride, bool allow_tf32 = false);
  ~ConvolutionDescriptor();
  ConvolutionDescriptor(const ConvolutionDescriptor&) = delete;
  ConvolutionDescriptor& operator=(const ConvolutionDescriptor&) = delete;
  cudnnConvolutionDescriptor_t get() const { return desc_; }

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

// The output shape cuDNN computes for a convolution of x [N, C, H, W] by w [K, C, kH, kW].
Shape convolution_output_shape(const Shape& x, const Shape& x_strides, const Shape& weight, int64_t padding,
                               int64_t stride);
// The output shape cuDNN computes for a pooling.
Shape pooling_output_shape(const Shape& x, PoolingDescriptor::Mode mode, int64_t kernel, int64_t stride,
                           int64_t padding);

}  // namespace chex::cuda

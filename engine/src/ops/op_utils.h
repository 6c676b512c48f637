#pragma once
// Argument checks shared by the ops. Every message names the op and the shapes it was given.
#include <initializer_list>
#include <string>

#include "chex/error.h"
#include "chex/tensor.h"

namespace chex::ops::detail {

// The tensor is defined and float32.
void check_float(const char* op, const char* arg, const Tensor& t);
// The tensor has the given rank.
void check_rank(const char* op, const char* arg, const Tensor& t, int64_t rank);
// All defined tensors live on the same device; returns it.
Device common_device(const char* op, std::initializer_list<const Tensor*> tensors);
// The tensor's shape matches `expected` exactly.
void check_shape(const char* op, const char* arg, const Tensor& t, const Shape& expected);

// What the kernels that take a batch stride read: `t` itself when batch-strided (dimensions after
// the first densely packed), else a contiguous copy. Detached either way (no autograd history), so
// it can be saved for a backward.
Tensor detached_batch_strided(const Tensor& t);
// A kernel's optional argument: the tensor's data, or null when the tensor is undefined (not wanted).
inline float* data_or_null(const Tensor& t) { return t.defined() ? t.data() : nullptr; }

// The distance in elements between consecutive images (dimension-0 entries) of a batch-strided t.
int64_t batch_stride(const Tensor& t);

// A convolution op under a bf16 PrecisionScope (chex/precision.h): true when it is to run in bf16,
// after checking that it can: the device's backend has bf16 convolutions, and their backward
// kernels when a graph is being recorded (training); false under fp32 and tf32.
bool bf16_convolution(const char* op, Device device, bool records_graph);

}  // namespace chex::ops::detail

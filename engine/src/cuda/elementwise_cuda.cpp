// Elementwise ops and reductions on CUDA over contiguous arrays: ReLU through the hand-written
// kernels (kernels/elementwise.cu), the rest through cuDNN's tensor operations on [1, 1, 1, n]
// views, in chunks below cuDNN's 2^31-element limit.
#include <algorithm>

#include "chex/error.h"
#include "cudnn_check.h"
#include "cudnn_descriptors.h"
#include "cudnn_legacy.h"
#include "device_buffer.h"
#include "device_context.h"
#include "kernels/elementwise.h"
#include "ops_cuda.h"

CHEX_CUDNN_LEGACY_API_BEGIN
namespace chex::cuda {
namespace {

constexpr float kOne = 1.f, kZero = 0.f;
constexpr int64_t kChunk = int64_t{1} << 30;

// Calls fn(offset, length) over [0, n) in chunks cuDNN can describe.
template <typename Fn>
void in_chunks(int64_t n, Fn fn) {
  for (int64_t offset = 0; offset < n; offset += kChunk) fn(offset, std::min(kChunk, n - offset));
}

// y = op(alpha_a · a, alpha_b · b)
void op_tensor(int device, cudnnOpTensorOp_t op, float alpha_a, const float* a, float alpha_b, const float* b, float* y,
               int64_t n) {
  if (n == 0) return;
  const DeviceContext& ctx = context(device);
  const OpTensorDescriptor desc(op);
  in_chunks(n, [&](int64_t offset, int64_t length) {
    const TensorDescriptor flat = TensorDescriptor::flat(length);
    CHEX_CUDNN_CHECK(cudnnOpTensor(ctx.cudnn, desc.get(), &alpha_a, flat.get(), a + offset, &alpha_b, flat.get(),
                                   b + offset, &kZero, flat.get(), y + offset));
  });
}

}  // namespace

void fill(int device, float* y, int64_t n, float value) {
  if (n == 0) return;
  const DeviceContext& ctx = context(device);
  in_chunks(n, [&](int64_t offset, int64_t length) {
    CHEX_CUDNN_CHECK(cudnnSetTensor(ctx.cudnn, TensorDescriptor::flat(length).get(), y + offset, &value));
  });
}

void add(int device, const float* a, const float* b, float* y, int64_t n) {
  op_tensor(device, CUDNN_OP_TENSOR_ADD, 1.f, a, 1.f, b, y, n);
}
void sub(int device, const float* a, const float* b, float* y, int64_t n) {
  op_tensor(device, CUDNN_OP_TENSOR_ADD, 1.f, a, -1.f, b, y, n);
}
void mul(int device, const float* a, const float* b, float* y, int64_t n) {
  op_tensor(device, CUDNN_OP_TENSOR_MUL, 1.f, a, 1.f, b, y, n);
}

void scale(int device, const float* a, float factor, float* y, int64_t n) {
  if (n == 0) return;
  const DeviceContext& ctx = context(device);
  in_chunks(n, [&](int64_t offset, int64_t length) {
    const TensorDescriptor flat = TensorDescriptor::flat(length);
    CHEX_CUDNN_CHECK(cudnnTransformTensor(ctx.cudnn, &factor, flat.get(), a + offset, &kZero, flat.get(), y + offset));
  });
}

void axpy(int device, float alpha, const float* x, float* y, int64_t n) {
  if (n == 0) return;
  const DeviceContext& ctx = context(device);
  in_chunks(n, [&](int64_t offset, int64_t length) {
    const TensorDescriptor flat = TensorDescriptor::flat(length);
    CHEX_CUDNN_CHECK(cudnnAddTensor(ctx.cudnn, &alpha, flat.get(), x + offset, &kOne, flat.get(), y + offset));
  });
}

void relu_forward(int device, const float* x, float* y, int64_t n) {
  kernels::cuda::relu_forward(x, y, n, context(device).stream);
}
void relu_backward(int device, const float* y, const float* dy, float* dx, int64_t n) {
  kernels::cuda::relu_backward(y, dy, dx, n, context(device).stream);
}

void sigmoid_forward(int device, const float* x, float* y, int64_t n) {
  if (n == 0) return;
  const DeviceContext& ctx = context(device);
  const ActivationDescriptor sigmoid(CUDNN_ACTIVATION_SIGMOID);
  in_chunks(n, [&](int64_t offset, int64_t length) {
    const TensorDescriptor flat = TensorDescriptor::flat(length);
    CHEX_CUDNN_CHECK(
        cudnnActivationForward(ctx.cudnn, sigmoid.get(), &kOne, flat.get(), x + offset, &kZero, flat.get(), y + offset));
  });
}

void sigmoid_backward(int device, const float* y, const float* dy, float* dx, int64_t n) {
  if (n == 0) return;
  const DeviceContext& ctx = context(device);
  const ActivationDescriptor sigmoid(CUDNN_ACTIVATION_SIGMOID);
  in_chunks(n, [&](int64_t offset, int64_t length) {
    const TensorDescriptor flat = TensorDescriptor::flat(length);
    // The sigmoid's gradient needs only y; cuDNN still takes x, so y stands in for it.
    CHEX_CUDNN_CHECK(cudnnActivationBackward(ctx.cudnn, sigmoid.get(), &kOne, flat.get(), y + offset, flat.get(),
                                             dy + offset, flat.get(), y + offset, &kZero, flat.get(), dx + offset));
  });
}

void sum(int device, const float* x, int64_t n, float* result) {
  const DeviceContext& ctx = context(device);
  if (n == 0) {
    CHEX_CUDNN_CHECK(cudnnSetTensor(ctx.cudnn, TensorDescriptor::flat(1).get(), result, &kZero));
    return;
  }
  const ReduceTensorDescriptor reduce(CUDNN_REDUCE_TENSOR_ADD);
  const TensorDescriptor scalar = TensorDescriptor::flat(1);
  bool first = true;
  in_chunks(n, [&](int64_t offset, int64_t length) {
    const TensorDescriptor flat = TensorDescriptor::flat(length);
    size_t bytes = 0;
    CHEX_CUDNN_CHECK(cudnnGetReductionWorkspaceSize(ctx.cudnn, reduce.get(), flat.get(), scalar.get(), &bytes));
    const DeviceBuffer workspace(device, bytes);
    // Later chunks add onto the first one's result.
    const float beta = first ? 0.f : 1.f;
    CHEX_CUDNN_CHECK(cudnnReduceTensor(ctx.cudnn, reduce.get(), nullptr, 0, workspace.get(), workspace.bytes(), &kOne,
                                       flat.get(), x + offset, &beta, scalar.get(), result));
    first = false;
  });
}

void broadcast_scalar(int device, const float* value, float* y, int64_t n) {
  if (n == 0) return;
  const DeviceContext& ctx = context(device);
  const TensorDescriptor scalar = TensorDescriptor::flat(1);
  in_chunks(n, [&](int64_t offset, int64_t length) {
    // beta 0: y is written, not read.
    CHEX_CUDNN_CHECK(
        cudnnAddTensor(ctx.cudnn, &kOne, scalar.get(), value, &kZero, TensorDescriptor::flat(length).get(), y + offset));
  });
}

void mul_by_scalar(int device, const float* a, const float* scalar, float* y, int64_t n) {
  if (n == 0) return;
  const DeviceContext& ctx = context(device);
  const OpTensorDescriptor mul(CUDNN_OP_TENSOR_MUL);
  const TensorDescriptor one_value = TensorDescriptor::flat(1);
  in_chunks(n, [&](int64_t offset, int64_t length) {
    const TensorDescriptor flat = TensorDescriptor::flat(length);
    // B = the scalar, broadcast over A's elements.
    CHEX_CUDNN_CHECK(cudnnOpTensor(ctx.cudnn, mul.get(), &kOne, flat.get(), a + offset, &kOne, one_value.get(), scalar,
                                   &kZero, flat.get(), y + offset));
  });
}

}  // namespace chex::cuda
CHEX_CUDNN_LEGACY_API_END

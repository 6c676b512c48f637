#include "op_utils.h"

#include "backend/backend.h"
#include "chex/precision.h"

namespace chex::ops::detail {

void check_float(const char* op, const char* arg, const Tensor& t) {
  CHEX_CHECK(t.defined(), op, ": ", arg, " is an undefined tensor");
  CHEX_CHECK(t.dtype() == DType::F32, op, ": ", arg, " must be float32, got ", t.str());
}

void check_rank(const char* op, const char* arg, const Tensor& t, int64_t rank) {
  check_float(op, arg, t);
  CHEX_CHECK(t.dim() == rank, op, ": ", arg, " must have ", rank, " dimensions, got shape ", shape_str(t.shape()));
}

Device common_device(const char* op, std::initializer_list<const Tensor*> tensors) {
  const Tensor* first = nullptr;
  for (const Tensor* t : tensors) {
    if (!t->defined()) continue;
    if (!first) first = t;
    CHEX_CHECK(t->device() == first->device(), op, ": tensors on different devices (", first->str(), " and ", t->str(),
               ")");
  }
  CHEX_CHECK(first, op, ": no defined tensor among the arguments");
  return first->device();
}

void check_shape(const char* op, const char* arg, const Tensor& t, const Shape& expected) {
  CHEX_CHECK(t.shape() == expected, op, ": ", arg, " has shape ", shape_str(t.shape()), ", expected ",
             shape_str(expected));
}

Tensor detached_batch_strided(const Tensor& t) {
  const Tensor d = t.detach();
  return d.is_batch_strided() ? d : d.contiguous();
}

int64_t batch_stride(const Tensor& t) {
  CHEX_CHECK(t.dim() >= 1 && t.is_batch_strided(), "batch_stride: expected a batch-strided tensor, got ", t.str(),
             " with strides ", shape_str(t.strides()));
  const int64_t image = t.size(0) > 0 ? t.numel() / t.size(0) : 0;
  // With a single image the dimension-0 stride is arbitrary and never used.
  return t.size(0) > 1 ? t.stride(0) : image;
}

bool bf16_convolution(const char* op, Device device, bool records_graph) {
  if (current_precision() != Precision::bf16) return false;
  const backend::Backend be = backend::backend(device);
  CHEX_CHECK(be.has(&backend::KernelTable::conv2d_forward_bf16), op, ": bf16 convolutions are not available on ",
             device.str(), ": use tf32 or fp32 there");
  CHEX_CHECK(!records_graph || (be.has(&backend::KernelTable::conv2d_backward_data_bf16) &&
                                be.has(&backend::KernelTable::conv2d_backward_weight_bf16)),
             op, ": bf16 convolutions are inference-only on ", device.str(),
             ": run the model under a NoGradGuard, or train in fp32");
  return true;
}

}  // namespace chex::ops::detail

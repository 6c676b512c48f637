// linear: x [N, in] * weight^T + bias through the device's kernels (kernels/linear.h: the CPU
// GEMM, cuBLAS on CUDA).
#include "backend/backend.h"
#include "chex/autograd.h"
#include "chex/ops.h"
#include "op_utils.h"

namespace chex::ops {

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  constexpr const char* op = "linear";
  detail::check_rank(op, "input", x, 2);
  detail::check_rank(op, "weight", weight, 2);
  if (bias.defined()) detail::check_float(op, "bias", bias);
  const Device device = detail::common_device(op, {&x, &weight, &bias});
  const int64_t batch = x.size(0), in = x.size(1), out = weight.size(0);
  CHEX_CHECK(weight.size(1) == in, "linear: input ", shape_str(x.shape()), " has ", in, " features but weight ",
             shape_str(weight.shape()), " expects ", weight.size(1));
  if (bias.defined())
    CHEX_CHECK(bias.dim() == 1 && bias.size(0) == out, "linear: bias ", shape_str(bias.shape()), " must have shape [",
               out, "] for weight ", shape_str(weight.shape()));

  const kernels::LinearShape shape{batch, in, out};
  const Tensor input = x.contiguous().detach();
  const Tensor w = weight.contiguous().detach();
  const Tensor b = bias.defined() ? bias.contiguous() : Tensor();
  Tensor y = Tensor::empty({batch, out}, device);
  backend::backend(device).linear_forward(
      kernels::LinearForwardArgs{shape, input.data(), w.data(), b.defined() ? b.data() : nullptr, y.data()});

  // needs[2] is false when there is no bias (an undefined input wants no gradient).
  auto backward = [input, w, shape](const Tensor& grad, const std::vector<bool>& needs) {
    const Tensor dy = grad.contiguous();
    const Device dev = dy.device();
    const backend::Backend be = backend::backend(dev);
    std::vector<Tensor> grads(3);
    if (needs[0]) {
      grads[0] = Tensor::empty({shape.batch, shape.in}, dev);
      be.linear_backward_data(kernels::LinearBackwardDataArgs{shape, dy.data(), w.data(), grads[0].data()});
    }
    if (needs[1]) grads[1] = Tensor::empty({shape.out, shape.in}, dev);
    if (needs[2]) grads[2] = Tensor::empty({shape.out}, dev);
    if (needs[1] || needs[2]) {
      float* dweight = grads[1].defined() ? grads[1].data() : nullptr;
      float* dbias = grads[2].defined() ? grads[2].data() : nullptr;
      be.linear_backward_weight(kernels::LinearBackwardWeightArgs{shape, input.data(), dy.data(), dweight, dbias});
    }
    return grads;
  };
  return record(op, y, {x, weight, bias}, backward);
}

}  // namespace chex::ops

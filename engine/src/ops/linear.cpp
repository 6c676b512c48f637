// linear: x [N, in] * weight^T + bias through the CPU GEMM (kernels/linear.h) or cuBLAS
// (cuda/linear_cuda.cpp).
#include "chex/autograd.h"
#include "chex/ops.h"
#include "cuda/ops_cuda.h"
#include "kernels/linear.h"
#include "op_utils.h"

namespace chex::ops {
namespace k = chex::kernels::cpu;
namespace gpu = chex::cuda;

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

  const Tensor input = x.contiguous().detach();
  const Tensor w = weight.contiguous().detach();
  const Tensor b = bias.defined() ? bias.contiguous() : Tensor();
  Tensor y = Tensor::empty({batch, out}, x.device());
  const float* b_data = b.defined() ? b.data() : nullptr;
  if (device.is_cpu())
    k::linear_forward(input.data(), w.data(), b_data, y.data(), batch, in, out);
  else
    gpu::linear_forward(device.index, input.data(), w.data(), b_data, y.data(), batch, in, out);

  // needs[2] is false when there is no bias (an undefined input wants no gradient).
  auto backward = [input, w, batch, in, out](const Tensor& grad, const std::vector<bool>& needs) {
    const Tensor dy = grad.contiguous();
    const Device dev = dy.device();
    std::vector<Tensor> grads(3);
    if (needs[0]) {
      grads[0] = Tensor::empty({batch, in}, dev);
      if (dev.is_cpu())
        k::linear_backward_data(dy.data(), w.data(), grads[0].data(), batch, in, out);
      else
        gpu::linear_backward_data(dev.index, dy.data(), w.data(), grads[0].data(), batch, in, out);
    }
    if (needs[1]) grads[1] = Tensor::empty({out, in}, dev);
    if (needs[2]) grads[2] = Tensor::empty({out}, dev);
    if (needs[1] || needs[2]) {
      float* dweight = grads[1].defined() ? grads[1].data() : nullptr;
      float* dbias = grads[2].defined() ? grads[2].data() : nullptr;
      if (dev.is_cpu())
        k::linear_backward_weight(input.data(), dy.data(), dweight, dbias, batch, in, out);
      else
        gpu::linear_backward_weight(dev.index, input.data(), dy.data(), dweight, dbias, batch, in, out);
    }
    return grads;
  };
  return record(op, y, {x, weight, bias}, backward);
}

}  // namespace chex::ops

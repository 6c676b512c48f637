// bce_with_logits: the weighted multi-label loss of CheXNet.
#include "chex/autograd.h"
#include "chex/ops.h"
#include "cuda/ops_cuda.h"
#include "kernels/bce.h"
#include "op_utils.h"

namespace chex::ops {
namespace k = chex::kernels::cpu;
namespace gpu = chex::cuda;

namespace {

// On CUDA the loss and its gradient come from one pass; the backward only scales the gradient by
// the incoming one, on the device.
Tensor bce_with_logits_cuda(const Tensor& logits, const Tensor& x, const Tensor& y, const float* w_pos,
                            const float* w_neg) {
  const Device device = x.device();
  Tensor out = Tensor::empty({}, device);
  const Tensor dlogits = any_requires_grad({logits}) ? Tensor::empty(x.shape(), device) : Tensor();
  gpu::bce_with_logits(device.index, x.data(), y.data(), w_pos, w_neg, x.size(0), x.size(1), out.data(),
                       dlogits.defined() ? dlogits.data() : nullptr);
  return record("bce_with_logits", out, {logits}, [dlogits](const Tensor& g, const std::vector<bool>&) {
    const Tensor scale = g.contiguous();
    Tensor dx = Tensor::empty(dlogits.shape(), dlogits.device());
    gpu::mul_by_scalar(dx.device().index, dlogits.data(), scale.data(), dx.data(), dx.numel());
    return std::vector<Tensor>{dx};
  });
}

}  // namespace

Tensor bce_with_logits(const Tensor& logits, const Tensor& targets, const Tensor& pos_weight,
                       const Tensor& neg_weight) {
  constexpr const char* op = "bce_with_logits";
  detail::check_rank(op, "logits", logits, 2);
  detail::check_float(op, "targets", targets);
  CHEX_CHECK(targets.shape() == logits.shape(), op, ": targets have shape ", shape_str(targets.shape()),
             " but the logits ", shape_str(logits.shape()));
  const int64_t batch = logits.size(0);
  const int64_t classes = logits.size(1);
  CHEX_CHECK(batch * classes > 0, op, ": the logits ", shape_str(logits.shape()), " are empty");
  auto check_class_weight = [&](const char* arg, const Tensor& w) {
    if (!w.defined()) return;
    detail::check_float(op, arg, w);
    CHEX_CHECK(w.shape() == Shape{classes}, op, ": ", arg, " has shape ", shape_str(w.shape()), " but the logits ",
               shape_str(logits.shape()), " have ", classes, " classes");
  };
  check_class_weight("pos_weight", pos_weight);
  check_class_weight("neg_weight", neg_weight);
  const Device device = detail::common_device(op, {&logits, &targets, &pos_weight, &neg_weight});

  const Tensor x = logits.detach().contiguous();
  const Tensor y = targets.detach().contiguous();
  const Tensor w_pos = pos_weight.defined() ? pos_weight.detach().contiguous() : Tensor();
  const Tensor w_neg = neg_weight.defined() ? neg_weight.detach().contiguous() : Tensor();
  auto data_or_null = [](const Tensor& t) -> const float* { return t.defined() ? t.data() : nullptr; };
  if (device.is_cuda()) return bce_with_logits_cuda(logits, x, y, data_or_null(w_pos), data_or_null(w_neg));
  const double loss = k::bce_with_logits_forward(x.data(), y.data(), data_or_null(w_pos), data_or_null(w_neg), batch,
                                                 classes);
  Tensor out = Tensor::full({}, static_cast<float>(loss), logits.device());

  // Only the logits get a gradient: targets and class weights are data.
  return record(op, out, {logits}, [x, y, w_pos, w_neg, data_or_null](const Tensor& g, const std::vector<bool>&) {
    Tensor dx = Tensor::empty(x.shape(), x.device());
    k::bce_with_logits_backward(x.data(), y.data(), data_or_null(w_pos), data_or_null(w_neg), x.size(0), x.size(1),
                                g.item(), dx.data());
    return std::vector<Tensor>{dx};
  });
}

}  // namespace chex::ops

// bce_with_logits: the weighted multi-label loss of CheXNet.
#include "chex/autograd.h"
#include "chex/ops.h"
#include "backend/backend.h"
#include "kernels/bce.h"
#include "op_utils.h"

namespace chex::ops {

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
  const kernels::BceWithLogitsArgs args{.batch = batch,
                                        .classes = classes,
                                        .logits = x.data(),
                                        .targets = y.data(),
                                        .pos_weight = detail::data_or_null(w_pos),
                                        .neg_weight = detail::data_or_null(w_neg)};
  Tensor out = Tensor::empty({}, device);
  const backend::Backend be = backend::backend(device);
  const backend::Workspace workspace = be.workspace(be.bce_with_logits_workspace_bytes(batch, classes));
  kernels::BceWithLogitsArgs forward = args;
  forward.loss = out.data();
  forward.workspace = workspace.get();
  be.bce_with_logits(forward);

  // Only the logits get a gradient: targets and class weights are data. The incoming gradient is
  // read by the kernel where it lies (no host read).
  return record(op, out, {logits}, [args, x, y, w_pos, w_neg](const Tensor& g, const std::vector<bool>&) {
    const Tensor grad_output = g.contiguous();
    Tensor dx = Tensor::empty(x.shape(), x.device());
    kernels::BceWithLogitsArgs backward = args;
    backward.grad_output = grad_output.data();
    backward.dlogits = dx.data();
    backend::backend(dx.device()).bce_with_logits(backward);
    return std::vector<Tensor>{dx};
  });
}

}  // namespace chex::ops

// Elementwise ops and reductions: add, sub, mul, scale, relu, sigmoid, sum, mean.
#include "chex/autograd.h"
#include "chex/ops.h"
#include "accumulate.h"
#include "kernels/elementwise.h"
#include "op_utils.h"

namespace chex::ops {
namespace k = chex::kernels::cpu;
using detail::check_float;

namespace {

// a and b: float32, same shape, same device (the CPU for now). Returns contiguous copies/views.
void check_binary(const char* op, const Tensor& a, const Tensor& b) {
  check_float(op, "a", a);
  check_float(op, "b", b);
  CHEX_CHECK(a.shape() == b.shape(), op, ": shapes differ: ", shape_str(a.shape()), " and ", shape_str(b.shape()));
  detail::require_cpu(op, detail::common_device(op, {&a, &b}));
}

}  // namespace

namespace detail {
void add_into(const Tensor& dst, const Tensor& src) {
  CHEX_CHECK(dst.shape() == src.shape(), "add_into: shapes differ: ", shape_str(dst.shape()), " and ",
             shape_str(src.shape()));
  require_cpu("add_into", dst.device());
  CHEX_CHECK(dst.is_contiguous(), "add_into: the destination must be contiguous, got ", dst.str());
  const Tensor s = src.contiguous();
  k::axpy(1.f, s.data(), dst.data(), dst.numel());
}
}  // namespace detail

Tensor add(const Tensor& a, const Tensor& b) {
  check_binary("add", a, b);
  const Tensor ac = a.contiguous(), bc = b.contiguous();
  Tensor y = Tensor::empty(a.shape(), a.device());
  k::add(ac.data(), bc.data(), y.data(), y.numel());
  return record("add", y, {a, b}, [](const Tensor& g, const std::vector<bool>&) { return std::vector<Tensor>{g, g}; });
}

Tensor sub(const Tensor& a, const Tensor& b) {
  check_binary("sub", a, b);
  const Tensor ac = a.contiguous(), bc = b.contiguous();
  Tensor y = Tensor::empty(a.shape(), a.device());
  k::sub(ac.data(), bc.data(), y.data(), y.numel());
  return record("sub", y, {a, b}, [](const Tensor& g, const std::vector<bool>& needs) {
    return std::vector<Tensor>{g, needs[1] ? scale(g, -1.f) : Tensor()};
  });
}

Tensor mul(const Tensor& a, const Tensor& b) {
  check_binary("mul", a, b);
  const Tensor ac = a.contiguous().detach(), bc = b.contiguous().detach();
  Tensor y = Tensor::empty(a.shape(), a.device());
  k::mul(ac.data(), bc.data(), y.data(), y.numel());
  return record("mul", y, {a, b}, [ac, bc](const Tensor& g, const std::vector<bool>& needs) {
    return std::vector<Tensor>{needs[0] ? mul(g, bc) : Tensor(), needs[1] ? mul(g, ac) : Tensor()};
  });
}

Tensor scale(const Tensor& a, float factor) {
  check_float("scale", "a", a);
  detail::require_cpu("scale", a.device());
  const Tensor ac = a.contiguous();
  Tensor y = Tensor::empty(a.shape(), a.device());
  k::scale(ac.data(), factor, y.data(), y.numel());
  return record("scale", y, {a}, [factor](const Tensor& g, const std::vector<bool>&) {
    return std::vector<Tensor>{scale(g, factor)};
  });
}

Tensor relu(const Tensor& x) {
  check_float("relu", "x", x);
  detail::require_cpu("relu", x.device());
  const Tensor xc = x.contiguous();
  Tensor y = Tensor::empty(x.shape(), x.device());
  k::relu_forward(xc.data(), y.data(), y.numel());
  // The output (not the input) is saved: it is all the backward needs.
  const Tensor saved = y.detach();
  return record("relu", y, {x}, [saved](const Tensor& g, const std::vector<bool>&) {
    const Tensor gc = g.contiguous();
    Tensor dx = Tensor::empty(saved.shape(), saved.device());
    k::relu_backward(saved.data(), gc.data(), dx.data(), dx.numel());
    return std::vector<Tensor>{dx};
  });
}

Tensor sigmoid(const Tensor& x) {
  check_float("sigmoid", "x", x);
  detail::require_cpu("sigmoid", x.device());
  const Tensor xc = x.contiguous();
  Tensor y = Tensor::empty(x.shape(), x.device());
  k::sigmoid_forward(xc.data(), y.data(), y.numel());
  const Tensor saved = y.detach();
  return record("sigmoid", y, {x}, [saved](const Tensor& g, const std::vector<bool>&) {
    const Tensor gc = g.contiguous();
    Tensor dx = Tensor::empty(saved.shape(), saved.device());
    k::sigmoid_backward(saved.data(), gc.data(), dx.data(), dx.numel());
    return std::vector<Tensor>{dx};
  });
}

Tensor sum(const Tensor& a) {
  check_float("sum", "a", a);
  detail::require_cpu("sum", a.device());
  const Tensor ac = a.contiguous();
  Tensor y = Tensor::full({}, static_cast<float>(k::sum(ac.data(), ac.numel())), a.device());
  const Shape shape = a.shape();
  return record("sum", y, {a}, [shape](const Tensor& g, const std::vector<bool>&) {
    return std::vector<Tensor>{Tensor::full(shape, g.item(), g.device())};
  });
}

Tensor mean(const Tensor& a) {
  check_float("mean", "a", a);
  CHEX_CHECK(a.numel() > 0, "mean: the tensor is empty, shape ", shape_str(a.shape()));
  return scale(sum(a), 1.f / static_cast<float>(a.numel()));
}

}  // namespace chex::ops

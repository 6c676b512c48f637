// Elementwise ops and reductions: add, sub, mul, scale, relu, sigmoid, sum, mean, through the
// device's kernels (kernels/elementwise.h).
#include "chex/autograd.h"
#include "chex/ops.h"
#include "accumulate.h"
#include "backend/backend.h"
#include "kernels/elementwise.h"
#include "op_utils.h"

namespace chex::ops {
using detail::check_float;

namespace {

// a and b: float32, same shape, same device.
void check_binary(const char* op, const Tensor& a, const Tensor& b) {
  check_float(op, "a", a);
  check_float(op, "b", b);
  CHEX_CHECK(a.shape() == b.shape(), op, ": shapes differ: ", shape_str(a.shape()), " and ", shape_str(b.shape()));
  detail::common_device(op, {&a, &b});
}

// y = f(a, b) elementwise on contiguous inputs, f a member of the tensors' backend.
template <typename Kernel>
Tensor binary(const Tensor& ac, const Tensor& bc, Kernel backend::KernelTable::*kernel) {
  Tensor y = Tensor::empty(ac.shape(), ac.device());
  backend::backend(y.device()).call(kernel, ac.data(), bc.data(), y.data(), y.numel());
  return y;
}

// y = f(x), the same way.
template <typename Kernel>
Tensor unary(const Tensor& xc, Kernel backend::KernelTable::*kernel) {
  Tensor y = Tensor::empty(xc.shape(), xc.device());
  backend::backend(y.device()).call(kernel, xc.data(), y.data(), y.numel());
  return y;
}

}  // namespace

namespace detail {
void add_into(const Tensor& dst, const Tensor& src) {
  CHEX_CHECK(dst.shape() == src.shape(), "add_into: shapes differ: ", shape_str(dst.shape()), " and ",
             shape_str(src.shape()));
  common_device("add_into", {&dst, &src});
  CHEX_CHECK(dst.is_contiguous(), "add_into: the destination must be contiguous, got ", dst.str());
  const Tensor s = src.contiguous();
  backend::backend(dst.device()).axpy(1.f, s.data(), dst.data(), dst.numel());
}
}  // namespace detail

void add_scalar_(const Tensor& t, float value) {
  check_float("add_scalar_", "t", t);
  CHEX_CHECK(t.is_contiguous(), "add_scalar_: the tensor must be contiguous, got ", t.str());
  backend::backend(t.device()).add_scalar(t.data(), t.numel(), value);
}

Tensor add(const Tensor& a, const Tensor& b) {
  check_binary("add", a, b);
  Tensor y = binary(a.contiguous(), b.contiguous(), &backend::KernelTable::add);
  return record("add", y, {a, b}, [](const Tensor& g, const std::vector<bool>&) { return std::vector<Tensor>{g, g}; });
}

Tensor sub(const Tensor& a, const Tensor& b) {
  check_binary("sub", a, b);
  Tensor y = binary(a.contiguous(), b.contiguous(), &backend::KernelTable::sub);
  return record("sub", y, {a, b}, [](const Tensor& g, const std::vector<bool>& needs) {
    return std::vector<Tensor>{g, needs[1] ? scale(g, -1.f) : Tensor()};
  });
}

Tensor mul(const Tensor& a, const Tensor& b) {
  check_binary("mul", a, b);
  const Tensor ac = a.contiguous().detach(), bc = b.contiguous().detach();
  Tensor y = binary(ac, bc, &backend::KernelTable::mul);
  return record("mul", y, {a, b}, [ac, bc](const Tensor& g, const std::vector<bool>& needs) {
    return std::vector<Tensor>{needs[0] ? mul(g, bc) : Tensor(), needs[1] ? mul(g, ac) : Tensor()};
  });
}

Tensor scale(const Tensor& a, float factor) {
  check_float("scale", "a", a);
  const Tensor ac = a.contiguous();
  Tensor y = Tensor::empty(a.shape(), a.device());
  backend::backend(y.device()).scale(ac.data(), factor, y.data(), y.numel());
  return record("scale", y, {a}, [factor](const Tensor& g, const std::vector<bool>&) {
    return std::vector<Tensor>{scale(g, factor)};
  });
}

Tensor relu(const Tensor& x) {
  check_float("relu", "x", x);
  Tensor y = unary(x.contiguous(), &backend::KernelTable::relu_forward);
  // The output (not the input) is saved: it is all the backward needs.
  const Tensor saved = y.detach();
  return record("relu", y, {x}, [saved](const Tensor& g, const std::vector<bool>&) {
    return std::vector<Tensor>{binary(saved, g.contiguous(), &backend::KernelTable::relu_backward)};
  });
}

Tensor sigmoid(const Tensor& x) {
  check_float("sigmoid", "x", x);
  Tensor y = unary(x.contiguous(), &backend::KernelTable::sigmoid_forward);
  const Tensor saved = y.detach();
  return record("sigmoid", y, {x}, [saved](const Tensor& g, const std::vector<bool>&) {
    return std::vector<Tensor>{binary(saved, g.contiguous(), &backend::KernelTable::sigmoid_backward)};
  });
}

Tensor sum(const Tensor& a) {
  check_float("sum", "a", a);
  const Tensor ac = a.contiguous();
  const backend::Backend be = backend::backend(a.device());
  Tensor y = Tensor::empty({}, a.device());  // written by the kernel: no host synchronisation
  {
    const backend::Workspace workspace = be.workspace(be.sum_workspace_bytes(ac.numel()));
    be.sum(kernels::SumArgs{ac.data(), ac.numel(), y.data(), workspace.get()});
  }
  const Shape shape = a.shape();
  return record("sum", y, {a}, [shape](const Tensor& g, const std::vector<bool>&) {
    Tensor dx = Tensor::empty(shape, g.device());
    const Tensor gc = g.contiguous();
    backend::backend(g.device()).broadcast_scalar(gc.data(), dx.data(), dx.numel());
    return std::vector<Tensor>{dx};
  });
}

Tensor mean(const Tensor& a) {
  check_float("mean", "a", a);
  CHEX_CHECK(a.numel() > 0, "mean: the tensor is empty, shape ", shape_str(a.shape()));
  return scale(sum(a), 1.f / static_cast<float>(a.numel()));
}

}  // namespace chex::ops

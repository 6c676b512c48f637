// Pooling: max_pool2d, avg_pool2d and global_avg_pool over NCHW tensors, on the CPU kernels or
// their CUDA counterparts (cuda/pooling_cuda.cpp).
#include "chex/autograd.h"
#include "chex/ops.h"
#include "backend/backend.h"
#include "kernels/pooling.h"
#include "op_utils.h"

namespace chex::ops {

namespace {

// Checks a pooling's arguments and returns its geometry.
kernels::Pool2dGeometry pool_geometry(const char* op, const Tensor& x, int64_t kernel, int64_t stride, int64_t padding) {
  detail::check_rank(op, "x", x, 4);
  CHEX_CHECK(kernel >= 1 && stride >= 1 && padding >= 0, op, ": kernel (", kernel, ") and stride (", stride,
             ") must be positive and padding (", padding, ") non-negative");
  CHEX_CHECK(2 * padding <= kernel, op, ": padding ", padding, " is more than half the kernel size ", kernel);
  kernels::Pool2dGeometry g;
  g.batch = x.size(0);
  g.channels = x.size(1);
  g.height = x.size(2);
  g.width = x.size(3);
  g.kernel = kernel;
  g.stride = stride;
  g.padding = padding;
  CHEX_CHECK(g.height + 2 * padding >= kernel && g.width + 2 * padding >= kernel, op, ": the ", kernel, "x", kernel,
             " window is larger than the input ", shape_str(x.shape()), " padded by ", padding);
  g.out_height = kernels::pool_output_size(g.height, kernel, stride, padding);
  g.out_width = kernels::pool_output_size(g.width, kernel, stride, padding);
  return g;
}

}  // namespace

Tensor max_pool2d(const Tensor& x, int64_t kernel, int64_t stride, int64_t padding) {
  const kernels::Pool2dGeometry g = pool_geometry("max_pool2d", x, kernel, stride, padding);
  const Tensor input = detail::detached_batch_strided(x);
  Tensor y = Tensor::empty({g.batch, g.channels, g.out_height, g.out_width}, x.device());
  backend::backend(x.device()).max_pool2d_forward(input.data(), detail::batch_stride(input), y.data(), g);
  // The maxima are found again in the saved input, so no indices are kept.
  return record("max_pool2d", y, {x}, [input, g](const Tensor& grad, const std::vector<bool>&) {
    const Tensor dy = grad.contiguous();
    Tensor dx = Tensor::empty(input.shape(), input.device());
    backend::backend(input.device())
        .max_pool2d_backward(input.data(), detail::batch_stride(input), dy.data(), dx.data(), g);
    return std::vector<Tensor>{dx};
  });
}

Tensor avg_pool2d(const Tensor& x, int64_t kernel, int64_t stride) {
  const kernels::Pool2dGeometry g = pool_geometry("avg_pool2d", x, kernel, stride, 0);
  const Tensor input = detail::detached_batch_strided(x);
  Tensor y = Tensor::empty({g.batch, g.channels, g.out_height, g.out_width}, x.device());
  const Device device = x.device();
  backend::backend(device).avg_pool2d_forward(input.data(), detail::batch_stride(input), y.data(), g);
  const Shape input_shape = x.shape();
  return record("avg_pool2d", y, {x}, [input_shape, device, g](const Tensor& grad, const std::vector<bool>&) {
    const Tensor dy = grad.contiguous();
    Tensor dx = Tensor::empty(input_shape, device);
    backend::backend(device).avg_pool2d_backward(dy.data(), dx.data(), g);
    return std::vector<Tensor>{dx};
  });
}

Tensor global_avg_pool(const Tensor& x) {
  constexpr const char* op = "global_avg_pool";
  detail::check_rank(op, "x", x, 4);
  const int64_t batch = x.size(0), channels = x.size(1), spatial = x.size(2) * x.size(3);
  CHEX_CHECK(spatial > 0, op, ": the input ", shape_str(x.shape()), " has empty planes");
  const Tensor input = detail::detached_batch_strided(x);
  Tensor y = Tensor::empty({batch, channels}, x.device());
  const Device device = x.device();
  backend::backend(device).global_avg_pool_forward(input.data(), detail::batch_stride(input), y.data(), batch,
                                                   channels, spatial);
  const Shape input_shape = x.shape();
  return record(op, y, {x}, [input_shape, device](const Tensor& grad, const std::vector<bool>&) {
    const Tensor dy = grad.contiguous();
    Tensor dx = Tensor::empty(input_shape, device);
    const int64_t n = input_shape[0], c = input_shape[1], hw = input_shape[2] * input_shape[3];
    backend::backend(device).global_avg_pool_backward(dy.data(), dx.data(), n, c, hw);
    return std::vector<Tensor>{dx};
  });
}

}  // namespace chex::ops

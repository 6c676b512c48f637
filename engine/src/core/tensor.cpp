#include "chex/tensor.h"

#include <cstring>
#include <sstream>

#include "chex/autograd.h"
#include "chex/error.h"
#include "chex/random.h"
#include "backend/backend.h"
#include "capture_audit.h"
#include "host_read.h"
#include "strided_copy.h"

namespace chex {
namespace {

// A device tensor's bytes copied into a fresh contiguous host tensor, uncounted: the public entry
// points count the read once.
Tensor copy_to_host(const Tensor& t) {
  const Tensor source = t.contiguous();
  Tensor out = Tensor::empty(t.shape(), Device::cpu(), t.dtype());
  const size_t bytes = static_cast<size_t>(t.numel()) * dtype_size(t.dtype());
  backend::runtime(t.device()).copy_device_to_host(out.raw_data(), source.raw_data(), bytes, t.device().index);
  return out;
}

std::shared_ptr<TensorImpl> make_impl(std::shared_ptr<Storage> storage, int64_t offset, Shape shape, Shape strides,
                                      DType dtype) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::move(storage);
  impl->offset = offset;
  impl->shape = std::move(shape);
  impl->strides = std::move(strides);
  impl->dtype = dtype;
  return impl;
}

void check_shape(const Shape& shape, const char* what) {
  for (int64_t s : shape) CHEX_CHECK(s >= 0, what, ": negative size in shape ", shape_str(shape));
}

TensorImpl& checked(const std::shared_ptr<TensorImpl>& impl) {
  CHEX_CHECK(impl, "use of an undefined tensor");
  return *impl;
}

}  // namespace

// --- Creation ----------------------------------------------------------------------------------

Tensor Tensor::empty(const Shape& shape, Device device, DType dtype) {
  check_shape(shape, "Tensor::empty");
  require_device(device);
  auto storage = std::make_shared<Storage>(static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype), device);
  return Tensor(make_impl(std::move(storage), 0, shape, contiguous_strides(shape), dtype));
}

Tensor Tensor::zeros(const Shape& shape, Device device) { return full(shape, 0.f, device); }
Tensor Tensor::ones(const Shape& shape, Device device) { return full(shape, 1.f, device); }

Tensor Tensor::full(const Shape& shape, float value, Device device) {
  Tensor t = empty(shape, device);
  t.fill_(value);
  return t;
}

Tensor Tensor::from_vector(const std::vector<float>& values, const Shape& shape, Device device) {
  CHEX_CHECK(static_cast<int64_t>(values.size()) == shape_numel(shape), "Tensor::from_vector: ", values.size(),
             " values do not fill shape ", shape_str(shape));
  Tensor host = empty(shape);
  if (!values.empty()) std::memcpy(host.data(), values.data(), values.size() * sizeof(float));
  return device.is_cpu() ? host : host.to(device);
}

Tensor Tensor::randn(const Shape& shape, Generator& gen, float mean, float stddev, Device device) {
  Tensor host = empty(shape);
  float* p = host.data();
  for (int64_t i = 0; i < host.numel(); ++i) p[i] = mean + stddev * gen.normal();
  return device.is_cpu() ? host : host.to(device);
}

Tensor Tensor::uniform(const Shape& shape, Generator& gen, float low, float high, Device device) {
  Tensor host = empty(shape);
  float* p = host.data();
  for (int64_t i = 0; i < host.numel(); ++i) p[i] = low + (high - low) * gen.uniform();
  return device.is_cpu() ? host : host.to(device);
}

Tensor Tensor::view_of(std::shared_ptr<Storage> storage, int64_t offset, const Shape& shape, const Shape& strides,
                       DType dtype) {
  CHEX_CHECK(storage, "Tensor::view_of: null storage");
  CHEX_CHECK(shape.size() == strides.size(), "Tensor::view_of: shape ", shape_str(shape), " and strides ",
             shape_str(strides), " differ in rank");
  check_shape(shape, "Tensor::view_of");
  // The furthest element reached must lie inside the storage.
  int64_t last = offset;
  bool empty = false;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == 0) empty = true;
    CHEX_CHECK(strides[i] >= 0, "Tensor::view_of: negative stride");
    last += (shape[i] - 1) * strides[i];
  }
  CHEX_CHECK(offset >= 0 && (empty || static_cast<size_t>(last + 1) * dtype_size(dtype) <= storage->bytes()),
             "Tensor::view_of: shape ", shape_str(shape), " with strides ", shape_str(strides), " at offset ",
             offset, " runs past the storage's ", storage->bytes(), " bytes");
  return Tensor(make_impl(std::move(storage), offset, shape, strides, dtype));
}

// --- Metadata ----------------------------------------------------------------------------------

const Shape& Tensor::shape() const { return checked(impl_).shape; }
const Shape& Tensor::strides() const { return checked(impl_).strides; }
int64_t Tensor::numel() const { return shape_numel(shape()); }
int64_t Tensor::offset() const { return checked(impl_).offset; }
DType Tensor::dtype() const { return checked(impl_).dtype; }
Device Tensor::device() const { return checked(impl_).storage->device(); }
const std::shared_ptr<Storage>& Tensor::storage() const { return checked(impl_).storage; }

int64_t Tensor::size(int64_t d) const {
  const int64_t n = dim();
  CHEX_CHECK(d >= -n && d < n, "dimension ", d, " out of range for a tensor of shape ", shape_str(shape()));
  return shape()[d < 0 ? d + n : d];
}

int64_t Tensor::stride(int64_t d) const {
  const int64_t n = dim();
  CHEX_CHECK(d >= -n && d < n, "dimension ", d, " out of range for a tensor of shape ", shape_str(shape()));
  return strides()[d < 0 ? d + n : d];
}

bool Tensor::is_contiguous() const {
  const Shape& s = shape();
  const Shape& st = strides();
  int64_t expected = 1;
  for (size_t i = s.size(); i-- > 0;) {
    if (s[i] != 1 && st[i] != expected) return false;
    expected *= s[i];
  }
  return true;
}

bool Tensor::is_batch_strided() const {
  const Shape& s = shape();
  const Shape& st = strides();
  if (s.empty()) return true;
  int64_t expected = 1;
  for (size_t i = s.size(); i-- > 1;) {
    if (s[i] != 1 && st[i] != expected) return false;
    expected *= s[i];
  }
  return s[0] <= 1 || st[0] >= expected;
}

std::string Tensor::str() const {
  if (!defined()) return "Tensor(undefined)";
  std::ostringstream out;
  out << "Tensor" << shape_str(shape()) << ' ' << dtype_name(dtype()) << ' ' << device().str();
  return out.str();
}

void* Tensor::raw_data() const {
  const TensorImpl& t = checked(impl_);
  auto* base = static_cast<char*>(t.storage->data());
  return base ? base + t.offset * static_cast<int64_t>(dtype_size(t.dtype)) : nullptr;
}

float* Tensor::data() const {
  CHEX_CHECK(dtype() == DType::F32, "expected a float32 tensor, got ", str());
  return static_cast<float*>(raw_data());
}

// --- Views and copies --------------------------------------------------------------------------

Tensor Tensor::contiguous() const {
  if (is_contiguous()) return *this;
  return clone();
}

Tensor Tensor::clone() const {
  Tensor out = empty(shape(), device(), dtype());
  out.copy_(*this);
  return record("clone", out, {*this}, [](const Tensor& g, const std::vector<bool>&) { return std::vector<Tensor>{g}; });
}

Tensor Tensor::reshape(const Shape& new_shape) const {
  Shape target = new_shape;
  int64_t known = 1;
  int infer = -1;
  for (size_t i = 0; i < target.size(); ++i) {
    if (target[i] == -1) {
      CHEX_CHECK(infer < 0, "reshape: more than one -1 in ", shape_str(new_shape));
      infer = static_cast<int>(i);
    } else {
      CHEX_CHECK(target[i] >= 0, "reshape: invalid shape ", shape_str(new_shape));
      known *= target[i];
    }
  }
  if (infer >= 0) {
    CHEX_CHECK(known > 0 && numel() % known == 0, "reshape: cannot reshape ", shape_str(shape()), " to ",
               shape_str(new_shape));
    target[infer] = numel() / known;
  }
  CHEX_CHECK(shape_numel(target) == numel(), "reshape: cannot reshape ", shape_str(shape()), " (", numel(),
             " elements) to ", shape_str(new_shape));
  const Tensor source = contiguous();
  Tensor view(make_impl(source.storage(), source.offset(), target, contiguous_strides(target), dtype()));
  const Shape original = shape();
  return record("reshape", view, {source}, [original](const Tensor& g, const std::vector<bool>&) {
    return std::vector<Tensor>{g.reshape(original)};
  });
}

Tensor Tensor::flatten(int64_t start_dim) const {
  CHEX_CHECK(start_dim >= 0 && start_dim < std::max<int64_t>(dim(), 1), "flatten: start_dim ", start_dim,
             " out of range for shape ", shape_str(shape()));
  Shape target(shape().begin(), shape().begin() + start_dim);
  target.push_back(-1);
  return reshape(target);
}

Tensor Tensor::narrow(int64_t d, int64_t start, int64_t length) const {
  const int64_t n = dim();
  CHEX_CHECK(d >= 0 && d < n, "narrow: dimension ", d, " out of range for shape ", shape_str(shape()));
  CHEX_CHECK(start >= 0 && length >= 0 && start + length <= shape()[d], "narrow: [", start, ", ", start + length,
             ") is outside dimension ", d, " of shape ", shape_str(shape()));
  Shape s = shape();
  s[d] = length;
  Tensor view(make_impl(storage(), offset() + start * strides()[d], s, strides(), dtype()));
  const Shape original = shape();
  return record("narrow", view, {*this}, [original, d, start, length](const Tensor& g, const std::vector<bool>&) {
    Tensor full = Tensor::zeros(original, g.device());
    full.narrow(d, start, length).copy_(g);
    return std::vector<Tensor>{full};
  });
}

bool Tensor::is_sole_owner() const {
  return impl_ && impl_.use_count() == 1 && impl_->storage && impl_->storage.use_count() == 1 && impl_->offset == 0 &&
         is_contiguous() && impl_->storage->bytes() == static_cast<size_t>(numel()) * dtype_size(impl_->dtype);
}

Tensor Tensor::detach() const {
  const TensorImpl& t = checked(impl_);
  return Tensor(make_impl(t.storage, t.offset, t.shape, t.strides, t.dtype));
}

Tensor Tensor::to(Device target) const {
  if (target == device()) return *this;
  require_device(target);
  const Device origin_device = device();
  Tensor out;
  if (target.is_cpu()) {
    detail::count_host_read();
    out = copy_to_host(*this);
  } else {
    const Tensor source = contiguous();
    out = empty(shape(), target, dtype());
    const size_t bytes = static_cast<size_t>(numel()) * dtype_size(dtype());
    if (origin_device.is_cpu()) {
      detail::audit_host_upload(target);
      backend::runtime(target).copy_host_to_device(out.raw_data(), source.raw_data(), bytes, target.index);
    }
    else
      backend::runtime(target).copy_between_devices(out.raw_data(), target.index, source.raw_data(),
                                                     origin_device.index, bytes);
  }
  const Device origin = device();
  return record("to_device", out, {*this}, [origin](const Tensor& g, const std::vector<bool>&) {
    return std::vector<Tensor>{g.to(origin)};
  });
}

Tensor Tensor::to(DType target) const {
  if (target == dtype()) return *this;
  const bool f32_bf16 = (dtype() == DType::F32 && target == DType::BF16) ||
                        (dtype() == DType::BF16 && target == DType::F32);
  CHEX_CHECK(f32_bf16 || device().is_cpu(), "conversion between ", dtype_name(dtype()), " and ", dtype_name(target),
             " is implemented on the CPU only; move ", str(), " to the CPU first");
  if (dtype() != DType::F32 && target != DType::F32) return to(DType::F32).to(target);  // F16 <-> BF16
  const Tensor source = contiguous();
  Tensor out = empty(shape(), device(), target);
  const int64_t n = numel();
  // float32 <-> bfloat16 on any device: the backend's cast kernels (kernels/cast.h).
  if (dtype() == DType::F32 && target == DType::BF16) {
    backend::backend(device()).cast_float_to_bf16(source.data(), static_cast<kernels::BFloat16*>(out.raw_data()), n);
  } else if (dtype() == DType::BF16 && target == DType::F32) {
    backend::backend(device()).cast_bf16_to_float(static_cast<const kernels::BFloat16*>(source.raw_data()), out.data(),
                                                  n);
  } else if (dtype() == DType::F16) {  // -> F32
    const auto* in = static_cast<const uint16_t*>(source.raw_data());
    float* o = out.data();
    for (int64_t i = 0; i < n; ++i) o[i] = half_to_float(in[i]);
  } else {  // F32 -> F16
    const float* in = source.data();
    auto* o = static_cast<uint16_t*>(out.raw_data());
    for (int64_t i = 0; i < n; ++i) o[i] = float_to_half(in[i]);
  }
  return out;
}

void Tensor::fill_(float value) const {
  CHEX_CHECK(dtype() == DType::F32, "fill_: expected a float32 tensor, got ", str());
  if (device().is_cpu()) {
    detail::strided_fill(data(), shape(), strides(), value);
    return;
  }
  backend::runtime(device()).strided_fill(data(), shape(), strides(), value, device().index);
}

void Tensor::copy_(const Tensor& src) const {
  CHEX_CHECK(src.shape() == shape(), "copy_: source shape ", shape_str(src.shape()), " differs from destination ",
             shape_str(shape()));
  CHEX_CHECK(src.dtype() == dtype(), "copy_: source dtype ", dtype_name(src.dtype()), " differs from destination ",
             dtype_name(dtype()), " (use to(dtype) to convert)");
  if (device().is_cpu() && src.device().is_cpu()) {
    detail::strided_copy(static_cast<char*>(raw_data()), strides(), static_cast<const char*>(src.raw_data()),
                         src.strides(), shape(), dtype_size(dtype()));
    return;
  }
  if (device() == src.device()) {  // on one GPU: stream-ordered, batch-strided copies as one 2-D copy
    backend::runtime(device()).strided_copy(raw_data(), strides(), src.raw_data(), src.strides(), shape(),
                                            dtype_size(dtype()), device().index);
    return;
  }
  // Between devices the bytes travel packed: stage through contiguous tensors where needed.
  const Tensor source = src.detach().contiguous();
  if (!is_contiguous()) {
    copy_(source.to(device()));
    return;
  }
  const size_t bytes = static_cast<size_t>(numel()) * dtype_size(dtype());
  if (source.device().is_cpu())  // stream-ordered from a pinned copy: the host does not wait for the device
    backend::copy_from_host(device(), raw_data(), source.raw_data(), bytes);
  else if (device().is_cpu()) {
    detail::count_host_read();  // a device tensor's values into host memory
    backend::runtime(source.device()).copy_device_to_host(raw_data(), source.raw_data(), bytes, source.device().index);
  } else
    backend::runtime(device()).copy_between_devices(raw_data(), device().index, source.raw_data(),
                                                    source.device().index, bytes);
}

std::vector<float> Tensor::to_vector() const {
  detail::count_host_read();
  const Tensor host = device().is_cpu() ? contiguous() : copy_to_host(*this);
  const Tensor f32 = host.to(DType::F32);
  const float* p = f32.data();
  return std::vector<float>(p, p + f32.numel());
}

float Tensor::item() const {
  CHEX_CHECK(numel() == 1, "item(): the tensor has ", numel(), " elements, shape ", shape_str(shape()));
  return to_vector()[0];
}

// --- Autograd ----------------------------------------------------------------------------------

bool Tensor::requires_grad() const { return checked(impl_).requires_grad; }

const Tensor& Tensor::set_requires_grad(bool required) const {
  TensorImpl& t = checked(impl_);
  CHEX_CHECK(!t.grad_fn, "set_requires_grad: only leaf tensors can be marked; this one is the output of '",
             t.grad_fn->name(), "' (use detach() first)");
  CHEX_CHECK(!required || t.dtype == DType::F32, "set_requires_grad: only float32 tensors can require gradients");
  t.requires_grad = required;
  return *this;
}

bool Tensor::is_leaf() const { return !checked(impl_).grad_fn; }
Tensor Tensor::grad() const { return checked(impl_).grad; }

void Tensor::set_grad(const Tensor& grad) const {
  if (grad.defined())
    CHEX_CHECK(grad.shape() == shape() && grad.device() == device(), "set_grad: gradient ", grad.str(),
               " does not match ", str());
  checked(impl_).grad = grad;
}

void Tensor::zero_grad(bool set_to_none) const {
  TensorImpl& t = checked(impl_);
  if (set_to_none || !t.grad.defined())
    t.grad = Tensor();
  else
    t.grad.fill_(0.f);
}

const std::shared_ptr<Node>& Tensor::grad_fn() const { return checked(impl_).grad_fn; }

}  // namespace chex

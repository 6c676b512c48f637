#pragma once
// Tensor: a shape and strides over shared storage, on a device, with autograd state.
//
// Copies of a Tensor are handles to the same tensor (as in PyTorch): parameters, their gradients
// and the optimizer all see one object. Views (narrow, reshape, detach) share storage but are
// distinct tensors. Strides are general; the compute ops accept any tensor whose dimensions after
// the first are densely packed ("batch-strided"), which is what a channel slice of a dense-block
// buffer is, and make a contiguous copy of anything else.
#include <cstdint>
#include <memory>
#include <vector>

#include "chex/device.h"
#include "chex/dtype.h"
#include "chex/shape.h"
#include "chex/storage.h"

namespace chex {

class Node;
class Generator;
struct TensorImpl;
class HostCopy;

// Host reads: how many times, since the process started, a tensor's values were copied to the
// host for a caller. Every such copy goes through one place that counts it: item(), to_vector()
// (of any tensor, on any device), to(cpu) and copy_ into host memory of a device tensor, and the
// first read of a HostCopy. On a GPU each one waits for the device, so a training step that must
// not synchronise must not move this counter; on the CPU item() and to_vector() count too, so a
// CPU test catches the code that would wait on a GPU (the one read a CPU run cannot see is to(cpu)
// of a tensor that is already there).
uint64_t host_read_count();

class Tensor {
 public:
  Tensor() = default;  // an undefined tensor (like an empty optional)

  // --- Creation -----------------------------------------------------------------------------
  static Tensor empty(const Shape& shape, Device device = Device::cpu(), DType dtype = DType::F32);
  static Tensor zeros(const Shape& shape, Device device = Device::cpu());
  static Tensor ones(const Shape& shape, Device device = Device::cpu());
  static Tensor full(const Shape& shape, float value, Device device = Device::cpu());
  static Tensor from_vector(const std::vector<float>& values, const Shape& shape,
                            Device device = Device::cpu());
  static Tensor randn(const Shape& shape, Generator& gen, float mean = 0.f, float stddev = 1.f,
                      Device device = Device::cpu());
  static Tensor uniform(const Shape& shape, Generator& gen, float low, float high,
                        Device device = Device::cpu());
  // A view of existing storage (used by the engine and by memory planners).
  static Tensor view_of(std::shared_ptr<Storage> storage, int64_t offset, const Shape& shape,
                        const Shape& strides, DType dtype = DType::F32);

  // --- Metadata -----------------------------------------------------------------------------
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const;
  const Shape& strides() const;
  int64_t dim() const { return static_cast<int64_t>(shape().size()); }
  int64_t size(int64_t d) const;    // negative d counts from the end
  int64_t stride(int64_t d) const;
  int64_t numel() const;
  int64_t offset() const;           // in elements, into the storage
  DType dtype() const;
  Device device() const;
  const std::shared_ptr<Storage>& storage() const;
  bool is_contiguous() const;
  // Dimensions 1.. are densely packed; dimension 0 may have any stride (>= the packed size).
  bool is_batch_strided() const;
  std::string str() const;          // "Tensor[2, 3] float32 cpu"

  // Raw element pointer (checked: float32 only).
  float* data() const;
  void* raw_data() const;           // any dtype

  // --- Views and copies (all recorded by autograd where they are differentiable) -----------
  Tensor contiguous() const;                  // self if already contiguous
  Tensor clone() const;                       // always a fresh contiguous copy
  Tensor reshape(const Shape& shape) const;   // a view when contiguous, else a copy; one -1 allowed
  Tensor flatten(int64_t start_dim = 1) const;
  Tensor narrow(int64_t dim, int64_t start, int64_t length) const;  // a view
  Tensor detach() const;                      // same storage, no autograd history
  Tensor to(Device device) const;
  Tensor to(DType dtype) const;               // conversion copy (not differentiable)

  // In place, not recorded by autograd (for initialisation, optimizers, buffers).
  void fill_(float value) const;
  // Shapes must match. From host memory into a GPU's, the copy is stream-ordered (staged through
  // pinned memory): `src` may be changed at once, and the host does not wait for the device.
  void copy_(const Tensor& src) const;

  // Host access (copies; each counts one host read, see host_read_count()).
  std::vector<float> to_vector() const;
  float item() const;                         // one element only
  // Starts copying the values to the host without waiting (on a GPU, an asynchronous copy into
  // pinned memory on the device's stream; on the CPU, a plain copy now). The host waits, and the
  // read is counted, only when the HostCopy is read. float32 only.
  HostCopy to_host_async() const;

  // --- Autograd -----------------------------------------------------------------------------
  bool requires_grad() const;
  const Tensor& set_requires_grad(bool required = true) const;
  bool is_leaf() const;
  Tensor grad() const;                        // undefined until a backward reaches this leaf
  void set_grad(const Tensor& grad) const;
  void zero_grad(bool set_to_none = true) const;
  const std::shared_ptr<Node>& grad_fn() const;
  // Backpropagates from this tensor. Without `gradient`, the tensor must hold one element.
  // The graph's saved tensors are freed afterwards unless retain_graph is set.
  void backward(const Tensor& gradient = Tensor(), bool retain_graph = false) const;

  // Engine internals.
  TensorImpl* impl() const { return impl_.get(); }
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}
  bool same(const Tensor& other) const { return impl_ == other.impl_; }
  // True when this handle is the only reference to its tensor, and the tensor the only user of its
  // whole storage (contiguous, from offset 0): then nothing else can see a change to it.
  bool is_sole_owner() const;

 private:
  std::shared_ptr<TensorImpl> impl_;
};

// The result of Tensor::to_host_async(): a handle to values on their way to the host. Copies of
// the handle share the transfer.
class HostCopy {
 public:
  HostCopy() = default;
  bool defined() const { return state_ != nullptr; }
  // The values, waiting for the copy if it is still in flight; the first read counts one host
  // read (the one moment the host waits for the device).
  const std::vector<float>& values() const;
  float item() const;  // one element only

  struct State;
  explicit HostCopy(std::shared_ptr<State> state) : state_(std::move(state)) {}

 private:
  std::shared_ptr<State> state_;
};

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  int64_t offset = 0;
  Shape shape;
  Shape strides;
  DType dtype = DType::F32;
  // Autograd state.
  bool requires_grad = false;
  std::shared_ptr<Node> grad_fn;  // null for leaves
  Tensor grad;                    // accumulated gradient of a leaf
};

}  // namespace chex

#pragma once
// The one way the engine reaches a kernel: backend(device) is a table of the device type's kernels
// bound to the device's queue (stream), so an op calls
//   backend(device).batch_norm_forward_training(args);
// and never branches on the device. The CPU table holds kernels::cpu; a CUDA build adds one
// holding kernels::cuda (and the cuDNN/cuBLAS kernels of engine/src/cuda, with the same
// signatures). A CPU-only build has no CUDA table at all: backend(cuda device) is one clear error.
//
// Each kernel family lists its kernels once, signatures included (CHEX_<FAMILY>_KERNELS in
// kernels/<family>.h, entries X(return type, name, parameters)); the kernels' declarations, the
// table's fields and the Backend's methods are generated from those lists, so adding a kernel to
// a family touches only the family's files and its op.
//
// Optional kernels (CHEX_<FAMILY>_OPTIONAL_KERNELS) are fast paths a backend may lack: its table
// leaves them null, and an op asks has(&KernelTable::name) and picks its path from the answer,
// never from the device type (the CPU has the convolutions that normalise their input; CUDA, where
// cuDNN does not take a fused BN + ReLU input, has not; both have the batch-norm moments).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "chex/allocator.h"
#include "chex/device.h"
#include "chex/dtype.h"
#include "chex/shape.h"
#include "kernels/batchnorm.h"
#include "kernels/bce.h"
#include "kernels/cast.h"
#include "kernels/concat.h"
#include "kernels/conv2d.h"
#include "kernels/elementwise.h"
#include "kernels/global_pool.h"
#include "kernels/linear.h"
#include "kernels/optimizer.h"
#include "kernels/pooling.h"

#define CHEX_BACKEND_KERNELS(X) \
  CHEX_BATCHNORM_KERNELS(X)     \
  CHEX_CAST_KERNELS(X)          \
  CHEX_CONCAT_KERNELS(X)        \
  CHEX_CONV2D_KERNELS(X)        \
  CHEX_ELEMENTWISE_KERNELS(X)   \
  CHEX_GLOBAL_POOL_KERNELS(X)   \
  CHEX_LINEAR_KERNELS(X)        \
  CHEX_LOSS_KERNELS(X)          \
  CHEX_OPTIMIZER_KERNELS(X)     \
  CHEX_POOLING_KERNELS(X)

#define CHEX_OPTIONAL_BACKEND_KERNELS(X) \
  CHEX_BATCHNORM_OPTIONAL_KERNELS(X)     \
  CHEX_CONV2D_OPTIONAL_KERNELS(X)

// The optional kernels the CUDA table fills (the rest stay null there): the batch-norm moments
// that let the dense block compute norm1's statistics once per channel, and the bf16 convolutions
// (cuDNN's, engine/src/cuda/conv_bf16_cuda.cpp: NCHW, no input normalisation).
#define CHEX_CUDA_OPTIONAL_KERNELS(X) \
  CHEX_BATCHNORM_MOMENTS_KERNELS(X)   \
  CHEX_CONV2D_BF16_KERNELS(X)

namespace chex::backend {

// One pointer per kernel, typed by the CPU twin (the GPU launcher has the same signature); the
// optional ones are null where the backend lacks them.
struct KernelTable {
#define CHEX_KERNEL_TABLE_ENTRY(ret, name, ...) decltype(&kernels::cpu::name) name = nullptr;
  CHEX_BACKEND_KERNELS(CHEX_KERNEL_TABLE_ENTRY)
  CHEX_OPTIONAL_BACKEND_KERNELS(CHEX_KERNEL_TABLE_ENTRY)
#undef CHEX_KERNEL_TABLE_ENTRY
};

// A device-to-host copy in flight (DeviceRuntime::copy_device_to_host_async): wait() blocks until
// the bytes have arrived and returns them (in pinned host memory owned by this object).
class PendingRead {
 public:
  virtual ~PendingRead() = default;
  virtual const void* wait() = 0;
};

// What a device type provides besides kernels: memory and copies. The CPU's is memcpy and the
// CPU allocator, which core/ uses directly; only accelerators have one.
struct DeviceRuntime {
  int (*device_count)();                  // 0 on any runtime error
  std::string (*unavailable_reason)();    // why device_count() is 0
  Allocator& (*allocator)(int device);
  kernels::Queue (*queue)(int device);    // makes the device current for the calling thread
  // Synchronous copies between host and device memory (dst, src): they return once the bytes
  // have arrived, so the host side may be freed or read at once.
  void (*copy_host_to_device)(void* dst, const void* src, size_t bytes, int device);
  void (*copy_device_to_host)(void* dst, const void* src, size_t bytes, int device);
  // Stream-ordered on one device (no host synchronisation); across two devices, synchronous.
  void (*copy_device_to_device)(void* dst, const void* src, size_t bytes, int device);
  void (*copy_between_devices)(void* dst, int dst_device, const void* src, int src_device, size_t bytes);
  // Stream-ordered strided operations on device memory (strides in elements; rank up to 8).
  void (*strided_copy)(void* dst, const Shape& dst_strides, const void* src, const Shape& src_strides,
                       const Shape& shape, size_t element_size, int device);
  void (*strided_fill)(float* dst, const Shape& shape, const Shape& strides, float value, int device);
  // Enqueues a copy of device memory into pinned host memory on the device's stream and returns
  // at once: the host waits only when it reads the result (a logged loss, never mid-step).
  std::unique_ptr<PendingRead> (*copy_device_to_host_async)(const void* src, size_t bytes, int device);
  // Stream-ordered copy of host memory into device memory, staged through pinned memory: `src` may
  // be reused as soon as it returns, and the host never waits for the device.
  void (*copy_host_to_device_async)(void* dst, const void* src, size_t bytes, int device);
  // The same copy on the device's second (copy) stream, so that it overlaps the computing
  // stream's work: it starts once the event `after` has completed (null: at once), and work
  // queued on the device's stream from now on waits for it. Events come from new_event() and
  // mark, with record_event(), the current end of the device's stream.
  void (*copy_host_to_device_ahead)(void* dst, const void* src, size_t bytes, int device, void* after);
  void* (*new_event)();
  void (*record_event)(void* event, int device);
  void (*delete_event)(void* event);
  // Waits until everything queued on the device has run (timing, benchmarks; never in a step).
  void (*synchronize)(int device);
  // Device graphs (chex/graph.h): begin_recording() starts recording what the calling thread
  // enqueues on the device's stream (nothing runs); end_recording() stops and returns the
  // instantiated graph (null, the recording thrown away, when !keep); replay_graph() enqueues it.
  void (*begin_recording)(int device);
  void* (*end_recording)(int device, bool keep);
  void (*replay_graph)(void* graph, int device);
  void (*destroy_graph)(void* graph);
  uint64_t (*graph_memory_high_water)(int device);  // bytes the device's graphs have reserved at most
};

// Copies `bytes` of host memory into memory of `device` (the CPU's included: a memcpy), in the
// device's stream order: `src` may be reused at once, and a kernel queued after it reads the bytes
// (on a GPU, an asynchronous copy from pinned memory: an optimizer's table costs no host wait).
void copy_from_host(Device device, void* dst, const void* src, size_t bytes);

// The CUDA runtime, or null in a build without the CUDA backend.
const DeviceRuntime* cuda_runtime();
// The runtime of `device` (an accelerator); the "no CUDA backend" error in a CPU-only build.
const DeviceRuntime& runtime(Device device);

// Scratch memory for one kernel call, from the device's allocator (stream-ordered on a GPU: it may
// be released as soon as the calls that use it are enqueued). Empty (null) for 0 bytes.
class Workspace {
 public:
  Workspace(Device device, size_t bytes);
  ~Workspace();
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;
  void* get() const { return data_; }
  size_t bytes() const { return bytes_; }

 private:
  Device device_;
  size_t bytes_;
  void* data_;
};

// A device's kernels bound to its queue. Cheap to make (two words); make one per op call.
class Backend {
 public:
  Backend(const KernelTable& table, Device device, kernels::Queue queue)
      : table_(&table), device_(device), queue_(queue) {}

#define CHEX_BACKEND_METHOD(ret, name, ...) \
  template <typename... Args>               \
  auto name(const Args&... args) const {    \
    return table_->name(queue_, args...);   \
  }
  CHEX_BACKEND_KERNELS(CHEX_BACKEND_METHOD)
#undef CHEX_BACKEND_METHOD

  // An optional kernel's method: the same call, after a check that the backend has it.
#define CHEX_OPTIONAL_BACKEND_METHOD(ret, name, ...) \
  template <typename... Args>                        \
  auto name(const Args&... args) const {             \
    check_has(table_->name != nullptr, #name);       \
    return table_->name(queue_, args...);            \
  }
  CHEX_OPTIONAL_BACKEND_KERNELS(CHEX_OPTIONAL_BACKEND_METHOD)
#undef CHEX_OPTIONAL_BACKEND_METHOD

  // Whether this backend provides the kernel (&KernelTable::name): false only for optional ones.
  template <typename Kernel>
  bool has(Kernel KernelTable::*kernel) const {
    return table_->*kernel != nullptr;
  }

  // The same call through a pointer to the table's field (&KernelTable::add), for code that picks
  // a kernel at run time.
  template <typename Kernel, typename... Args>
  auto call(Kernel KernelTable::*kernel, const Args&... args) const {
    return (table_->*kernel)(queue_, args...);
  }

  Device device() const { return device_; }
  const kernels::Queue& queue() const { return queue_; }
  // Scratch for one call (see Workspace).
  Workspace workspace(size_t bytes) const { return Workspace(device_, bytes); }

 private:
  // The error for an optional kernel called on a backend without it (a caller that did not ask has()).
  void check_has(bool present, const char* kernel) const;

  const KernelTable* table_;
  Device device_;
  kernels::Queue queue_;
};

// The kernels of `device` for element type `dtype` (float32 only so far: other types are a clear
// error until their tables exist).
Backend backend(Device device, DType dtype = DType::F32);

// The tables themselves (tests compare them; ops use backend()).
const KernelTable& cpu_kernels();
// Replaces the table backend() hands out for the CPU (null: cpu_kernels() again). Only
// KernelCallRecorder (chex/kernel_calls.h) does, to record the calls.
void set_cpu_kernels(const KernelTable* table);
#if defined(CHEX_HAVE_CUDA)
const KernelTable& cuda_kernels();    // engine/src/cuda/cuda_kernels.cpp
const DeviceRuntime& cuda_device_runtime();  // engine/src/cuda/cuda_runtime.cpp
#endif

}  // namespace chex::backend

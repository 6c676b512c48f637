#include "backend/backend.h"

#include <atomic>
#include <cstring>

#include "chex/error.h"
#include "core/capture_audit.h"

namespace chex::backend {
namespace {

#define CHEX_CPU_TABLE_ENTRY(ret, name, ...) table.name = &kernels::cpu::name;
KernelTable make_cpu_table() {
  KernelTable table;
  CHEX_BACKEND_KERNELS(CHEX_CPU_TABLE_ENTRY)
  CHEX_OPTIONAL_BACKEND_KERNELS(CHEX_CPU_TABLE_ENTRY)
  return table;
}
#undef CHEX_CPU_TABLE_ENTRY

// What backend() hands out for the CPU: null for cpu_kernels(), else a recorder's table.
std::atomic<const KernelTable*> cpu_table_in_use{nullptr};

[[noreturn]] void no_cuda_backend() { CHEX_FAIL("this build of chex has no CUDA backend; use --device cpu"); }

}  // namespace

const KernelTable& cpu_kernels() {
  static const KernelTable table = make_cpu_table();
  return table;
}

void set_cpu_kernels(const KernelTable* table) { cpu_table_in_use.store(table); }

const DeviceRuntime* cuda_runtime() {
#if defined(CHEX_HAVE_CUDA)
  return &cuda_device_runtime();
#else
  return nullptr;
#endif
}

const DeviceRuntime& runtime(Device device) {
  CHEX_CHECK(device.is_cuda(), "the CPU has no device runtime (", device.str(), ")");
  const DeviceRuntime* r = cuda_runtime();
  if (!r) no_cuda_backend();
  return *r;
}

void copy_from_host(Device device, void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  chex::detail::audit_host_upload(device);
  if (device.is_cpu())
    std::memcpy(dst, src, bytes);
  else
    runtime(device).copy_host_to_device_async(dst, src, bytes, device.index);
}

Backend backend(Device device, DType dtype) {
  CHEX_CHECK(dtype == DType::F32, "no ", device.is_cpu() ? "CPU" : "CUDA", " kernels for ", dtype_name(dtype),
             " yet; compute in float32");
  if (device.is_cpu()) {
    const KernelTable* replaced = cpu_table_in_use.load(std::memory_order_relaxed);
    return Backend(replaced ? *replaced : cpu_kernels(), device, kernels::Queue{});
  }
#if defined(CHEX_HAVE_CUDA)
  return Backend(cuda_kernels(), device, cuda_device_runtime().queue(device.index));
#else
  no_cuda_backend();
#endif
}

void Backend::check_has(bool present, const char* kernel) const {
  CHEX_CHECK(present, "the ", device_.str(), " backend has no ", kernel, " kernel (an optional one: ask has() first)");
}

Workspace::Workspace(Device device, size_t bytes)
    : device_(device), bytes_(bytes), data_(bytes ? allocator_for(device).allocate(bytes) : nullptr) {
  chex::detail::audit_allocation(device_, data_, bytes_);
}

Workspace::~Workspace() {
  chex::detail::audit_free(device_, data_);
  if (data_) allocator_for(device_).deallocate(data_, bytes_);
}

}  // namespace chex::backend

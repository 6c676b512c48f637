// The CUDA runtime glue: device discovery, the stream-ordered device allocator, copies.
// Only the runtime API is used (never the driver API): test binaries must start on machines that
// have the toolkit but no driver.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "backend/backend.h"
#include "core/counting_allocator.h"
#include "chex/error.h"
#include "device_runtime.h"
#include "cuda_check.h"

namespace chex::cuda {
namespace {

struct Discovery {
  int count = 0;
  std::string reason;
};

const Discovery& discovery() {
  static const Discovery d = [] {
    Discovery result;
    int count = 0;
    const cudaError_t status = cudaGetDeviceCount(&count);
    if (status != cudaSuccess) {
      // Any error means "no GPU" (error 35, insufficient driver, on our GPU-less machines).
      result.reason = std::string("cudaGetDeviceCount: ") + cudaGetErrorString(status);
      cudaGetLastError();  // clear the sticky error
    } else if (count == 0) {
      result.reason = "the CUDA runtime reports no devices";
    }
    result.count = status == cudaSuccess ? count : 0;
    return result;
  }();
  return d;
}

// Device memory from CUDA's stream-ordered pool, with the same accounting as the host allocator.
class CudaPoolAllocator final : public CountingAllocator {
 public:
  // The default pool's release threshold at its maximum: memory freed into the pool stays there
  // across synchronisations instead of going back to the driver at each one (and being mapped
  // again at the next step). empty_cache() still trims it on request.
  explicit CudaPoolAllocator(int device) : device_(device) {
    cudaMemPool_t pool;
    if (cudaDeviceGetDefaultMemPool(&pool, device_) == cudaSuccess) {
      uint64_t threshold = UINT64_MAX;
      CHEX_CUDA_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &threshold));
    } else {
      cudaGetLastError();  // no pool (no device): allocate() reports the error when it is used
    }
  }

  void* allocate(size_t bytes) override {
    if (bytes == 0) return nullptr;
    const size_t size = allocation_size_class(bytes);
    void* ptr = nullptr;
    make_current(device_);
    const cudaError_t status = cudaMallocAsync(&ptr, size, stream(device_));
    if (status == cudaErrorMemoryAllocation) {
      cudaGetLastError();  // clear it: the device stays usable
      CHEX_FAIL("GPU cuda:", device_, " ran out of memory (", size >> 20, " MiB more asked for); use a smaller "
                "--batch-size or --image-size, or a GPU with more memory");
    }
    CHEX_CUDA_CHECK(status);
    std::lock_guard lock(mutex_);
    ++stats_.system_allocations;
    count_allocation_locked(size);
    stats_.reserved_bytes = stats_.current_bytes;
    return ptr;
  }

  void deallocate(void* ptr, size_t bytes) override {
    if (!ptr) return;
    const size_t size = allocation_size_class(bytes);
    cudaFreeAsync(ptr, stream(device_));  // no throw from a destructor path
    std::lock_guard lock(mutex_);
    stats_.current_bytes -= size;
    stats_.reserved_bytes = stats_.current_bytes;
  }

  void empty_cache() override {
    cudaMemPool_t pool;
    if (cudaDeviceGetDefaultMemPool(&pool, device_) == cudaSuccess) cudaMemPoolTrimTo(pool, 0);
  }
  Device device() const override { return Device::cuda(device_); }

 private:
  int device_;
};

}  // namespace

void make_current(int device) {
  int current = -1;
  if (cudaGetDevice(&current) == cudaSuccess && current == device) return;
  CHEX_CUDA_CHECK(cudaSetDevice(device));
}

namespace {
// One stream per device of a kind, created on first use.
class DeviceStreams {
 public:
  cudaStream_t get(int device) {
    std::lock_guard lock(mutex_);
    CHEX_CHECK(device >= 0 && device < 64, "CUDA device index out of range: ", device);
    if (!streams_[device]) {
      make_current(device);
      CHEX_CUDA_CHECK(cudaStreamCreateWithFlags(&streams_[device], cudaStreamNonBlocking));
    }
    return streams_[device];
  }

 private:
  std::array<cudaStream_t, 64> streams_{};
  std::mutex mutex_;
};
}  // namespace

cudaStream_t stream(int device) {
  static DeviceStreams streams;
  return streams.get(device);
}

int device_count() { return discovery().count; }
std::string unavailable_reason() { return discovery().reason; }

Allocator& allocator(int device) {
  static std::array<CudaPoolAllocator*, 64> allocators{};
  static std::mutex mutex;
  std::lock_guard lock(mutex);
  CHEX_CHECK(device >= 0 && device < 64, "CUDA device index out of range: ", device);
  if (!allocators[device]) allocators[device] = new CudaPoolAllocator(device);  // lives forever
  return *allocators[device];
}

namespace {
// Host<->device: waits for the copy, so that pageable host memory may be reused or read at once.
void copy_synchronously(void* dst, const void* src, size_t bytes, int device, cudaMemcpyKind kind) {
  if (bytes == 0) return;
  make_current(device);
  CHEX_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, kind, stream(device)));
  CHEX_CUDA_CHECK(cudaStreamSynchronize(stream(device)));
}
}  // namespace

void copy_host_to_device(void* dst, const void* src, size_t bytes, int device) {
  copy_synchronously(dst, src, bytes, device, cudaMemcpyHostToDevice);
}
void copy_device_to_host(void* dst, const void* src, size_t bytes, int device) {
  copy_synchronously(dst, src, bytes, device, cudaMemcpyDeviceToHost);
}
void copy_device_to_device(void* dst, const void* src, size_t bytes, int device) {
  if (bytes == 0) return;
  // Ordered on the device's one stream like every kernel: no host synchronisation needed.
  make_current(device);
  CHEX_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream(device)));
}
void copy_between_devices(void* dst, int dst_device, const void* src, int src_device, size_t bytes) {
  if (bytes == 0) return;
  // The source's pending work must finish before the copy reads it, and the destination's stream
  // must not run ahead of it: synchronise both sides (a rare path: multi-GPU is not a goal).
  make_current(src_device);
  CHEX_CUDA_CHECK(cudaStreamSynchronize(stream(src_device)));
  make_current(dst_device);
  CHEX_CUDA_CHECK(cudaMemcpyPeerAsync(dst, dst_device, src, src_device, bytes, stream(dst_device)));
  CHEX_CUDA_CHECK(cudaStreamSynchronize(stream(dst_device)));
}

namespace {
// Pinned host blocks for asynchronous reads, reused: cudaMallocHost is slow and cudaFreeHost
// synchronises the device, so a block goes back to this list, never to the driver.
class PinnedBlocks {
 public:
  struct Block {
    void* ptr = nullptr;
    size_t bytes = 0;
  };
  Block take(size_t bytes) {
    {
      std::lock_guard lock(mutex_);
      reclaim_landed_locked();
      for (size_t i = 0; i < free_.size(); ++i) {
        if (free_[i].bytes >= bytes) {
          const Block b = free_[i];
          free_.erase(free_.begin() + static_cast<std::ptrdiff_t>(i));
          return b;
        }
      }
    }
    Block b{nullptr, std::max<size_t>(bytes, 256)};
    CHEX_CUDA_CHECK(cudaMallocHost(&b.ptr, b.bytes));
    return b;
  }
  void give(Block b) {
    std::lock_guard lock(mutex_);
    free_.push_back(b);
  }
  // A block that a queued copy still reads: free again once `landed` has completed (checked
  // without waiting at the next take()).
  void give_after(Block b, cudaEvent_t landed) {
    std::lock_guard lock(mutex_);
    in_flight_.push_back({b, landed});
  }

 private:
  void reclaim_landed_locked() {
    for (size_t i = 0; i < in_flight_.size();) {
      if (cudaEventQuery(in_flight_[i].second) == cudaSuccess) {
        cudaEventDestroy(in_flight_[i].second);
        free_.push_back(in_flight_[i].first);
        in_flight_.erase(in_flight_.begin() + static_cast<std::ptrdiff_t>(i));
      } else {
        ++i;
      }
    }
  }

  std::mutex mutex_;
  std::vector<Block> free_;
  std::vector<std::pair<Block, cudaEvent_t>> in_flight_;
};

PinnedBlocks& pinned_blocks() {
  static auto* blocks = new PinnedBlocks;  // lives forever: blocks outlive static destruction order
  return *blocks;
}

class CudaPendingRead final : public backend::PendingRead {
 public:
  CudaPendingRead(const void* src, size_t bytes, int device) : block_(pinned_blocks().take(bytes)) {
    make_current(device);
    CHEX_CUDA_CHECK(cudaEventCreateWithFlags(&done_, cudaEventDisableTiming));
    CHEX_CUDA_CHECK(cudaMemcpyAsync(block_.ptr, src, bytes, cudaMemcpyDeviceToHost, stream(device)));
    CHEX_CUDA_CHECK(cudaEventRecord(done_, stream(device)));
  }
  ~CudaPendingRead() override {
    // The copy may still be writing the block: it returns to the list only once it has landed.
    cudaEventSynchronize(done_);
    cudaEventDestroy(done_);
    pinned_blocks().give(block_);
  }
  CudaPendingRead(const CudaPendingRead&) = delete;
  CudaPendingRead& operator=(const CudaPendingRead&) = delete;
  const void* wait() override {
    CHEX_CUDA_CHECK(cudaEventSynchronize(done_));
    return block_.ptr;
  }

 private:
  PinnedBlocks::Block block_;
  cudaEvent_t done_ = nullptr;
};
}  // namespace

std::unique_ptr<backend::PendingRead> copy_device_to_host_async(const void* src, size_t bytes, int device) {
  return std::make_unique<CudaPendingRead>(src, bytes, device);
}

void copy_host_to_device_async(void* dst, const void* src, size_t bytes, int device) {
  if (bytes == 0) return;
  // Staged: the caller's (pageable) memory is copied into a pinned block now, so it may be reused
  // at once, and the device reads the block in stream order; nothing waits for the device.
  const PinnedBlocks::Block block = pinned_blocks().take(bytes);
  std::memcpy(block.ptr, src, bytes);
  make_current(device);
  CHEX_CUDA_CHECK(cudaMemcpyAsync(dst, block.ptr, bytes, cudaMemcpyHostToDevice, stream(device)));
  cudaEvent_t landed = nullptr;
  CHEX_CUDA_CHECK(cudaEventCreateWithFlags(&landed, cudaEventDisableTiming));
  CHEX_CUDA_CHECK(cudaEventRecord(landed, stream(device)));
  pinned_blocks().give_after(block, landed);
}

// The second stream of each device, for copies that overlap the computing stream's work.
cudaStream_t copy_stream(int device) {
  static DeviceStreams streams;
  return streams.get(device);
}

void copy_host_to_device_ahead(void* dst, const void* src, size_t bytes, int device, void* after) {
  if (bytes == 0) return;
  // Staged through pinned memory as copy_host_to_device_async, but on the copy stream: it runs
  // while the device's stream computes, after `after` (the last reads of dst), and the device's
  // stream waits for it before anything queued from now on.
  const PinnedBlocks::Block block = pinned_blocks().take(bytes);
  std::memcpy(block.ptr, src, bytes);
  make_current(device);
  const cudaStream_t side = copy_stream(device);
  if (after) CHEX_CUDA_CHECK(cudaStreamWaitEvent(side, static_cast<cudaEvent_t>(after), 0));
  CHEX_CUDA_CHECK(cudaMemcpyAsync(dst, block.ptr, bytes, cudaMemcpyHostToDevice, side));
  cudaEvent_t landed = nullptr;
  CHEX_CUDA_CHECK(cudaEventCreateWithFlags(&landed, cudaEventDisableTiming));
  CHEX_CUDA_CHECK(cudaEventRecord(landed, side));
  CHEX_CUDA_CHECK(cudaStreamWaitEvent(stream(device), landed, 0));
  pinned_blocks().give_after(block, landed);
}

void* new_event() {
  cudaEvent_t event = nullptr;
  CHEX_CUDA_CHECK(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
  return event;
}

void record_event(void* event, int device) {
  make_current(device);
  CHEX_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(event), stream(device)));
}

void delete_event(void* event) {
  if (event) cudaEventDestroy(static_cast<cudaEvent_t>(event));
}

void synchronize(int device) {
  make_current(device);
  CHEX_CUDA_CHECK(cudaStreamSynchronize(stream(device)));
}

}  // namespace chex::cuda

namespace chex::backend {

const DeviceRuntime& cuda_device_runtime() {
  static const DeviceRuntime runtime{
      .device_count = cuda::device_count,
      .unavailable_reason = cuda::unavailable_reason,
      .allocator = cuda::allocator,
      .queue = [](int device) { return kernels::Queue{device, cuda::stream(device)}; },
      .copy_host_to_device = cuda::copy_host_to_device,
      .copy_device_to_host = cuda::copy_device_to_host,
      .copy_device_to_device = cuda::copy_device_to_device,
      .copy_between_devices = cuda::copy_between_devices,
      .strided_copy = cuda::strided_copy,
      .strided_fill = cuda::strided_fill,
      .copy_device_to_host_async = cuda::copy_device_to_host_async,
      .copy_host_to_device_async = cuda::copy_host_to_device_async,
      .copy_host_to_device_ahead = cuda::copy_host_to_device_ahead,
      .new_event = cuda::new_event,
      .record_event = cuda::record_event,
      .delete_event = cuda::delete_event,
      .synchronize = cuda::synchronize,
      .begin_recording = cuda::begin_recording,
      .end_recording = cuda::end_recording,
      .replay_graph = cuda::replay_graph,
      .destroy_graph = cuda::destroy_graph,
      .graph_memory_high_water = cuda::graph_memory_high_water,
  };
  return runtime;
}

}  // namespace chex::backend

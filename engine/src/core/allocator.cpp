#include "chex/allocator.h"

#include <algorithm>
#include <bit>
#include <cstdlib>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "chex/error.h"
#include "backend/backend.h"
#include "counting_allocator.h"

namespace chex {

size_t allocation_size_class(size_t bytes) {
  constexpr size_t kAlign = 64;
  if (bytes <= 4096) return std::max<size_t>(kAlign, (bytes + kAlign - 1) / kAlign * kAlign);
  // Eight classes per power of two: at most 12.5% rounding waste, and a freed block fits every
  // request of nearly the same size.
  const size_t power = std::bit_floor(bytes);
  const size_t step = power / 8;
  return (bytes + step - 1) / step * step;
}

namespace {

// Host allocator: 64-byte aligned blocks (one cache line, one AVX-512 vector), cached by size class
// after being freed. Thread-safe.
class CpuCachingAllocator final : public CountingAllocator {
 public:
  ~CpuCachingAllocator() override { empty_cache(); }

  void* allocate(size_t bytes) override {
    if (bytes == 0) return nullptr;
    const size_t size = allocation_size_class(bytes);
    std::lock_guard lock(mutex_);
    void* ptr = nullptr;
    auto& bucket = free_[size];
    if (!bucket.empty()) {
      ptr = bucket.back();
      bucket.pop_back();
      stats_.cached_bytes -= size;
    } else {
      ptr = std::aligned_alloc(64, size);
      if (!ptr) {
        // Give the cache back and try once more before failing.
        release_cached_locked();
        ptr = std::aligned_alloc(64, size);
      }
      CHEX_CHECK(ptr, "out of host memory: could not allocate ", bytes, " bytes (", stats_.current_bytes,
                 " bytes in use by tensors)");
      ++stats_.system_allocations;
      stats_.reserved_bytes += size;
    }
    count_allocation_locked(size);
    return ptr;
  }

  void deallocate(void* ptr, size_t bytes) override {
    if (!ptr) return;
    const size_t size = allocation_size_class(bytes);
    std::lock_guard lock(mutex_);
    free_[size].push_back(ptr);
    stats_.current_bytes -= size;
    stats_.cached_bytes += size;
  }

  void empty_cache() override {
    std::lock_guard lock(mutex_);
    release_cached_locked();
  }

  Device device() const override { return Device::cpu(); }

 private:
  void release_cached_locked() {
    for (auto& [size, blocks] : free_) {
      for (void* p : blocks) std::free(p);
      stats_.reserved_bytes -= size * blocks.size();
      stats_.cached_bytes -= size * blocks.size();
      blocks.clear();
    }
  }

  std::unordered_map<size_t, std::vector<void*>> free_;
};

}  // namespace

Allocator& allocator_for(Device device) {
  if (device.is_cpu()) {
    // Never destroyed: tensors in static objects may outlive any destruction order.
    static auto* cpu = new CpuCachingAllocator();
    return *cpu;
  }
  require_device(device);
  return backend::runtime(device).allocator(device.index);
}

}  // namespace chex

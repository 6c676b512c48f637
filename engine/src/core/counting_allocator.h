#pragma once
// The accounting that every device's allocator keeps (AllocatorStats), under one mutex: the CPU
// caching allocator and the CUDA pool allocator derive from this and count their blocks in it.
#include <algorithm>
#include <mutex>

#include "chex/allocator.h"

namespace chex {

class CountingAllocator : public Allocator {
 public:
  AllocatorStats stats() const override {
    std::lock_guard lock(mutex_);
    return stats_;
  }
  void reset_peak() override {
    std::lock_guard lock(mutex_);
    stats_.peak_bytes = stats_.current_bytes;
  }

 protected:
  // A block of `size` bytes handed to a tensor (call with mutex_ held).
  void count_allocation_locked(size_t size) {
    ++stats_.allocations;
    stats_.current_bytes += size;
    stats_.peak_bytes = std::max(stats_.peak_bytes, stats_.current_bytes);
  }

  mutable std::mutex mutex_;
  AllocatorStats stats_;
};

}  // namespace chex

#pragma once
// Memory allocators, one per device, all reporting current and peak bytes. Later memory claims
// (linear-in-depth dense blocks, the training step's footprint) are proven with these numbers.
#include <cstddef>
#include <cstdint>

#include "chex/device.h"

namespace chex {

struct AllocatorStats {
  size_t current_bytes = 0;   // held by live tensors (rounded sizes)
  size_t peak_bytes = 0;      // maximum of current_bytes since the last reset_peak()
  size_t cached_bytes = 0;    // freed blocks kept for reuse
  size_t reserved_bytes = 0;  // obtained from the system: current + cached
  uint64_t allocations = 0;   // number of allocate() calls
  uint64_t system_allocations = 0;  // of those, how many had to go to the system
};

class Allocator {
 public:
  virtual ~Allocator() = default;
  virtual void* allocate(size_t bytes) = 0;
  virtual void deallocate(void* ptr, size_t bytes) = 0;
  virtual AllocatorStats stats() const = 0;
  virtual void reset_peak() = 0;
  // Returns cached (free) blocks to the system.
  virtual void empty_cache() = 0;
  virtual Device device() const = 0;
};

// The allocator of a device. The CPU one is a caching allocator: blocks are 64-byte aligned and,
// once freed, kept by size class for the next step, because first-touching fresh pages (a page
// fault each) would otherwise recur at every step.
Allocator& allocator_for(Device device);

// Size classes of the caching allocators: requests are rounded up to a class (multiples of 64
// bytes for small sizes; four classes per power of two above 4 KiB) so that blocks can be reused
// by requests of nearly the same size. Exposed for tests.
size_t allocation_size_class(size_t bytes);

}  // namespace chex

#pragma once
// Shared memory of the running block: static __shared__ variables (CHEX_SHARED) carved from an
// arena, and the launch's dynamic shared memory (CHEX_DYNAMIC_SHARED). Blocks run one at a time,
// so one arena serves them all; every block starts with its shared memory poisoned to 0xFF bytes
// (NaN as float, -1 as int), so a read before any write shows. Under ASan, the arena's free
// space and the gaps between variables are poisoned too, so an overrun of a shared array is
// reported at the kernel's line.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>

#include "kernels/emu/kernel_api.h"

namespace chex::emu::detail {

class SharedArena {
 public:
  static constexpr std::size_t static_limit = 48 * 1024;  // CUDA's static shared memory limit

  SharedArena();
  // `limit`: static + dynamic bytes allowed for this kernel.
  void begin_launch(std::size_t dynamic_bytes, std::size_t limit);
  void begin_block();
  void end_launch();

  void* allocate(SharedSite& site, std::size_t bytes, std::size_t alignment);
  void* dynamic() const { return dynamic_.get(); }

 private:
  struct AlignedDelete {
    void operator()(std::byte* p) const { ::operator delete(p, std::align_val_t{alignment}); }
  };
  static constexpr std::size_t alignment = 256;
  static constexpr std::size_t capacity = 2 * static_limit;  // room for ASan's redzones

  std::unique_ptr<std::byte[], AlignedDelete> static_;
  std::unique_ptr<std::byte[], AlignedDelete> dynamic_;
  std::size_t dynamic_bytes_ = 0;
  std::size_t limit_ = 0;
  std::size_t offset_ = 0;        // next free byte of the arena
  std::size_t static_bytes_ = 0;  // what CUDA would count
  std::uint64_t block_serial_ = 0;
};

}  // namespace chex::emu::detail

#include "kernels/emu/shared_arena.h"

#include <cstring>

#include "kernels/emu/emu_error.h"
#include "kernels/emu/sanitizer.h"

namespace chex::emu::detail {

namespace {

constexpr unsigned char poison_byte = 0xFF;

std::byte* allocate_aligned(std::size_t bytes, std::size_t alignment) {
  return static_cast<std::byte*>(::operator new(bytes, std::align_val_t{alignment}));
}

#ifdef CHEX_EMU_ASAN
constexpr std::size_t redzone = 32;  // poisoned gap after each variable
#else
constexpr std::size_t redzone = 0;
#endif

}  // namespace

SharedArena::SharedArena() : static_(allocate_aligned(capacity, alignment)) {}

void SharedArena::begin_launch(std::size_t dynamic_bytes, std::size_t limit) {
  limit_ = limit;
  dynamic_bytes_ = dynamic_bytes;
  // Exactly the bytes asked for, so that ASan reports an overrun of dynamic shared memory.
  dynamic_.reset(allocate_aligned(dynamic_bytes, alignment));
}

void SharedArena::begin_block() {
  ++block_serial_;
  offset_ = 0;
  static_bytes_ = 0;
#ifdef CHEX_EMU_ASAN
  ASAN_POISON_MEMORY_REGION(static_.get(), capacity);
#endif
  std::memset(dynamic_.get(), poison_byte, dynamic_bytes_);
}

void SharedArena::end_launch() { dynamic_.reset(); }

void* SharedArena::allocate(SharedSite& site, std::size_t bytes, std::size_t align) {
  if (site.block_serial == block_serial_) return site.storage;
  const std::size_t start = (offset_ + align - 1) / align * align;
  static_bytes_ += start - offset_ + bytes;
  // Runs on a kernel thread: the caller's error report adds kernel, block and thread.
  if (static_bytes_ > static_limit || start + bytes > capacity)
    fail("static shared memory exceeds CUDA's limit of ", static_limit, " bytes");
  if (static_bytes_ + dynamic_bytes_ > limit_)
    fail("the kernel uses ", static_bytes_, " bytes of static and ", dynamic_bytes_,
         " bytes of dynamic shared memory; the limit for this kernel is ", limit_);
  std::byte* storage = static_.get() + start;
#ifdef CHEX_EMU_ASAN
  ASAN_UNPOISON_MEMORY_REGION(storage, bytes);
#endif
  std::memset(storage, poison_byte, bytes);
  offset_ = start + bytes + redzone;
  site.block_serial = block_serial_;
  site.storage = storage;
  return storage;
}

}  // namespace chex::emu::detail

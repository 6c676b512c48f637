#pragma once
// The interface between the header-only part that kernels compile against (device.h, launch.h)
// and the emulator library: plain types and functions, no templates.
#include <cstddef>
#include <cstdint>
#include <source_location>

#include "kernels/emu/vector_types.h"

namespace chex::emu::detail {

// One kernel launch as the launch helper describes it.
struct KernelBody {
  void (*invoke)(const void* closure);  // runs the kernel for the current thread
  const void* closure;
};

struct LaunchSpec {
  const char* name;
  void (*kernel)();  // identity of the kernel, for per-kernel settings
  dim3 grid;
  dim3 block;
  std::size_t dynamic_shared_bytes;
};

// Runs every block of the launch; throws chex::Error on a bad configuration or a failing kernel.
void run_kernel(const LaunchSpec& spec, KernelBody body);

// What the current thread sees as threadIdx etc.; rewritten before every resume.
struct Builtins {
  uint3 thread_idx{};
  uint3 block_idx{};
  dim3 block_dim{};
  dim3 grid_dim{};
};
inline Builtins builtins{};

// Block-wide barriers; the predicate forms return the count / and / or over the block.
enum class BarrierOp : std::uint8_t { sync, count, all, any };
int block_barrier(BarrierOp op, int predicate, std::source_location where);

// Warp-wide collectives. `value` carries the caller's operand as raw bits, `arg` the source lane,
// delta or lane mask; the result comes back as raw bits.
enum class WarpOp : std::uint8_t { sync, shfl, shfl_up, shfl_down, shfl_xor, ballot, any, all };
std::uint64_t warp_collective(WarpOp op, unsigned mask, std::uint64_t value, int arg, int width,
                              std::source_location where);
unsigned active_mask();

// A static __shared__ variable's declaration site. Its storage comes from the block's shared
// arena the first time a thread of the block reaches the declaration, poisoned (0xFF bytes).
struct SharedSite {
  std::uint64_t block_serial = 0;  // the block for which `storage` is valid
  void* storage = nullptr;
};
void* shared_storage(SharedSite& site, std::size_t bytes, std::size_t alignment);
void* dynamic_shared_storage();

void set_max_dynamic_shared_bytes(void (*kernel)(), std::size_t bytes);

}  // namespace chex::emu::detail

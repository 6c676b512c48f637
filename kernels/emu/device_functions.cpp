// The device functions that need the running block: they find it in the emulator's state.
#include "kernels/emu/block_runner.h"
#include "kernels/emu/emu_error.h"
#include "kernels/emu/kernel_api.h"
#include "kernels/emu/state.h"

namespace chex::emu::detail {

namespace {

BlockRunner& running_block(const char* function) {
  BlockRunner* block = state().block;
  if (!block) fail("chex emulator: ", function, " called outside a kernel launch");
  return *block;
}

}  // namespace

int block_barrier(BarrierOp op, int predicate, std::source_location where) {
  return running_block("__syncthreads").barrier(op, predicate, where);
}

std::uint64_t warp_collective(WarpOp op, unsigned mask, std::uint64_t value, int arg, int width,
                              std::source_location where) {
  return running_block("a warp operation").warp(op, mask, value, arg, width, where);
}

unsigned active_mask() { return running_block("__activemask").active_mask(); }

void* shared_storage(SharedSite& site, std::size_t bytes, std::size_t alignment) {
  running_block("CHEX_SHARED");
  return state().shared.allocate(site, bytes, alignment);
}

void* dynamic_shared_storage() {
  running_block("CHEX_DYNAMIC_SHARED");
  return state().shared.dynamic();
}

}  // namespace chex::emu::detail

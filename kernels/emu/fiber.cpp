// Fiber stacks and the switch wrappers around the raw switch (assembly or ucontext), with the
// AddressSanitizer annotations that let ASan follow stack changes.
#include "kernels/emu/fiber.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>

#include "kernels/emu/emu_error.h"
#include "kernels/emu/sanitizer.h"

#ifndef CHEX_EMU_UCONTEXT
// Defined in fiber_switch_x86_64.cpp.
extern "C" {
__attribute__((visibility("hidden"))) void chex_emu_switch_stack(void** save_sp, void* next_sp);
__attribute__((visibility("hidden"))) void chex_emu_fiber_trampoline();
}
#endif

namespace chex::emu::detail {

FiberStack::FiberStack(std::size_t bytes) {
  const auto page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  size_ = (bytes + page - 1) / page * page;
  mapping_bytes_ = size_ + page;
  // MAP_NORESERVE: only the pages a fiber touches cost memory.
  mapping_ = mmap(nullptr, mapping_bytes_, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
  if (mapping_ == MAP_FAILED) fail("chex emulator: cannot map a fiber stack of ", mapping_bytes_, " bytes");
  if (mprotect(mapping_, page, PROT_NONE) != 0) {
    munmap(mapping_, mapping_bytes_);
    fail("chex emulator: cannot protect a fiber stack's guard page");
  }
  bottom_ = static_cast<char*>(mapping_) + page;
}

FiberStack::~FiberStack() { munmap(mapping_, mapping_bytes_); }

namespace {

void raw_switch(Context& from, Context& to) {
#ifdef CHEX_EMU_UCONTEXT
  swapcontext(&from.uc, &to.uc);
#else
  chex_emu_switch_stack(&from.sp, to.sp);
#endif
}

#ifdef CHEX_EMU_UCONTEXT
// makecontext passes int arguments only: the pointers travel as two 32-bit halves.
struct UcontextStart {
  FiberEntry entry;
  void* arg;
};

void ucontext_trampoline(unsigned high, unsigned low) {
  const auto bits = (static_cast<std::uintptr_t>(high) << 32) | low;
  auto* start = reinterpret_cast<UcontextStart*>(bits);
  start->entry(start->arg);
}
#endif

}  // namespace

void prepare_fiber(Context& fiber, FiberStack& stack, FiberEntry entry, void* arg) {
  fiber.stack_bottom = stack.bottom();
  fiber.stack_size = stack.size();
  fiber.fake_stack = nullptr;
#ifdef CHEX_EMU_ASAN
  // The previous fiber on this stack never returned from its frames: clear their redzones.
  __asan_unpoison_memory_region(stack.bottom(), stack.size());
#endif
#ifdef CHEX_EMU_UCONTEXT
  // The start record lives at the top of the fiber's own stack, below the frames it will push.
  auto* start = reinterpret_cast<UcontextStart*>(static_cast<char*>(stack.bottom()) + stack.size()) - 1;
  *start = UcontextStart{entry, arg};
  if (getcontext(&fiber.uc) != 0) fail("chex emulator: getcontext failed");
  fiber.uc.uc_stack.ss_sp = stack.bottom();
  fiber.uc.uc_stack.ss_size = stack.size() - 64;
  fiber.uc.uc_link = nullptr;
  const auto bits = reinterpret_cast<std::uintptr_t>(start);
  makecontext(&fiber.uc, reinterpret_cast<void (*)()>(&ucontext_trampoline), 2,
              static_cast<unsigned>(bits >> 32), static_cast<unsigned>(bits & 0xffffffffu));
#else
  // The frame chex_emu_switch_stack pops: r15, r14, r13 (entry), r12 (arg), rbx, rbp, then the
  // return address, the trampoline. After that `ret` the stack pointer is 16-byte aligned, as the
  // trampoline's call to entry requires.
  const auto top = (reinterpret_cast<std::uintptr_t>(stack.bottom()) + stack.size()) & ~std::uintptr_t{15};
  auto* frame = reinterpret_cast<void**>(top - 7 * sizeof(void*));
  frame[0] = nullptr;
  frame[1] = nullptr;
  frame[2] = reinterpret_cast<void*>(entry);
  frame[3] = arg;
  frame[4] = nullptr;
  frame[5] = nullptr;
  frame[6] = reinterpret_cast<void*>(&chex_emu_fiber_trampoline);
  fiber.sp = frame;
#endif
}

void switch_context(Context& from, Context& to) {
#ifdef CHEX_EMU_ASAN
  __sanitizer_start_switch_fiber(&from.fake_stack, to.stack_bottom, to.stack_size);
#endif
  raw_switch(from, to);
#ifdef CHEX_EMU_ASAN
  __sanitizer_finish_switch_fiber(from.fake_stack, nullptr, nullptr);
#endif
}

void fiber_started([[maybe_unused]] Context& starter) {
#ifdef CHEX_EMU_ASAN
  __sanitizer_finish_switch_fiber(nullptr, &starter.stack_bottom, &starter.stack_size);
#endif
}

void exit_fiber(Context& from, Context& to) {
#ifdef CHEX_EMU_ASAN
  // A null save slot tells ASan that this fiber is gone, so its fake stack is freed.
  __sanitizer_start_switch_fiber(nullptr, to.stack_bottom, to.stack_size);
#endif
  raw_switch(from, to);
  __builtin_unreachable();
}

const char* switch_method() {
#ifdef CHEX_EMU_UCONTEXT
  return "ucontext";
#else
  return "x86-64 assembly";
#endif
}

}  // namespace chex::emu::detail

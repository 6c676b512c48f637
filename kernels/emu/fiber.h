#pragma once
// Fibers: the execution contexts that emulated CUDA threads run on. One OS thread switches between
// them cooperatively; a switch saves only what the ABI says a call preserves.
//
// On x86-64 the switch is a few lines of assembly (fiber_switch_x86_64.cpp); elsewhere, or with
// CHEX_EMU_UCONTEXT, glibc's swapcontext, which also saves the signal mask with a syscall (an order
// of magnitude slower: bench_emu_switch measures both). Under AddressSanitizer every switch is announced with the
// __sanitizer_*_switch_fiber calls so that ASan follows the change of stack.
#include <cstddef>

#if !defined(__x86_64__) && !defined(CHEX_EMU_UCONTEXT)
#define CHEX_EMU_UCONTEXT 1
#endif
#ifdef CHEX_EMU_UCONTEXT
#include <ucontext.h>
#endif

namespace chex::emu::detail {

// A fiber stack from mmap, with an inaccessible guard page below it: an overflow faults at once
// instead of corrupting the neighbouring fiber's stack.
class FiberStack {
 public:
  explicit FiberStack(std::size_t bytes);
  ~FiberStack();
  FiberStack(const FiberStack&) = delete;
  FiberStack& operator=(const FiberStack&) = delete;

  void* bottom() const { return bottom_; }  // lowest usable address
  std::size_t size() const { return size_; }

 private:
  void* mapping_ = nullptr;
  std::size_t mapping_bytes_ = 0;
  void* bottom_ = nullptr;
  std::size_t size_ = 0;
};

// The saved state of a suspended fiber, or of the scheduler while a fiber runs.
struct Context {
#ifdef CHEX_EMU_UCONTEXT
  ucontext_t uc{};
#else
  void* sp = nullptr;  // everything else was pushed onto the fiber's own stack
#endif
  // The stack this context runs on and its ASan fake stack while suspended (used under ASan only).
  const void* stack_bottom = nullptr;
  std::size_t stack_size = 0;
  void* fake_stack = nullptr;
};

using FiberEntry = void (*)(void* arg);

// Makes `fiber` begin with entry(arg) on `stack` the next time it is switched to. `entry` must
// never return: it ends with exit_fiber().
void prepare_fiber(Context& fiber, FiberStack& stack, FiberEntry entry, void* arg);

// Suspends the running context into `from` and resumes `to`; returns when something switches back.
void switch_context(Context& from, Context& to);

// First call on a new fiber: completes the switch that started it and records the stack of the
// context that started it (`starter`) for the switches back.
void fiber_started(Context& starter);

// Leaves the running fiber for good and resumes `to`.
[[noreturn]] void exit_fiber(Context& from, Context& to);

// Name of the switch implementation, for benchmarks and reports.
const char* switch_method();

}  // namespace chex::emu::detail

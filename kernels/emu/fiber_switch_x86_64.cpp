// The x86-64 fiber switch. The System V ABI has the callee keep rbx, rbp and r12-r15 (and the
// stack pointer); everything else is already saved by the caller around the call. So a switch
// pushes those six registers, swaps stack pointers and pops them again: no signal-mask syscall as
// in swapcontext. The x87/SSE control words are not saved: kernels never change rounding modes and
// all fibers run on one OS thread.
#include "kernels/emu/fiber.h"

#ifndef CHEX_EMU_UCONTEXT
// void chex_emu_switch_stack(void** save_sp /* rdi */, void* next_sp /* rsi */)
// chex_emu_fiber_trampoline: first code of a new fiber; calls entry (r13) with arg (r12). Entry
// never returns. `.cfi_undefined rip` ends unwinding and backtraces here.
asm(R"(
  .text
  .p2align 4
  .globl chex_emu_switch_stack
  .hidden chex_emu_switch_stack
  .type chex_emu_switch_stack, @function
chex_emu_switch_stack:
  .cfi_startproc
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .cfi_endproc
  .size chex_emu_switch_stack, .-chex_emu_switch_stack

  .p2align 4
  .globl chex_emu_fiber_trampoline
  .hidden chex_emu_fiber_trampoline
  .type chex_emu_fiber_trampoline, @function
chex_emu_fiber_trampoline:
  .cfi_startproc
  .cfi_undefined rip
  movq %r12, %rdi
  callq *%r13
  ud2
  .cfi_endproc
  .size chex_emu_fiber_trampoline, .-chex_emu_fiber_trampoline
)");
#endif

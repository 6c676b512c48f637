// How fast the CUDA emulator switches between threads: a ping-pong between two fibers with the
// emulator's switch, the same with glibc's swapcontext for comparison, and the cost per thread
// of an emulated __syncthreads. Prints the figures and a JSON line.
#include <ucontext.h>

#include <chrono>
#include <cstdio>

#include "kernels/cuda_compat.h"
#include "kernels/emu/fiber.h"

namespace emu = chex::emu::detail;

namespace {

constexpr int round_trips = 2'000'000;

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// ---- The emulator's switch.
emu::Context main_context, fiber_context;

void ping_pong_fiber(void*) {
  emu::fiber_started(main_context);
  for (;;) emu::switch_context(fiber_context, main_context);
}

double emulator_switch_ns() {
  emu::FiberStack stack(64 * 1024);
  emu::prepare_fiber(fiber_context, stack, &ping_pong_fiber, nullptr);
  emu::switch_context(main_context, fiber_context);  // start it
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < round_trips; ++i) emu::switch_context(main_context, fiber_context);
  return seconds_since(start) * 1e9 / (2.0 * round_trips);
  // The fiber stays suspended; its stack goes away with this frame and is never resumed.
}

// ---- glibc's swapcontext, which saves and restores the signal mask with a syscall each time.
ucontext_t uc_main, uc_fiber;

void swapcontext_fiber() {
  for (;;) swapcontext(&uc_fiber, &uc_main);
}

double swapcontext_switch_ns() {
  emu::FiberStack stack(64 * 1024);
  getcontext(&uc_fiber);
  uc_fiber.uc_stack.ss_sp = stack.bottom();
  uc_fiber.uc_stack.ss_size = stack.size();
  uc_fiber.uc_link = nullptr;
  makecontext(&uc_fiber, &swapcontext_fiber, 0);
  const int trips = round_trips / 10;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < trips; ++i) swapcontext(&uc_main, &uc_fiber);
  return seconds_since(start) * 1e9 / (2.0 * trips);
}

// ---- A whole emulated barrier: each thread switches out and back in once per __syncthreads.
constexpr int barriers = 200;

__global__ void barrier_loop_kernel(int* sink) {
  for (int i = 0; i < barriers; ++i) __syncthreads();
  if (threadIdx.x == 0) *sink = barriers;
}

double barrier_ns_per_thread(unsigned threads, unsigned blocks) {
  int sink = 0;
  CHEX_LAUNCH(barrier_loop_kernel, blocks, threads, 0, nullptr, &sink);  // warm up the stack pool
  const auto start = std::chrono::steady_clock::now();
  CHEX_LAUNCH(barrier_loop_kernel, blocks, threads, 0, nullptr, &sink);
  return seconds_since(start) * 1e9 / (double(barriers) * threads * blocks);
}

}  // namespace

int main() {
  const double fiber_ns = emulator_switch_ns();
  const double swapcontext_ns = swapcontext_switch_ns();
  const double barrier_ns = barrier_ns_per_thread(256, 20);
  std::printf("emulator fiber switch (%s): %.1f ns per switch\n", emu::switch_method(), fiber_ns);
  std::printf("glibc swapcontext:           %.1f ns per switch (%.1fx the emulator's)\n", swapcontext_ns,
              swapcontext_ns / fiber_ns);
  std::printf("emulated __syncthreads:      %.1f ns per thread per barrier (256 threads, 20 blocks)\n",
              barrier_ns);
  std::printf("{\"bench\":\"emu_switch\",\"method\":\"%s\",\"switch_ns\":%.2f,\"swapcontext_ns\":%.2f,"
              "\"barrier_ns_per_thread\":%.2f}\n",
              emu::switch_method(), fiber_ns, swapcontext_ns, barrier_ns);
}

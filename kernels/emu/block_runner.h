#pragma once
// One block's threads as fibers on the calling OS thread. The scheduler resumes, in the order the
// schedule gives, every thread that is runnable at the start of a round; each runs until it waits
// at a barrier or warp operation, or exits. A barrier releases its waiters once every thread it
// needs has arrived; if nothing can run while threads still wait, the block is deadlocked.
//
// Rules checked (CUDA leaves breaking them undefined; here they throw chex::Error naming kernel,
// block, thread and source line):
//   - __syncthreads must be reached by every thread of the block, at the same call site: a thread
//     that has exited, or waits at another barrier, makes the barrier divergent;
//   - a warp operation's mask must include the calling lane and name only lanes that exist in the
//     block and have not exited; all lanes of the mask must meet at the same kind of operation
//     with the same mask.
#include <cstdint>
#include <source_location>
#include <string>
#include <vector>

#include "kernels/emu/fiber.h"
#include "kernels/emu/kernel_api.h"
#include "kernels/emu/state.h"

namespace chex::emu::detail {

struct EmuThread {
  enum class Status : std::uint8_t { runnable, at_barrier, at_warp_op, exited };

  Context context;
  uint3 idx{};
  unsigned rank = 0;  // linear index in the block: x + y*dim.x + z*dim.x*dim.y
  Status status = Status::runnable;
  bool started = false;
  std::source_location where;  // the barrier or warp operation it waits at
  BarrierOp barrier_op{};
  WarpOp warp_op{};
  int predicate = 0;
  unsigned mask = 0;
  std::uint64_t value = 0;
  int arg = 0;
  int width = 0;
  std::uint64_t result = 0;  // of the barrier or collective, picked up when it resumes
};

class BlockRunner {
 public:
  BlockRunner(const LaunchSpec& spec, KernelBody body, State& state);
  BlockRunner(const BlockRunner&) = delete;
  BlockRunner& operator=(const BlockRunner&) = delete;

  // Runs every thread of one block to its end; throws chex::Error if the block fails.
  void run(uint3 block_idx);

  // Device functions, called on the running thread's fiber.
  int barrier(BarrierOp op, int predicate, std::source_location where);
  std::uint64_t warp(WarpOp op, unsigned mask, std::uint64_t value, int arg, int width,
                     std::source_location where);
  unsigned active_mask() const;
  EmuThread& current() { return *current_; }
  // Prefix for messages: "chex emulator: kernel 'k', block (0,0,0), thread (3,0,0)".
  std::string context(const EmuThread* thread) const;

 private:
  static void thread_main(void* self);

  void resume(EmuThread& thread);
  void yield(EmuThread& thread);  // back to the scheduler; throws Cancelled when unwinding
  void on_exit(EmuThread& thread);
  void release_barrier();
  bool try_complete_warp_op(unsigned warp, unsigned mask);
  void order_round();
  void cancel_all();
  void record_error(std::string message);
  std::string describe_deadlock() const;
  [[noreturn]] void fail_here(const std::string& message) const;

  unsigned lanes_in_warp(unsigned warp) const;

  LaunchSpec spec_;
  KernelBody body_;
  State& state_;
  std::vector<EmuThread> threads_;
  std::vector<unsigned> round_;  // ranks to resume this round
  Context scheduler_;
  EmuThread* current_ = nullptr;
  uint3 block_idx_{};
  unsigned exited_ = 0;
  unsigned at_barrier_ = 0;
  bool cancelling_ = false;
  std::string error_;  // the first error of this block
};

}  // namespace chex::emu::detail

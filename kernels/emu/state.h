#pragma once
// The emulator's process-wide state. Launches hold `launch_mutex`, so kernels launched from
// several OS threads run one after another and the globals that kernels read (threadIdx, ...)
// belong to one launch at a time.
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <vector>

#include "kernels/emu/fiber.h"
#include "kernels/emu/sanitizer.h"
#include "kernels/emu/schedule.h"
#include "kernels/emu/shared_arena.h"

namespace chex::emu::detail {

class BlockRunner;

#ifdef CHEX_EMU_ASAN
constexpr std::size_t default_stack_bytes = 256 * 1024;  // ASan's redzones make frames larger
#else
constexpr std::size_t default_stack_bytes = 64 * 1024;
#endif

struct State {
  ScheduleSetting schedule;
  std::mt19937_64 rng;
  std::size_t stack_bytes = default_stack_bytes;
  std::vector<std::unique_ptr<FiberStack>> stacks;  // reused by every block and launch
  std::size_t stacks_bytes = 0;                     // the size `stacks` were made with
  std::map<void (*)(), std::size_t> max_dynamic_shared;
  SharedArena shared;
  BlockRunner* block = nullptr;  // the block running now, which the device functions act on
  std::mutex launch_mutex;
};

State& state();

}  // namespace chex::emu::detail

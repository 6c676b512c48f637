// The emulator's side of a kernel launch: check the configuration as CUDA would, then run the
// blocks one at a time in the schedule's order.
#include <algorithm>
#include <numeric>
#include <vector>

#include "kernels/emu/block_runner.h"
#include "kernels/emu/emu_error.h"
#include "kernels/emu/kernel_api.h"
#include "kernels/emu/state.h"

namespace chex::emu::detail {

namespace {

using ::chex::detail::concat;

constexpr std::size_t default_shared_limit = 48 * 1024;
constexpr std::size_t optin_shared_limit = 227 * 1024;  // sm_90; sm_80 allows 163 KiB

// A kernel launching a kernel would need dynamic parallelism, which is not emulated.
thread_local bool in_launch = false;

std::string format(dim3 v) { return concat("(", v.x, ",", v.y, ",", v.z, ")"); }

void validate(const LaunchSpec& spec, std::size_t dynamic_limit) {
  const std::string launch = concat("chex emulator: launch of kernel '", spec.name, "' with grid ",
                                    format(spec.grid), ", block ", format(spec.block));
  const dim3 g = spec.grid, b = spec.block;
  if (!g.x || !g.y || !g.z || !b.x || !b.y || !b.z) fail(launch, ": every dimension must be at least 1");
  if (b.x > 1024 || b.y > 1024 || b.z > 64) fail(launch, ": a block is at most 1024 x 1024 x 64");
  const std::uint64_t threads = std::uint64_t{b.x} * b.y * b.z;
  if (threads > 1024) fail(launch, ": the block has ", threads, " threads; CUDA allows at most 1024");
  if (g.x > 0x7fffffffu || g.y > 65535 || g.z > 65535) fail(launch, ": a grid is at most 2147483647 x 65535 x 65535");
  if (std::uint64_t{g.x} * g.y * g.z > 0xffffffffu) fail(launch, ": more than 2^32 blocks is too many to emulate");
  if (spec.dynamic_shared_bytes > dynamic_limit)
    fail(launch, ": asks for ", spec.dynamic_shared_bytes, " bytes of dynamic shared memory; the limit is ",
         dynamic_limit,
         dynamic_limit == default_shared_limit
             ? " (raise it with chex::set_max_dynamic_shared_bytes(kernel, bytes), up to 227 KiB)"
             : "");
}

// Clears the running-launch state however the launch ends.
struct LaunchScope {
  State& state;
  ~LaunchScope() {
    state.block = nullptr;
    state.shared.end_launch();
    in_launch = false;
  }
};

}  // namespace

State& state() {
  static State instance;
  return instance;
}

void run_kernel(const LaunchSpec& spec, KernelBody body) {
  if (in_launch) fail("chex emulator: kernel '", spec.name, "' launched from inside a kernel: dynamic parallelism is not emulated");
  State& s = state();
  const std::lock_guard lock(s.launch_mutex);
  const auto raised = s.max_dynamic_shared.find(spec.kernel);
  const bool opted_in = raised != s.max_dynamic_shared.end();
  validate(spec, opted_in ? raised->second : default_shared_limit);

  in_launch = true;
  const LaunchScope scope{s};
  builtins.block_dim = spec.block;
  builtins.grid_dim = spec.grid;
  s.shared.begin_launch(spec.dynamic_shared_bytes, opted_in ? optin_shared_limit : default_shared_limit);
  BlockRunner runner(spec, body, s);
  s.block = &runner;

  const dim3 g = spec.grid;
  const auto blocks = static_cast<std::uint32_t>(std::uint64_t{g.x} * g.y * g.z);
  std::vector<std::uint32_t> order;
  if (s.schedule.order == Schedule::random) {
    order.resize(blocks);
    std::iota(order.begin(), order.end(), 0u);
    std::shuffle(order.begin(), order.end(), s.rng);
  }
  for (std::uint32_t i = 0; i < blocks; ++i) {
    const std::uint32_t linear = s.schedule.order == Schedule::forward   ? i
                                 : s.schedule.order == Schedule::reverse ? blocks - 1 - i
                                                                         : order[i];
    s.shared.begin_block();
    runner.run(uint3{linear % g.x, linear / g.x % g.y, linear / (g.x * g.y)});
  }
}

void set_max_dynamic_shared_bytes(void (*kernel)(), std::size_t bytes) {
  if (bytes > optin_shared_limit)
    fail("chex emulator: set_max_dynamic_shared_bytes(", bytes, "): at most ", optin_shared_limit, " bytes");
  const std::lock_guard lock(state().launch_mutex);
  state().max_dynamic_shared[kernel] = bytes;
}

}  // namespace chex::emu::detail

// The emulator exposes the bugs it exists for: a race from a missing barrier, divergent barriers,
// reads of unwritten shared memory, shuffles naming absent or exited lanes, deadlocks and bad
// launch configurations. Errors are chex::Error naming the kernel.
#include <catch2/catch.hpp>

#include <cmath>
#include <numeric>
#include <vector>

#include "chex/error.h"
#include "faulty_kernels.h"
#include "schedules.h"

namespace demo = chex::emu_demo;
using Catch::Matchers::Contains;
using chex::emu_test::all_schedules;

TEST_CASE("a missing __syncthreads gives a wrong sum under some schedule", "[emu]") {
  const int n = 256, threads = 256;
  std::vector<float> x(n);
  std::iota(x.begin(), x.end(), 1.0f);  // integers: the exact sum is representable
  const float want = n * (n + 1) / 2.0f;
  int wrong = 0;
  for (const auto& schedule : all_schedules()) {
    chex::emu::ScopedSchedule scoped(schedule.order, schedule.seed);
    float sum = 0.0f;
    demo::block_sum_missing_barrier(x.data(), &sum, n, threads, nullptr);
    UNSCOPED_INFO(chex::emu::to_string(schedule) << ": " << sum);
    wrong += sum != want;
  }
  CHECK(wrong > 0);
}

TEST_CASE("threads that exit before a __syncthreads make it divergent", "[emu]") {
  std::vector<float> x(100, 1.0f), y(100);
  for (const auto& schedule : all_schedules()) {
    chex::emu::ScopedSchedule scoped(schedule.order, schedule.seed);
    INFO("schedule " << chex::emu::to_string(schedule));
    CHECK_THROWS_WITH(demo::early_exit_then_barrier(x.data(), y.data(), 100, 64, nullptr),
                      Contains("kernel 'early_exit_then_barrier_kernel'") && Contains("divergent") &&
                          Contains("faulty_kernels.cu"));
  }
}

TEST_CASE("threads waiting at different __syncthreads are divergent", "[emu]") {
  std::vector<float> y(64);
  CHECK_THROWS_WITH(demo::split_barriers(y.data(), 64, nullptr),
                    Contains("kernel 'split_barriers_kernel'") && Contains("different barriers"));
}

TEST_CASE("shared memory starts poisoned in every block", "[emu]") {
  std::vector<float> y(64, 0.0f);
  std::vector<int> z(64, 0);
  demo::read_unwritten_shared(y.data(), z.data(), 64, nullptr);
  for (int i = 0; i < 64; ++i) {
    CHECK(std::isnan(y[i]));
    CHECK(z[i] == -1);  // 0xFFFFFFFF
  }
}

TEST_CASE("a shuffle whose mask names lanes absent from the block throws", "[emu]") {
  std::vector<float> x(48, 1.0f), y(48);
  CHECK_THROWS_WITH(demo::full_mask_shuffle(x.data(), y.data(), 48, nullptr),
                    Contains("kernel 'full_mask_shuffle_kernel'") && Contains("__shfl_down_sync") &&
                        Contains("lanes 16-31") && Contains("not in the block"));
  // With whole warps the same kernel is fine.
  std::vector<float> x64(64, 1.0f), y64(64);
  CHECK_NOTHROW(demo::full_mask_shuffle(x64.data(), y64.data(), 64, nullptr));
}

TEST_CASE("a shuffle whose mask names an exited lane throws", "[emu]") {
  std::vector<float> y(32);
  for (const auto& schedule : all_schedules()) {
    chex::emu::ScopedSchedule scoped(schedule.order, schedule.seed);
    INFO("schedule " << chex::emu::to_string(schedule));
    CHECK_THROWS_WITH(demo::shuffle_after_exit(y.data(), nullptr),
                      Contains("kernel 'shuffle_after_exit_kernel'") && Contains("lane 3"));
  }
}

TEST_CASE("a deadlock between a barrier and a shuffle throws and names both", "[emu]") {
  std::vector<float> y(32);
  CHECK_THROWS_WITH(demo::barrier_versus_shuffle(y.data(), nullptr),
                    Contains("kernel 'barrier_versus_shuffle_kernel'") && Contains("deadlock") &&
                        Contains("__syncthreads at faulty_kernels.cu") && Contains("__shfl_sync at faulty_kernels.cu"));
  // The emulator is usable again after a failed launch.
  std::vector<float> x64(64, 1.0f), y64(64);
  CHECK_NOTHROW(demo::full_mask_shuffle(x64.data(), y64.data(), 64, nullptr));
}

TEST_CASE("bad launch configurations throw", "[emu]") {
  CHECK_NOTHROW(demo::launch_trivial(2, 1024, 1, 1, nullptr));
  CHECK_NOTHROW(demo::launch_trivial(1, 8, 8, 16, nullptr));
  CHECK_THROWS_WITH(demo::launch_trivial(1, 2048, 1, 1, nullptr),
                    Contains("kernel 'trivial_kernel'") && Contains("1024"));
  CHECK_THROWS_WITH(demo::launch_trivial(1, 32, 32, 2, nullptr), Contains("2048 threads"));
  CHECK_THROWS_WITH(demo::launch_trivial(1, 1, 1, 65, nullptr), Contains("64"));
  CHECK_THROWS_WITH(demo::launch_trivial(0, 32, 1, 1, nullptr), Contains("at least 1"));
  CHECK_THROWS_WITH(demo::launch_trivial(1, 0, 1, 1, nullptr), Contains("at least 1"));
}

TEST_CASE("shared memory limits", "[emu]") {
  std::vector<float> y(32);
  CHECK_THROWS_WITH(demo::too_much_static_shared(y.data(), nullptr),
                    Contains("kernel 'too_much_static_shared_kernel'") && Contains("static shared memory"));

  const int n = 512;
  std::vector<float> x(n, 2.0f), out(n, 0.0f);
  CHECK_NOTHROW(demo::copy_through_dynamic_shared(x.data(), out.data(), n, 1024, nullptr));
  CHECK(out == x);
  const unsigned big = 64 * 1024;
  CHECK_THROWS_WITH(demo::copy_through_dynamic_shared(x.data(), out.data(), n, big, nullptr),
                    Contains("dynamic shared memory") && Contains("set_max_dynamic_shared_bytes"));
  demo::allow_dynamic_shared(big);
  CHECK_NOTHROW(demo::copy_through_dynamic_shared(x.data(), out.data(), n, big, nullptr));
}

// The demonstration kernels, emulated, agree with plain CPU computations under every schedule.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "demo_kernels.h"
#include "schedules.h"

namespace demo = chex::emu_demo;
using chex::emu_test::all_schedules;

namespace {

std::vector<float> random_floats(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// Float sums in a different order than the kernel's: compare with a tolerance, never bitwise.
void check_close(double got, double want, std::size_t terms) {
  CHECK(std::abs(got - want) <= 1e-6 * static_cast<double>(terms) + 1e-6 * std::abs(want));
}

}  // namespace

TEST_CASE("block sum through shared memory and __syncthreads", "[emu]") {
  const int n = 1000, threads = 256;
  const auto x = random_floats(n, 1);
  for (const auto& schedule : all_schedules()) {
    chex::emu::ScopedSchedule scoped(schedule.order, schedule.seed);
    INFO("schedule " << chex::emu::to_string(schedule));
    std::vector<float> sums(4, -1.0f);
    demo::block_sum(x.data(), sums.data(), n, threads, nullptr);
    for (int b = 0; b < 4; ++b) {
      const auto first = x.begin() + b * threads;
      const double want = std::accumulate(first, first + std::min(threads, n - b * threads), 0.0);
      check_close(sums[b], want, threads);
    }
  }
}

TEST_CASE("warp-shuffle reduction with a grid-stride loop and atomicAdd", "[emu]") {
  const int n = 5000;
  const auto x = random_floats(n, 2);
  const double want = std::accumulate(x.begin(), x.end(), 0.0);
  for (const auto& schedule : all_schedules()) {
    chex::emu::ScopedSchedule scoped(schedule.order, schedule.seed);
    INFO("schedule " << chex::emu::to_string(schedule));
    float total = 0.0f;
    demo::warp_sum(x.data(), &total, n, 3, 96, nullptr);
    check_close(total, want, n);
  }
}

TEST_CASE("__shfl_xor_sync butterfly gives every lane its warp's sum", "[emu]") {
  const int n = 200;  // the last warp is partly past the end of the data
  const auto x = random_floats(n, 3);
  for (const auto& schedule : all_schedules()) {
    chex::emu::ScopedSchedule scoped(schedule.order, schedule.seed);
    INFO("schedule " << chex::emu::to_string(schedule));
    std::vector<float> y(n);
    demo::warp_allreduce(x.data(), y.data(), n, 128, nullptr);
    for (int i = 0; i < n; ++i) {
      const int warp_begin = i / 32 * 32;
      const double want = std::accumulate(x.begin() + warp_begin, x.begin() + std::min(n, warp_begin + 32), 0.0);
      check_close(y[i], want, 32);
    }
  }
}

TEST_CASE("__shfl_up_sync and __shfl_sync within segments of a given width", "[emu]") {
  const int n = 150;
  std::vector<int> x(n);
  std::iota(x.begin(), x.end(), 1);
  for (const int width : {4, 8, 32}) {
    for (const auto& schedule : all_schedules()) {
      chex::emu::ScopedSchedule scoped(schedule.order, schedule.seed);
      INFO("width " << width << ", schedule " << chex::emu::to_string(schedule));
      std::vector<int> y(n);
      demo::segment_scan(x.data(), y.data(), n, width, nullptr);
      for (int i = 0; i < n; ++i) {
        int want = 0;
        for (int j = i / width * width; j < std::min(n, (i / width + 1) * width); ++j) want += x[j];
        REQUIRE(y[i] == want);
      }
    }
  }
}

TEST_CASE("atomicAdd histogram in shared and global memory", "[emu]") {
  const int n = 3000, num_bins = 37;
  std::vector<int> values(n);
  std::mt19937 rng(4);
  for (int& v : values) v = static_cast<int>(rng() % num_bins);
  std::vector<int> want(num_bins, 0);
  for (int v : values) ++want[v];
  for (const auto& schedule : all_schedules()) {
    chex::emu::ScopedSchedule scoped(schedule.order, schedule.seed);
    INFO("schedule " << chex::emu::to_string(schedule));
    std::vector<int> bins(num_bins, 0);
    demo::histogram(values.data(), n, bins.data(), num_bins, nullptr);
    CHECK(bins == want);
  }
}

TEST_CASE("grid-stride saxpy with fewer threads than elements", "[emu]") {
  const int n = 1111;
  const auto x = random_floats(n, 5);
  const auto y0 = random_floats(n, 6);
  for (const auto& schedule : all_schedules()) {
    chex::emu::ScopedSchedule scoped(schedule.order, schedule.seed);
    INFO("schedule " << chex::emu::to_string(schedule));
    auto y = y0;
    demo::saxpy(2.5f, x.data(), y.data(), n, 3, nullptr);
    for (int i = 0; i < n; ++i) REQUIRE(std::abs(y[i] - (2.5f * x[i] + y0[i])) <= 1e-6f);
  }
}

TEST_CASE("kernel templates launch like any kernel", "[emu]") {
  const int n = 301;
  std::vector<double> x(n), y(n, 0.0);
  std::iota(x.begin(), x.end(), 0.0);
  demo::scale(x.data(), y.data(), -0.5, n, nullptr);
  for (int i = 0; i < n; ++i) REQUIRE(y[i] == -0.5 * x[i]);
}

TEST_CASE("dynamic shared memory", "[emu]") {
  const int n = 300, threads = 128;
  const auto x = random_floats(n, 7);
  for (const auto& schedule : all_schedules()) {
    chex::emu::ScopedSchedule scoped(schedule.order, schedule.seed);
    INFO("schedule " << chex::emu::to_string(schedule));
    std::vector<float> y(n);
    demo::reverse_chunks(x.data(), y.data(), n, threads, nullptr);
    for (int begin = 0; begin < n; begin += threads) {
      const int size = std::min(threads, n - begin);
      for (int t = 0; t < size; ++t) REQUIRE(y[begin + t] == x[begin + size - 1 - t]);
    }
  }
}

TEST_CASE("2-D blocks and a 2-D shared tile (transpose)", "[emu]") {
  const int rows = 37, cols = 50;
  const auto in = random_floats(rows * cols, 8);
  for (const auto& schedule : all_schedules()) {
    chex::emu::ScopedSchedule scoped(schedule.order, schedule.seed);
    INFO("schedule " << chex::emu::to_string(schedule));
    std::vector<float> out(rows * cols, 0.0f);
    demo::transpose(in.data(), out.data(), rows, cols, nullptr);
    for (int r = 0; r < rows; ++r)
      for (int c = 0; c < cols; ++c) REQUIRE(out[c * rows + r] == in[r * cols + c]);
  }
}

TEST_CASE("__syncthreads_count and __ballot_sync agree with a count", "[emu]") {
  const int n = 500, threads = 128;
  const auto x = random_floats(n, 9);
  const int blocks = (n + threads - 1) / threads;
  std::vector<int> want(blocks, 0);
  for (int i = 0; i < n; ++i) want[i / threads] += x[i] > 0.0f;
  for (const auto& schedule : all_schedules()) {
    chex::emu::ScopedSchedule scoped(schedule.order, schedule.seed);
    INFO("schedule " << chex::emu::to_string(schedule));
    std::vector<int> by_barrier(blocks, -1), by_ballot(blocks, -1);
    demo::count_positive(x.data(), by_barrier.data(), by_ballot.data(), n, threads, nullptr);
    CHECK(by_barrier == want);
    CHECK(by_ballot == want);
  }
}

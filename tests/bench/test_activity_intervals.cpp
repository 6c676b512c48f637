// bench_densenet --gpu-busy's arithmetic: the union of device activity intervals inside a step's
// window, its largest gap, and the totals over several steps. Every expected value is worked out
// by hand in the comment beside it.
#include <catch2/catch.hpp>

#include <stdexcept>

#include "bench/activity_intervals.h"

using chex::bench::activity_in_window;
using chex::bench::activity_over_steps;
using chex::bench::DeviceActivity;
using chex::bench::Interval;
using Catch::Matchers::WithinAbs;

TEST_CASE("activity: disjoint intervals are summed, the gaps between and around them measured", "[activity]") {
  // Window [0, 100): busy [10, 30) and [50, 60) = 30; gaps 10 (before), 20 (between), 40 (after).
  const auto a = activity_in_window({{50, 60}, {10, 30}}, {0, 100});
  CHECK(a.window_ns == 100);
  CHECK(a.busy_ns == 30);
  CHECK(a.largest_gap_ns == 40);
}

TEST_CASE("activity: overlapping intervals are counted once", "[activity]") {
  // [10, 40) and [30, 70) overlap on [30, 40): union [10, 70) = 60; gaps 10 and 30.
  const auto a = activity_in_window({{10, 40}, {30, 70}}, {0, 100});
  CHECK(a.busy_ns == 60);
  CHECK(a.largest_gap_ns == 30);
}

TEST_CASE("activity: an interval nested in another adds nothing and leaves no gap", "[activity]") {
  // [20, 80) holds [30, 40) and [50, 60): union 60; gaps 20 (before) and 20 (after); a later
  // [85, 90) after the nest: busy 65, gaps 20, 5, 10.
  const auto nested = activity_in_window({{30, 40}, {20, 80}, {50, 60}}, {0, 100});
  CHECK(nested.busy_ns == 60);
  CHECK(nested.largest_gap_ns == 20);
  const auto after = activity_in_window({{30, 40}, {20, 80}, {50, 60}, {85, 90}}, {0, 100});
  CHECK(after.busy_ns == 65);
  CHECK(after.largest_gap_ns == 20);
}

TEST_CASE("activity: touching intervals leave no gap between them", "[activity]") {
  // [0, 25), [25, 50), [50, 100) cover the window exactly: no gap at all.
  const auto a = activity_in_window({{25, 50}, {0, 25}, {50, 100}}, {0, 100});
  CHECK(a.busy_ns == 100);
  CHECK(a.largest_gap_ns == 0);
}

TEST_CASE("activity: no intervals (or only empty ones) is an idle window", "[activity]") {
  const auto none = activity_in_window({}, {1000, 1250});
  CHECK(none.window_ns == 250);
  CHECK(none.busy_ns == 0);
  CHECK(none.largest_gap_ns == 250);
  const auto empty = activity_in_window({{1100, 1100}, {1200, 1150}}, {1000, 1250});
  CHECK(empty.busy_ns == 0);
  CHECK(empty.largest_gap_ns == 250);
  const auto zero_window = activity_in_window({{5, 10}}, {7, 7});
  CHECK(zero_window.window_ns == 0);
  CHECK(zero_window.busy_ns == 0);
  CHECK(zero_window.largest_gap_ns == 0);
}

TEST_CASE("activity: intervals are clipped to the window", "[activity]") {
  // Window [100, 200): [50, 120) counts as [100, 120); [180, 400) as [180, 200); [0, 90) and
  // [200, 300) fall outside. Busy 40, the gap [120, 180) = 60.
  const auto a = activity_in_window({{50, 120}, {180, 400}, {0, 90}, {200, 300}}, {100, 200});
  CHECK(a.busy_ns == 40);
  CHECK(a.largest_gap_ns == 60);
  // One interval covering more than the whole window: fully busy.
  const auto full = activity_in_window({{0, 1000}}, {100, 200});
  CHECK(full.busy_ns == 100);
  CHECK(full.largest_gap_ns == 0);
}

TEST_CASE("activity: a window that ends before it starts is refused", "[activity]") {
  CHECK_THROWS_AS(activity_in_window({{0, 10}}, {10, 5}), std::invalid_argument);
}

TEST_CASE("activity: over steps, busy time over wall time, kernels per step and the largest gap", "[activity]") {
  // Step 1, window [0, 100): kernels [5, 45) and [40, 90) (union [5, 90) = 85), a copy [90, 95):
  //   busy 90, gaps 5 (before) and 5 (after), 2 kernels.
  // Step 2, window [200, 300): kernel [210, 250), memset [260, 270): busy 50, gaps 10, 10, 30;
  //   1 kernel.
  // Outside both windows: a kernel [120, 180) (between the steps) is left out and not counted.
  // Totals: busy 140 of 200 = 0.7; 3 kernels over 2 steps = 1.5; largest gap 30.
  const std::vector<DeviceActivity> records{
      {{5, 45}, true},   {{40, 90}, true},   {{90, 95}, false},  {{120, 180}, true},
      {{210, 250}, true}, {{260, 270}, false}};
  const auto s = activity_over_steps(records, {{0, 100}, {200, 300}});
  CHECK_THAT(s.busy_fraction, WithinAbs(0.7, 1e-12));
  CHECK_THAT(s.kernels_per_step, WithinAbs(1.5, 1e-12));
  CHECK(s.largest_gap_ns == 30);
}

TEST_CASE("activity: a kernel running over a window's end is counted in the step it started in", "[activity]") {
  // Window [0, 100): a kernel [80, 150) counts as busy [80, 100) = 20 and as this step's kernel;
  // window [150, 250) sees none of it: busy 0 there. Fraction 20 / 200 = 0.1, 0.5 kernels per step,
  // largest gap the idle second window, 100.
  const auto s = activity_over_steps({{{80, 150}, true}}, {{0, 100}, {150, 250}});
  CHECK_THAT(s.busy_fraction, WithinAbs(0.1, 1e-12));
  CHECK_THAT(s.kernels_per_step, WithinAbs(0.5, 1e-12));
  CHECK(s.largest_gap_ns == 100);
}

TEST_CASE("activity: no step to measure over is refused", "[activity]") {
  CHECK_THROWS_AS(activity_over_steps({{{0, 10}, true}}, {}), std::invalid_argument);
  CHECK_THROWS_AS(activity_over_steps({{{0, 10}, true}}, {{5, 5}}), std::invalid_argument);
}

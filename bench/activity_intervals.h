#pragma once
// How busy the device was: the union of its activity intervals (kernels, copies, memsets, which may
// overlap on several streams) inside the window of a timed step, and the longest stretch of that
// window nothing covered. Pure arithmetic on timestamps, so it is tested on the CPU; the
// timestamps come from bench/gpu_activity.h on a GPU.
#include <cstdint>
#include <vector>

namespace chex::bench {

// [start, end), in nanoseconds of one clock. An interval with end <= start covers nothing.
struct Interval {
  uint64_t start = 0;
  uint64_t end = 0;
};

struct WindowActivity {
  uint64_t window_ns = 0;       // the window's length
  uint64_t busy_ns = 0;         // covered by at least one interval (overlaps counted once)
  uint64_t largest_gap_ns = 0;  // the longest uncovered stretch, the window's edges included
};

// The intervals clipped to the window, then merged. Throws std::invalid_argument when the window
// ends before it starts.
WindowActivity activity_in_window(std::vector<Interval> intervals, Interval window);

// One record of device activity; kernels are counted apart from copies and memsets.
struct DeviceActivity {
  Interval span;
  bool kernel = false;
};

struct StepsActivity {
  double busy_fraction = 0;     // busy time over wall time, summed over the steps' windows
  double kernels_per_step = 0;  // kernels that started inside a window, per window
  uint64_t largest_gap_ns = 0;  // the largest gap of any one window
};

// Over several timed steps, one window each (disjoint; the records may include activity outside
// them, which is left out). Throws std::invalid_argument without a window of positive length.
StepsActivity activity_over_steps(const std::vector<DeviceActivity>& records, const std::vector<Interval>& windows);

}  // namespace chex::bench

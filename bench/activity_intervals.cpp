#include "bench/activity_intervals.h"

#include <algorithm>
#include <stdexcept>

namespace chex::bench {

WindowActivity activity_in_window(std::vector<Interval> intervals, Interval window) {
  if (window.end < window.start) throw std::invalid_argument("activity window ends before it starts");
  for (Interval& i : intervals) {
    i.start = std::clamp(i.start, window.start, window.end);
    i.end = std::clamp(i.end, window.start, window.end);
  }
  std::erase_if(intervals, [](const Interval& i) { return i.end <= i.start; });
  std::sort(intervals.begin(), intervals.end(), [](const Interval& a, const Interval& b) { return a.start < b.start; });

  WindowActivity a;
  a.window_ns = window.end - window.start;
  uint64_t covered_to = window.start;  // everything before it is covered or already counted as a gap
  for (const Interval& i : intervals) {
    if (i.start > covered_to) a.largest_gap_ns = std::max(a.largest_gap_ns, i.start - covered_to);
    if (i.end > covered_to) {
      a.busy_ns += i.end - std::max(i.start, covered_to);
      covered_to = i.end;
    }
  }
  a.largest_gap_ns = std::max(a.largest_gap_ns, window.end - covered_to);
  return a;
}

StepsActivity activity_over_steps(const std::vector<DeviceActivity>& records, const std::vector<Interval>& windows) {
  std::vector<Interval> spans;
  spans.reserve(records.size());
  for (const DeviceActivity& r : records) spans.push_back(r.span);

  uint64_t busy = 0, wall = 0;
  size_t kernels = 0;
  StepsActivity s;
  for (const Interval& w : windows) {
    const WindowActivity a = activity_in_window(spans, w);
    busy += a.busy_ns;
    wall += a.window_ns;
    s.largest_gap_ns = std::max(s.largest_gap_ns, a.largest_gap_ns);
    kernels += static_cast<size_t>(std::count_if(records.begin(), records.end(), [&](const DeviceActivity& r) {
      return r.kernel && r.span.start >= w.start && r.span.start < w.end;
    }));
  }
  if (wall == 0) throw std::invalid_argument("no timed step to measure the device's activity over");
  s.busy_fraction = static_cast<double>(busy) / static_cast<double>(wall);
  s.kernels_per_step = static_cast<double>(kernels) / static_cast<double>(windows.size());
  return s;
}

}  // namespace chex::bench

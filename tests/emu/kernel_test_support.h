#pragma once
// Support for the kernel tests: each hand-written kernel runs emulated (chex::kernels::emu) under
// several thread schedules; every schedule's result must match the CPU twin (within a stated
// tolerance) and the schedules must agree with each other exactly, since a race shows up as a
// schedule-dependent result.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "chex/random.h"
#include "kernels/emu/schedule.h"

namespace chex::testing {

// The schedules every kernel test runs under.
inline std::vector<emu::ScheduleSetting> kernel_test_schedules() {
  return {{emu::Schedule::forward, 0}, {emu::Schedule::reverse, 0}, {emu::Schedule::random, 17}};
}

// Largest |a - b| / max(|b|, 1).
inline double max_scaled_difference(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = std::fabs(static_cast<double>(a[i]) - b[i]) / std::max(1.0, std::fabs(static_cast<double>(b[i])));
    worst = std::max(worst, std::isnan(d) ? INFINITY : d);
  }
  return worst;
}

// Runs `emulated` (which returns the kernel's outputs, concatenated) under every schedule and
// checks each against `reference` within `tolerance`, and the schedules against each other bit
// for bit.
inline void check_against_twin(const std::string& what, const std::function<std::vector<float>()>& emulated,
                               const std::vector<float>& reference, double tolerance) {
  std::vector<float> first;
  for (const auto& setting : kernel_test_schedules()) {
    emu::ScopedSchedule schedule(setting.order, setting.seed);
    const std::vector<float> result = emulated();
    INFO(what << " under schedule " << emu::to_string(setting));
    const double difference = max_scaled_difference(result, reference);
    INFO("max scaled difference from the CPU twin: " << difference << " (tolerance " << tolerance << ")");
    CHECK(difference <= tolerance);
    if (first.empty()) {
      first = result;
    } else {
      CHECK(result == first);  // schedules must agree exactly
    }
  }
}

inline std::vector<float> random_vector(int64_t n, Generator& gen, float scale = 1.f) {
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = scale * gen.normal();
  return v;
}

}  // namespace chex::testing

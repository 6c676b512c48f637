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
#include <sstream>
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

// A kernel output with the twin's values and the tolerance it must meet.
struct ExpectedOutput {
  std::string name;
  std::vector<float> reference;
  double tolerance;
};

// check_against_twin for kernels with several outputs, each with its own tolerance: `emulated`
// returns the outputs in the order of `expected`.
inline void check_outputs_against_twin(const std::string& what,
                                       const std::function<std::vector<std::vector<float>>()>& emulated,
                                       const std::vector<ExpectedOutput>& expected) {
  std::vector<std::vector<float>> first;
  for (const auto& setting : kernel_test_schedules()) {
    emu::ScopedSchedule schedule(setting.order, setting.seed);
    const std::vector<std::vector<float>> outputs = emulated();
    REQUIRE(outputs.size() == expected.size());
    for (size_t i = 0; i < outputs.size(); ++i) {
      INFO(what << ", " << expected[i].name << ", under schedule " << emu::to_string(setting));
      const double difference = max_scaled_difference(outputs[i], expected[i].reference);
      INFO("max scaled difference from the CPU twin: " << difference << " (tolerance " << expected[i].tolerance << ")");
      CHECK(difference <= expected[i].tolerance);
    }
    if (first.empty()) {
      first = outputs;
    } else {
      // Schedules must agree exactly. (A bool, not the vectors: Catch would print them whole.)
      for (size_t i = 0; i < outputs.size(); ++i) {
        INFO(what << ", " << expected[i].name << ", under schedule " << emu::to_string(setting)
                  << " against the first schedule");
        const bool same_bits = outputs[i] == first[i];
        CHECK(same_bits);
      }
    }
  }
}

// A batch-strided [batch, channels, spatial] tensor inside a buffer: `offset` floats before image 0
// (an odd offset breaks 16-byte alignment) and `pad` floats after each image's C*H*W.
struct StridedCase {
  int64_t batch, channels, spatial;
  int64_t offset = 0, pad = 0;
  int64_t stride() const { return channels * spatial + pad; }
  int64_t buffer() const { return offset + batch * stride(); }
  int64_t planes() const { return batch * channels; }
  std::string name() const {
    std::ostringstream out;  // (not string +: GCC 12 warns falsely about it)
    out << "[" << batch << ", " << channels << ", " << spatial << "] offset " << offset << " pad " << pad;
    return out.str();
  }
};

inline std::vector<float> random_vector(int64_t n, Generator& gen, float scale = 1.f) {
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = scale * gen.normal();
  return v;
}

}  // namespace chex::testing

#pragma once
// Support for the emulated tests of the bf16 kernels: conversions of whole vectors and a check of
// the kernel's bytes against the twin's under every schedule (NaN bits included).
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "kernel_test_support.h"
#include "kernels/bfloat16.h"

namespace chex::testing {

// Runs `emulated` under every schedule and demands the twin's bytes exactly (NaN payloads included).
template <typename T>
void check_bits_against_twin(const std::string& what, const std::function<std::vector<T>()>& emulated,
                             const std::vector<T>& reference) {
  for (const auto& setting : kernel_test_schedules()) {
    emu::ScopedSchedule schedule(setting.order, setting.seed);
    const std::vector<T> result = emulated();
    REQUIRE(result.size() == reference.size());
    int64_t mismatches = 0, first = -1;
    for (size_t i = 0; i < result.size(); ++i) {
      if (std::memcmp(&result[i], &reference[i], sizeof(T)) == 0) continue;
      if (mismatches++ == 0) first = static_cast<int64_t>(i);
    }
    INFO(what << " under schedule " << emu::to_string(setting) << ": " << mismatches
              << " elements differ from the CPU twin, the first at " << first);
    CHECK(mismatches == 0);
  }
}

// How many elements of a and b differ in their bytes.
template <typename T>
int64_t differing_elements(const std::vector<T>& a, const std::vector<T>& b) {
  REQUIRE(a.size() == b.size());
  int64_t count = 0;
  for (size_t i = 0; i < a.size(); ++i) count += std::memcmp(&a[i], &b[i], sizeof(T)) != 0;
  return count;
}

inline std::vector<kernels::BFloat16> to_bf16(const std::vector<float>& values) {
  std::vector<kernels::BFloat16> out;
  out.reserve(values.size());
  for (const float v : values) out.push_back(kernels::to_bfloat16(v));
  return out;
}

inline std::vector<float> widen(const std::vector<kernels::BFloat16>& values) {
  std::vector<float> out;
  out.reserve(values.size());
  for (const kernels::BFloat16 v : values) out.push_back(kernels::to_float(v));
  return out;
}

}  // namespace chex::testing

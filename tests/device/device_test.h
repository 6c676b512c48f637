#pragma once
// Device-generic tests: a test body written once, taking the Device it runs on, is registered
// twice:
//   "<name> (cpu)"  tagged [on-cpu]  runs on the CPU                      CTest label cpu
//   "<name> (cuda)" tagged [on-cuda] runs on every usable GPU in turn     CTest label gpu
// The GPU registration fails (it does not pass silently) when no GPU is present; CTest leaves it
// out on such machines (third_party/setup.sh runs `ctest -LE gpu` when chex_devices --has-gpu
// says no).
//
// A body usually calls check_matches_cpu(device, run): `run(d)` builds the inputs on the CPU from a
// fixed seed, moves them to d, computes forward and backward there and returns what to compare
// (outputs, input gradients, updated state). The results on `device` must match the CPU's within
// a relative tolerance; on the CPU itself they must be bitwise identical (determinism).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "chex/autograd.h"
#include "chex/device.h"
#include "chex/ops.h"
#include "chex/random.h"
#include "chex/tensor.h"
#include "models/densenet.h"
#include "support/tiny_densenet.h"

namespace chex::testing {

inline std::vector<Device> gpu_devices() {
  std::vector<Device> gpus;
  for (const Device& d : available_devices())
    if (d.is_cuda()) gpus.push_back(d);
  return gpus;
}

inline void run_on_gpus(void (*body)(Device)) {
  const std::vector<Device> gpus = gpu_devices();
  INFO("this test runs on GPUs; there is none here (leave out CTest label gpu: ctest -LE gpu)");
  REQUIRE(!gpus.empty());
  for (const Device& d : gpus) {
    INFO("on " << d.str());
    body(d);
  }
}

// Tolerance per compared tensor: |got - want| <= atol + rtol·|want|.
struct Tolerance {
  double rtol = 1e-4;
  double atol = 1e-5;
};

using DeviceRun = std::function<std::vector<Tensor>(Device)>;

inline void check_matches_cpu(Device device, const DeviceRun& run, Tolerance tol = {}) {
  const std::vector<Tensor> want = run(Device::cpu());
  const std::vector<Tensor> got = run(device);
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    INFO("result " << i << " of " << want.size() << " on " << device.str());
    REQUIRE(got[i].defined() == want[i].defined());
    if (!want[i].defined()) continue;
    REQUIRE(got[i].device() == device);
    REQUIRE(got[i].shape() == want[i].shape());
    const std::vector<float> g = got[i].to_vector(), w = want[i].to_vector();
    if (device.is_cpu()) {
      CHECK(g == w);  // the same code on the same inputs: bitwise
      continue;
    }
    size_t bad = 0, first_bad = 0;
    double worst = 0;
    for (size_t j = 0; j < w.size(); ++j) {
      const double diff = std::fabs(static_cast<double>(g[j]) - w[j]);
      const double allowed = tol.atol + tol.rtol * std::fabs(static_cast<double>(w[j]));
      if (!(diff <= allowed)) {
        if (bad++ == 0) first_bad = j;
        worst = std::max(worst, diff / allowed);
      }
    }
    INFO(bad << " of " << w.size() << " elements out of tolerance (rtol " << tol.rtol << ", atol " << tol.atol
              << "), worst at " << worst << "x the allowance; first at " << first_bad << ": got "
              << (bad ? g[first_bad] : 0.f) << ", CPU " << (bad ? w[first_bad] : 0.f));
    CHECK(bad == 0);
  }
}

// A CPU tensor of normal values from `seed`, moved to `device`.
inline Tensor random_on(Device device, const Shape& shape, uint64_t seed, float scale = 1.f) {
  Generator gen(seed);
  return Tensor::randn(shape, gen, 0.f, scale, Device::cpu()).to(device);
}

// A scalar loss that weights every element of y differently, so that every gradient element is
// checked: sum(y * R), R fixed by the seed.
inline Tensor weighted_sum(const Tensor& y, uint64_t seed = 99) {
  return ops::sum(ops::mul(y, random_on(y.device(), y.shape(), seed)));
}

}  // namespace chex::testing

#define CHEX_DEVICE_TEST_CAT2(a, b) a##b
#define CHEX_DEVICE_TEST_CAT(a, b) CHEX_DEVICE_TEST_CAT2(a, b)
#define CHEX_DEVICE_TEST_IMPL(fn, name, tags)                                        \
  static void fn(::chex::Device device);                                             \
  TEST_CASE(name " (cpu)", tags "[on-cpu]") { fn(::chex::Device::cpu()); }           \
  TEST_CASE(name " (cuda)", tags "[on-cuda]") { ::chex::testing::run_on_gpus(&fn); } \
  static void fn(::chex::Device device)
// CHEX_DEVICE_TEST("name", "[tags]") { ... uses `device` ... }
#define CHEX_DEVICE_TEST(name, tags) \
  CHEX_DEVICE_TEST_IMPL(CHEX_DEVICE_TEST_CAT(chex_device_test_, __LINE__), name, tags)

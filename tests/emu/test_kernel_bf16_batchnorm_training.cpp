// The bf16 training batch norms (batch_norm_forward_training_bf16, batch_norm_backward_bf16,
// batch_norm_moments_bf16; kernels/batchnorm.cu), emulated under the forward, reverse and random
// schedules against their CPU twins and against the float32 kernels, at the float32 test's awkward
// sizes and alignments, DenseNet-121's shapes (one-pass small channels, several blocks per channel),
// batch-strided slices and in place (y == x, dx == dy).
//
// The training kernels sum in another order than the twin (per-block partials against one serial
// sum), so the float32 kernel matches its twin within rounding, not bit for bit
// (test_kernel_batchnorm.cpp). The bf16 kernels are one template with the float32 ones, so the
// checks are:
//  - the twin's semantics: the bf16 twin equals the float32 twin on the widened inputs, each
//    result rounded once to bf16, bit for bit (statistics, running statistics, parameter
//    gradients and moments: the float32 twin's bits);
//  - the emulated bf16 kernel equals the emulated float32 kernel on the widened inputs, rounded
//    once, bit for bit (both take the same items: four-element items where the element offsets and
//    strides are multiples of 4, for float4 and for bf16 alike);
//  - the emulated bf16 kernel against the bf16 twin: statistics and parameter gradients within the
//    float32 test's 1e-6, y and dx within one bf16 rounding (2^-7 of max(|b|, 1)): a value the two
//    computed a few float ulps apart may round to neighbouring bf16s;
//  - y recomputed by batch_norm_apply_bf16 from the saved statistics is the training forward's y
//    (what the memory-efficient dense block relies on).
// Output buffers are compared whole, padding included (kUnwritten, a NaN no kernel writes).
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "batchnorm_test_support.h"
#include "bf16_test_support.h"
#include "kernel_test_support.h"
#include "kernels/batchnorm.h"

using namespace chex;
using kernels::BFloat16;
using testing::StridedCase;
using testing::to_bf16;
using testing::widen;
using testing::Workspace;

namespace {

constexpr BFloat16 kUnwritten{0x7fc1};
constexpr float kMomentum = 0.1f, kEps = 1e-5f;
constexpr double kStatsTolerance = 1e-6;
constexpr double kBf16Tolerance = 1.0 / 128;  // one bf16 ulp of a value in [1, 2)
const kernels::Queue kQueue;

// What a kernel writes where it writes nothing: kUnwritten in bf16, its widened NaN in float32.
template <typename T>
T unwritten() {
  if constexpr (std::is_same_v<T, BFloat16>) {
    return kUnwritten;
  } else {
    return kernels::to_float(kUnwritten);
  }
}

template <typename T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

// float32 results rounded once to bf16; unwritten elements (the widened kUnwritten) stay kUnwritten.
std::vector<BFloat16> round_once(const std::vector<float>& values) {
  std::vector<BFloat16> out = to_bf16(values);
  const float marker = unwritten<float>();
  for (size_t i = 0; i < values.size(); ++i)
    if (std::memcmp(&values[i], &marker, sizeof(float)) == 0) out[i] = kUnwritten;
  return out;
}

// One case's inputs: x and dy in bf16 (channel means away from 0; padding kUnwritten), float32
// parameters and running statistics.
struct Inputs {
  std::vector<BFloat16> x, dy;
  std::vector<float> gamma, beta, running_mean, running_var;
  Inputs(const StridedCase& k, Generator& gen) {
    std::vector<float> xv(static_cast<size_t>(k.buffer()), unwritten<float>()), dyv = xv;
    for (int64_t n = 0; n < k.batch; ++n)
      for (int64_t c = 0; c < k.channels; ++c)
        for (int64_t i = 0; i < k.spatial; ++i) {
          const auto at = static_cast<size_t>(k.offset + n * k.stride() + c * k.spatial + i);
          xv[at] = 2.f * gen.normal() + 0.25f * static_cast<float>(c % 16) - 2.f;
          dyv[at] = gen.normal();
        }
    x = round_once(xv);
    dy = round_once(dyv);
    for (int64_t c = 0; c < k.channels; ++c) {
      gamma.push_back(1.f + 0.3f * gen.normal());
      beta.push_back(0.5f * gen.normal());
      running_mean.push_back(0.5f * gen.normal());
      running_var.push_back(0.5f + gen.uniform());
    }
  }
};

// The implementations, by element type: the CPU twins and the emulated launchers.
struct Twin {
  static void forward(const kernels::BatchNormForwardArgs& a) { kernels::cpu::batch_norm_forward_training(kQueue, a); }
  static void forward(const kernels::BatchNormForwardArgsBf16& a) {
    kernels::cpu::batch_norm_forward_training_bf16(kQueue, a);
  }
  static void backward(const kernels::BatchNormBackwardArgs& a) { kernels::cpu::batch_norm_backward(kQueue, a); }
  static void backward(const kernels::BatchNormBackwardArgsBf16& a) { kernels::cpu::batch_norm_backward_bf16(kQueue, a); }
  static void moments(const kernels::BatchNormMomentsArgs& a) { kernels::cpu::batch_norm_moments(kQueue, a); }
  static void moments(const kernels::BatchNormMomentsArgsBf16& a) { kernels::cpu::batch_norm_moments_bf16(kQueue, a); }
};
struct Kernel {
  static void forward(const kernels::BatchNormForwardArgs& a) { kernels::emu::batch_norm_forward_training(kQueue, a); }
  static void forward(const kernels::BatchNormForwardArgsBf16& a) {
    kernels::emu::batch_norm_forward_training_bf16(kQueue, a);
  }
  static void backward(const kernels::BatchNormBackwardArgs& a) { kernels::emu::batch_norm_backward(kQueue, a); }
  static void backward(const kernels::BatchNormBackwardArgsBf16& a) { kernels::emu::batch_norm_backward_bf16(kQueue, a); }
  static void moments(const kernels::BatchNormMomentsArgs& a) { kernels::emu::batch_norm_moments(kQueue, a); }
  static void moments(const kernels::BatchNormMomentsArgsBf16& a) { kernels::emu::batch_norm_moments_bf16(kQueue, a); }
};

// A training forward's outputs; stats() are its float32 ones in one vector.
template <typename T>
struct Forward {
  std::vector<T> y;
  std::vector<float> mean, invstd, running_mean, running_var;
  std::vector<float> stats() const {
    std::vector<float> all = mean;
    for (const auto* v : {&invstd, &running_mean, &running_var}) all.insert(all.end(), v->begin(), v->end());
    return all;
  }
};

// The training forward of x (bf16, or widened to float32) by Impl; in place, y is x's buffer.
template <typename Impl, typename T>
Forward<T> forward(const StridedCase& k, const Inputs& in, const std::vector<T>& x, bool relu, bool in_place) {
  const auto C = static_cast<size_t>(k.channels);
  Forward<T> f{in_place ? x : std::vector<T>(x.size(), unwritten<T>()), std::vector<float>(C, -1.f),
               std::vector<float>(C, -1.f), in.running_mean, in.running_var};
  Workspace ws(k);
  Impl::forward(kernels::BasicBatchNormForwardArgs<T>{.shape = {k.batch, k.channels, k.spatial},
                                                      .x = {(in_place ? f.y.data() : x.data()) + k.offset, k.stride()},
                                                      .y = {f.y.data() + k.offset, k.stride()},
                                                      .gamma = in.gamma.data(),
                                                      .beta = in.beta.data(),
                                                      .running_mean = f.running_mean.data(),
                                                      .running_var = f.running_var.data(),
                                                      .momentum = kMomentum,
                                                      .eps = kEps,
                                                      .save_mean = f.mean.data(),
                                                      .save_invstd = f.invstd.data(),
                                                      .fuse_relu = relu,
                                                      .workspace = ws.get()});
  return f;
}

template <typename T>
struct Backward {
  std::vector<T> dx;
  std::vector<float> dgamma, dbeta;
  std::vector<float> gradients() const {
    std::vector<float> all = dgamma;
    all.insert(all.end(), dbeta.begin(), dbeta.end());
    return all;
  }
};

// The statistics a backward differentiates through (the bf16 twin's forward's).
struct Statistics {
  std::vector<float> mean, invstd;
};

// The backward by Impl; in place, dx is dy's buffer.
template <typename Impl, typename T>
Backward<T> backward(const StridedCase& k, const Inputs& in, const std::vector<T>& x, const std::vector<T>& dy,
                     const Statistics& st, bool relu, bool batch_statistics, bool in_place) {
  const auto C = static_cast<size_t>(k.channels);
  Backward<T> b{in_place ? dy : std::vector<T>(dy.size(), unwritten<T>()), std::vector<float>(C, -1.f),
                std::vector<float>(C, -1.f)};
  Workspace ws(k);
  Impl::backward(kernels::BasicBatchNormBackwardArgs<T>{
      .shape = {k.batch, k.channels, k.spatial},
      .x = {x.data() + k.offset, k.stride()},
      .dy = {(in_place ? b.dx.data() : dy.data()) + k.offset, k.stride()},
      .dx = {b.dx.data() + k.offset, k.stride()},
      .mean = st.mean.data(),
      .invstd = st.invstd.data(),
      .gamma = in.gamma.data(),
      .beta = in.beta.data(),
      .batch_statistics = batch_statistics,
      .fuse_relu = relu,
      .dgamma = b.dgamma.data(),
      .dbeta = b.dbeta.data(),
      .workspace = ws.get()});
  return b;
}

// Runs `check` under every schedule.
template <typename F>
void under_every_schedule(const std::string& what, F&& check) {
  for (const auto& setting : testing::kernel_test_schedules()) {
    emu::ScopedSchedule schedule(setting.order, setting.seed);
    INFO(what << " under schedule " << emu::to_string(setting));
    check();
  }
}

// Largest |a - b| / max(|b|, 1) over the elements whose bits differ (padding, kUnwritten on both
// sides, is a NaN equal to itself here); a NaN against a number counts as infinite.
double max_scaled_difference(const std::vector<BFloat16>& a, const std::vector<BFloat16>& b) {
  REQUIRE(a.size() == b.size());
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].bits == b[i].bits) continue;
    const double va = kernels::to_float(a[i]), vb = kernels::to_float(b[i]);
    const double d = std::fabs(va - vb) / std::fmax(1.0, std::fabs(vb));
    worst = std::fmax(worst, std::isnan(d) ? INFINITY : d);
  }
  return worst;
}

// An emulated bf16 result against the rounded float32 kernel (bit for bit) and the bf16 twin
// (within one bf16 rounding).
void check_values(const std::string& name, const std::vector<BFloat16>& result, const std::vector<BFloat16>& kernel32,
                  const std::vector<BFloat16>& twin) {
  INFO(name << ": " << testing::differing_elements(result, kernel32)
            << " elements differ from the float32 kernel's rounded once, " << testing::differing_elements(result, twin)
            << " from the twin's; max scaled difference from the twin " << max_scaled_difference(result, twin));
  CHECK(testing::differing_elements(result, kernel32) == 0);
  CHECK(max_scaled_difference(result, twin) <= kBf16Tolerance);
}

void check_floats(const std::string& name, const std::vector<float>& result, const std::vector<float>& kernel32,
                  const std::vector<float>& twin) {
  INFO(name << ": max scaled difference from the twin " << testing::max_scaled_difference(result, twin));
  CHECK(same_bits(result, kernel32));
  CHECK(testing::max_scaled_difference(result, twin) <= kStatsTolerance);
}

std::string describe(const StridedCase& k, bool relu, bool in_place) {
  return k.name() + (relu ? " + relu" : "") + (in_place ? " in place" : "");
}

void check_forward(const StridedCase& k, bool relu, bool in_place, Generator& gen) {
  const Inputs in(k, gen);
  const std::vector<float> x32 = widen(in.x);
  const Forward<BFloat16> twin = forward<Twin>(k, in, in.x, relu, in_place);
  {
    const Forward<float> twin32 = forward<Twin>(k, in, x32, relu, in_place);
    CHECK(testing::differing_elements(twin.y, round_once(twin32.y)) == 0);
    CHECK(same_bits(twin.stats(), twin32.stats()));
  }
  const Forward<float> kernel32 = forward<Kernel>(k, in, x32, relu, in_place);
  const std::vector<BFloat16> kernel32_y = round_once(kernel32.y);
  under_every_schedule("bf16 batch-norm training forward " + describe(k, relu, in_place), [&] {
    const Forward<BFloat16> f = forward<Kernel>(k, in, in.x, relu, in_place);
    check_values("y", f.y, kernel32_y, twin.y);
    check_floats("statistics", f.stats(), kernel32.stats(), twin.stats());
    // The dense block's recompute from the saved statistics: the same bits.
    std::vector<BFloat16> applied(in.x.size(), kUnwritten);
    kernels::emu::batch_norm_apply_bf16(kQueue, {.shape = {k.batch, k.channels, k.spatial},
                                                 .x = {in.x.data() + k.offset, k.stride()},
                                                 .y = {applied.data() + k.offset, k.stride()},
                                                 .mean = f.mean.data(),
                                                 .invstd = f.invstd.data(),
                                                 .gamma = in.gamma.data(),
                                                 .beta = in.beta.data(),
                                                 .fuse_relu = relu});
    CHECK(testing::differing_elements(applied, f.y) == 0);
  });
}

void check_backward(const StridedCase& k, bool relu, bool batch_statistics, bool in_place, Generator& gen) {
  const Inputs in(k, gen);
  const Forward<BFloat16> fwd = forward<Twin>(k, in, in.x, relu, false);
  const Statistics st{fwd.mean, fwd.invstd};
  const std::vector<float> x32 = widen(in.x), dy32 = widen(in.dy);
  const Backward<BFloat16> twin = backward<Twin>(k, in, in.x, in.dy, st, relu, batch_statistics, in_place);
  {
    const Backward<float> twin32 = backward<Twin>(k, in, x32, dy32, st, relu, batch_statistics, in_place);
    CHECK(testing::differing_elements(twin.dx, round_once(twin32.dx)) == 0);
    CHECK(same_bits(twin.gradients(), twin32.gradients()));
  }
  const Backward<float> kernel32 = backward<Kernel>(k, in, x32, dy32, st, relu, batch_statistics, in_place);
  const std::vector<BFloat16> kernel32_dx = round_once(kernel32.dx);
  under_every_schedule(std::string("bf16 batch-norm backward ") + (batch_statistics ? "(training) " : "(eval) ") +
                           describe(k, relu, in_place),
                       [&] {
                         const Backward<BFloat16> b =
                             backward<Kernel>(k, in, in.x, in.dy, st, relu, batch_statistics, in_place);
                         check_values("dx", b.dx, kernel32_dx, twin.dx);
                         check_floats("dgamma, dbeta", b.gradients(), kernel32.gradients(), twin.gradients());
                       });
}

// The moments of x (bf16, or widened) by Impl.
template <typename Impl, typename T>
std::vector<double> moments(const StridedCase& k, const std::vector<T>& x) {
  std::vector<double> out(2 * static_cast<size_t>(k.channels), std::nan(""));
  Workspace ws(k);
  Impl::moments(kernels::BasicBatchNormMomentsArgs<T>{.shape = {k.batch, k.channels, k.spatial},
                                                      .x = {x.data() + k.offset, k.stride()},
                                                      .mean = out.data(),
                                                      .var = out.data() + k.channels,
                                                      .workspace = ws.get()});
  return out;
}

// Largest |a - b| / max(|b|, 1) of two channels' moments.
double max_scaled_difference(const std::vector<double>& a, const std::vector<double>& b) {
  REQUIRE(a.size() == b.size());
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::fmax(worst, std::fabs(a[i] - b[i]) / std::fmax(1.0, std::fabs(b[i])));
  return worst;
}

// batch_norm_moments_bf16: the emulated kernel's are the float32 kernel's of the widened x bit for
// bit and within 1e-12 of the twin's; with batch_norm_statistics_from_moments they give the bf16
// training forward's statistics and running update, bit for bit. The bf16 twin's moments are the
// float32 twin's of the widened x within the same 1e-12, not always to the bit: both sum in double,
// but GCC's vectoriser may split the sum over more lanes for 2-byte elements than for 4-byte ones.
// (The float32 statistics, y and dx rounded from such sums agree bit for bit above, at these seeds;
// a sum within a double ulp of a float rounding boundary would be needed to split them.)
void check_moments(const StridedCase& k, Generator& gen) {
  const Inputs in(k, gen);
  const std::vector<float> x32 = widen(in.x);
  const std::vector<double> twin = moments<Twin>(k, in.x);
  CHECK(max_scaled_difference(twin, moments<Twin>(k, x32)) <= 1e-12);
  const std::vector<double> kernel32 = moments<Kernel>(k, x32);
  under_every_schedule("bf16 batch-norm moments " + k.name(), [&] {
    const std::vector<double> m = moments<Kernel>(k, in.x);
    CHECK(same_bits(m, kernel32));
    const double worst = max_scaled_difference(m, twin);
    INFO("max scaled difference from the twin's moments: " << worst);
    CHECK(worst <= 1e-12);
    Forward<BFloat16> parts{{}, std::vector<float>(twin.size() / 2), std::vector<float>(twin.size() / 2),
                            in.running_mean, in.running_var};
    kernels::emu::batch_norm_statistics_from_moments(kQueue, {.mean = m.data(),
                                                              .var = m.data() + k.channels,
                                                              .channels = k.channels,
                                                              .count = k.batch * k.spatial,
                                                              .momentum = kMomentum,
                                                              .eps = kEps,
                                                              .running_mean = parts.running_mean.data(),
                                                              .running_var = parts.running_var.data(),
                                                              .save_mean = parts.mean.data(),
                                                              .save_invstd = parts.invstd.data()});
    CHECK(same_bits(parts.stats(), forward<Kernel>(k, in, in.x, true, false).stats()));
  });
}

// The float32 test's awkward cases, and bf16's own: a 4-byte-aligned slice (scalar items) and a
// misaligned slice whose stride keeps the vector width.
std::vector<StridedCase> awkward_cases() {
  std::vector<StridedCase> cases = testing::batch_norm_awkward_cases();
  cases.push_back({2, 3, 1000, 2, 0});
  cases.push_back({3, 4, 196, 2, 4});
  return cases;
}

// DenseNet-121's shapes at batch 2 (batchnorm_test_support.h), and at batch 16: 7x7 and 14x14
// channels in one pass (784 scalar and 784 four-element items), 56x56 in 13 blocks per channel;
// dense layers' norm1 reading channel slices of a 128-channel block buffer at 28x28, in one pass
// (batch 4) and in several blocks (batch 24).
std::vector<StridedCase> densenet_cases() {
  std::vector<StridedCase> cases = testing::batch_norm_densenet_cases();
  cases.push_back({16, 8, 49});
  cases.push_back({16, 8, 196});
  cases.push_back({16, 2, 3136});
  cases.push_back({4, 32, 784, 0, 96 * 784});
  cases.push_back({24, 8, 784, 64 * 784, 120 * 784});
  return cases;
}

}  // namespace

TEST_CASE("bf16 batch-norm training forward matches the float32 kernel and the twin at awkward sizes",
          "[emu][bf16][batchnorm]") {
  Generator gen(71);
  for (const StridedCase& k : awkward_cases())
    for (bool relu : {false, true})
      for (bool in_place : {false, true})
        DYNAMIC_SECTION(describe(k, relu, in_place)) { check_forward(k, relu, in_place, gen); }
}

TEST_CASE("bf16 batch-norm backward matches the float32 kernel and the twin at awkward sizes",
          "[emu][bf16][batchnorm]") {
  Generator gen(72);
  for (const StridedCase& k : awkward_cases())
    for (bool relu : {false, true})
      for (bool batch_statistics : {true, false})
        for (bool in_place : {false, true})
          DYNAMIC_SECTION(describe(k, relu, in_place) << (batch_statistics ? " training" : " eval")) {
            check_backward(k, relu, batch_statistics, in_place, gen);
          }
}

TEST_CASE("bf16 batch-norm moments match the float32 kernel, the twin and the training forward",
          "[emu][bf16][batchnorm]") {
  Generator gen(73);
  for (const StridedCase& k : awkward_cases()) DYNAMIC_SECTION(k.name()) { check_moments(k, gen); }
}

TEST_CASE("bf16 batch-norm training matches the float32 kernel and the twin at DenseNet-121 shapes",
          "[emu][bf16][batchnorm][densenet]") {
  Generator gen(74);
  for (const StridedCase& k : densenet_cases())
    DYNAMIC_SECTION(k.name()) {
      check_forward(k, true, false, gen);
      check_backward(k, true, true, false, gen);
      check_moments(k, gen);
    }
}

TEST_CASE("bf16 batch-norm training rounds: its outputs are not the float32 ones", "[emu][bf16][batchnorm]") {
  // The bit-for-bit checks above compare rounded values; most y and dx need more than bf16's 8
  // bits, so they are rounded (a kernel that stored float32 bits truncated would differ).
  Generator gen(75);
  const StridedCase k{2, 4, 49};
  const Inputs in(k, gen);
  const std::vector<float> x32 = widen(in.x), dy32 = widen(in.dy);
  const Forward<BFloat16> f = forward<Twin>(k, in, in.x, false, false);
  const Forward<float> f32 = forward<Twin>(k, in, x32, false, false);
  const Statistics st{f.mean, f.invstd};
  const Backward<BFloat16> b = backward<Twin>(k, in, in.x, in.dy, st, false, true, false);
  const Backward<float> b32 = backward<Twin>(k, in, x32, dy32, st, false, true, false);
  int64_t inexact_y = 0, inexact_dx = 0;
  for (size_t i = 0; i < f.y.size(); ++i) {
    inexact_y += kernels::to_float(f.y[i]) != f32.y[i];
    inexact_dx += kernels::to_float(b.dx[i]) != b32.dx[i];
  }
  CHECK(inexact_y > static_cast<int64_t>(f.y.size()) / 2);
  CHECK(inexact_dx > static_cast<int64_t>(b.dx.size()) / 2);
}

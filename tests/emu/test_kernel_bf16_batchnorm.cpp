// The bf16 batch-norm kernels with fixed statistics (batch_norm_forward_inference_bf16 and
// batch_norm_apply_bf16, kernels/batchnorm.cu), emulated against their CPU twins under the forward,
// reverse and random schedules, at DenseNet-121's shapes and the float32 test's awkward sizes and
// alignments (batch-strided slices, misaligned starts, the one-pass and several-block kernels), out
// of place and in place (y == x).
//
// Two checks, as for the other bf16 kernels (test_kernel_bf16_pool_relu_loss.cpp):
//  - the twin's semantics: the bf16 twin equals the float32 twin on the widened x, its result
//    rounded once to bf16, bit for bit (the statistics it saves: the float32 twin's);
//  - the emulated kernel against the twin, bit for bit: output buffers whole (padding included, so
//    a write outside the slice shows against the sentinel) and the saved statistics. The kernel's
//    normalisation is an explicit fmaf; the twin's (x - mean) * scale + beta is contracted to one
//    fma by GCC where the ISA has it (-march=native, CHEX_NATIVE), hence the same bits. Built
//    without FMA, the twin would round twice and a rare element could differ by one bf16 ulp.
// And apply with inference's saved statistics gives inference's bits (one formula).
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "batchnorm_test_support.h"
#include "bf16_test_support.h"
#include "kernel_test_support.h"
#include "kernels/batchnorm.h"

using namespace chex;
using kernels::BFloat16;
using testing::check_bits_against_twin;
using testing::StridedCase;
using testing::to_bf16;
using testing::widen;

namespace {

// A NaN that no kernel writes (kernels write the canonical 0x7fff): an element left unwritten shows.
constexpr BFloat16 kUnwritten{0x7fc1};
constexpr float kEps = 1e-5f;

// One case's inputs: x (bf16, channel means away from 0, the slice's padding set to kUnwritten) and
// float32 parameters and running statistics.
struct Inputs {
  std::vector<BFloat16> x;
  std::vector<float> gamma, beta, running_mean, running_var;
  Inputs(const StridedCase& k, Generator& gen) {
    std::vector<float> values(static_cast<size_t>(k.buffer()), std::nanf(""));
    for (int64_t n = 0; n < k.batch; ++n)
      for (int64_t c = 0; c < k.channels; ++c)
        for (int64_t i = 0; i < k.spatial; ++i)
          values[static_cast<size_t>(k.offset + n * k.stride() + c * k.spatial + i)] = 2.f * gen.normal() + 0.5f * c - 3.f;
    x = to_bf16(values);
    for (BFloat16& v : x)
      if (std::isnan(kernels::to_float(v))) v = kUnwritten;
    for (int64_t c = 0; c < k.channels; ++c) {
      gamma.push_back(1.f + 0.3f * gen.normal());
      beta.push_back(0.5f * gen.normal());
      running_mean.push_back(0.5f * gen.normal() + 0.5f * c - 3.f);
      running_var.push_back(0.5f + 4.f * gen.uniform());
    }
  }
};

template <typename T>
kernels::BasicBatchNormForwardArgs<T> inference_args(const StridedCase& k, const Inputs& in, const T* x, T* y,
                                                     float* save_mean, float* save_invstd, bool relu) {
  return {.shape = {k.batch, k.channels, k.spatial},
          .x = {x + k.offset, k.stride()},
          .y = {y + k.offset, k.stride()},
          .gamma = in.gamma.data(),
          .beta = in.beta.data(),
          .running_mean = const_cast<float*>(in.running_mean.data()),  // read only in inference
          .running_var = const_cast<float*>(in.running_var.data()),
          .eps = kEps,
          .save_mean = save_mean,
          .save_invstd = save_invstd,
          .fuse_relu = relu};
}

template <typename T>
kernels::BasicBatchNormApplyArgs<T> apply_args(const StridedCase& k, const Inputs& in, const T* x, T* y,
                                               const float* mean, const float* invstd, bool relu) {
  return {.shape = {k.batch, k.channels, k.spatial},
          .x = {x + k.offset, k.stride()},
          .y = {y + k.offset, k.stride()},
          .mean = mean,
          .invstd = invstd,
          .gamma = in.gamma.data(),
          .beta = in.beta.data(),
          .fuse_relu = relu};
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// The y buffer a kernel starts from: x itself in place, else all kUnwritten.
std::vector<BFloat16> start_of_y(const Inputs& in, bool in_place) {
  return in_place ? in.x : std::vector<BFloat16>(in.x.size(), kUnwritten);
}

void check_fixed(const StridedCase& k, bool relu, bool in_place, Generator& gen) {
  const Inputs in(k, gen);
  const auto C = static_cast<size_t>(k.channels);
  const kernels::Queue q;

  // The twin, and its semantics: the float32 twin on the widened x, rounded once. Unwritten
  // elements widen to a NaN no arithmetic makes, and are mapped back to kUnwritten.
  std::vector<BFloat16> y_twin = start_of_y(in, in_place);
  std::vector<float> mean_twin(C), invstd_twin(C);
  const BFloat16* x_twin = in_place ? y_twin.data() : in.x.data();
  kernels::cpu::batch_norm_forward_inference_bf16(
      q, inference_args(k, in, x_twin, y_twin.data(), mean_twin.data(), invstd_twin.data(), relu));
  {
    const std::vector<float> x32 = widen(in.x);
    std::vector<float> y32 = widen(start_of_y(in, in_place)), mean32(C), invstd32(C);
    const float* x32_in = in_place ? y32.data() : x32.data();
    kernels::cpu::batch_norm_forward_inference(q,
                                               inference_args(k, in, x32_in, y32.data(), mean32.data(), invstd32.data(), relu));
    std::vector<BFloat16> rounded_once = to_bf16(y32);
    const float unwritten = kernels::to_float(kUnwritten);
    for (size_t i = 0; i < y32.size(); ++i)
      if (std::memcmp(&y32[i], &unwritten, sizeof(float)) == 0) rounded_once[i] = kUnwritten;
    CHECK(testing::differing_elements(y_twin, rounded_once) == 0);
    CHECK(same_bits(mean_twin, mean32));
    CHECK(same_bits(invstd_twin, invstd32));
  }

  // Apply with inference's statistics: inference's bits, in the twin.
  std::vector<BFloat16> applied_twin = start_of_y(in, in_place);
  const BFloat16* x_apply = in_place ? applied_twin.data() : in.x.data();
  kernels::cpu::batch_norm_apply_bf16(
      q, apply_args(k, in, x_apply, applied_twin.data(), mean_twin.data(), invstd_twin.data(), relu));
  CHECK(testing::differing_elements(applied_twin, y_twin) == 0);

  const std::string what = k.name() + (relu ? " + relu" : "") + (in_place ? " in place" : "");
  check_bits_against_twin<BFloat16>(
      "bf16 batch-norm inference " + what,
      [&] {
        std::vector<BFloat16> y = start_of_y(in, in_place);
        std::vector<float> mean(C, -1.f), invstd(C, -1.f);
        const BFloat16* x = in_place ? y.data() : in.x.data();
        kernels::emu::batch_norm_forward_inference_bf16(q, inference_args(k, in, x, y.data(), mean.data(), invstd.data(), relu));
        CHECK(same_bits(mean, mean_twin));
        CHECK(same_bits(invstd, invstd_twin));
        return y;
      },
      y_twin);
  check_bits_against_twin<BFloat16>(
      "bf16 batch-norm apply " + what,
      [&] {
        std::vector<BFloat16> y = start_of_y(in, in_place);
        const BFloat16* x = in_place ? y.data() : in.x.data();
        kernels::emu::batch_norm_apply_bf16(q, apply_args(k, in, x, y.data(), mean_twin.data(), invstd_twin.data(), relu));
        return y;
      },
      applied_twin);
}

}  // namespace

TEST_CASE("bf16 batch-norm inference and apply match the twins at awkward sizes and alignments",
          "[emu][bf16][batchnorm]") {
  Generator gen(61);
  std::vector<StridedCase> cases = testing::batch_norm_awkward_cases();
  cases.push_back({0, 3, 49});        // no values: only the saved statistics
  cases.push_back({2, 3, 1000, 2, 0});  // 4-byte aligned: bf16's 8-byte items do not fit, scalar path
  cases.push_back({3, 4, 196, 2, 4});   // a misaligned slice whose stride keeps the vector width
  for (const StridedCase& k : cases)
    for (bool relu : {false, true})
      for (bool in_place : {false, true})
        DYNAMIC_SECTION(k.name() << (relu ? " relu" : "") << (in_place ? " in place" : "")) {
          check_fixed(k, relu, in_place, gen);
        }
}

TEST_CASE("bf16 batch-norm inference and apply match the twins at DenseNet-121 shapes",
          "[emu][bf16][batchnorm][densenet]") {
  Generator gen(62);
  for (const StridedCase& k : testing::batch_norm_densenet_cases())
    DYNAMIC_SECTION(k.name()) { check_fixed(k, true, false, gen); }
  // A strided batch: a dense layer's norm1 reading the first 96 channels of a 128-channel block
  // buffer at 28x28.
  const StridedCase slice{2, 96, 784, 0, 32 * 784};
  SECTION(slice.name()) { check_fixed(slice, true, false, gen); }
}

TEST_CASE("bf16 batch-norm rounds: its output is not the float32 output", "[emu][bf16][batchnorm]") {
  // The semantic check above is not vacuous: most outputs need more than bf16's 8 bits, so the twin
  // rounds them (and a twin or kernel that truncated, or rounded twice, would differ).
  Generator gen(63);
  const StridedCase k{2, 4, 49};
  const Inputs in(k, gen);
  const kernels::Queue q;
  std::vector<BFloat16> y(in.x.size(), kUnwritten);
  std::vector<float> y32(in.x.size());
  const std::vector<float> x32 = widen(in.x);
  kernels::cpu::batch_norm_forward_inference_bf16(q, inference_args(k, in, in.x.data(), y.data(), nullptr, nullptr, false));
  kernels::cpu::batch_norm_forward_inference(q, inference_args(k, in, x32.data(), y32.data(), nullptr, nullptr, false));
  int64_t inexact = 0;
  for (size_t i = 0; i < y.size(); ++i) inexact += kernels::to_float(y[i]) != y32[i];
  CHECK(inexact > static_cast<int64_t>(y.size()) / 2);
}

// The determinism and TF32 settings (chex/determinism.h, chex/precision.h) as the programs use them.
#include <catch2/catch.hpp>

#include "chex/determinism.h"
#include "chex/device.h"
#include "chex/error.h"
#include "chex/precision.h"

using namespace chex;

namespace {
// Restores the process-wide setting a test changes.
struct RestoreDeterminism {
  bool saved = deterministic();
  ~RestoreDeterminism() { set_deterministic(saved); }
};
}  // namespace

TEST_CASE("the --deterministic value is on or off, anything else an error naming the option", "[determinism]") {
  CHECK(parse_on_off("--deterministic", "on"));
  CHECK_FALSE(parse_on_off("--deterministic", "off"));
  CHECK_THROWS_WITH(parse_on_off("--deterministic", "maybe"),
                    Catch::Contains("--deterministic takes on or off, not 'maybe'"));
  CHECK_THROWS_AS(parse_on_off("--deterministic", "ON"), Error);
  CHECK_THROWS_AS(parse_on_off("--deterministic", ""), Error);
}

TEST_CASE("convolutions are deterministic by default, and the setting is process-wide", "[determinism]") {
  RestoreDeterminism restore;
  set_deterministic(true);
  CHECK(deterministic());
  const std::string cuda_on = convolution_mode(Device::cuda(0));
  CHECK(cuda_on.starts_with("convolutions on cuda:0: deterministic (cuDNN heuristics), TF32 "));
  set_deterministic(false);
  CHECK_FALSE(deterministic());
  CHECK(convolution_mode(Device::cuda(0)).starts_with(
      "convolutions on cuda:0: timed once per shape, non-deterministic allowed (cudnnFind), TF32 "));
  // The CPU is deterministic whatever the setting says, and has no TF32.
  CHECK(convolution_mode(Device::cpu()) ==
        "convolutions on cpu: deterministic (the CPU always is; --deterministic changes nothing there), no TF32");
}

TEST_CASE("TF32 defaults to PyTorch's (convolutions on, matmuls off), and each choice is described", "[precision]") {
  const CudaTf32 defaults;
  CHECK(defaults.convolutions);
  CHECK_FALSE(defaults.matmuls);
  CHECK(describe(defaults) == "TF32 on for convolutions, off for matmuls");
  CHECK(describe({false, false}) == "TF32 off (plain fp32)");
  CHECK(describe({true, true}) == "TF32 on for convolutions and matmuls");
}

TEST_CASE("set_cuda_tf32 chooses TF32 for convolutions and matmuls, together or apart", "[precision]") {
  const CudaTf32 saved = cuda_tf32();
  set_cuda_tf32(false);  // --precision fp32
  CHECK(cuda_tf32() == CudaTf32{false, false});
  set_cuda_tf32(true);  // --precision tf32
  CHECK(cuda_tf32() == CudaTf32{true, true});
  set_cuda_tf32(CudaTf32{});
  CHECK(cuda_tf32() == CudaTf32{true, false});
  set_cuda_tf32(saved);
}

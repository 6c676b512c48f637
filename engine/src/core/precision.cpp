#include "chex/precision.h"

#include "chex/error.h"
#include "kernels/conv2d.h"

#if defined(CHEX_HAVE_CUDA)
#include "cuda/device_context.h"
#endif

namespace chex {
namespace {
thread_local Precision this_thread_precision = Precision::fp32;
}

std::string_view precision_name(Precision precision) {
  switch (precision) {
    case Precision::fp32: return "fp32";
    case Precision::tf32: return "tf32";
    case Precision::bf16: return "bf16";
  }
  return "?";
}

Precision parse_precision(std::string_view text) {
  for (Precision p : {Precision::fp32, Precision::tf32, Precision::bf16})
    if (text == precision_name(p)) return p;
  CHEX_FAIL("unknown precision '", text, "': use fp32, tf32 or bf16");
}

Precision current_precision() { return this_thread_precision; }

PrecisionScope::PrecisionScope(Precision precision) : previous_(this_thread_precision) {
  this_thread_precision = precision;
}
PrecisionScope::~PrecisionScope() { this_thread_precision = previous_; }

bool cpu_has_native_bf16() { return kernels::cpu::cpu_has_native_bf16(); }

void set_cuda_tf32(bool allowed) {
#if defined(CHEX_HAVE_CUDA)
  cuda::set_tf32_allowed(allowed);
#else
  (void)allowed;
#endif
}

PrecisionPlan plan_precision(Precision asked, Device device, bool training) {
  if (device.is_cuda()) {
    CHEX_CHECK(asked != Precision::bf16,
               "bf16 is not available on CUDA devices yet: use --precision tf32 for tensor cores, or fp32");
    return {asked, {}};
  }
  switch (asked) {
    case Precision::fp32: return {asked, {}};
    case Precision::tf32: return {Precision::fp32, "TF32 is a GPU tensor-core mode; the CPU computes in fp32"};
    case Precision::bf16:
      CHEX_CHECK(!training,
                 "bf16 training is not available yet (bf16 covers inference, on the CPU): train with --precision "
                 "fp32 (or tf32 on a GPU)");
      if (!cpu_has_native_bf16())
        return {Precision::fp32,
                "this CPU has no AVX512_BF16 or AMX, where bf16 would be slower than fp32: computing in fp32"};
      return {asked, {}};
  }
  return {asked, {}};
}

}  // namespace chex

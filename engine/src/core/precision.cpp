#include "chex/precision.h"

#include <atomic>
#include <cstdlib>

#include "chex/error.h"
#include "backend/backend.h"
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

namespace {
// -1 until first read: then CHEX_CUDA_TF32's answer (or the default), or set_cuda_tf32's, as bits
// (1: convolutions, 2: matmuls). Read by every convolution: an atomic, not a lock.
std::atomic<int> tf32_bits{-1};

int bits_of(CudaTf32 t) { return (t.convolutions ? 1 : 0) | (t.matmuls ? 2 : 0); }

CudaTf32 tf32_from_environment() {
  const char* value = std::getenv("CHEX_CUDA_TF32");
  if (!value || !*value) return {};
  const std::string_view text(value);
  CHEX_CHECK(text == "0" || text == "1", "CHEX_CUDA_TF32 must be 0 (no TF32) or 1 (TF32 everywhere), not '", text,
             "'; unset, TF32 is used for convolutions only");
  return {text == "1", text == "1"};
}
}  // namespace

CudaTf32 cuda_tf32() {
  int bits = tf32_bits.load(std::memory_order_acquire);
  if (bits < 0) {
    tf32_bits.compare_exchange_strong(bits, bits_of(tf32_from_environment()));
    bits = tf32_bits.load(std::memory_order_acquire);
  }
  return {(bits & 1) != 0, (bits & 2) != 0};
}

void set_cuda_tf32(CudaTf32 tf32) {
#if defined(CHEX_HAVE_CUDA)
  CHEX_CHECK(!cuda::any_context_created() || tf32 == cuda_tf32(),
             "TF32 can only be switched before the first CUDA operation: choose the precision first");
#endif
  tf32_bits.store(bits_of(tf32), std::memory_order_release);
}

void set_cuda_tf32(bool allowed) { set_cuda_tf32(CudaTf32{allowed, allowed}); }

void set_cuda_tf32_for(Precision precision) {
  if (precision != Precision::bf16) set_cuda_tf32(precision == Precision::tf32);
}

std::string describe(CudaTf32 tf32) {
  if (tf32.convolutions && tf32.matmuls) return "TF32 on for convolutions and matmuls";
  if (tf32.convolutions) return "TF32 on for convolutions, off for matmuls";
  if (tf32.matmuls) return "TF32 off for convolutions, on for matmuls";
  return "TF32 off (plain fp32)";
}

namespace {
// Whether the CUDA table has bf16 convolutions, both passes (asked of the table, which creates no
// CUDA context: TF32 may still be chosen after this).
bool cuda_has_bf16_convolutions() {
#if defined(CHEX_HAVE_CUDA)
  const backend::KernelTable& table = backend::cuda_kernels();
  return table.conv2d_forward_bf16 && table.conv2d_backward_data_bf16 && table.conv2d_backward_weight_bf16;
#else
  return false;
#endif
}
}  // namespace

PrecisionPlan plan_precision(Precision asked, Device device, bool /*training*/) {
  if (device.is_cuda()) {
    CHEX_CHECK(asked != Precision::bf16 || cuda_has_bf16_convolutions(),
               "bf16 is not available on CUDA devices in this build: use --precision tf32 for tensor cores, or fp32");
    return {asked, {}};
  }
  switch (asked) {
    case Precision::fp32: return {asked, {}};
    case Precision::tf32: return {Precision::fp32, "TF32 is a GPU tensor-core mode; the CPU computes in fp32"};
    case Precision::bf16:
      if (!cpu_has_native_bf16())
        return {Precision::fp32,
                "this CPU has no AVX512_BF16 or AMX, where bf16 would be slower than fp32: computing in fp32"};
      return {asked, {}};
  }
  return {asked, {}};
}

}  // namespace chex

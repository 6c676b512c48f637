#pragma once
// Compute precision (--precision fp32|tf32|bf16). Parameters, optimizer state, batch-norm
// statistics, losses and reductions stay fp32 whatever is chosen; the choice changes how the
// convolutions multiply:
//   fp32  plain float32 products (the default on the CPU; parity with PyTorch's fp32 and the CPU
//         twins). On CUDA, the process-wide TF32 setting below decides: by default convolutions
//         use TF32 (PyTorch's default); a program's --precision fp32 refuses TF32 everywhere.
//   tf32  CUDA only: convolutions and GEMMs on TF32 tensor cores (set_cuda_tf32(true), before the
//         first CUDA operation). CPUs have no TF32; there it computes fp32.
//   bf16  mixed precision: convolutions with bf16 operands (8-bit mantissas) and fp32
//         accumulation, forward and backward, inside a PrecisionScope, the way torch.autocast
//         scopes it; everything between the convolutions (activations, batch norms, the loss, the
//         classifier, gradients, master weights) stays fp32. On the CPU through oneDNN's bf16
//         convolutions on AVX512_BF16 / AMX (cpu_has_native_bf16() says whether they are faster
//         there); on CUDA through cuDNN's bf16 convolutions (tensor cores).
#include <string>
#include <string_view>

#include "chex/device.h"

namespace chex {

enum class Precision { fp32, tf32, bf16 };

std::string_view precision_name(Precision precision);
// "fp32", "tf32" or "bf16"; anything else is an error that lists them.
Precision parse_precision(std::string_view text);

// The precision the convolutions use on this thread: fp32 unless a PrecisionScope says otherwise.
Precision current_precision();

// Sets this thread's precision for its lifetime, then restores the previous one:
//   chex::PrecisionScope bf16(chex::Precision::bf16);
//   const chex::Tensor logits = model.forward(images);   // under a NoGradGuard
class PrecisionScope {
 public:
  explicit PrecisionScope(Precision precision);
  ~PrecisionScope();
  PrecisionScope(const PrecisionScope&) = delete;
  PrecisionScope& operator=(const PrecisionScope&) = delete;

 private:
  Precision previous_;
};

// Whether this CPU multiplies bf16 natively (AVX512_BF16 or AMX): where it does not, bf16
// convolutions still run (oneDNN emulates them) but slower than fp32.
bool cpu_has_native_bf16();

// TF32 tensor-core math on CUDA for fp32 work (10-bit mantissas in, fp32 accumulation), process
// wide. The default is PyTorch's (torch.backends.cudnn.allow_tf32 = True,
// torch.backends.cuda.matmul.allow_tf32 = False): TF32 for the convolutions, plain fp32 for the
// matrix products. CHEX_CUDA_TF32=0 in the environment refuses it everywhere, CHEX_CUDA_TF32=1
// allows it everywhere; the programs' --precision fp32 and tf32 do the same. CPUs have no TF32:
// this changes nothing there.
struct CudaTf32 {
  bool convolutions = true;
  bool matmuls = false;
  bool operator==(const CudaTf32&) const = default;
};
CudaTf32 cuda_tf32();
// Must be called before the first CUDA operation (cuBLAS handles take their math mode when
// created): changing it after that is an error.
void set_cuda_tf32(CudaTf32 tf32);
// true: TF32 everywhere (--precision tf32); false: nowhere (--precision fp32).
void set_cuda_tf32(bool allowed);
// What a program's --precision sets on CUDA (before the first CUDA operation): fp32 refuses TF32
// everywhere, tf32 allows it everywhere, bf16 leaves the default (TF32 for the few convolutions that
// stay fp32 under bf16, the stem; fp32 matmuls), as PyTorch's autocast leaves its own.
void set_cuda_tf32_for(Precision precision);
// "TF32 on for convolutions, off for matmuls" and the like, for the programs' start line.
std::string describe(CudaTf32 tf32);

// What a program does with a --precision choice on a device, in one sentence for the user when the
// choice does not hold as asked (e.g. "the CPU has no TF32: computing in fp32"), else empty. Throws
// for a choice that cannot run (bf16 on CUDA in a build without it). `training` says what the
// program does with it; every choice holds for both today.
struct PrecisionPlan {
  Precision precision = Precision::fp32;  // what the program then computes in
  std::string note;                       // empty when the choice holds as asked
};
PrecisionPlan plan_precision(Precision asked, Device device, bool training);

}  // namespace chex

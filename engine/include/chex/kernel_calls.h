#pragma once
// Which kernels the CPU backend runs, how often and at which shapes: while a KernelCallRecorder is
// alive, every call through the CPU backend's kernel table is recorded (the table is wrapped, the
// kernels themselves run as before). For tests and tools that check what a step does, e.g. that
// bench_kernels weights each case by how often a DenseNet-121 step runs it.
//
// The recorder can also hide some of the CPU backend's optional kernels, so that ops take the path
// a backend without them takes (results stay those of the fused path up to rounding; only the
// sequence of kernels changes):
//  - CpuPath::like_cuda keeps only the optional kernels the CUDA table has too (the batch-norm
//    moments and the bf16 convolutions, CHEX_CUDA_OPTIONAL_KERNELS in engine/src/backend/backend.h)
//    and hides the rest (the fused normalising convolutions, ...): exactly the CUDA backend's path
//    (but CUDA's conv2d_forward_bf16 takes NCHW images and no norm only, which the CPU's does not
//    enforce);
//  - CpuPath::without_optional_kernels hides them all: the plain path of a backend with the
//    required kernels only.
//
// One recorder at a time, on the thread that runs the ops (the recording itself is locked).
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace chex {

// One kernel at one shape. The shape is the kernel's own description of its work, as listed in
// kernel_calls.cpp: batch norms [N, C, H*W], pooling [N, C, H, W], global pooling [N, C, H*W],
// channel copies [N, C, H*W, source channels, destination channels] (the batch strides), sigmoid + BCE [N, classes], elementwise [n],
// batch-norm statistics from moments [C, N*H*W];
// empty for kernels not listed there.
struct KernelCall {
  std::string kernel;           // the backend table's name, e.g. "batch_norm_backward"
  std::vector<int64_t> shape;
  auto operator<=>(const KernelCall&) const = default;
};

enum class CpuPath { as_is, like_cuda, without_optional_kernels };

class KernelCallRecorder {
 public:
  explicit KernelCallRecorder(CpuPath path = CpuPath::as_is);
  ~KernelCallRecorder();
  KernelCallRecorder(const KernelCallRecorder&) = delete;
  KernelCallRecorder& operator=(const KernelCallRecorder&) = delete;

  // How many times each kernel ran at each shape since construction (or clear()).
  std::map<KernelCall, int64_t> counts() const;
  // The calls of one kernel, summed over shapes.
  int64_t count(const std::string& kernel) const;
  void clear();

  // Used by the wrapped table.
  void record(KernelCall call);

 private:
  mutable std::mutex mutex_;
  std::map<KernelCall, int64_t> counts_;
};

}  // namespace chex

#pragma once
// What every kernel takes first, on the CPU and on the GPU alike, so that a CPU twin and its GPU
// launcher have the same signature and one table of function pointers can hold either
// (engine/src/backend/backend.h). Plus the shapes the kernel families share.
#include <cstdint>

typedef struct CUstream_st* cudaStream_t;  // the same declaration as CUDA's: no CUDA header needed

namespace chex::kernels {

// Where a launch goes: the device and its stream. CPU kernels ignore it. A kernel only enqueues:
// it never synchronises and never allocates, so a sequence of calls can be captured (CUDA graphs);
// scratch memory is passed in (a `workspace` field, sized by the family's *_workspace_bytes).
struct Queue {
  int device = 0;
  cudaStream_t stream = nullptr;
};

// A [batch, channels, spatial] image tensor (spatial = H*W).
struct ImageShape {
  int64_t batch = 0;
  int64_t channels = 0;
  int64_t spatial = 0;
};

// A batch-strided tensor: within one image the values are densely packed, and image n starts at
// data + n * batch_stride. A channel slice of a dense block's buffer is one.
template <typename T>
struct Strided {
  T* data = nullptr;
  int64_t batch_stride = 0;
};
using StridedIn = Strided<const float>;
using StridedOut = Strided<float>;

}  // namespace chex::kernels

// Each kernel family lists its kernels once, signature included, as an X-macro:
//   #define CHEX_<FAMILY>_KERNELS(X) X(return type, name, parameters after the queue) ...
// and declares them from that list with CHEX_DECLARE_KERNEL, once in namespace cpu (the CPU twins)
// and once in CHEX_GPU_NAMESPACE (the GPU launchers, kernels/gpu.h); the backend's table is
// composed from the same lists (engine/src/backend/backend.h). A twin and its launcher thus have
// the same signature by construction, and a table slot can hold either.
#define CHEX_DECLARE_KERNEL(ret, name, ...) ret name(const ::chex::kernels::Queue& q, __VA_ARGS__);

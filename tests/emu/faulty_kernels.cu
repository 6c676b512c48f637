// Kernels with the bugs that the emulator must expose: races from a missing barrier, divergent
// barriers, reads of unwritten shared memory, shuffles naming absent or exited lanes, deadlocks.
// They compile for the GPU too (their bugs are undefined behaviour, not compile errors).
#include "faulty_kernels.h"

#include "kernels/cuda_compat.h"

namespace chex::emu_demo {

namespace {

constexpr unsigned full_mask = 0xffffffffu;

__global__ void block_sum_missing_barrier_kernel(const float* x, float* block_sums, int n) {
  CHEX_SHARED(float[1024], partial);
  const unsigned tid = threadIdx.x;
  const unsigned i = blockIdx.x * blockDim.x + tid;
  partial[tid] = i < static_cast<unsigned>(n) ? x[i] : 0.0f;
  __syncthreads();
  for (unsigned stride = blockDim.x / 2; stride > 0; stride /= 2)
    if (tid < stride) partial[tid] += partial[tid + stride];  // BUG: no __syncthreads() per step
  if (tid == 0) block_sums[blockIdx.x] = partial[0];
}

__global__ void early_exit_then_barrier_kernel(const float* x, float* y, int n) {
  CHEX_SHARED(float[1024], staged);
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;  // BUG: these threads never reach the barrier below
  staged[threadIdx.x] = x[i];
  __syncthreads();
  y[i] = staged[threadIdx.x];
}

__global__ void split_barriers_kernel(float* y) {
  if (threadIdx.x % 2 == 0) {
    __syncthreads();  // BUG: odd threads wait at the other barrier
    y[threadIdx.x] = 0.0f;
  } else {
    __syncthreads();
    y[threadIdx.x] = 1.0f;
  }
}

__global__ void read_unwritten_shared_kernel(float* y, int* z) {
  CHEX_SHARED(float[256], floats);
  CHEX_SHARED(int[256], ints);
  y[threadIdx.x] = floats[threadIdx.x];  // BUG: never written
  z[threadIdx.x] = ints[threadIdx.x];
}

__global__ void full_mask_shuffle_kernel(const float* x, float* y) {
  // BUG when blockDim.x is not a multiple of 32: the last warp lacks lanes the mask names.
  y[threadIdx.x] = __shfl_down_sync(full_mask, x[threadIdx.x], 1);
}

__global__ void shuffle_after_exit_kernel(float* y) {
  if (threadIdx.x == 3) return;
  y[threadIdx.x] = __shfl_sync(full_mask, static_cast<float>(threadIdx.x), 0);  // BUG: lane 3 is gone
}

__global__ void barrier_versus_shuffle_kernel(float* y) {
  float v = static_cast<float>(threadIdx.x);
  if (threadIdx.x == 0) {
    __syncthreads();  // BUG: lanes 1-31 wait at the shuffle for lane 0, which waits here
  } else {
    v = __shfl_sync(full_mask, v, 0);
    __syncthreads();
  }
  y[threadIdx.x] = v;
}

#ifdef CHEX_EMULATOR  // nvcc refuses this kernel at compile time ("uses too much shared data")
__global__ void too_much_static_shared_kernel(float* y) {
  CHEX_SHARED(float[16 * 1024], big);  // 64 KiB: more than a kernel may declare statically
  big[threadIdx.x] = 1.0f;
  y[threadIdx.x] = big[threadIdx.x];
}
#endif

__global__ void copy_through_dynamic_shared_kernel(const float* x, float* y, int n) {
  CHEX_DYNAMIC_SHARED(float, buffer);
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  buffer[threadIdx.x] = i < n ? x[i] : 0.0f;
  __syncthreads();
  if (i < n) y[i] = buffer[threadIdx.x];
}

__global__ void trivial_kernel(int* never_written) {
  if (never_written && threadIdx.x == 1u << 30) *never_written = 1;
}

}  // namespace

void block_sum_missing_barrier(const float* x, float* block_sums, int n, int threads, cudaStream_t stream) {
  CHEX_LAUNCH(block_sum_missing_barrier_kernel, (n + threads - 1) / threads, threads, 0, stream, x, block_sums, n);
}

void early_exit_then_barrier(const float* x, float* y, int n, int threads, cudaStream_t stream) {
  CHEX_LAUNCH(early_exit_then_barrier_kernel, (n + threads - 1) / threads, threads, 0, stream, x, y, n);
}

void split_barriers(float* y, int threads, cudaStream_t stream) {
  CHEX_LAUNCH(split_barriers_kernel, 1, threads, 0, stream, y);
}

void read_unwritten_shared(float* y, int* z, int threads, cudaStream_t stream) {
  CHEX_LAUNCH(read_unwritten_shared_kernel, 1, threads, 0, stream, y, z);
}

void full_mask_shuffle(const float* x, float* y, int threads, cudaStream_t stream) {
  CHEX_LAUNCH(full_mask_shuffle_kernel, 1, threads, 0, stream, x, y);
}

void shuffle_after_exit(float* y, cudaStream_t stream) { CHEX_LAUNCH(shuffle_after_exit_kernel, 1, 32, 0, stream, y); }

void barrier_versus_shuffle(float* y, cudaStream_t stream) {
  CHEX_LAUNCH(barrier_versus_shuffle_kernel, 1, 32, 0, stream, y);
}

#ifdef CHEX_EMULATOR
void too_much_static_shared(float* y, cudaStream_t stream) {
  CHEX_LAUNCH(too_much_static_shared_kernel, 1, 32, 0, stream, y);
}
#endif

void copy_through_dynamic_shared(const float* x, float* y, int n, unsigned bytes, cudaStream_t stream) {
  CHEX_LAUNCH(copy_through_dynamic_shared_kernel, (n + 255) / 256, 256, bytes, stream, x, y, n);
}

void allow_dynamic_shared(unsigned bytes) { set_max_dynamic_shared_bytes(copy_through_dynamic_shared_kernel, bytes); }

void launch_trivial(unsigned grid_x, unsigned block_x, unsigned block_y, unsigned block_z, cudaStream_t stream) {
  CHEX_LAUNCH(trivial_kernel, grid_x, dim3(block_x, block_y, block_z), 0, stream, nullptr);
}

}  // namespace chex::emu_demo

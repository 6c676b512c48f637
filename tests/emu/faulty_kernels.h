#pragma once
// Launchers of kernels with the bugs the emulator must expose (faulty_kernels.cu).
typedef struct CUstream_st* cudaStream_t;  // as CUDA declares it

namespace chex::emu_demo {

// The block-sum tree with the barrier inside the loop left out: a race.
void block_sum_missing_barrier(const float* x, float* block_sums, int n, int threads, cudaStream_t stream);
// Threads past n return early, then the others wait at __syncthreads.
void early_exit_then_barrier(const float* x, float* y, int n, int threads, cudaStream_t stream);
// Odd and even threads wait at two different __syncthreads.
void split_barriers(float* y, int threads, cudaStream_t stream);
// Copies a shared array that nobody wrote into y (floats) and z (ints).
void read_unwritten_shared(float* y, int* z, int threads, cudaStream_t stream);
// A full-mask shuffle in a block whose last warp is partial.
void full_mask_shuffle(const float* x, float* y, int threads, cudaStream_t stream);
// Lane 3 returns, then the warp shuffles with a full mask.
void shuffle_after_exit(float* y, cudaStream_t stream);
// Lane 0 waits at __syncthreads while lanes 1-31 wait for it at a shuffle.
void barrier_versus_shuffle(float* y, cudaStream_t stream);
// A kernel declaring 64 KiB of static shared memory (emulated only: nvcc refuses to compile it).
void too_much_static_shared(float* y, cudaStream_t stream);
// Copies x to y through `bytes` of dynamic shared memory (blocks of 256 threads, floats).
void copy_through_dynamic_shared(const float* x, float* y, int n, unsigned bytes, cudaStream_t stream);
// Lets copy_through_dynamic_shared use up to `bytes` of dynamic shared memory.
void allow_dynamic_shared(unsigned bytes);
// A launch with the given configuration of a trivial kernel.
void launch_trivial(unsigned grid_x, unsigned block_x, unsigned block_y, unsigned block_z, cudaStream_t stream);

}  // namespace chex::emu_demo

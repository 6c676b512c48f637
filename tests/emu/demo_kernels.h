#pragma once
// Launchers of the demonstration kernels in demo_kernels.cu: small kernels that exercise each part
// of the emulator and that nvcc also compiles. Pointers are device pointers on a GPU; emulated,
// host memory.
typedef struct CUstream_st* cudaStream_t;  // as CUDA declares it

namespace chex::emu_demo {

// block_sums[b] = sum of x over block b's `threads` elements: a shared-memory tree with barriers.
void block_sum(const float* x, float* block_sums, int n, int threads, cudaStream_t stream);
// *total += sum of x: grid-stride loop, warp shuffles, one atomicAdd per block.
void warp_sum(const float* x, float* total, int n, int blocks, int threads, cudaStream_t stream);
// y[i] = sum of x over i's warp, every lane getting it through a butterfly of __shfl_xor_sync.
void warp_allreduce(const float* x, float* y, int n, int threads, cudaStream_t stream);
// y[i] = sum of x over i's segment of `width` lanes (__shfl_up_sync inclusive scan, last lane broadcast).
void segment_scan(const int* x, int* y, int n, int width, cudaStream_t stream);
// bins[v] += number of values v in x (values < bins): per-block histogram in shared memory.
void histogram(const int* values, int n, int* bins, int num_bins, cudaStream_t stream);
// y = a*x + y with a grid smaller than the data (grid-stride loop).
void saxpy(float a, const float* x, float* y, int n, int blocks, cudaStream_t stream);
// y = a*x, a kernel template over type and unroll factor.
void scale(const double* x, double* y, double a, int n, cudaStream_t stream);
// Reverses each block's chunk of x into y through dynamic shared memory.
void reverse_chunks(const float* x, float* y, int n, int threads, cudaStream_t stream);
// out (cols x rows) = transpose of in (rows x cols), 2-D blocks and a padded 2-D shared tile.
void transpose(const float* in, float* out, int rows, int cols, cudaStream_t stream);
// positives[b] = number of x > 0 in block b, counted both by __syncthreads_count and by ballots.
void count_positive(const float* x, int* by_barrier, int* by_ballot, int n, int threads, cudaStream_t stream);

}  // namespace chex::emu_demo

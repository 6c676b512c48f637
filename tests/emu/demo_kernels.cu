// Demonstration kernels: each exercises one part of the emulator (barriers, shared memory, warp
// operations, atomics, templates, dynamic shared memory, 2-D blocks). Compiled by nvcc for the
// GPU architectures and by the host compiler against the emulator.
#include "demo_kernels.h"

#include "kernels/cuda_compat.h"

namespace chex::emu_demo {

namespace {

constexpr unsigned full_mask = 0xffffffffu;

__global__ void block_sum_kernel(const float* x, float* block_sums, int n) {
  CHEX_SHARED(float[1024], partial);
  const unsigned tid = threadIdx.x;
  const unsigned i = blockIdx.x * blockDim.x + tid;
  partial[tid] = i < static_cast<unsigned>(n) ? x[i] : 0.0f;
  __syncthreads();
  for (unsigned stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (tid < stride) partial[tid] += partial[tid + stride];
    __syncthreads();
  }
  if (tid == 0) block_sums[blockIdx.x] = partial[0];
}

__device__ __forceinline__ float warp_reduce_sum(float v) {
  for (int offset = warpSize / 2; offset > 0; offset /= 2) v += __shfl_down_sync(full_mask, v, offset);
  return v;
}

// Block size: a multiple of 32.
__global__ void warp_sum_kernel(const float* x, float* total, int n) {
  CHEX_SHARED(float[32], warp_sums);
  float v = 0.0f;
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x) v += x[i];
  v = warp_reduce_sum(v);
  const unsigned lane = threadIdx.x % warpSize, warp = threadIdx.x / warpSize;
  if (lane == 0) warp_sums[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < blockDim.x / warpSize ? warp_sums[lane] : 0.0f;
    v = warp_reduce_sum(v);
    if (lane == 0) atomicAdd(total, v);
  }
}

__global__ void warp_allreduce_kernel(const float* x, float* y, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  // Lanes past the end join with 0 so that every shuffle has all 32 lanes.
  float v = i < n ? x[i] : 0.0f;
  for (int lane_mask = 16; lane_mask > 0; lane_mask /= 2) v += __shfl_xor_sync(full_mask, v, lane_mask);
  if (i < n) y[i] = v;
}

__global__ void segment_scan_kernel(const int* x, int* y, int n, int width) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  int v = i < n ? x[i] : 0;
  for (int delta = 1; delta < width; delta *= 2) {
    const int up = __shfl_up_sync(full_mask, v, delta, width);
    if (static_cast<int>(threadIdx.x % width) >= delta) v += up;
  }
  v = __shfl_sync(full_mask, v, width - 1, width);  // the segment's total
  if (i < n) y[i] = v;
}

__global__ void histogram_kernel(const int* values, int n, int* bins, int num_bins) {
  CHEX_SHARED(int[256], local);
  for (int b = threadIdx.x; b < num_bins; b += blockDim.x) local[b] = 0;
  __syncthreads();
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x)
    atomicAdd(&local[values[i]], 1);
  __syncthreads();
  for (int b = threadIdx.x; b < num_bins; b += blockDim.x)
    if (local[b] != 0) atomicAdd(&bins[b], local[b]);
}

__global__ void saxpy_kernel(float a, const float* __restrict__ x, float* __restrict__ y, int n) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x) y[i] = a * x[i] + y[i];
}

template <typename T, int Unroll>
__global__ void scale_kernel(const T* x, T* y, T a, int n) {
  const int first = (blockIdx.x * blockDim.x + threadIdx.x) * Unroll;
#pragma unroll
  for (int k = 0; k < Unroll; ++k)
    if (first + k < n) y[first + k] = a * __ldg(&x[first + k]);
}

__global__ void reverse_chunks_kernel(const float* x, float* y, int n) {
  CHEX_DYNAMIC_SHARED(float, chunk);
  const unsigned t = threadIdx.x;
  const unsigned begin = blockIdx.x * blockDim.x;
  const unsigned size = min(blockDim.x, n - begin);
  if (t < size) chunk[t] = x[begin + t];
  __syncthreads();
  if (t < size) y[begin + t] = chunk[size - 1 - t];
}

constexpr int tile_dim = 16;

__global__ void transpose_kernel(const float* in, float* out, int rows, int cols) {
  CHEX_SHARED(float[tile_dim][tile_dim + 1], tile);  // +1: no bank conflicts on the GPU
  int col = blockIdx.x * tile_dim + threadIdx.x, row = blockIdx.y * tile_dim + threadIdx.y;
  if (row < rows && col < cols) tile[threadIdx.y][threadIdx.x] = in[row * cols + col];
  __syncthreads();
  col = blockIdx.y * tile_dim + threadIdx.x;
  row = blockIdx.x * tile_dim + threadIdx.y;
  if (row < cols && col < rows) out[row * rows + col] = tile[threadIdx.x][threadIdx.y];
}

__global__ void count_positive_kernel(const float* x, int* by_barrier, int* by_ballot, int n) {
  CHEX_SHARED(int, ballot_total);
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  const int positive = i < n && x[i] > 0.0f;
  if (threadIdx.x == 0) ballot_total = 0;
  const int count = __syncthreads_count(positive);
  const unsigned votes = __ballot_sync(full_mask, positive);
  if (threadIdx.x % warpSize == 0) atomicAdd(&ballot_total, __popc(votes));
  __syncthreads();
  if (threadIdx.x == 0) {
    by_barrier[blockIdx.x] = count;
    by_ballot[blockIdx.x] = ballot_total;
  }
}

unsigned blocks_for(int n, int per_block) { return static_cast<unsigned>((n + per_block - 1) / per_block); }

}  // namespace

void block_sum(const float* x, float* block_sums, int n, int threads, cudaStream_t stream) {
  CHEX_LAUNCH(block_sum_kernel, blocks_for(n, threads), threads, 0, stream, x, block_sums, n);
}

void warp_sum(const float* x, float* total, int n, int blocks, int threads, cudaStream_t stream) {
  CHEX_LAUNCH(warp_sum_kernel, blocks, threads, 0, stream, x, total, n);
}

void warp_allreduce(const float* x, float* y, int n, int threads, cudaStream_t stream) {
  CHEX_LAUNCH(warp_allreduce_kernel, blocks_for(n, threads), threads, 0, stream, x, y, n);
}

void segment_scan(const int* x, int* y, int n, int width, cudaStream_t stream) {
  CHEX_LAUNCH(segment_scan_kernel, blocks_for(n, 64), 64, 0, stream, x, y, n, width);
}

void histogram(const int* values, int n, int* bins, int num_bins, cudaStream_t stream) {
  CHEX_LAUNCH(histogram_kernel, 3, 128, 0, stream, values, n, bins, num_bins);
}

void saxpy(float a, const float* x, float* y, int n, int blocks, cudaStream_t stream) {
  CHEX_LAUNCH(saxpy_kernel, blocks, 64, 0, stream, a, x, y, n);
}

void scale(const double* x, double* y, double a, int n, cudaStream_t stream) {
  constexpr int unroll = 4;
  CHEX_LAUNCH((scale_kernel<double, unroll>), blocks_for(n, 32 * unroll), 32, 0, stream, x, y, a, n);
}

void reverse_chunks(const float* x, float* y, int n, int threads, cudaStream_t stream) {
  CHEX_LAUNCH(reverse_chunks_kernel, blocks_for(n, threads), threads, threads * sizeof(float), stream, x, y, n);
}

void transpose(const float* in, float* out, int rows, int cols, cudaStream_t stream) {
  const dim3 grid(blocks_for(cols, tile_dim), blocks_for(rows, tile_dim));
  CHEX_LAUNCH(transpose_kernel, grid, dim3(tile_dim, tile_dim), 0, stream, in, out, rows, cols);
}

void count_positive(const float* x, int* by_barrier, int* by_ballot, int n, int threads, cudaStream_t stream) {
  CHEX_LAUNCH(count_positive_kernel, blocks_for(n, threads), threads, 0, stream, x, by_barrier, by_ballot, n);
}

}  // namespace chex::emu_demo

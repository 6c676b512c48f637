// Elementwise kernels (CUDA twins of elementwise_cpu.cpp): grid-stride loops, float4 loads and
// stores when every pointer is 16-byte aligned (the vector body and the scalar tail in one
// launch), scalar accesses otherwise. In-place calls are fine: each element is read before it is
// written, by the same thread. ReLU's kernels (and map2, which its backward goes through) are
// templates on the element type D (float or __nv_bfloat16): 16-byte vectors of four floats or
// eight bf16, values computed in float and rounded once on the store (kernels/element_type.cuh).
//
// Launch shape: 256 threads a block, one block per 256 vectors up to 4,096 blocks (about four
// waves of the 1,056 blocks of 256 an H200's 132 SMs hold at once: on paper, the last wave's
// imbalance costs a few percent at most), the grid-stride loop covering the rest. Every map,
// ReLU's backward included, goes through map0/map1/map2; ReLU's forward keeps its own kernels.
#include "kernels/elementwise.h"

#include <algorithm>
#include <cstdint>

#include "kernels/cuda_compat.h"
#include "kernels/cuda_helpers.cuh"
#include "kernels/element_type.cuh"

namespace chex::kernels::CHEX_GPU_NAMESPACE {
namespace {

constexpr int kThreads = 256;

int blocks_for(int64_t work) {
  // Enough blocks to fill a large GPU several times over; the grid-stride loop covers the rest.
  const int64_t blocks = (work + kThreads - 1) / kThreads;
  return static_cast<int>(blocks < 4096 ? (blocks > 0 ? blocks : 1) : 4096);
}

template <typename D>
__device__ __forceinline__ D relu_of(D v) {
  return from_float<D>(relu(to_float(v)));
}

template <typename D>
__global__ void relu_forward_vector(const Vector<D>* x, Vector<D>* y, int64_t vectors) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < vectors;
       i += int64_t{gridDim.x} * blockDim.x) {
    Vector<D> v = x[i];
#pragma unroll
    for (int k = 0; k < Vector<D>::kSize; ++k) v.v[k] = relu_of(v.v[k]);
    y[i] = v;
  }
}

template <typename D>
__global__ void relu_forward_scalar(const D* x, D* y, int64_t begin, int64_t n) {
  for (int64_t i = begin + blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x)
    y[i] = relu_of(x[i]);
}

// ---- Maps: y[i] = op(a[i]) or op(a[i], b[i]). Ops are small structs carrying their scalars.
struct Fill {
  float value;
  __device__ float operator()() const { return value; }
};
struct AddScalar {  // y + value, through map1 with a = y
  float value;
  __device__ float operator()(float a) const { return a + value; }
};
struct Add {
  __device__ float operator()(float a, float b) const { return a + b; }
};
struct Sub {
  __device__ float operator()(float a, float b) const { return a - b; }
};
struct Mul {
  __device__ float operator()(float a, float b) const { return a * b; }
};
struct Scale {
  float factor;
  __device__ float operator()(float a) const { return factor * a; }
};
struct Axpy {  // a = x, b = y: y + alpha * x
  float alpha;
  __device__ float operator()(float x, float y) const { return y + alpha * x; }
};
struct Sigmoid {
  __device__ float operator()(float x) const { return 1.f / (1.f + expf(-x)); }
};
struct ReluBackward {  // a = y, b = dy: the gradient passes where the output is positive
  __device__ float operator()(float y, float dy) const { return y > 0.f ? dy : 0.f; }
};
struct SigmoidBackward {  // a = y, b = dy, as the twin's dy * y * (1 - y)
  __device__ float operator()(float y, float dy) const { return dy * y * (1.f - y); }
};

// The float4 body covers [0, n4) vectors (n4 = 0 when unaligned), the scalar loop [4 * n4, n).
template <typename Op>
__global__ void map0_kernel(Op op, float* y, int64_t n4, int64_t n) {
  for (int64_t i = first_index(); i < n4; i += grid_threads()) {
    reinterpret_cast<float4*>(y)[i] = make_float4(op(), op(), op(), op());
  }
  for (int64_t i = 4 * n4 + first_index(); i < n; i += grid_threads()) y[i] = op();
}

template <typename Op>
__global__ void map1_kernel(Op op, const float* a, float* y, int64_t n4, int64_t n) {
  for (int64_t i = first_index(); i < n4; i += grid_threads()) {
    const float4 u = reinterpret_cast<const float4*>(a)[i];
    reinterpret_cast<float4*>(y)[i] = make_float4(op(u.x), op(u.y), op(u.z), op(u.w));
  }
  for (int64_t i = 4 * n4 + first_index(); i < n; i += grid_threads()) y[i] = op(a[i]);
}

// On D = float or bf16 arrays: the 16-byte vector body covers [0, vectors) (0 when unaligned),
// the scalar loop the rest; op computes in float, its result rounded once to D.
template <typename Op, typename D>
__global__ void map2_kernel(Op op, const D* a, const D* b, D* y, int64_t vectors, int64_t n) {
  constexpr int kSize = Vector<D>::kSize;
  for (int64_t i = first_index(); i < vectors; i += grid_threads()) {
    const Vector<D> u = reinterpret_cast<const Vector<D>*>(a)[i];
    const Vector<D> v = reinterpret_cast<const Vector<D>*>(b)[i];
    Vector<D> w;
#pragma unroll
    for (int k = 0; k < kSize; ++k) w.v[k] = from_float<D>(op(to_float(u.v[k]), to_float(v.v[k])));
    reinterpret_cast<Vector<D>*>(y)[i] = w;
  }
  for (int64_t i = kSize * vectors + first_index(); i < n; i += grid_threads())
    y[i] = from_float<D>(op(to_float(a[i]), to_float(b[i])));
}

// Threads per block: one vector (or, unaligned, one element) each, capped by blocks_for.
int64_t work_items(int64_t n, int64_t vectors, int64_t per_vector = 4) {
  return vectors > 0 ? vectors + (n - per_vector * vectors) : n;
}

template <typename Op>
void map0(Op op, float* y, int64_t n, cudaStream_t stream) {
  if (n <= 0) return;
  const int64_t n4 = aligned16(y) ? n / 4 : 0;
  CHEX_LAUNCH(map0_kernel<Op>, blocks_for(work_items(n, n4)), kThreads, 0, stream, op, y, n4, n);
}

template <typename Op>
void map1(Op op, const float* a, float* y, int64_t n, cudaStream_t stream) {
  if (n <= 0) return;
  const int64_t n4 = aligned16(a) && aligned16(y) ? n / 4 : 0;
  CHEX_LAUNCH(map1_kernel<Op>, blocks_for(work_items(n, n4)), kThreads, 0, stream, op, a, y, n4, n);
}

// T: float or BFloat16 (the interface type).
template <typename Op, typename T>
void map2(Op op, const T* a, const T* b, T* y, int64_t n, cudaStream_t stream) {
  if (n <= 0) return;
  using D = DeviceElement<T>;
  constexpr int64_t kSize = Vector<D>::kSize;
  const int64_t vectors = aligned16(a) && aligned16(b) && aligned16(y) ? n / kSize : 0;
  CHEX_LAUNCH((map2_kernel<Op, D>), blocks_for(work_items(n, vectors, kSize)), kThreads, 0, stream, op,
              device_pointer(a), device_pointer(b), device_pointer(y), vectors, n);
}

template <typename T>
void launch_relu_forward(const T* x, T* y, int64_t n, cudaStream_t stream) {
  if (n <= 0) return;
  using D = DeviceElement<T>;
  constexpr int64_t kSize = Vector<D>::kSize;
  int64_t done = 0;
  if (aligned16(x) && aligned16(y)) {
    const int64_t vectors = n / kSize;
    if (vectors > 0)
      CHEX_LAUNCH(relu_forward_vector<D>, blocks_for(vectors), kThreads, 0, stream,
                  reinterpret_cast<const Vector<D>*>(x), reinterpret_cast<Vector<D>*>(y), vectors);
    done = vectors * kSize;
  }
  if (done < n)
    CHEX_LAUNCH(relu_forward_scalar<D>, blocks_for(n - done), kThreads, 0, stream, device_pointer(x),
                device_pointer(y), done, n);
}

// ---- Deterministic sum: per-block partial sums in double, then one block adds them up. The work
// each thread does and the reduction tree depend only on n and the grid, never on timing.
constexpr int kSumThreads = 256;

// Sums `value` over the block in a fixed tree; the total is valid in thread 0.
__device__ double block_sum(double value) {
  CHEX_SHARED(double[kSumThreads], partial);
  partial[threadIdx.x] = value;
  __syncthreads();
  for (unsigned half = kSumThreads / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) partial[threadIdx.x] += partial[threadIdx.x + half];
    __syncthreads();
  }
  return partial[0];
}

__global__ void sum_partials_kernel(const float* x, int64_t n4, int64_t n, double* partials) {
  double s = 0.0;
  for (int64_t i = first_index(); i < n4; i += grid_threads()) {
    const float4 v = reinterpret_cast<const float4*>(x)[i];
    s += (static_cast<double>(v.x) + v.y) + (static_cast<double>(v.z) + v.w);
  }
  for (int64_t i = 4 * n4 + first_index(); i < n; i += grid_threads()) s += x[i];
  const double total = block_sum(s);
  if (threadIdx.x == 0) partials[blockIdx.x] = total;
}

__global__ void sum_final_kernel(const double* partials, int count, double* result) {
  double s = 0.0;
  for (int i = static_cast<int>(threadIdx.x); i < count; i += kSumThreads) s += partials[i];
  const double total = block_sum(s);
  if (threadIdx.x == 0) *result = total;
}

// The same total, stored as float.
__global__ void sum_final_float_kernel(const double* partials, int count, float* result) {
  double s = 0.0;
  for (int i = static_cast<int>(threadIdx.x); i < count; i += kSumThreads) s += partials[i];
  const double total = block_sum(s);
  if (threadIdx.x == 0) *result = static_cast<float>(total);
}

}  // namespace

void fill(const Queue& q, float* y, int64_t n, float value) { map0(Fill{value}, y, n, q.stream); }
void add_scalar(const Queue& q, float* y, int64_t n, float value) { map1(AddScalar{value}, y, y, n, q.stream); }
void add(const Queue& q, const float* a, const float* b, float* y, int64_t n) { map2(Add{}, a, b, y, n, q.stream); }
void sub(const Queue& q, const float* a, const float* b, float* y, int64_t n) { map2(Sub{}, a, b, y, n, q.stream); }
void mul(const Queue& q, const float* a, const float* b, float* y, int64_t n) { map2(Mul{}, a, b, y, n, q.stream); }
void scale(const Queue& q, const float* a, float factor, float* y, int64_t n) {
  map1(Scale{factor}, a, y, n, q.stream);
}
void axpy(const Queue& q, float alpha, const float* x, float* y, int64_t n) {
  map2(Axpy{alpha}, x, y, y, n, q.stream);
}
void sigmoid_forward(const Queue& q, const float* x, float* y, int64_t n) { map1(Sigmoid{}, x, y, n, q.stream); }
void sigmoid_backward(const Queue& q, const float* y, const float* dy, float* dx, int64_t n) {
  map2(SigmoidBackward{}, y, dy, dx, n, q.stream);
}

void relu_forward(const Queue& q, const float* x, float* y, int64_t n) { launch_relu_forward(x, y, n, q.stream); }

// Through map2: float4 loads of y and dy and stores of dx, the scalar tail in the same launch (a
// scalar loop over every element ran at 0.80-0.89x cuDNN's speed on the H200).
void relu_backward(const Queue& q, const float* y, const float* dy, float* dx, int64_t n) {
  map2(ReluBackward{}, y, dy, dx, n, q.stream);
}

void relu_forward_bf16(const Queue& q, const BFloat16* x, BFloat16* y, int64_t n) {
  launch_relu_forward(x, y, n, q.stream);
}

void relu_backward_bf16(const Queue& q, const BFloat16* y, const BFloat16* dy, BFloat16* dx, int64_t n) {
  map2(ReluBackward{}, y, dy, dx, n, q.stream);
}

namespace {

// Launches the partial sums into workspace and returns their count (0 for an empty x: the final
// kernel then still stores 0, a device-side write, so that the result is defined).
int sum_partials(const float* x, int64_t n, double* workspace, cudaStream_t stream) {
  if (n <= 0) return 0;
  const int64_t n4 = aligned16(x) ? n / 4 : 0;
  // Each thread sums about 4 vectors before the tree; at most sum_workspace_size() partials.
  const int64_t blocks =
      std::clamp<int64_t>((work_items(n, n4) + 4 * kSumThreads - 1) / (4 * kSumThreads), 1, sum_workspace_size());
  CHEX_LAUNCH(sum_partials_kernel, static_cast<int>(blocks), kSumThreads, 0, stream, x, n4, n, workspace);
  return static_cast<int>(blocks);
}

}  // namespace

void sum_in_double(const float* x, int64_t n, double* workspace, double* result, cudaStream_t stream) {
  const int blocks = sum_partials(x, n, workspace, stream);
  CHEX_LAUNCH(sum_final_kernel, 1, kSumThreads, 0, stream, workspace, blocks, result);
}

size_t sum_workspace_bytes(const Queue&, int64_t /*n*/) { return sizeof(double) * sum_workspace_size(); }

void sum(const Queue& q, const SumArgs& a) {
  double* partials = static_cast<double*>(a.workspace);
  const int blocks = sum_partials(a.x, a.n, partials, q.stream);
  CHEX_LAUNCH(sum_final_float_kernel, 1, kSumThreads, 0, q.stream, partials, blocks, a.result);
}

}  // namespace chex::kernels::CHEX_GPU_NAMESPACE

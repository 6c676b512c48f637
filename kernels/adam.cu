// Multi-tensor optimizer kernels (CUDA twins of optimizer_cpu.cpp): one launch updates every
// parameter of the model. The tensors are cut into chunks of kOptimizerChunk elements; each block
// takes a chunk, finds its tensor by binary search over the table's first_chunk (the same for all
// threads of the block, so the reads are broadcasts) and updates it with float4 accesses when all
// of the tensor's arrays are 16-byte aligned (chunk starts keep that alignment), scalar otherwise.
// Each element is updated by the twin's formula, so no order of blocks or threads matters.
#include <algorithm>

#include "kernels/cuda_compat.h"
#include "kernels/cuda_helpers.cuh"
#include "kernels/optimizer.h"

namespace chex::kernels::CHEX_GPU_NAMESPACE {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 8192;  // the chunk loop strides over the rest

// The tensor that owns `chunk`: the last with first_chunk <= chunk (empty tensors own no chunk
// and share their first_chunk with the next one, so "last" skips them).
template <typename Tensor>
__device__ int tensor_of_chunk(const Tensor* table, int count, int64_t chunk) {
  int low = 0, high = count - 1;  // the answer lies in [low, high]
  while (low < high) {
    const int mid = (low + high + 1) / 2;
    if (table[mid].first_chunk <= chunk) {
      low = mid;
    } else {
      high = mid - 1;
    }
  }
  return low;
}

__device__ __forceinline__ void adam_element(float& p, float g, float& m, float& v, const AdamHyper& h,
                                             const AdamStep& s) {
  const float gi = h.weight_decay != 0.f ? g + h.weight_decay * p : g;
  m = m * h.beta1 + h.one_minus_beta1 * gi;
  v = v * h.beta2 + h.one_minus_beta2 * gi * gi;
  const float denom = sqrtf(v) / s.bias_correction2_sqrt + h.eps;
  p = p + s.neg_step_size * m / denom;
}

// `buffer` is the momentum buffer's element, used when has_buffer (a reference, not a pointer, so
// that float4 components stay in registers).
__device__ __forceinline__ void sgd_element(float& p, float g, float& buffer, bool has_buffer, bool first_step,
                                            const SgdHyper& h) {
  const float gi = h.weight_decay != 0.f ? g + h.weight_decay * p : g;
  float direction = gi;
  if (has_buffer) {
    buffer = first_step ? gi : buffer * h.momentum + h.one_minus_dampening * gi;
    direction = h.nesterov ? gi + h.momentum * buffer : buffer;
  }
  p = p + h.neg_lr * direction;
}

__global__ void adam_kernel(const AdamTensor* table, int count, int64_t chunks, AdamHyper h) {
  for (int64_t chunk = blockIdx.x; chunk < chunks; chunk += gridDim.x) {
    const AdamTensor& t = table[tensor_of_chunk(table, count, chunk)];
    const int64_t begin = (chunk - t.first_chunk) * kOptimizerChunk;
    const int64_t len = min(kOptimizerChunk, t.numel - begin);
    float* p = t.param + begin;
    const float* g = t.grad + begin;
    float* m = t.exp_avg + begin;
    float* v = t.exp_avg_sq + begin;
    const AdamStep s = t.step;
    int64_t vectors = 0;
    if (aligned16(p) && aligned16(g) && aligned16(m) && aligned16(v)) {
      vectors = len / 4;
      for (int64_t i = threadIdx.x; i < vectors; i += blockDim.x) {
        float4 p4 = reinterpret_cast<float4*>(p)[i], m4 = reinterpret_cast<float4*>(m)[i];
        float4 v4 = reinterpret_cast<float4*>(v)[i];
        const float4 g4 = reinterpret_cast<const float4*>(g)[i];
        adam_element(p4.x, g4.x, m4.x, v4.x, h, s);
        adam_element(p4.y, g4.y, m4.y, v4.y, h, s);
        adam_element(p4.z, g4.z, m4.z, v4.z, h, s);
        adam_element(p4.w, g4.w, m4.w, v4.w, h, s);
        reinterpret_cast<float4*>(p)[i] = p4;
        reinterpret_cast<float4*>(m)[i] = m4;
        reinterpret_cast<float4*>(v)[i] = v4;
      }
    }
    for (int64_t i = 4 * vectors + threadIdx.x; i < len; i += blockDim.x) adam_element(p[i], g[i], m[i], v[i], h, s);
  }
}

__global__ void sgd_kernel(const SgdTensor* table, int count, int64_t chunks, SgdHyper h) {
  for (int64_t chunk = blockIdx.x; chunk < chunks; chunk += gridDim.x) {
    const SgdTensor& t = table[tensor_of_chunk(table, count, chunk)];
    const int64_t begin = (chunk - t.first_chunk) * kOptimizerChunk;
    const int64_t len = min(kOptimizerChunk, t.numel - begin);
    float* p = t.param + begin;
    const float* g = t.grad + begin;
    float* buffer = t.momentum_buffer ? t.momentum_buffer + begin : nullptr;
    const bool has_buffer = buffer != nullptr;
    const bool first_step = t.first_step != 0;
    int64_t vectors = 0;
    if (aligned16(p) && aligned16(g) && (!has_buffer || aligned16(buffer))) {
      vectors = len / 4;
      for (int64_t i = threadIdx.x; i < vectors; i += blockDim.x) {
        float4 p4 = reinterpret_cast<float4*>(p)[i];
        const float4 g4 = reinterpret_cast<const float4*>(g)[i];
        float4 b4 = has_buffer ? reinterpret_cast<float4*>(buffer)[i] : make_float4(0.f, 0.f, 0.f, 0.f);
        sgd_element(p4.x, g4.x, b4.x, has_buffer, first_step, h);
        sgd_element(p4.y, g4.y, b4.y, has_buffer, first_step, h);
        sgd_element(p4.z, g4.z, b4.z, has_buffer, first_step, h);
        sgd_element(p4.w, g4.w, b4.w, has_buffer, first_step, h);
        reinterpret_cast<float4*>(p)[i] = p4;
        if (has_buffer) reinterpret_cast<float4*>(buffer)[i] = b4;
      }
    }
    for (int64_t i = 4 * vectors + threadIdx.x; i < len; i += blockDim.x) {
      float b = has_buffer ? buffer[i] : 0.f;
      sgd_element(p[i], g[i], b, has_buffer, first_step, h);
      if (has_buffer) buffer[i] = b;
    }
  }
}

int blocks_for_chunks(int64_t chunks) { return static_cast<int>(std::min(chunks, kMaxBlocks)); }

}  // namespace

void adam_multi_tensor(const Queue& q, const AdamMultiTensorArgs& a) {
  if (a.count <= 0 || a.chunks <= 0) return;
  CHEX_LAUNCH(adam_kernel, blocks_for_chunks(a.chunks), kThreads, 0, q.stream, a.table, a.count, a.chunks, a.hyper);
}

void sgd_multi_tensor(const Queue& q, const SgdMultiTensorArgs& a) {
  if (a.count <= 0 || a.chunks <= 0) return;
  CHEX_LAUNCH(sgd_kernel, blocks_for_chunks(a.chunks), kThreads, 0, q.stream, a.table, a.count, a.chunks, a.hyper);
}

}  // namespace chex::kernels::CHEX_GPU_NAMESPACE

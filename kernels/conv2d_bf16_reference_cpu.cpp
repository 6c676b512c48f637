// The bf16 convolutions on the CPU by their definition (conv2d_*_bf16_reference, kernels/conv2d.h):
// the operands are rounded to bf16 (nearest even, kernels/bfloat16.h) into dense NCHW fp32 copies,
// which the fp32 kernels then multiply, accumulating in fp32. Each product of two bf16 values is
// exact in fp32, so this is what a bf16 unit with fp32 accumulation computes, up to the order of
// the additions. It runs on any CPU and in any build; it is the oracle the oneDNN kernels
// (conv2d_bf16_cpu.cpp) are tested against, and the bf16 kernels of a build without oneDNN
// (CHEX_GEMM=openblas), where it is slower than fp32 (the rounding is one more pass over the
// operands, and channels-last images are transposed).
#include <algorithm>
#include <cstring>

#include "batchnorm.h"
#include "bfloat16.h"
#include "chex/error.h"
#include "conv2d.h"

namespace chex::kernels::cpu {

namespace {

float round_to_bf16(float value) { return to_float(to_bfloat16(value)); }

// dst = src rounded to bf16, for `count` images of `image` floats each, src batch-strided.
void round_images(const float* src, int64_t src_batch_stride, int64_t count, int64_t image, float* dst) {
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < count; ++n) {
    const float* in = src + n * src_batch_stride;
    float* out = dst + n * image;
#pragma omp simd
    for (int64_t i = 0; i < image; ++i) out[i] = round_to_bf16(in[i]);
  }
}

// The workspace: the rounded operands, then the fp32 kernels' own workspace (64-byte aligned).
constexpr size_t kAlign = 64;
size_t aligned_floats(int64_t floats) {
  return (static_cast<size_t>(floats) * sizeof(float) + kAlign - 1) / kAlign * kAlign;
}

struct RoundedOperands {
  float* first;   // dy (backward data) or x (backward weight)
  float* second;  // the weight (backward data) or dy (backward weight)
  void* fp32_workspace;
};

RoundedOperands carve(void* workspace, int64_t first_floats, int64_t second_floats) {
  char* base = static_cast<char*>(workspace);
  const size_t first_bytes = aligned_floats(first_floats), second_bytes = aligned_floats(second_floats);
  return {reinterpret_cast<float*>(base), reinterpret_cast<float*>(base + first_bytes),
          base + first_bytes + second_bytes};
}

// x' = x normalised by norm (when set) and rounded, from NCHW or channels-last images into dense
// NCHW ones (the fp32 kernels' layout).
void round_input(const Conv2dGeometry& g, StridedIn x, bool channels_last, const InputNormalization* norm, float* dst) {
  const int64_t plane = g.in_plane(), channels = g.in_channels;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < g.batch; ++n)
    for (int64_t c = 0; c < channels; ++c) {
      const float* in = x.data + n * x.batch_stride + (channels_last ? c : c * plane);
      const int64_t step = channels_last ? channels : 1;
      float* out = dst + n * g.in_sample() + c * plane;
      for (int64_t p = 0; p < plane; ++p) {
        const float v = in[p * step];
        out[p] = round_to_bf16(norm ? batch_norm_relu(v, norm->mean[c], norm->invstd[c] * norm->gamma[c], norm->beta[c])
                                    : v);
      }
    }
}

}  // namespace

size_t conv2d_bf16_reference_workspace_bytes(const Queue& q, const Conv2dGeometry& g, const Bf16Layout& layout) {
  const size_t result = layout.y_channels_last ? aligned_floats(g.batch * g.out_sample()) : 0;
  return aligned_floats(g.batch * g.in_sample()) + aligned_floats(g.out_channels * g.patch_size()) + result +
         conv2d_workspace_bytes(q, g);
}

void conv2d_forward_bf16_reference(const Queue& q, const Conv2dForwardBf16Args& a) {
  const Conv2dGeometry& g = a.geometry;
  CHEX_CHECK(a.workspace != nullptr,
             "conv2d_forward_bf16_reference: needs conv2d_bf16_reference_workspace_bytes of workspace");
  const int64_t weight = g.out_channels * g.patch_size();
  char* base = static_cast<char*>(a.workspace);
  auto* x = reinterpret_cast<float*>(base);
  base += aligned_floats(g.batch * g.in_sample());
  auto* w = reinterpret_cast<float*>(base);
  base += aligned_floats(weight);
  float* result = nullptr;  // the NCHW result, when y is channels-last
  if (a.layout.y_channels_last) {
    result = reinterpret_cast<float*>(base);
    base += aligned_floats(g.batch * g.out_sample());
  }
  round_input(g, a.x, a.layout.x_channels_last, a.norm, x);
  round_images(a.weight, weight, 1, weight, w);
  const StridedOut y = result ? StridedOut{result, g.out_sample()} : a.y;
  conv2d_forward(q, Conv2dForwardArgs{g, {x, g.in_sample()}, w, a.bias, y, base});
  if (!result) return;
  const int64_t plane = g.out_plane();
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < g.batch; ++n)
    for (int64_t p = 0; p < plane; ++p)
      for (int64_t c = 0; c < g.out_channels; ++c)
        a.y.data[n * a.y.batch_stride + p * g.out_channels + c] = result[n * g.out_sample() + c * plane + p];
}

size_t conv2d_bf16_backward_reference_workspace_bytes(const Queue& q, const Conv2dGeometry& g) {
  const int64_t weight = g.out_channels * g.patch_size();
  const size_t data = aligned_floats(g.batch * g.out_sample()) + aligned_floats(weight);
  const size_t parameters = aligned_floats(g.batch * g.in_sample()) + aligned_floats(g.batch * g.out_sample());
  return std::max(data, parameters) + conv2d_backward_workspace_bytes(q, g);
}

void conv2d_backward_data_bf16_reference(const Queue& q, const Conv2dBackwardDataArgs& a) {
  const Conv2dGeometry& g = a.geometry;
  CHEX_CHECK(a.workspace != nullptr,
             "conv2d_backward_data_bf16_reference: needs conv2d_bf16_backward_reference_workspace_bytes of "
             "workspace");
  const int64_t weight = g.out_channels * g.patch_size();
  const RoundedOperands r = carve(a.workspace, g.batch * g.out_sample(), weight);
  round_images(a.dy.data, a.dy.batch_stride, g.batch, g.out_sample(), r.first);
  round_images(a.weight, weight, 1, weight, r.second);
  conv2d_backward_data(q, Conv2dBackwardDataArgs{g, {r.first, g.out_sample()}, r.second, a.dx, r.fp32_workspace});
}

void conv2d_backward_weight_bf16_reference(const Queue& q, const Conv2dBackwardWeightArgs& a) {
  const Conv2dGeometry& g = a.geometry;
  CHEX_CHECK(a.workspace != nullptr,
             "conv2d_backward_weight_bf16_reference: needs conv2d_bf16_backward_reference_workspace_bytes of "
             "workspace");
  const RoundedOperands r = carve(a.workspace, g.batch * g.in_sample(), g.batch * g.out_sample());
  round_images(a.x.data, a.x.batch_stride, g.batch, g.in_sample(), r.first);
  round_images(a.dy.data, a.dy.batch_stride, g.batch, g.out_sample(), r.second);
  if (a.dweight)
    conv2d_backward_weight(q, Conv2dBackwardWeightArgs{g, {r.first, g.in_sample()}, {r.second, g.out_sample()},
                                                       a.dweight, nullptr, r.fp32_workspace});
  // The bias gradient is a plain sum of dy: in fp32, of dy as given.
  if (a.dbias)
    conv2d_backward_weight(q, Conv2dBackwardWeightArgs{g, a.x, a.dy, nullptr, a.dbias, r.fp32_workspace});
}

#if !defined(CHEX_GEMM_ONEDNN)
// Without oneDNN the bf16 kernels are the reference (with it, conv2d_bf16_cpu.cpp's).
bool cpu_has_native_bf16() { return false; }
size_t conv2d_bf16_workspace_bytes(const Queue& q, const Conv2dGeometry& g, const Bf16Layout& layout) {
  return conv2d_bf16_reference_workspace_bytes(q, g, layout);
}
void conv2d_forward_bf16(const Queue& q, const Conv2dForwardBf16Args& a) { conv2d_forward_bf16_reference(q, a); }
size_t conv2d_bf16_backward_workspace_bytes(const Queue& q, const Conv2dGeometry& g) {
  return conv2d_bf16_backward_reference_workspace_bytes(q, g);
}
void conv2d_backward_data_bf16(const Queue& q, const Conv2dBackwardDataArgs& a) {
  conv2d_backward_data_bf16_reference(q, a);
}
void conv2d_backward_weight_bf16(const Queue& q, const Conv2dBackwardWeightArgs& a) {
  conv2d_backward_weight_bf16_reference(q, a);
}
#endif

}  // namespace chex::kernels::cpu

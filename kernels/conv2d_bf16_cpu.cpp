// bf16 convolutions on the CPU (conv2d_forward_bf16; the backward passes conv2d_backward_data_bf16
// and conv2d_backward_weight_bf16 further down; kernels/conv2d.h): oneDNN's primitives with bf16
// inputs and weights and fp32 accumulation, which run on AMX tiles or AVX512_BF16 dot products
// where the CPU has them (5x the fp32 GEMM rate on DenseNet's 1x1s here, measured with oneDNN 2.6
// on 2 Zen-class cores with AMX). The operands are packed into bf16 first (x normalised on the way
// when asked), in the layout the primitive wants:
// - a 1x1 stride-1 convolution is a matrix product per image (oneDNN's matmul): Y = W X' with X'
//   [C_in, H W] as stored in NCHW, or channels-last Y^T = X'^T W^T, whichever layouts x and y have,
//   so no image is ever transposed;
// - any other convolution is oneDNN's convolution on channels-last images (its fast bf16 kernels
//   want them): an NCHW x is transposed while it is packed, and an NCHW y is written from the
//   channels-last result. The dense block avoids both for its 3x3s by keeping the bottleneck
//   channels-last (Bf16Layout); a transpose is then left only on its 32 new channels.
// Memory traffic, not multiplication, bounds this: DenseNet's dense layers read far more
// activations than they compute on, and a bf16 forward that transposed every convolution's input
// and output spent 60% of its time on the transposes.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>

#include "bfloat16.h"
#include "chex/error.h"
#include "conv2d.h"
#include "conv2d_cpu_internal.h"

#if defined(CHEX_GEMM_ONEDNN)
#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace chex::kernels::cpu {

namespace {
// The kernels' one bf16 rounding (kernels/bfloat16.h: to nearest even, NaN to a quiet NaN), which
// vectorises.
inline uint16_t to_bf16(float value) { return to_bfloat16(value).bits; }
}  // namespace

uint16_t float_to_bf16(float value) { return to_bf16(value); }

float bf16_to_float(uint16_t value) { return to_float(BFloat16{value}); }

#if defined(CHEX_GEMM_ONEDNN)

bool cpu_has_native_bf16() {
  // oneDNN's ISA values are bit sets: AVX512_BF16's bits are contained in AMX's.
  const auto isa = static_cast<unsigned>(dnnl_get_effective_cpu_isa());
  return (isa & dnnl_cpu_isa_avx512_core_bf16) == dnnl_cpu_isa_avx512_core_bf16;
}

namespace {

using dnnl::memory;
using Tag = memory::format_tag;
using Type = memory::data_type;

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

constexpr size_t kAlign = 64;
size_t aligned(size_t bytes) { return (bytes + kAlign - 1) / kAlign * kAlign; }

// One (geometry, layout)'s oneDNN primitive and the layout of its workspace: x' packed in bf16, the
// weight in bf16 (for a convolution, reordered into oneDNN's own layout), a zero bias for a
// convolution that has none, the fp32 result where it cannot be written into y directly, and oneDNN's
// scratchpad.
struct Bf16Primitive {
  bool matmul = false;           // a 1x1 stride-1 convolution as a matrix product per image
  bool result_in_y = false;      // the primitive writes y itself
  dnnl::primitive primitive;
  memory::desc src, weights, bias, dst, scratchpad;
  memory::desc user_weight;      // f32 [O, I, kh, kw] as chex stores it (convolutions)
  dnnl::reorder weight_reorder;  // into `weights` (convolutions)
  size_t weight_offset = 0, bias_offset = 0, dst_offset = 0, scratch_offset = 0, bytes = 0;

  Bf16Primitive(const Conv2dGeometry& g, const Bf16Layout& layout) {
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);  // from chex's workspace, not oneDNN's own
    const int64_t n = g.batch, c = g.in_channels, o = g.out_channels, p = g.out_plane();
    matmul = g.is_pointwise();
    if (matmul) {
      // Per image: Y [O, P] = W [O, C] X' [C, P], or channels-last Y^T [P, O] = X'^T [P, C] W^T [C, O].
      // x' is packed as x is laid out; a dense y is written in place.
      const memory::desc x_packed = layout.x_channels_last
                                        ? memory::desc({n, p, c}, Type::bf16, memory::dims{p * c, c, 1})
                                        : memory::desc({n, c, p}, Type::bf16, memory::dims{c * p, p, 1});
      const int64_t ys = layout.y_batch_stride;
      result_in_y = ys >= o * p;
      if (layout.y_channels_last) {
        src = layout.x_channels_last ? x_packed : memory::desc({n, p, c}, Type::bf16, memory::dims{c * p, 1, p});
        weights = memory::desc({1, c, o}, Type::bf16, memory::dims{o * c, 1, c});  // W^T, W as stored
        dst = memory::desc({n, p, o}, Type::f32, memory::dims{result_in_y ? ys : p * o, o, 1});
      } else {
        // Y = W X': oneDNN's src is W, broadcast over the images, and its weights are X'.
        src = memory::desc({1, o, c}, Type::bf16, memory::dims{o * c, c, 1});
        weights = layout.x_channels_last ? memory::desc({n, c, p}, Type::bf16, memory::dims{p * c, 1, c}) : x_packed;
        dst = memory::desc({n, o, p}, Type::f32, memory::dims{result_in_y ? ys : o * p, p, 1});
      }
      // No bias in the product: oneDNN 2.6 has no fast kernel for Y = W X' with a bias along Y's rows
      // (it falls back to its reference code, 1000x slower); a bias is added afterwards instead.
      const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src, weights, dst), attr, cpu_engine());
      primitive = dnnl::matmul(pd);
      scratchpad = pd.scratchpad_desc();
    } else {
      // A convolution on channels-last images; y is written from its result.
      const memory::dims src_dims{n, c, g.height, g.width}, weight_dims{o, c, g.kernel_h, g.kernel_w},
          dst_dims{n, o, g.out_height, g.out_width};
      const memory::desc conv_src(src_dims, Type::bf16, Tag::nhwc), conv_weights(weight_dims, Type::bf16, Tag::any),
          conv_bias({o}, Type::f32, Tag::a), conv_dst(dst_dims, Type::f32, Tag::nhwc);
      const dnnl::convolution_forward::primitive_desc pd(
          dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
                                          conv_src, conv_weights, conv_bias, conv_dst, {g.stride, g.stride},
                                          {g.padding, g.padding}, {g.padding, g.padding}),
          attr, cpu_engine());
      primitive = dnnl::convolution_forward(pd);
      src = pd.src_desc();
      weights = pd.weights_desc();
      bias = pd.bias_desc();
      dst = pd.dst_desc();
      scratchpad = pd.scratchpad_desc();
      user_weight = memory::desc(weight_dims, Type::f32, Tag::oihw);
      weight_reorder =
          dnnl::reorder(dnnl::reorder::primitive_desc(cpu_engine(), user_weight, cpu_engine(), pd.weights_desc()));
    }
    // The packed x' first (a matmul's may be its src or its weights, sized alike), then the rest.
    const size_t x_bytes = static_cast<size_t>(n * c * g.in_plane()) * sizeof(uint16_t);
    const size_t weight_bytes = matmul ? static_cast<size_t>(o * c) * sizeof(uint16_t) : weights.get_size();
    weight_offset = aligned(x_bytes);
    bias_offset = weight_offset + aligned(weight_bytes);
    dst_offset = bias_offset + aligned(static_cast<size_t>(o) * sizeof(float));
    scratch_offset = dst_offset + (result_in_y ? 0 : aligned(static_cast<size_t>(n * o * p) * sizeof(float)));
    bytes = scratch_offset + aligned(scratchpad.get_size()) + kAlign;  // + kAlign: to align the base
  }
};

// The threads a primitive runs on: oneDNN splits a primitive's work for the thread count it sees
// when built, and inside a parallel region runs it on the calling thread alone, so a primitive split
// for two threads would there compute only the first's share or wait forever for the second (a
// backward-weights convolution hung). Primitives are built, and cached, for
// the thread count they will run on: this call's, one inside a parallel region, or one for the
// weight gradient's slots (WeightSlots). The forward's are keyed by it too.
int primitive_threads() { return omp_in_parallel() ? 1 : omp_get_max_threads(); }

// This thread's OpenMP thread count while a primitive is built, restored after.
struct ThreadsForBuilding {
  int saved = omp_get_max_threads();
  explicit ThreadsForBuilding(int threads) { omp_set_num_threads(threads); }
  ~ThreadsForBuilding() { omp_set_num_threads(saved); }
  ThreadsForBuilding(const ThreadsForBuilding&) = delete;
  ThreadsForBuilding& operator=(const ThreadsForBuilding&) = delete;
};

// Primitives are built once per geometry, layout and thread count (a DenseNet forward has about 30
// distinct ones) and kept for the life of the process; oneDNN's primitives may execute concurrently.
const Bf16Primitive& primitive_for(const Conv2dGeometry& g, const Bf16Layout& layout) {
  using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, bool, bool,
                         int64_t, int>;
  static std::mutex mutex;
  static std::map<Key, std::unique_ptr<Bf16Primitive>> cache;
  // The y stride shapes only a primitive that writes y itself (a matmul's).
  const int64_t y_stride = g.is_pointwise() ? layout.y_batch_stride : 0;
  const int threads = primitive_threads();
  const Key key{g.batch,    g.in_channels, g.height,   g.width,
                g.out_channels, g.kernel_h, g.kernel_w, g.stride,
                g.padding,  layout.x_channels_last, layout.y_channels_last, y_stride, threads};
  const std::lock_guard lock(mutex);
  auto& entry = cache[key];
  if (!entry) {
    const ThreadsForBuilding building(threads);
    entry = std::make_unique<Bf16Primitive>(g, layout);
  }
  return *entry;
}

// ---- Packing x' into bf16, and writing y from a channels-last result

// Transposes go by tiles of 16 channels x 64 pixels through a small buffer, so that both sides
// move runs of contiguous values. An image is megabytes, read a tile's width of each channel at a
// time: hundreds of streams, more than the hardware prefetchers follow, so each channel's next
// run is prefetched by hand while this one is used.
constexpr int64_t kTileChannels = 16, kTilePixels = 64;

void prefetch_run(const float* run, int64_t count) {
  for (int64_t i = 0; i < count; i += 16) __builtin_prefetch(run + i);
}

// The packs and the unpack work on units of one image, so that the threads share out images and
// units alike (a batch of one still uses every thread): a channel of a planar image, a tile of
// kTilePixels pixels of a channels-last or transposed one.

// packed[c, p] = bf16(x'[c, p]) for channel c of one NCHW image: no transpose.
void pack_planar(const Conv2dGeometry& g, const float* image, const InputNormalization* norm, uint16_t* packed,
                 int64_t c) {
  const int64_t plane = g.in_plane();
  float row[kTilePixels];
  for (int64_t p0 = 0; p0 < plane; p0 += kTilePixels) {
    const int64_t pixels = std::min(kTilePixels, plane - p0);
    conv2d_detail::read_channel(norm, c, image + c * plane + p0, 1, row, pixels);
    uint16_t* out = packed + c * plane + p0;
#pragma omp simd
    for (int64_t i = 0; i < pixels; ++i) out[i] = to_bf16(row[i]);
  }
}

// packed[p, c] = bf16(x'[p, c]) for the pixels of tile t of one channels-last image: no transpose.
void pack_channels_last(const Conv2dGeometry& g, const float* image, const InputNormalization* norm,
                        uint16_t* packed, int64_t t) {
  const int64_t channels = g.in_channels, p0 = t * kTilePixels, p1 = std::min(g.in_plane(), p0 + kTilePixels);
  for (int64_t p = p0; p < p1; ++p) {
    const float* in = image + p * channels;
    uint16_t* out = packed + p * channels;
    if (!norm) {
#pragma omp simd
      for (int64_t c = 0; c < channels; ++c) out[c] = to_bf16(in[c]);
    } else {
#pragma omp simd
      for (int64_t c = 0; c < channels; ++c)
        out[c] = to_bf16(batch_norm_relu(in[c], norm->mean[c], norm->invstd[c] * norm->gamma[c], norm->beta[c]));
    }
  }
}

// packed[p, c] = bf16(x'[c, p]) for the pixels of tile t of one NCHW image of `channels` planes of
// `plane` pixels: the transposing pack (of x, or of dy in the backward passes).
void pack_transposed(int64_t channels, int64_t plane, const float* image, const InputNormalization* norm,
                     uint16_t* packed, int64_t t) {
  const int64_t p0 = t * kTilePixels;
  const int64_t pixels = std::min(kTilePixels, plane - p0), next = std::min(kTilePixels, plane - p0 - pixels);
  float row[kTilePixels];
  uint16_t tile[kTilePixels][kTileChannels];
  for (int64_t c0 = 0; c0 < channels; c0 += kTileChannels) {
    const int64_t width = std::min(kTileChannels, channels - c0);
    for (int64_t j = 0; j < width; ++j) {
      const float* run = image + (c0 + j) * plane + p0;
      prefetch_run(run + pixels, next);
      conv2d_detail::read_channel(norm, c0 + j, run, 1, row, pixels);
#pragma omp simd
      for (int64_t i = 0; i < pixels; ++i) tile[i][j] = to_bf16(row[i]);
    }
    for (int64_t i = 0; i < pixels; ++i)
      std::memcpy(packed + (p0 + i) * channels + c0, tile[i], static_cast<size_t>(width) * sizeof(uint16_t));
  }
}

// y[c, p] = result[p, c] for the pixels of tile t of one image of `channels` planes of `plane`
// pixels (y, or dx in the backward pass).
void unpack_transposed(int64_t channels, int64_t plane, const float* result, float* y, int64_t t) {
  const int64_t p0 = t * kTilePixels;
  const int64_t pixels = std::min(kTilePixels, plane - p0);
  float tile[kTileChannels][kTilePixels];
  for (int64_t c0 = 0; c0 < channels; c0 += kTileChannels) {
    const int64_t width = std::min(kTileChannels, channels - c0);
    for (int64_t i = 0; i < pixels; ++i) {
      const float* src = result + (p0 + i) * channels + c0;
      for (int64_t j = 0; j < width; ++j) tile[j][i] = src[j];
    }
    for (int64_t j = 0; j < width; ++j)
      std::memcpy(y + (c0 + j) * plane + p0, tile[j], static_cast<size_t>(pixels) * sizeof(float));
  }
}

int64_t pixel_tiles(int64_t plane) { return (plane + kTilePixels - 1) / kTilePixels; }

// result[n, o, p] (or [n, p, o] channels-last) += bias[o].
void add_bias(const Conv2dGeometry& g, const Bf16Layout& layout, const float* bias, float* result, int64_t stride) {
  const int64_t o = g.out_channels, p = g.out_plane();
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < g.batch; ++n) {
    float* image = result + n * stride;
    if (layout.y_channels_last) {
      for (int64_t i = 0; i < p; ++i)
#pragma omp simd
        for (int64_t c = 0; c < o; ++c) image[i * o + c] += bias[c];
    } else {
      for (int64_t c = 0; c < o; ++c)
#pragma omp simd
        for (int64_t i = 0; i < p; ++i) image[c * p + i] += bias[c];
    }
  }
}

}  // namespace

size_t conv2d_bf16_workspace_bytes(const Queue& /*q*/, const Conv2dGeometry& g, const Bf16Layout& layout) {
  return primitive_for(g, layout).bytes;
}

void conv2d_forward_bf16(const Queue& /*q*/, const Conv2dForwardBf16Args& a) {
  const Conv2dGeometry& g = a.geometry;
  const Bf16Layout& layout = a.layout;
  CHEX_CHECK(a.workspace != nullptr, "conv2d_forward_bf16: needs conv2d_bf16_workspace_bytes of workspace");
  CHEX_CHECK(!g.is_pointwise() || layout.y_batch_stride == a.y.batch_stride,
             "conv2d_forward_bf16: the layout's y_batch_stride ", layout.y_batch_stride, " is not y's ",
             a.y.batch_stride);
  const Bf16Primitive& prim = primitive_for(g, layout);
  const uintptr_t raw = reinterpret_cast<uintptr_t>(a.workspace);
  auto* base = reinterpret_cast<char*>((raw + kAlign - 1) / kAlign * kAlign);
  auto* packed = reinterpret_cast<uint16_t*>(base);
  auto* weight = base + prim.weight_offset;
  auto* bias = reinterpret_cast<float*>(base + prim.bias_offset);
  float* result = prim.result_in_y ? a.y.data : reinterpret_cast<float*>(base + prim.dst_offset);

  // x' into bf16, as the primitive reads it: a matmul reads the image in its own layout; a
  // convolution reads it channels-last.
  const bool transposes = !prim.matmul && !layout.x_channels_last, planar = prim.matmul && !layout.x_channels_last;
  const int64_t units = planar ? g.in_channels : pixel_tiles(g.in_plane());
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < g.batch; ++n)
    for (int64_t u = 0; u < units; ++u) {
      const float* image = a.x.data + n * a.x.batch_stride;
      uint16_t* out = packed + n * g.in_sample();
      if (transposes)
        pack_transposed(g.in_channels, g.in_plane(), image, a.norm, out, u);
      else if (planar)
        pack_planar(g, image, a.norm, out, u);
      else
        pack_channels_last(g, image, a.norm, out, u);
    }

  dnnl::stream stream(cpu_engine());
  const dnnl::engine& engine = cpu_engine();
  if (prim.matmul) {
    auto* w = reinterpret_cast<uint16_t*>(weight);
    const int64_t count = g.out_channels * g.in_channels;
#pragma omp simd
    for (int64_t i = 0; i < count; ++i) w[i] = to_bf16(a.weight[i]);
    // Y = W X' takes W as oneDNN's src and X' as its weights; the channels-last form the other way.
    void* src = layout.y_channels_last ? static_cast<void*>(packed) : weight;
    void* weights = layout.y_channels_last ? weight : static_cast<void*>(packed);
    prim.primitive.execute(stream, {{DNNL_ARG_SRC, memory(prim.src, engine, src)},
                                    {DNNL_ARG_WEIGHTS, memory(prim.weights, engine, weights)},
                                    {DNNL_ARG_DST, memory(prim.dst, engine, result)},
                                    {DNNL_ARG_SCRATCHPAD, memory(prim.scratchpad, engine, base + prim.scratch_offset)}});
  } else {
    memory user_weight(prim.user_weight, engine, const_cast<float*>(a.weight));
    memory reordered(prim.weights, engine, weight);
    prim.weight_reorder.execute(stream, user_weight, reordered);
    // oneDNN reads the bias where it is; a convolution without one reads zeros from the workspace.
    auto* conv_bias = const_cast<float*>(a.bias);
    if (!conv_bias) {
      conv_bias = bias;
      std::memset(bias, 0, static_cast<size_t>(g.out_channels) * sizeof(float));
    }
    prim.primitive.execute(stream, {{DNNL_ARG_SRC, memory(prim.src, engine, packed)},
                                    {DNNL_ARG_WEIGHTS, reordered},
                                    {DNNL_ARG_BIAS, memory(prim.bias, engine, conv_bias)},
                                    {DNNL_ARG_DST, memory(prim.dst, engine, result)},
                                    {DNNL_ARG_SCRATCHPAD, memory(prim.scratchpad, engine, base + prim.scratch_offset)}});
  }
  stream.wait();
  if (prim.matmul && a.bias) add_bias(g, layout, a.bias, result, prim.result_in_y ? a.y.batch_stride : g.out_sample());
  if (prim.result_in_y) return;

  // y from the dense result: a matmul's is in y's layout already, a convolution's channels-last.
  if (prim.matmul || layout.y_channels_last) {
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < g.batch; ++n)
      std::memcpy(a.y.data + n * a.y.batch_stride, result + n * g.out_sample(),
                  static_cast<size_t>(g.out_sample()) * sizeof(float));
    return;
  }
  const int64_t tiles = pixel_tiles(g.out_plane());
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < g.batch; ++n)
    for (int64_t t = 0; t < tiles; ++t) unpack_transposed(g.out_channels, g.out_plane(), result + n * g.out_sample(), a.y.data + n * a.y.batch_stride,
                        t);
}

// ---- The backward passes (conv2d_backward_data_bf16, conv2d_backward_weight_bf16)
//
// Their operands are packed into bf16 as the forward's, and the results are fp32:
// - a 1x1 stride-1 convolution is matrix products on the NCHW images as they lie: per image
//   dX [C, P] = W^T [C, O] dY [O, P] (W read transposed through its strides, not copied), and
//   over the whole batch at once dW [O, C] = dY [O, N P] X^T [N P, C], with dy and x packed
//   channel-major ([O][N][P], [C][N][P]) so that the batch is one long reduction;
// - any other convolution is oneDNN's backward-data and backward-weights convolutions on
//   channels-last bf16 images, dy (and x) transposed while packed and dx transposed back.

namespace {

struct Bf16BackwardPrimitives {
  bool matmul = false;
  // dx: its primitive, the descriptors it executes with, and for a convolution the weight's reorder
  // into oneDNN's bf16 layout.
  dnnl::primitive data;
  memory::desc data_dy, data_weights, data_dx, data_scratchpad, user_weight;
  dnnl::reorder data_weight_reorder;
  // dweight: its primitive and descriptors, and for a convolution the reorder of its fp32 result
  // into chex's [O, C, kh, kw].
  dnnl::primitive weight;
  memory::desc weight_x, weight_dy, weight_dw, weight_scratchpad;
  dnnl::reorder dweight_reorder;
  // Workspace offsets, from the aligned base: dx's pass packs dy, then the weight, then the fp32 dx
  // where it is not written in place, then the scratchpad; dweight's pass packs x, then dy, then the
  // fp32 dweight in oneDNN's layout (a convolution's), then the scratchpad.
  size_t data_weight_offset = 0, data_dx_offset = 0, data_scratch_offset = 0;
  size_t weight_dy_offset = 0, weight_dw_offset = 0, weight_scratch_offset = 0;
  size_t bytes = 0;

  explicit Bf16BackwardPrimitives(const Conv2dGeometry& g) {
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    const int64_t n = g.batch, c = g.in_channels, o = g.out_channels, pi = g.in_plane(), po = g.out_plane();
    matmul = g.is_pointwise();
    if (matmul) {
      // dX = W^T dY per image: W [O, C] as stored is W^T [C, O] with strides (1, C); broadcast over
      // the images as the forward's W.
      data_weights = memory::desc({1, c, o}, Type::bf16, memory::dims{c * o, 1, c});
      data_dy = memory::desc({n, o, po}, Type::bf16, memory::dims{o * po, po, 1});
      data_dx = memory::desc({n, c, pi}, Type::f32, memory::dims{c * pi, pi, 1});
      const dnnl::matmul::primitive_desc data_pd(dnnl::matmul::desc(data_weights, data_dy, data_dx), attr,
                                                 cpu_engine());
      data = dnnl::matmul(data_pd);
      data_scratchpad = data_pd.scratchpad_desc();
      // dW = dY X^T over the batch: dY packed [O][N P], X packed [C][N P] read as X^T [N P, C].
      const int64_t k = n * po;
      weight_dy = memory::desc({o, k}, Type::bf16, memory::dims{k, 1});
      weight_x = memory::desc({k, c}, Type::bf16, memory::dims{1, k});
      weight_dw = memory::desc({o, c}, Type::f32, memory::dims{c, 1});
      const dnnl::matmul::primitive_desc weight_pd(dnnl::matmul::desc(weight_dy, weight_x, weight_dw), attr,
                                                   cpu_engine());
      weight = dnnl::matmul(weight_pd);
      weight_scratchpad = weight_pd.scratchpad_desc();
    } else {
      const memory::dims src_dims{n, c, g.height, g.width}, weight_dims{o, c, g.kernel_h, g.kernel_w},
          dst_dims{n, o, g.out_height, g.out_width}, strides{g.stride, g.stride}, pad{g.padding, g.padding};
      const memory::desc src(src_dims, Type::bf16, Tag::nhwc), weights(weight_dims, Type::bf16, Tag::any),
          dst(dst_dims, Type::bf16, Tag::nhwc), diff_src(src_dims, Type::f32, Tag::nhwc),
          diff_weights(weight_dims, Type::f32, Tag::any);
      // The backward primitives are chosen given the forward's (oneDNN's "hint").
      const dnnl::convolution_forward::primitive_desc hint(
          dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct, src,
                                          weights, dst, strides, pad, pad),
          cpu_engine());
      const dnnl::convolution_backward_data::primitive_desc data_pd(
          dnnl::convolution_backward_data::desc(dnnl::algorithm::convolution_direct, diff_src, weights, dst, strides,
                                                pad, pad),
          attr, cpu_engine(), hint);
      data = dnnl::convolution_backward_data(data_pd);
      data_dy = data_pd.diff_dst_desc();
      data_weights = data_pd.weights_desc();
      data_dx = data_pd.diff_src_desc();
      data_scratchpad = data_pd.scratchpad_desc();
      user_weight = memory::desc(weight_dims, Type::f32, Tag::oihw);
      data_weight_reorder =
          dnnl::reorder(dnnl::reorder::primitive_desc(cpu_engine(), user_weight, cpu_engine(), data_weights));
      const dnnl::convolution_backward_weights::primitive_desc weight_pd(
          dnnl::convolution_backward_weights::desc(dnnl::algorithm::convolution_direct, src, diff_weights, dst,
                                                   strides, pad, pad),
          attr, cpu_engine(), hint);
      weight = dnnl::convolution_backward_weights(weight_pd);
      weight_x = weight_pd.src_desc();
      weight_dy = weight_pd.diff_dst_desc();
      weight_dw = weight_pd.diff_weights_desc();
      weight_scratchpad = weight_pd.scratchpad_desc();
      dweight_reorder =
          dnnl::reorder(dnnl::reorder::primitive_desc(cpu_engine(), weight_dw, cpu_engine(), user_weight));
    }
    const size_t x_bf16 = static_cast<size_t>(n * c * pi) * sizeof(uint16_t);
    const size_t dy_bf16 = static_cast<size_t>(n * o * po) * sizeof(uint16_t);
    const size_t weight_bf16 = matmul ? static_cast<size_t>(o * c) * sizeof(uint16_t) : data_weights.get_size();
    data_weight_offset = aligned(dy_bf16);
    data_dx_offset = data_weight_offset + aligned(weight_bf16);
    data_scratch_offset = data_dx_offset + aligned(static_cast<size_t>(n * c * pi) * sizeof(float));
    weight_dy_offset = aligned(x_bf16);
    weight_dw_offset = weight_dy_offset + aligned(dy_bf16);
    weight_scratch_offset = weight_dw_offset + (matmul ? 0 : aligned(weight_dw.get_size()));
    bytes = std::max(data_scratch_offset + aligned(data_scratchpad.get_size()),
                     weight_scratch_offset + aligned(weight_scratchpad.get_size())) +
            kAlign;  // + kAlign: to align the base
  }
};


const Bf16BackwardPrimitives& backward_primitives_for(const Conv2dGeometry& g, int threads = primitive_threads()) {
  using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int>;
  static std::mutex mutex;
  static std::map<Key, std::unique_ptr<Bf16BackwardPrimitives>> cache;
  const Key key{g.batch,    g.in_channels, g.height, g.width, g.out_channels, g.kernel_h, g.kernel_w, g.stride,
                g.padding, threads};
  const std::lock_guard lock(mutex);
  auto& entry = cache[key];
  if (!entry) {
    const ThreadsForBuilding building(threads);
    entry = std::make_unique<Bf16BackwardPrimitives>(g);
  }
  return *entry;
}

char* aligned_base(void* workspace) {
  const uintptr_t raw = reinterpret_cast<uintptr_t>(workspace);
  return reinterpret_cast<char*>((raw + kAlign - 1) / kAlign * kAlign);
}

// packed[r row_stride + n image_stride + p] = bf16(src[n batch_stride + r plane + p]): `rows`
// planes of each of `batch` images, no transpose; per image (dy for dx) or channel-major (x and dy
// for dweight, the batch's images of one channel side by side).
void pack_rows(const float* src, int64_t batch_stride, int64_t batch, int64_t rows, int64_t plane, uint16_t* packed,
               int64_t row_stride, int64_t image_stride) {
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < batch; ++n)
    for (int64_t r = 0; r < rows; ++r) {
      const float* in = src + n * batch_stride + r * plane;
      uint16_t* out = packed + r * row_stride + n * image_stride;
#pragma omp simd
      for (int64_t p = 0; p < plane; ++p) out[p] = to_bf16(in[p]);
    }
}

// Every NCHW image of a batch-strided tensor into dense channels-last bf16 images.
void pack_images_transposed(const float* src, int64_t batch_stride, int64_t batch, int64_t channels, int64_t plane,
                            uint16_t* packed) {
  const int64_t tiles = pixel_tiles(plane);
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < batch; ++n)
    for (int64_t t = 0; t < tiles; ++t)
      pack_transposed(channels, plane, src + n * batch_stride, nullptr, packed + n * channels * plane, t);
}

// The weight gradient of a convolution (not a matmul) with the batch shared out: oneDNN's
// multi-threaded backward-weights kernels reduce across threads with spinning barriers, which a
// thread that the OS deschedules stalls (on 2 cores shared with other work it ran 50x slower than
// on one thread). So, as the fp32 kernels do (conv2d_detail::sample_slots), each thread takes whole
// images and runs a single-threaded primitive on them into its own fp32 gradient, and the threads'
// gradients are summed in a fixed order. A slot's part of the workspace: its
// gradient reordered to [O, C, kh, kw] (first, at the same place in every slot), oneDNN's gradient,
// its scratchpad. The slots' primitives are built single-threaded, before the parallel region.
struct WeightSlots {
  int slots = 1;
  size_t slot_bytes = 0;
};

Conv2dGeometry with_batch(Conv2dGeometry g, int64_t batch) {
  g.batch = batch;
  return g;
}

WeightSlots weight_slots(const Conv2dGeometry& g) {
  WeightSlots w;
  if (g.is_pointwise()) return w;  // one matmul over the batch
  w.slots = conv2d_detail::sample_slots(g);
  if (w.slots == 1) return w;
  // The slots' batches are batch / slots rounded down or up.
  const int64_t weight = g.out_channels * g.patch_size();
  for (const int64_t images : {g.batch / w.slots, (g.batch + w.slots - 1) / w.slots}) {
    const Bf16BackwardPrimitives& prim = backward_primitives_for(with_batch(g, images), 1);
    w.slot_bytes = std::max(w.slot_bytes, aligned(prim.weight_dw.get_size()) +
                                              aligned(prim.weight_scratchpad.get_size()) +
                                              aligned(static_cast<size_t>(weight) * sizeof(float)));
  }
  return w;
}

}  // namespace

size_t conv2d_bf16_backward_workspace_bytes(const Queue& /*q*/, const Conv2dGeometry& g) {
  if (g.batch == 0) return 0;  // an empty batch runs no primitive
  const Bf16BackwardPrimitives& prim = backward_primitives_for(g);
  const WeightSlots w = weight_slots(g);
  return std::max(prim.bytes, prim.weight_dw_offset + w.slots * w.slot_bytes + kAlign);
}

void conv2d_backward_data_bf16(const Queue& /*q*/, const Conv2dBackwardDataArgs& a) {
  const Conv2dGeometry& g = a.geometry;
  if (g.batch == 0) return;
  CHEX_CHECK(a.workspace != nullptr,
             "conv2d_backward_data_bf16: needs conv2d_bf16_backward_workspace_bytes of workspace");
  const Bf16BackwardPrimitives& prim = backward_primitives_for(g);
  char* base = aligned_base(a.workspace);
  auto* dy = reinterpret_cast<uint16_t*>(base);
  char* weight = base + prim.data_weight_offset;
  auto* result = reinterpret_cast<float*>(base + prim.data_dx_offset);
  const int64_t o = g.out_channels, c = g.in_channels, po = g.out_plane(), pi = g.in_plane();
  const dnnl::engine& engine = cpu_engine();
  dnnl::stream stream(engine);
  const memory scratchpad(prim.data_scratchpad, engine, base + prim.data_scratch_offset);
  if (prim.matmul) {
    pack_rows(a.dy.data, a.dy.batch_stride, g.batch, o, po, dy, po, o * po);
    auto* w = reinterpret_cast<uint16_t*>(weight);
    const int64_t count = o * c;
#pragma omp simd
    for (int64_t i = 0; i < count; ++i) w[i] = to_bf16(a.weight[i]);
    // A dense dx is written in place; a batch-strided one is copied from the dense result.
    const bool in_place = a.dx.batch_stride == c * pi;
    float* dst = in_place ? a.dx.data : result;
    prim.data.execute(stream, {{DNNL_ARG_SRC, memory(prim.data_weights, engine, weight)},
                               {DNNL_ARG_WEIGHTS, memory(prim.data_dy, engine, dy)},
                               {DNNL_ARG_DST, memory(prim.data_dx, engine, dst)},
                               {DNNL_ARG_SCRATCHPAD, scratchpad}});
    stream.wait();
    if (in_place) return;
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < g.batch; ++n)
      std::memcpy(a.dx.data + n * a.dx.batch_stride, result + n * c * pi, static_cast<size_t>(c * pi) * sizeof(float));
    return;
  }
  pack_images_transposed(a.dy.data, a.dy.batch_stride, g.batch, o, po, dy);
  memory user_weight(prim.user_weight, engine, const_cast<float*>(a.weight));
  memory reordered(prim.data_weights, engine, weight);
  prim.data_weight_reorder.execute(stream, user_weight, reordered);
  prim.data.execute(stream, {{DNNL_ARG_DIFF_DST, memory(prim.data_dy, engine, dy)},
                             {DNNL_ARG_WEIGHTS, reordered},
                             {DNNL_ARG_DIFF_SRC, memory(prim.data_dx, engine, result)},
                             {DNNL_ARG_SCRATCHPAD, scratchpad}});
  stream.wait();
  const int64_t tiles = pixel_tiles(pi);
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < g.batch; ++n)
    for (int64_t t = 0; t < tiles; ++t)
      unpack_transposed(c, pi, result + n * c * pi, a.dx.data + n * a.dx.batch_stride, t);
}

void conv2d_backward_weight_bf16(const Queue& q, const Conv2dBackwardWeightArgs& a) {
  const Conv2dGeometry& g = a.geometry;
  // The bias gradient is a plain sum of dy: in fp32, of dy as given (the fp32 kernel's).
  if (a.dbias) conv2d_backward_weight(q, Conv2dBackwardWeightArgs{g, a.x, a.dy, nullptr, a.dbias, nullptr});
  if (!a.dweight) return;
  if (g.batch == 0) {
    std::fill(a.dweight, a.dweight + g.out_channels * g.patch_size(), 0.f);
    return;
  }
  CHEX_CHECK(a.workspace != nullptr,
             "conv2d_backward_weight_bf16: needs conv2d_bf16_backward_workspace_bytes of workspace");
  const Bf16BackwardPrimitives& prim = backward_primitives_for(g);
  char* base = aligned_base(a.workspace);
  auto* x = reinterpret_cast<uint16_t*>(base);
  auto* dy = reinterpret_cast<uint16_t*>(base + prim.weight_dy_offset);
  const int64_t o = g.out_channels, c = g.in_channels, po = g.out_plane(), pi = g.in_plane();
  const dnnl::engine& engine = cpu_engine();
  dnnl::stream stream(engine);
  const memory scratchpad(prim.weight_scratchpad, engine, base + prim.weight_scratch_offset);
  if (prim.matmul) {
    const int64_t k = g.batch * po;
    pack_rows(a.dy.data, a.dy.batch_stride, g.batch, o, po, dy, k, po);
    pack_rows(a.x.data, a.x.batch_stride, g.batch, c, pi, x, k, pi);
    prim.weight.execute(stream, {{DNNL_ARG_SRC, memory(prim.weight_dy, engine, dy)},
                                 {DNNL_ARG_WEIGHTS, memory(prim.weight_x, engine, x)},
                                 {DNNL_ARG_DST, memory(prim.weight_dw, engine, a.dweight)},
                                 {DNNL_ARG_SCRATCHPAD, scratchpad}});
    stream.wait();
    return;
  }
  pack_images_transposed(a.x.data, a.x.batch_stride, g.batch, c, pi, x);
  pack_images_transposed(a.dy.data, a.dy.batch_stride, g.batch, o, po, dy);
  const WeightSlots w = weight_slots(g);
  if (w.slots > 1) {
    char* slots = base + prim.weight_dw_offset;
    conv2d_detail::in_sample_slots(w.slots, [&] {
      const auto [begin, end] = conv2d_detail::samples_of_this_thread(g.batch);
      const Bf16BackwardPrimitives& part = backward_primitives_for(with_batch(g, end - begin), 1);
      char* part_dweight = slots + static_cast<size_t>(omp_get_thread_num()) * w.slot_bytes;
      char* part_gradient = part_dweight + aligned(static_cast<size_t>(o * g.patch_size()) * sizeof(float));
      char* part_scratchpad = part_gradient + aligned(part.weight_dw.get_size());
      dnnl::stream part_stream(engine);
      memory gradient(part.weight_dw, engine, part_gradient);
      part.weight.execute(part_stream, {{DNNL_ARG_SRC, memory(part.weight_x, engine, x + begin * c * pi)},
                                        {DNNL_ARG_DIFF_DST, memory(part.weight_dy, engine, dy + begin * o * po)},
                                        {DNNL_ARG_DIFF_WEIGHTS, gradient},
                                        {DNNL_ARG_SCRATCHPAD, memory(part.weight_scratchpad, engine, part_scratchpad)}});
      memory reordered(part.user_weight, engine, part_dweight);
      part.dweight_reorder.execute(part_stream, gradient, reordered);
      part_stream.wait();
    });
    // dweight = the slots' gradients summed in slot order.
    const int64_t count = o * g.patch_size();
    std::copy_n(reinterpret_cast<const float*>(slots), count, a.dweight);
    for (int s = 1; s < w.slots; ++s) {
      const auto* part = reinterpret_cast<const float*>(slots + static_cast<size_t>(s) * w.slot_bytes);
#pragma omp simd
      for (int64_t i = 0; i < count; ++i) a.dweight[i] += part[i];
    }
    return;
  }
  memory dweight(prim.weight_dw, engine, base + prim.weight_dw_offset);
  prim.weight.execute(stream, {{DNNL_ARG_SRC, memory(prim.weight_x, engine, x)},
                               {DNNL_ARG_DIFF_DST, memory(prim.weight_dy, engine, dy)},
                               {DNNL_ARG_DIFF_WEIGHTS, dweight},
                               {DNNL_ARG_SCRATCHPAD, scratchpad}});
  memory user_dweight(prim.user_weight, engine, a.dweight);
  prim.dweight_reorder.execute(stream, dweight, user_dweight);
  stream.wait();
}

#endif  // without oneDNN (an OpenBLAS build) the bf16 kernels are the reference ones
         // (conv2d_bf16_reference_cpu.cpp)

}  // namespace chex::kernels::cpu

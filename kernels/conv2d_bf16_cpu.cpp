// bf16 convolutions on the CPU (conv2d_forward_bf16, kernels/conv2d.h): oneDNN's convolution
// with bf16 inputs and weights and fp32 accumulation, which runs on AMX tiles or AVX512_BF16
// dot products where the CPU has them (5x the fp32 GEMM rate on DenseNet's 1x1s here, measured
// with oneDNN 2.6 on 2 Zen-class cores with AMX). oneDNN's fast bf16 kernels want channels-last
// images; chex keeps NCHW, so one pass packs x' (normalised when asked) into NHWC bf16 and one
// pass unpacks the fp32 NHWC result into y. Inference only: no backward reads these.
#include <bit>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>

#include "chex/error.h"
#include "conv2d.h"
#include "conv2d_cpu_internal.h"

#if defined(CHEX_GEMM_ONEDNN)
#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace chex::kernels::cpu {

uint16_t float_to_bf16(float value) {
  const uint32_t bits = std::bit_cast<uint32_t>(value);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40u);  // NaN stays NaN
  return static_cast<uint16_t>((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);                 // round to nearest even
}

float bf16_to_float(uint16_t value) { return std::bit_cast<float>(static_cast<uint32_t>(value) << 16); }

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

// One geometry's oneDNN primitives and the layout of its workspace: x' packed [N, H, W, C_in] bf16,
// the weight reordered into oneDNN's bf16 layout, the bias (a zero one when there is none), the
// fp32 result [N, OH, OW, C_out] and oneDNN's scratchpad.
struct Bf16Convolution {
  dnnl::convolution_forward::primitive_desc pd;
  dnnl::convolution_forward convolution;
  memory::desc user_weight;  // f32 [O, I, kh, kw] as chex stores it
  dnnl::reorder weight_reorder;
  size_t src_offset = 0, weight_offset = 0, bias_offset = 0, dst_offset = 0, scratch_offset = 0, bytes = 0;

  explicit Bf16Convolution(const Conv2dGeometry& g) {
    const memory::dims src_dims{g.batch, g.in_channels, g.height, g.width};
    const memory::dims weight_dims{g.out_channels, g.in_channels, g.kernel_h, g.kernel_w};
    const memory::dims dst_dims{g.batch, g.out_channels, g.out_height, g.out_width};
    const memory::desc src(src_dims, Type::bf16, Tag::nhwc), weights(weight_dims, Type::bf16, Tag::any),
        bias({g.out_channels}, Type::f32, Tag::a), dst(dst_dims, Type::f32, Tag::nhwc);
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);  // from chex's workspace, not oneDNN's own
    pd = dnnl::convolution_forward::primitive_desc(
        dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, src,
                                        weights, bias, dst, {g.stride, g.stride}, {g.padding, g.padding},
                                        {g.padding, g.padding}),
        attr, cpu_engine());
    convolution = dnnl::convolution_forward(pd);
    user_weight = memory::desc(weight_dims, Type::f32, Tag::oihw);
    weight_reorder = dnnl::reorder(dnnl::reorder::primitive_desc(cpu_engine(), user_weight, cpu_engine(), pd.weights_desc()));
    src_offset = 0;
    weight_offset = src_offset + aligned(pd.src_desc().get_size());
    bias_offset = weight_offset + aligned(pd.weights_desc().get_size());
    dst_offset = bias_offset + aligned(static_cast<size_t>(g.out_channels) * sizeof(float));
    scratch_offset = dst_offset + aligned(pd.dst_desc().get_size());
    bytes = scratch_offset + aligned(pd.scratchpad_desc().get_size()) + kAlign;  // + kAlign: to align the base
  }
};

// Primitives are built once per geometry (a DenseNet forward has about 20 distinct ones) and kept
// for the life of the process; oneDNN's primitives may execute concurrently.
const Bf16Convolution& convolution_for(const Conv2dGeometry& g) {
  using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t>;
  static std::mutex mutex;
  static std::map<Key, std::unique_ptr<Bf16Convolution>> cache;
  const Key key{g.batch, g.in_channels, g.height, g.width, g.out_channels, g.kernel_h, g.kernel_w, g.stride, g.padding};
  const std::lock_guard lock(mutex);
  auto& entry = cache[key];
  if (!entry) entry = std::make_unique<Bf16Convolution>(g);
  return *entry;
}

// Pixels per block of the packing and unpacking transposes: a block of every channel stays in L2.
constexpr int64_t kPixelBlock = 64;

// packed[n, p, c] = bf16(x'[n, c, p]) for one sample, by blocks of pixels: each block reads every
// channel's contiguous run (normalised by read_channel) and writes the block's rows of channels.
void pack_sample(const Conv2dGeometry& g, const float* image, const InputNormalization* norm, uint16_t* packed,
                 float* row) {
  const int64_t plane = g.in_plane(), channels = g.in_channels;
  for (int64_t p0 = 0; p0 < plane; p0 += kPixelBlock) {
    const int64_t count = std::min(kPixelBlock, plane - p0);
    for (int64_t c = 0; c < channels; ++c) {
      conv2d_detail::read_channel(norm, c, image + c * plane + p0, 1, row, count);
      for (int64_t i = 0; i < count; ++i) packed[(p0 + i) * channels + c] = float_to_bf16(row[i]);
    }
  }
}

// y[n, c, p] = result[n, p, c] for one sample.
void unpack_sample(const Conv2dGeometry& g, const float* result, float* y) {
  const int64_t plane = g.out_plane(), channels = g.out_channels;
  for (int64_t p0 = 0; p0 < plane; p0 += kPixelBlock) {
    const int64_t count = std::min(kPixelBlock, plane - p0);
    for (int64_t c = 0; c < channels; ++c) {
      float* dst = y + c * plane + p0;
      const float* src = result + p0 * channels + c;
      for (int64_t i = 0; i < count; ++i) dst[i] = src[i * channels];
    }
  }
}

}  // namespace

size_t conv2d_bf16_workspace_bytes(const Queue& /*q*/, const Conv2dGeometry& g) { return convolution_for(g).bytes; }

void conv2d_forward_bf16(const Queue& /*q*/, const Conv2dForwardBf16Args& a) {
  const Conv2dGeometry& g = a.geometry;
  CHEX_CHECK(a.workspace != nullptr, "conv2d_forward_bf16: needs conv2d_bf16_workspace_bytes of workspace");
  const Bf16Convolution& conv = convolution_for(g);
  const uintptr_t raw = reinterpret_cast<uintptr_t>(a.workspace);
  auto* base = reinterpret_cast<char*>((raw + kAlign - 1) / kAlign * kAlign);
  auto* packed = reinterpret_cast<uint16_t*>(base + conv.src_offset);
  auto* bias = reinterpret_cast<float*>(base + conv.bias_offset);
  auto* result = reinterpret_cast<float*>(base + conv.dst_offset);

#pragma omp parallel
  {
    float row[kPixelBlock];
#pragma omp for schedule(static)
    for (int64_t n = 0; n < g.batch; ++n)
      pack_sample(g, a.x.data + n * a.x.batch_stride, a.norm, packed + n * g.in_sample(), row);
  }
  if (a.bias)
    std::memcpy(bias, a.bias, static_cast<size_t>(g.out_channels) * sizeof(float));
  else
    std::memset(bias, 0, static_cast<size_t>(g.out_channels) * sizeof(float));

  dnnl::stream stream(cpu_engine());
  const memory user_weight(conv.user_weight, cpu_engine(), const_cast<float*>(a.weight));
  const memory weight(conv.pd.weights_desc(), cpu_engine(), base + conv.weight_offset);
  conv.weight_reorder.execute(stream, const_cast<memory&>(user_weight), const_cast<memory&>(weight));
  conv.convolution.execute(stream, {{DNNL_ARG_SRC, memory(conv.pd.src_desc(), cpu_engine(), packed)},
                                    {DNNL_ARG_WEIGHTS, weight},
                                    {DNNL_ARG_BIAS, memory(conv.pd.bias_desc(), cpu_engine(), bias)},
                                    {DNNL_ARG_DST, memory(conv.pd.dst_desc(), cpu_engine(), result)},
                                    {DNNL_ARG_SCRATCHPAD,
                                     memory(conv.pd.scratchpad_desc(), cpu_engine(), base + conv.scratch_offset)}});
  stream.wait();

#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < g.batch; ++n)
    unpack_sample(g, result + n * g.out_sample(), a.y.data + n * a.y.batch_stride);
}

#else  // an OpenBLAS build has no oneDNN: no bf16 convolutions (Backend::has() says so)

bool cpu_has_native_bf16() { return false; }
size_t conv2d_bf16_workspace_bytes(const Queue& /*q*/, const Conv2dGeometry& /*g*/) { return 0; }
void conv2d_forward_bf16(const Queue& /*q*/, const Conv2dForwardBf16Args& /*a*/) {
  CHEX_FAIL("bf16 convolutions need oneDNN; this chex was built with CHEX_GEMM=openblas: rebuild with "
            "-DCHEX_GEMM=onednn or use --precision fp32");
}

#endif

}  // namespace chex::kernels::cpu

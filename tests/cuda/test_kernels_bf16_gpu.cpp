// The bf16 kernels on a GPU (label gpu): the CUDA launchers (chex::kernels::cuda) against the CPU
// twins, as the emulated tests (tests/emu/test_kernel_bf16.cpp) check the same sources on the CPU.
// What only hardware can say: the bits of its conversion instructions (cvt.rn.bf16.f32; a NaN
// must come out as 0x7fff, the emulator's and CUDA's host conversion's canonical NaN) and that the
// vector paths read and write device memory as the emulator does. Exact throughout, as there.
#include <catch2/catch.hpp>
#include <cuda_runtime.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <memory>
#include <vector>

#include "chex/random.h"
#include "gpu_test_support.h"
#include "kernels/cast.h"
#include "kernels/concat.h"
#include "kernels/global_pool.h"

using namespace chex;
using kernels::BFloat16;
using testing::DeviceVector;
using testing::require_gpu;

namespace {

template <typename T>
int64_t differing(const std::vector<T>& a, const std::vector<T>& b) {
  REQUIRE(a.size() == b.size());
  int64_t count = 0;
  for (size_t i = 0; i < a.size(); ++i) count += std::memcmp(&a[i], &b[i], sizeof(T)) != 0;
  return count;
}

bool is_nan(float v) { return std::isnan(v); }
bool is_nan(BFloat16 v) { return std::isnan(kernels::to_float(v)); }

// Checks a result against the twin's bits, NaNs apart: a difference only in NaN bits means the
// hardware's conversions treat NaN otherwise than the emulator's (kernels/emu/bfloat16.h), which
// must then follow the hardware.
template <typename T>
void check_bits(const std::vector<T>& got, const std::vector<T>& want) {
  REQUIRE(got.size() == want.size());
  int64_t numbers = 0, nans = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::memcmp(&got[i], &want[i], sizeof(T)) == 0) continue;
    ++(is_nan(want[i]) ? nans : numbers);
  }
  CHECK(numbers == 0);
  INFO("NaN bits differ from the emulator's: make kernels/emu/bfloat16.h (and kernels/bfloat16.h) follow the GPU");
  CHECK(nans == 0);
}

std::vector<float> random_floats(size_t n, uint64_t seed) {
  Generator gen(seed);
  std::vector<float> v(n);
  for (float& x : v) x = 3.f * gen.normal();
  return v;
}

std::vector<BFloat16> random_bf16(size_t n, uint64_t seed) {
  std::vector<BFloat16> v;
  for (const float x : random_floats(n, seed)) v.push_back(kernels::to_bfloat16(x));
  return v;
}

const kernels::Queue kQueue{};  // device 0, the default stream

}  // namespace

TEST_CASE("GPU bf16 casts equal the twins bit for bit, NaN and ties included", "[gpu][bf16]") {
  require_gpu();
  // Every bf16 pattern, widened on the GPU (exact), and every widened value narrowed back
  // (unchanged, NaN to 0x7fff).
  std::vector<BFloat16> all(65536);
  for (uint32_t b = 0; b < 65536; ++b) all[b] = BFloat16{static_cast<uint16_t>(b)};
  std::vector<float> wide_twin(all.size());
  kernels::cpu::cast_bf16_to_float(kQueue, all.data(), wide_twin.data(), static_cast<int64_t>(all.size()));
  const DeviceVector<BFloat16> all_d(all);
  const DeviceVector<float> wide_d{std::vector<float>(all.size())};
  kernels::cuda::cast_bf16_to_float(kQueue, all_d.get(), wide_d.get(), static_cast<int64_t>(all.size()));
  check_bits(wide_d.read(), wide_twin);

  // The floats around every bf16's halfway points, at offsets that take the scalar path too.
  std::vector<float> floats;
  for (uint32_t b = 0; b < 65536; ++b)
    for (const uint32_t low : {0x0000u, 0x7fffu, 0x8000u, 0x8001u, 0xc3a1u})
      floats.push_back(std::bit_cast<float>(b << 16 | low));
  for (const size_t offset : {size_t{0}, size_t{1}}) {
    const auto n = static_cast<int64_t>(floats.size() - offset);
    std::vector<BFloat16> twin(floats.size());
    kernels::cpu::cast_float_to_bf16(kQueue, floats.data() + offset, twin.data(), n);
    const DeviceVector<float> floats_d(floats);
    const DeviceVector<BFloat16> narrow_d{std::vector<BFloat16>(floats.size())};
    kernels::cuda::cast_float_to_bf16(kQueue, floats_d.get() + offset, narrow_d.get(), n);
    const std::vector<BFloat16> narrow = narrow_d.read();
    INFO("offset " << offset);
    check_bits(narrow, twin);
    // The first NaN input (0x7f810000, from bf16 0x7f81) comes out as the canonical NaN.
    CHECK(narrow[0x7f81 * 5 - offset].bits == kernels::kBFloat16CanonicalNaN);
  }
}

TEST_CASE("GPU bf16 channel copies, additions and concatenation equal the twins", "[gpu][bf16]") {
  require_gpu();
  // A dense block's shapes ([2, 256, 28, 28], a layer's 32 channels at 160) and a misaligned,
  // padded case.
  struct Case {
    int64_t batch, spatial, channels, src_channels, src_offset, src_shift, dst_channels, dst_offset, dst_shift;
  };
  for (const Case& c : {Case{2, 784, 32, 32, 0, 0, 256, 160, 0}, Case{2, 784, 160, 160, 0, 0, 256, 0, 0},
                        Case{3, 49, 33, 65, 31, 3, 97, 63, 3}, Case{2, 1, 1027, 1031, 4, 1, 1031, 4, 2}}) {
    const int64_t src_stride = c.src_channels * c.spatial, dst_stride = c.dst_channels * c.spatial;
    const auto src_size = static_cast<size_t>(c.src_shift + c.batch * src_stride);
    const auto dst_size = static_cast<size_t>(c.dst_shift + c.batch * dst_stride);
    const std::vector<BFloat16> src = random_bf16(src_size, 81), dst0 = random_bf16(dst_size, 82);
    const std::vector<float> acc0 = random_floats(dst_size, 83);
    const DeviceVector<BFloat16> src_d(src);
    const kernels::ImageShape shape{c.batch, c.channels, c.spatial};
    INFO("batch " << c.batch << ", spatial " << c.spatial << ", channels " << c.channels);
    for (const bool add : {false, true}) {
      std::vector<BFloat16> twin = dst0;
      const kernels::ChannelCopyArgsBf16 host_args{{src.data() + c.src_shift, src_stride}, c.src_offset,
                                                   {twin.data() + c.dst_shift, dst_stride}, c.dst_offset, shape};
      (add ? kernels::cpu::add_channels_bf16 : kernels::cpu::copy_channels_bf16)(kQueue, host_args);
      const DeviceVector<BFloat16> dst_d(dst0);
      const kernels::ChannelCopyArgsBf16 args{{src_d.get() + c.src_shift, src_stride}, c.src_offset,
                                              {dst_d.get() + c.dst_shift, dst_stride}, c.dst_offset, shape};
      (add ? kernels::cuda::add_channels_bf16 : kernels::cuda::copy_channels_bf16)(kQueue, args);
      INFO((add ? "add_channels_bf16" : "copy_channels_bf16"));
      CHECK(differing(dst_d.read(), twin) == 0);
    }
    std::vector<float> acc_twin = acc0;
    kernels::cpu::add_channels_bf16_to_float(
        kQueue, {{src.data() + c.src_shift, src_stride}, c.src_offset, {acc_twin.data() + c.dst_shift, dst_stride},
                 c.dst_offset, shape});
    const DeviceVector<float> acc_d(acc0);
    kernels::cuda::add_channels_bf16_to_float(
        kQueue, {{src_d.get() + c.src_shift, src_stride}, c.src_offset, {acc_d.get() + c.dst_shift, dst_stride},
                 c.dst_offset, shape});
    INFO("add_channels_bf16_to_float");
    CHECK(differing(acc_d.read(), acc_twin) == 0);
  }

  // Concatenation of three parts (one misaligned) and its split.
  const int64_t batch = 2, spatial = 49;
  const std::vector<int64_t> channels{64, 5, 32};
  std::vector<std::vector<BFloat16>> inputs;
  std::vector<std::unique_ptr<DeviceVector<BFloat16>>> inputs_d;
  std::vector<kernels::ChannelPartBf16> parts, parts_d;
  int64_t total = 0;
  for (size_t i = 0; i < channels.size(); ++i) {
    inputs.push_back(random_bf16(static_cast<size_t>(1 + batch * channels[i] * spatial), 90 + i));
    inputs_d.push_back(std::make_unique<DeviceVector<BFloat16>>(inputs.back()));
    parts.push_back({inputs.back().data() + 1, channels[i] * spatial, channels[i], total});
    parts_d.push_back({inputs_d.back()->get() + 1, channels[i] * spatial, channels[i], total});
    total += channels[i];
  }
  const std::vector<BFloat16> big0 = random_bf16(static_cast<size_t>(batch * total * spatial), 95);
  std::vector<BFloat16> big_twin = big0;
  kernels::cpu::concat_channels_bf16(kQueue, parts.data(), 3, big_twin.data(), total * spatial, batch, spatial);
  const DeviceVector<BFloat16> big_d(big0);
  kernels::cuda::concat_channels_bf16(kQueue, parts_d.data(), 3, big_d.get(), total * spatial, batch, spatial);
  CHECK(differing(big_d.read(), big_twin) == 0);
  const DeviceVector<BFloat16> twin_on_device(big_twin);
  for (const auto& d : inputs_d) d->clear();  // the split must write every part's element back
  kernels::cuda::split_channels_bf16(kQueue, twin_on_device.get(), total * spatial, parts_d.data(), 3, batch, spatial);
  for (size_t i = 0; i < channels.size(); ++i) {
    std::vector<BFloat16> back = inputs_d[i]->read();
    CHECK(back[0].bits == 0);  // before the part: untouched
    back[0] = inputs[i][0];
    CHECK(differing(back, inputs[i]) == 0);
  }
}

TEST_CASE("GPU global average pool of bf16 input equals the twin", "[gpu][bf16]") {
  require_gpu();
  struct Case {
    int64_t batch, channels, spatial, offset;
  };
  // DenseNet-121's [16, 1024, 7x7], planes on the vector path (spatial 3136), a misaligned start.
  for (const Case& c : {Case{16, 1024, 49, 0}, Case{2, 64, 3136, 0}, Case{2, 64, 3136, 3}}) {
    std::vector<float> values = random_floats(static_cast<size_t>(c.offset + c.batch * c.channels * c.spatial), 97);
    // Magnitudes in [2^-12, 16): the double sums are exact, so any order gives the twin's result.
    for (float& v : values) v = std::copysign(std::clamp(std::fabs(v), std::ldexp(1.f, -12), 15.f), v);
    std::vector<BFloat16> x;
    for (const float v : values) x.push_back(kernels::to_bfloat16(v));
    const auto planes = static_cast<size_t>(c.batch * c.channels);
    std::vector<float> twin(planes);
    kernels::cpu::global_avg_pool_forward_bf16(kQueue, x.data() + c.offset, c.channels * c.spatial, twin.data(),
                                               c.batch, c.channels, c.spatial);
    const DeviceVector<BFloat16> x_d(x);
    const DeviceVector<float> y_d{std::vector<float>(planes)};
    kernels::cuda::global_avg_pool_forward_bf16(kQueue, x_d.get() + c.offset, c.channels * c.spatial, y_d.get(),
                                                c.batch, c.channels, c.spatial);
    INFO("[" << c.batch << ", " << c.channels << ", " << c.spatial << "] offset " << c.offset);
    CHECK(differing(y_d.read(), twin) == 0);
  }
}

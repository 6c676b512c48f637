// The bf16 kernels emulated against their CPU twins under the forward, reverse and random schedules:
// the fp32 <-> bf16 casts (kernels/cast.cu: whole buffers and batch-strided images), the channel
// copies and concatenation on bf16 buffers and the addition of bf16 into float (kernels/concat.cu),
// and global average pooling of bf16 input
// (kernels/global_pool.cu), at odd sizes, misaligned starts and tails (the vector and scalar
// paths), and DenseNet-121's shapes.
//
// Tolerances: casts, copies and bf16 additions are exact (bit for bit: each is one conversion or one
// float addition rounded once, the same on both sides). The pooled means are summed in double on
// both sides, in different orders: exact when the sum is exact in double, which holds for bf16
// values whose magnitudes span less than 2^(53 - 8 - log2(count)) (the bounded data below, tolerance
// 0); for unbounded data they may differ by the final rounding (1e-6, as the fp32 kernel's test).
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "bf16_test_support.h"
#include "channel_copy_checks.h"
#include "kernel_test_support.h"
#include "kernels/cast.h"
#include "kernels/concat.h"
#include "kernels/global_pool.h"
#include "kernels/pooling.h"
#include "models/densenet_shapes.h"

using namespace chex;
using kernels::BFloat16;
using testing::check_bits_against_twin;
using testing::to_bf16;
using testing::widen;

namespace {

// Random normal floats with the values rounding has to get right mixed in: ties with even and odd
// kept parts, a carry into the exponent, the overflow tie, subnormals, signed zeros, infinities and
// NaNs.
std::vector<float> floats_with_edges(int64_t n, Generator& gen) {
  std::vector<float> v = testing::random_vector(n, gen, 3.f);
  using limits = std::numeric_limits<float>;
  const float edges[] = {1.f + std::ldexp(1.f, -8),     1.f + 3 * std::ldexp(1.f, -8), 2.f - std::ldexp(1.f, -9),
                         std::bit_cast<float>(0x7f7f8000u), limits::max(),               -limits::max(),
                         limits::denorm_min(),            std::bit_cast<float>(0x00408000u), -0.f,
                         limits::infinity(),              -limits::infinity(),           limits::quiet_NaN(),
                         -limits::quiet_NaN(),            std::bit_cast<float>(0x7f800001u)};
  for (size_t i = 0; i < v.size(); i += 7) v[i] = edges[(i / 7) % std::size(edges)];
  return v;
}

}  // namespace

TEST_CASE("fp32 <-> bf16 cast kernels match the CPU twins bit for bit", "[emu][bf16][cast]") {
  Generator gen(41);
  // Sizes around the 4-element groups and a grid-stride over several blocks; offsets (in elements)
  // that keep or break each side's vector alignment (16 bytes for floats, 8 for bf16).
  for (const int64_t n : {int64_t{0}, int64_t{1}, int64_t{3}, int64_t{4}, int64_t{5}, int64_t{1027}, int64_t{9000}}) {
    for (const int64_t x_offset : {int64_t{0}, int64_t{1}, int64_t{2}}) {
      for (const int64_t y_offset : {int64_t{0}, int64_t{3}, int64_t{4}}) {
        DYNAMIC_SECTION("n " << n << ", x offset " << x_offset << ", y offset " << y_offset) {
          const std::vector<float> x = floats_with_edges(x_offset + n, gen);
          std::vector<BFloat16> twin(y_offset + n, BFloat16{0x1234});
          kernels::cpu::cast_float_to_bf16({}, x.data() + x_offset, twin.data() + y_offset, n);
          check_bits_against_twin<BFloat16>(
              "cast_float_to_bf16",
              [&] {
                std::vector<BFloat16> y(y_offset + n, BFloat16{0x1234});  // untouched outside [offset, offset + n)
                kernels::emu::cast_float_to_bf16({}, x.data() + x_offset, y.data() + y_offset, n);
                return y;
              },
              twin);

          // Back: every element widens exactly (here, the rounded values and the NaN they hold).
          std::vector<float> back_twin(x_offset + n, -7.f);
          kernels::cpu::cast_bf16_to_float({}, twin.data() + y_offset, back_twin.data() + x_offset, n);
          for (int64_t i = 0; i < n; ++i) {
            const uint32_t expected = static_cast<uint32_t>(twin[static_cast<size_t>(y_offset + i)].bits) << 16;
            REQUIRE(std::bit_cast<uint32_t>(back_twin[static_cast<size_t>(x_offset + i)]) == expected);
          }
          check_bits_against_twin<float>(
              "cast_bf16_to_float",
              [&] {
                std::vector<float> y(x_offset + n, -7.f);
                kernels::emu::cast_bf16_to_float({}, twin.data() + y_offset, y.data() + x_offset, n);
                return y;
              },
              back_twin);
        }
      }
    }
  }
}

TEST_CASE("batch-strided fp32 <-> bf16 cast kernels match the twins bit for bit and touch only the images",
          "[emu][bf16][cast]") {
  Generator gen(43);
  // Image sizes around the 4-element groups; strides that keep (multiples of 4) or break the
  // alignment of every image after the first; offsets that break the first's.
  struct Layout {
    int64_t batch, sample, x_stride, y_stride, x_offset, y_offset;
  };
  const Layout layouts[] = {{0, 8, 8, 8, 0, 0},        {3, 0, 4, 4, 0, 0},       {1, 5, 5, 5, 0, 0},
                            {3, 8, 8, 8, 0, 0},        {3, 8, 12, 8, 0, 0},      {3, 8, 8, 16, 0, 0},
                            {3, 8, 11, 8, 0, 0},       {3, 7, 7, 7, 0, 0},       {4, 1028, 2048, 1028, 0, 0},
                            {4, 1028, 1028, 1540, 1, 0}, {2, 1030, 1030, 2060, 0, 3}, {5, 12, 16, 12, 2, 4}};
  for (const Layout& l : layouts) {
    DYNAMIC_SECTION("batch " << l.batch << ", sample " << l.sample << ", strides " << l.x_stride << " / "
                             << l.y_stride << ", offsets " << l.x_offset << " / " << l.y_offset) {
      const int64_t x_size = l.x_offset + l.batch * l.x_stride, y_size = l.y_offset + l.batch * l.y_stride;
      const std::vector<float> x = floats_with_edges(x_size, gen);
      std::vector<BFloat16> twin(static_cast<size_t>(y_size), BFloat16{0x1234});
      kernels::cpu::cast_float_to_bf16_images({}, x.data() + l.x_offset, l.x_stride, twin.data() + l.y_offset,
                                              l.y_stride, l.batch, l.sample);
      // The twin is the plain cast of each image, and leaves the rest alone.
      for (int64_t n = 0; n < l.batch; ++n) {
        std::vector<BFloat16> image(static_cast<size_t>(l.sample));
        kernels::cpu::cast_float_to_bf16({}, x.data() + l.x_offset + n * l.x_stride, image.data(), l.sample);
        for (int64_t i = 0; i < l.sample; ++i)
          REQUIRE(twin[static_cast<size_t>(l.y_offset + n * l.y_stride + i)].bits == image[static_cast<size_t>(i)].bits);
      }
      int64_t outside_written = 0;
      for (int64_t i = 0; i < y_size; ++i) {
        const int64_t in_image = (i - l.y_offset) % std::max<int64_t>(l.y_stride, 1);
        const bool inside = i >= l.y_offset && i < l.y_offset + l.batch * l.y_stride && in_image < l.sample;
        outside_written += !inside && twin[static_cast<size_t>(i)].bits != 0x1234;
      }
      CHECK(outside_written == 0);
      check_bits_against_twin<BFloat16>(
          "cast_float_to_bf16_images",
          [&] {
            std::vector<BFloat16> y(static_cast<size_t>(y_size), BFloat16{0x1234});
            kernels::emu::cast_float_to_bf16_images({}, x.data() + l.x_offset, l.x_stride, y.data() + l.y_offset,
                                                    l.y_stride, l.batch, l.sample);
            return y;
          },
          twin);

      // Back, from the bf16 images into a buffer with x's layout.
      std::vector<float> back_twin(static_cast<size_t>(x_size), -7.f);
      kernels::cpu::cast_bf16_to_float_images({}, twin.data() + l.y_offset, l.y_stride, back_twin.data() + l.x_offset,
                                              l.x_stride, l.batch, l.sample);
      for (int64_t n = 0; n < l.batch; ++n)
        for (int64_t i = 0; i < l.sample; ++i) {
          const uint32_t expected = static_cast<uint32_t>(twin[static_cast<size_t>(l.y_offset + n * l.y_stride + i)].bits)
                                    << 16;
          REQUIRE(std::bit_cast<uint32_t>(back_twin[static_cast<size_t>(l.x_offset + n * l.x_stride + i)]) == expected);
        }
      check_bits_against_twin<float>(
          "cast_bf16_to_float_images",
          [&] {
            std::vector<float> y(static_cast<size_t>(x_size), -7.f);
            kernels::emu::cast_bf16_to_float_images({}, twin.data() + l.y_offset, l.y_stride, y.data() + l.x_offset,
                                                    l.x_stride, l.batch, l.sample);
            return y;
          },
          back_twin);
    }
  }
}

TEST_CASE("the bf16 cast twin rounds as kernels/bfloat16.h, every bf16 widens", "[emu][bf16][cast]") {
  // Every bf16 bit pattern through the emulated widening kernel, then back through the narrowing
  // one: unchanged, but NaNs become the canonical 0x7fff.
  std::vector<BFloat16> all(65536);
  for (uint32_t b = 0; b < 65536; ++b) all[b] = BFloat16{static_cast<uint16_t>(b)};
  std::vector<float> wide(all.size());
  kernels::emu::cast_bf16_to_float({}, all.data(), wide.data(), static_cast<int64_t>(all.size()));
  std::vector<BFloat16> narrow(all.size());
  kernels::emu::cast_float_to_bf16({}, wide.data(), narrow.data(), static_cast<int64_t>(all.size()));
  int64_t wrong = 0;
  for (uint32_t b = 0; b < 65536; ++b) {
    const bool nan = (b & 0x7f80) == 0x7f80 && (b & 0x7f) != 0;
    wrong += std::bit_cast<uint32_t>(wide[b]) != b << 16;
    wrong += narrow[b].bits != (nan ? kernels::kBFloat16CanonicalNaN : b);
  }
  CHECK(wrong == 0);
}

namespace {

std::vector<BFloat16> random_bf16(int64_t n, Generator& gen) { return to_bf16(testing::random_vector(n, gen)); }

// The bf16 channel kernels for the checks they share with the fp32 ones (channel_copy_checks.h),
// compared bit for bit.
const testing::ChannelKernels<BFloat16> kBf16Kernels{"_bf16",
                                                     &kernels::cpu::copy_channels_bf16,
                                                     &kernels::emu::copy_channels_bf16,
                                                     &kernels::cpu::add_channels_bf16,
                                                     &kernels::emu::add_channels_bf16,
                                                     &kernels::cpu::concat_channels_bf16,
                                                     &kernels::emu::concat_channels_bf16,
                                                     &kernels::cpu::split_channels_bf16,
                                                     &kernels::emu::split_channels_bf16,
                                                     &random_bf16,
                                                     &check_bits_against_twin<BFloat16>};

using testing::CopyCase;

// copy_channels_bf16 and add_channels_bf16 on one case, the whole destination compared.
void check_copy_case(const CopyCase& c, Generator& gen) { testing::check_copy_case(kBf16Kernels, c, gen); }

// add_channels_bf16_to_float on one case: a bf16 source added into a float destination (the same
// shapes and shifts, in elements: 4 of either type make one vector access).
void check_add_to_float_case(const CopyCase& c, Generator& gen) {
  const std::vector<BFloat16> src = random_bf16(c.src_elements(), gen);
  const std::vector<float> dst0 = testing::random_vector(c.dst_elements(), gen);
  testing::check_channel_copy<BFloat16, float>("add_channels_bf16_to_float", &kernels::cpu::add_channels_bf16_to_float,
                                               &kernels::emu::add_channels_bf16_to_float, c, src, dst0,
                                               &check_bits_against_twin<float>);
}

}  // namespace

TEST_CASE("bf16 channel copies match the twin at awkward sizes and alignments", "[emu][bf16][concat]") {
  Generator gen(42);
  const std::vector<CopyCase> cases{
      {1, 1, 1, 1, 0, 0, 0, 1, 0, 0, 0},            // one element
      {3, 1, 1, 2, 1, 0, 0, 3, 2, 0, 0},            // one element per image, odd offsets: scalar rows
      {2, 3, 5, 7, 1, 0, 0, 9, 3, 0, 0},            // 15-element rows, phases differ: scalar
      {2, 3, 5, 7, 1, 0, 1, 9, 1, 0, 1},            // same phase on both sides: scalar head, vector body
      {3, 49, 33, 65, 31, 3, 2, 97, 63, 5, 2},      // DenseNet's 7x7, odd channel counts and paddings
      {2, 1, 1027, 1031, 4, 0, 0, 1031, 4, 0, 0},   // rows of 1027 from a 4-element phase: head and tail
      {2, 784, 41, 41, 0, 0, 0, 50, 9, 8, 8},       // rows longer than one block's vectors
      {0, 49, 32, 32, 0, 0, 0, 64, 32, 0, 0},       // empty batch
      {2, 49, 0, 32, 0, 0, 0, 64, 32, 0, 0},        // no channels
  };
  for (const CopyCase& c : cases) {
    DYNAMIC_SECTION(describe(c)) {
      check_copy_case(c, gen);
      check_add_to_float_case(c, gen);
    }
  }
}

TEST_CASE("bf16 dense-block copies match the twin at DenseNet-121's first block", "[emu][bf16][concat]") {
  // The first dense block at a 112x112 input ([2, 256, 28, 28]): the block input into the buffer,
  // each layer's 32 new channels into their slice and its gradient back out, and each layer's
  // input gradient (the prefix) accumulated into the block gradient buffer.
  Generator gen(43);
  const int64_t spatial = 28 * 28, c0 = 64, c_final = 256, growth = 32;
  check_copy_case({2, spatial, c0, c0, 0, 0, 0, c_final, 0, 0, 0}, gen);
  for (int64_t l = 0; l < 6; ++l) {
    const int64_t in = c0 + l * growth;
    check_copy_case({2, spatial, growth, growth, 0, 0, 0, c_final, in, 0, 0}, gen);
    check_copy_case({2, spatial, growth, c_final, in, 0, 0, growth, 0, 0, 0}, gen);
    check_copy_case({2, spatial, in, in, 0, 0, 0, c_final, 0, 0, 0}, gen);
    check_add_to_float_case({2, spatial, in, in, 0, 0, 0, c_final, 0, 0, 0}, gen);  // into an fp32 gradient
  }
}

TEST_CASE("add_channels_bf16 adds in float and rounds once, add_channels_bf16_to_float widens and adds",
          "[emu][bf16][concat]") {
  // The twin against the definition, so that the emulated kernel (checked against the twin) is too.
  Generator gen(44);
  const int64_t n = 4099;
  const std::vector<BFloat16> a = random_bf16(n, gen), b = random_bf16(n, gen);
  std::vector<BFloat16> sum = b;
  kernels::cpu::add_channels_bf16({}, {{a.data(), n}, 0, {sum.data(), n}, 0, {1, 1, n}});
  int64_t wrong = 0, rounded = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float exact = kernels::to_float(a[i]) + kernels::to_float(b[i]);
    wrong += sum[i].bits != kernels::to_bfloat16(exact).bits;
    rounded += kernels::to_float(sum[i]) != exact;
  }
  CHECK(wrong == 0);
  CHECK(rounded > n / 2);  // the data makes rounding matter

  // Into float: the float sum of the widened values.
  const std::vector<float> acc0 = testing::random_vector(n, gen);
  std::vector<float> acc = acc0;
  kernels::cpu::add_channels_bf16_to_float({}, {{a.data(), n}, 0, {acc.data(), n}, 0, {1, 1, n}});
  int64_t wrong_float = 0;
  for (int64_t i = 0; i < n; ++i) wrong_float += acc[i] != acc0[i] + kernels::to_float(a[i]);
  CHECK(wrong_float == 0);
}

TEST_CASE("bf16 concat_channels and split_channels match the twin", "[emu][bf16][concat]") {
  Generator gen(45);
  testing::check_concat_and_split(kBf16Kernels, gen, 8);
}

TEST_CASE("global average pool of bf16 input matches the twins", "[emu][bf16][pool]") {
  Generator gen(46);
  const models::MapShape norm5 = models::densenet_layer_shapes(2).global_pool_input;
  // DenseNet-121's pool ([2, 1024, 7, 7]); one value; planes of 2 and 3; planes of 8k elements
  // (the 16-byte vector path) at aligned, misaligned and padded starts; 56x56 planes; an odd tail.
  const std::vector<testing::StridedCase> cases{{norm5.batch, norm5.channels, norm5.height * norm5.width},
                                                {1, 1, 1},
                                                {1, 1, 2},
                                                {2, 9, 3},
                                                {3, 5, 64},
                                                {3, 5, 64, 1, 0},
                                                {3, 5, 64, 0, 4},
                                                {3, 5, 64, 8, 8},
                                                {2, 3, 3136},
                                                {1, 2, 4099, 0, 0}};
  for (const testing::StridedCase& k : cases) {
    for (const bool bounded : {true, false}) {
      DYNAMIC_SECTION(k.name() << (bounded ? ", bounded magnitudes" : ", unbounded magnitudes")) {
        std::vector<float> values = testing::random_vector(k.buffer(), gen, 2.f);
        if (bounded) {
          // Magnitudes in [2^-12, 2^4): sums of up to 2^13 bf16 values are exact in double.
          for (float& v : values) v = std::copysign(std::clamp(std::fabs(v), std::ldexp(1.f, -12), 15.f), v);
        } else {
          // Magnitudes from 1e-30 to 1e4 (orders of summation then matter, below the final rounding).
          for (size_t i = 0; i < values.size(); i += 11) values[i] *= (i % 2 ? 1e-30f : 1e3f);
        }
        const std::vector<BFloat16> x = to_bf16(values);
        std::vector<float> y_ref(k.planes());
        kernels::cpu::global_avg_pool_forward_bf16({}, x.data() + k.offset, k.stride(), y_ref.data(), k.batch,
                                                   k.channels, k.spatial);
        // The same semantics as the fp32 twin on the widened input, bit for bit.
        std::vector<float> y_fp32(k.planes());
        const std::vector<float> wide = widen(x);
        kernels::cpu::global_avg_pool_forward({}, wide.data() + k.offset, k.stride(), y_fp32.data(), k.batch,
                                              k.channels, k.spatial);
        CHECK(y_ref == y_fp32);
        testing::check_against_twin(
            "global_avg_pool_forward_bf16 " + k.name(),
            [&] {
              std::vector<float> y(k.planes(), -7.f);
              kernels::emu::global_avg_pool_forward_bf16({}, x.data() + k.offset, k.stride(), y.data(), k.batch,
                                                         k.channels, k.spatial);
              return y;
            },
            y_ref, bounded ? 0.0 : 1e-6);
      }
    }
  }
}

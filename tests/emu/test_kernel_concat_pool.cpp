// Concatenation and pooling GPU kernels (kernels/concat.cu, kernels/pooling.cu) emulated against
// their CPU twins: at the distinct DenseNet-121 shapes (batch 2) and at awkward sizes and
// alignments, under the forward, reverse and random schedules. Pooling runs at the full 224x224
// input's sizes; the dense-block copies, 58 layers of them, at a 112x112 input's (spatial 28, 14,
// 7, 3 instead of 56, 28, 14, 7: every channel count and offset is DenseNet-121's) to keep the
// emulated suite fast.
// Tolerance 0 throughout: the kernels copy, compare and add in the twins' order.
#include <cmath>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "channel_copy_checks.h"
#include "kernel_test_support.h"
#include "pool_test_support.h"
#include "kernels/concat.h"
#include "kernels/pooling.h"
#include "models/densenet_shapes.h"

using namespace chex;

namespace {

constexpr int64_t kBatch = 2;

// The fp32 channel kernels for the checks they share with the bf16 ones (channel_copy_checks.h);
// tolerance 0 (check_against_twin also demands that the schedules agree bit for bit).
const testing::ChannelKernels<float> kFloatKernels{
    "",
    &kernels::cpu::copy_channels,
    &kernels::emu::copy_channels,
    &kernels::cpu::add_channels,
    &kernels::emu::add_channels,
    &kernels::cpu::concat_channels,
    &kernels::emu::concat_channels,
    &kernels::cpu::split_channels,
    &kernels::emu::split_channels,
    [](int64_t n, Generator& gen) { return testing::random_vector(n, gen); },
    [](const std::string& what, const std::function<std::vector<float>()>& emulated,
       const std::vector<float>& reference) { testing::check_against_twin(what, emulated, reference, 0.0); }};

using testing::CopyCase;
using testing::Modes;

void check_copy_case(const CopyCase& c, Generator& gen, Modes modes = Modes::both) {
  testing::check_copy_case(kFloatKernels, c, gen, modes);
}

}  // namespace

TEST_CASE("dense-block concatenation kernels match the twin at DenseNet-121 shapes", "[emu][concat]") {
  // Per dense block: the buffer [N, C_final, H, W]; the block input is copied into channels
  // [0, c0); layer l writes its 32 new channels at c0 + 32 l (forward), and in backward its
  // input's gradient (the prefix of c0 + 32 l channels) is added into the block gradient buffer
  // and its new channels' gradient is read back out of it.
  Generator gen(21);
  const int64_t growth = 32;
  const std::vector<int64_t> layers{6, 12, 24, 16};
  int64_t c0 = 64, hw = 28;  // a 112x112 input; 56 at 224x224
  for (size_t b = 0; b < layers.size(); ++b) {
    const int64_t spatial = hw * hw, c_final = c0 + layers[b] * growth;
    DYNAMIC_SECTION("dense block " << b + 1 << ": " << c_final << " channels of " << hw << "x" << hw) {
      // The block input into the buffer.
      check_copy_case({kBatch, spatial, c0, c0, 0, 0, 0, c_final, 0, 0, 0}, gen, Modes::copy);
      for (int64_t l = 0; l < layers[b]; ++l) {
        const int64_t in = c0 + l * growth;
        // New channels in (copy) / their gradient out (copy from the slice).
        check_copy_case({kBatch, spatial, growth, growth, 0, 0, 0, c_final, in, 0, 0}, gen, Modes::copy);
        check_copy_case({kBatch, spatial, growth, c_final, in, 0, 0, growth, 0, 0, 0}, gen, Modes::copy);
        // The prefix's gradient accumulated into the block gradient buffer.
        check_copy_case({kBatch, spatial, in, in, 0, 0, 0, c_final, 0, 0, 0}, gen, Modes::add);
      }
    }
    c0 = c_final / 2;
    hw /= 2;
  }
}

TEST_CASE("channel copy kernels match the twin at awkward sizes and alignments", "[emu][concat]") {
  Generator gen(22);
  const std::vector<CopyCase> cases{
      {1, 1, 1, 1, 0, 0, 0, 1, 0, 0, 0},          // one element
      {3, 1, 1, 2, 1, 0, 0, 3, 2, 0, 0},          // one element per image, odd offsets: scalar rows
      {2, 3, 5, 7, 1, 0, 0, 9, 3, 0, 0},          // 15-float rows, phases differ: scalar
      {2, 3, 5, 7, 1, 0, 1, 9, 1, 1, 1},          // same phase on both sides: scalar head, float4 body
      {3, 49, 33, 65, 31, 3, 2, 97, 63, 1, 3},    // DenseNet's 7x7, odd channel counts and paddings
      {2, 1, 1027, 1031, 4, 0, 0, 1031, 4, 0, 0},  // aligned rows of 1027: body plus a 3-float tail
      {2, 49, 41, 41, 0, 0, 0, 50, 9, 2, 2},       // rows longer than one block's float4s
      {0, 49, 32, 32, 0, 0, 0, 64, 32, 0, 0},      // empty batch
      {2, 49, 0, 32, 0, 0, 0, 64, 32, 0, 0},       // no channels
      {2, 0, 32, 32, 0, 0, 0, 64, 32, 0, 0},       // empty planes
  };
  for (const CopyCase& c : cases) {
    DYNAMIC_SECTION(describe(c)) { check_copy_case(c, gen); }
  }
}

TEST_CASE("concat_channels and split_channels match the twin", "[emu][concat]") {
  Generator gen(23);
  testing::check_concat_and_split(kFloatKernels, gen, 1);
}

namespace {

using testing::describe_pool;
using testing::pool_geometry;
using testing::tied_values;

// Max pool forward and backward on x (batch-strided), dy random.
// dx_offset: dx that many floats into its buffer (1: not 8-byte aligned, the scalar stores).
void check_max_pool(const kernels::Pool2dGeometry& g, int64_t x_batch_stride, const std::vector<float>& x,
                    Generator& gen, int64_t dx_offset = 0) {
  const int64_t outputs = g.batch * g.channels * g.out_height * g.out_width;
  const int64_t inputs = g.batch * g.channels * g.height * g.width;
  const std::vector<float> dy = testing::random_vector(outputs, gen);
  std::vector<float> y_ref(outputs), dx_ref(inputs);
  kernels::cpu::max_pool2d_forward({}, x.data(), x_batch_stride, y_ref.data(), g);
  kernels::cpu::max_pool2d_backward({}, x.data(), x_batch_stride, dy.data(), dx_ref.data(), g);
  testing::check_against_twin(
      "max_pool2d_forward " + describe_pool(g, x_batch_stride),
      [&] {
        std::vector<float> y(outputs, 1234.f);
        kernels::emu::max_pool2d_forward({}, x.data(), x_batch_stride, y.data(), g);
        return y;
      },
      y_ref, 0.0);
  testing::check_against_twin(
      "max_pool2d_backward " + describe_pool(g, x_batch_stride),
      [&] {
        std::vector<float> dx(inputs + dx_offset, 1234.f);  // must be overwritten everywhere
        kernels::emu::max_pool2d_backward({}, x.data(), x_batch_stride, dy.data(), dx.data() + dx_offset, g);
        return std::vector<float>(dx.begin() + dx_offset, dx.end());
      },
      dx_ref, 0.0);
}

void check_avg_pool(const kernels::Pool2dGeometry& g, int64_t x_batch_stride, const std::vector<float>& x,
                    Generator& gen, int64_t dx_offset = 0) {
  const int64_t outputs = g.batch * g.channels * g.out_height * g.out_width;
  const int64_t inputs = g.batch * g.channels * g.height * g.width;
  const std::vector<float> dy = testing::random_vector(outputs, gen);
  std::vector<float> y_ref(outputs), dx_ref(inputs);
  kernels::cpu::avg_pool2d_forward({}, x.data(), x_batch_stride, y_ref.data(), g);
  kernels::cpu::avg_pool2d_backward({}, dy.data(), dx_ref.data(), g);
  testing::check_against_twin(
      "avg_pool2d_forward " + describe_pool(g, x_batch_stride),
      [&] {
        std::vector<float> y(outputs, 1234.f);
        kernels::emu::avg_pool2d_forward({}, x.data(), x_batch_stride, y.data(), g);
        return y;
      },
      y_ref, 0.0);
  testing::check_against_twin(
      "avg_pool2d_backward " + describe_pool(g, x_batch_stride),
      [&] {
        std::vector<float> dx(inputs + dx_offset, 1234.f);  // must be overwritten everywhere
        kernels::emu::avg_pool2d_backward({}, dy.data(), dx.data() + dx_offset, g);
        return std::vector<float>(dx.begin() + dx_offset, dx.end());
      },
      dx_ref, 0.0);
}

}  // namespace

TEST_CASE("pooling kernels match the twin at DenseNet-121 shapes", "[emu][pool]") {
  Generator gen(31);
  const models::DenseNetShapes shapes = models::densenet_layer_shapes(kBatch);
  SECTION("stem max pool 3x3/2 padding 1") {
    const models::MapShape& s = shapes.stem_pool_input;
    const auto g = pool_geometry(s.batch, s.channels, s.height, s.width, 3, 2, 1);
    const int64_t stride = s.channels * s.height * s.width;
    check_max_pool(g, stride, tied_values(s.batch * stride, gen), gen);
  }
  for (const models::MapShape& s : shapes.transition_pool_inputs) {
    DYNAMIC_SECTION("transition avg pool 2x2/2 of [" << s.batch << "," << s.channels << "," << s.height << ","
                                                     << s.width << "]") {
      const auto g = pool_geometry(s.batch, s.channels, s.height, s.width, 2, 2, 0);
      const int64_t stride = s.channels * s.height * s.width;
      check_avg_pool(g, stride, testing::random_vector(s.batch * stride, gen), gen);
    }
  }
}

TEST_CASE("pooling kernels match the twin at awkward shapes", "[emu][pool]") {
  Generator gen(32);
  // The backward's launch paths (kernels/pooling.cu): max pool with stride 2 and kernel <= 3 in
  // 2x2 tiles of inputs (float2 rows when the width is even and dx aligned), other max pools as a
  // gather; non-overlapping average pools one thread per window (float2 rows for 2x2), others as a
  // gather. dx_offset 1 puts dx off 8-byte alignment.
  struct Case {
    int64_t batch, channels, height, width, kernel, stride, padding, extra_stride, dx_offset = 0;
  };
  const std::vector<Case> max_cases{
      {1, 1, 1, 1, 1, 1, 0, 0},   // one element
      {1, 3, 7, 5, 3, 2, 1, 0},   // odd sizes, the stem's window
      {2, 3, 9, 11, 3, 1, 1, 5},  // heavy overlap, a batch-strided x
      {2, 2, 8, 7, 3, 2, 0, 0},   // no padding: the last row/column of x in no window
      {1, 2, 6, 6, 3, 3, 0, 0},   // windows that touch, no overlap
      {3, 5, 13, 17, 2, 2, 1, 3},  // padding on every side, 1-wide edge windows
      {2, 37, 11, 9, 3, 2, 1, 0},  // more outputs than one block's threads, not a multiple of 256
      {0, 3, 7, 7, 3, 2, 1, 0},    // empty batch
      {2, 3, 9, 8, 3, 2, 1, 7},    // tiles: even width (float2 rows), a last tile row of one input
      {2, 3, 9, 8, 3, 2, 1, 7, 1},  // the same with dx misaligned: scalar stores
      {2, 4, 12, 10, 3, 2, 0, 0},  // tiles, no padding: two window rows over most tiles
      {1, 2, 6, 6, 2, 2, 0, 0},    // tiles of the 2x2/2 window: one window each
      {1, 2, 7, 6, 1, 2, 0, 0},    // kernel 1 stride 2: inputs under no window get 0
      {2, 3, 11, 10, 2, 3, 1, 0},  // stride 3: the gather
  };
  for (const Case& c : max_cases) {
    const auto g = pool_geometry(c.batch, c.channels, c.height, c.width, c.kernel, c.stride, c.padding);
    const int64_t stride = c.channels * c.height * c.width + c.extra_stride;
    DYNAMIC_SECTION("max pool " << describe_pool(g, stride)) {
      check_max_pool(g, stride, tied_values(c.batch * stride, gen), gen, c.dx_offset);
    }
  }
  const std::vector<Case> avg_cases{
      {1, 1, 1, 1, 1, 1, 0, 0},     {1, 3, 7, 5, 2, 2, 0, 0},  {2, 3, 9, 11, 3, 1, 0, 5},
      {2, 2, 8, 7, 3, 2, 0, 0},     {2, 37, 11, 9, 2, 2, 0, 1}, {0, 3, 7, 7, 2, 2, 0, 0},
      {2, 3, 9, 10, 2, 2, 0, 0},    // float2 rows, an odd height: the last input row gets 0
      {2, 3, 8, 8, 2, 2, 0, 0, 1},  // dx misaligned: scalar stores
      {1, 2, 10, 11, 3, 3, 0, 0},   // 3x3/3: a row and two columns under no window, and a corner
      {3, 37, 5, 4, 4, 4, 0, 0},    // one window a plane, more windows than one block's threads
  };
  for (const Case& c : avg_cases) {
    const auto g = pool_geometry(c.batch, c.channels, c.height, c.width, c.kernel, c.stride, c.padding);
    const int64_t stride = c.channels * c.height * c.width + c.extra_stride;
    DYNAMIC_SECTION("avg pool " << describe_pool(g, stride)) {
      check_avg_pool(g, stride, testing::random_vector(c.batch * stride, gen), gen, c.dx_offset);
    }
  }
}

TEST_CASE("max pool kernels treat NaN as the maximum, as the twin does", "[emu][pool]") {
  Generator gen(33);
  const auto g = pool_geometry(1, 2, 5, 5, 3, 2, 1);
  std::vector<float> x = testing::random_vector(50, gen);
  x[6] = std::numeric_limits<float>::quiet_NaN();   // inside several windows of plane 0
  x[37] = -std::numeric_limits<float>::infinity();  // plane 1
  std::vector<float> y_ref(18), y(18, 0.f);
  kernels::cpu::max_pool2d_forward({}, x.data(), 25, y_ref.data(), g);
  kernels::emu::max_pool2d_forward({}, x.data(), 25, y.data(), g);
  for (size_t i = 0; i < y.size(); ++i) {
    INFO("output " << i);
    CHECK(std::isnan(y[i]) == std::isnan(y_ref[i]));
    if (!std::isnan(y_ref[i])) CHECK(y[i] == y_ref[i]);
  }
  // The gradient (finite) goes to the NaN where it is a window's maximum.
  const std::vector<float> dy = testing::random_vector(18, gen);
  std::vector<float> dx_ref(50);
  kernels::cpu::max_pool2d_backward({}, x.data(), 25, dy.data(), dx_ref.data(), g);
  testing::check_against_twin(
      "max_pool2d_backward with NaN",
      [&] {
        std::vector<float> dx(50, 1234.f);
        kernels::emu::max_pool2d_backward({}, x.data(), 25, dy.data(), dx.data(), g);
        return dx;
      },
      dx_ref, 0.0);
}

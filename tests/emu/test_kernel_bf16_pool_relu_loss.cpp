// The bf16 variants of max and average pooling (kernels/pooling.cu), ReLU (kernels/elementwise.cu)
// and sigmoid + BCE on bf16 logits (kernels/bce.cu), emulated against their CPU twins under the
// forward, reverse and random schedules, at DenseNet-121's shapes, odd sizes, tails, misaligned
// starts, ties, NaN and infinities.
//
// Two checks each, so that both sides are pinned down:
//  - the twin's semantics: a bf16 twin equals the float32 twin on the widened inputs with its
//    result rounded once to bf16 (pooling, ReLU), or unrounded (BCE: the loss and dlogits stay
//    fp32), bit for bit. This is what "computed in float as the float32 kernel, rounded once on the
//    store" means; a twin that rounded each addition would fail it (overlapping windows).
//  - the emulated kernel against the twin: bit for bit for pooling and ReLU (the same comparisons
//    and the same order of float additions; both sides round with kernels/bfloat16.h). For BCE,
//    within 1e-6 (max |a - b| / max(|b|, 1)), as the float32 kernel's test: its loss is summed in
//    double in another order, and its dlogits are compared scaled by N*C / grad_output; and the
//    emulated bf16 kernel equals the emulated float32 kernel on the widened logits bit for bit.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "bce_test_support.h"
#include "bf16_test_support.h"
#include "kernel_test_support.h"
#include "kernels/bce.h"
#include "kernels/elementwise.h"
#include "kernels/pooling.h"
#include "models/densenet_shapes.h"
#include "pool_test_support.h"

using namespace chex;
using kernels::BFloat16;
using testing::check_bits_against_twin;
using testing::differing_elements;
using testing::to_bf16;
using testing::widen;

namespace {

constexpr uint16_t kLargest = 0x7f7f, kLowest = 0xff7f;  // bf16's largest finite values, about 3.39e38

// A NaN that no kernel writes (kernels write the canonical 0x7fff): an element left unwritten shows.
constexpr BFloat16 kUnwritten{0x7fc1};

std::vector<BFloat16> random_bf16(int64_t n, Generator& gen, float scale = 1.f) {
  return to_bf16(testing::random_vector(n, gen, scale));
}

// ---- Pooling

// One pooling case: x batch-strided (extra_stride elements after each image), x_shift elements
// into its buffer (odd: a misaligned start), dx dx_shift elements into its buffer (odd: pairs of
// bf16 no longer 4-byte aligned, the scalar stores).
struct PoolCase {
  int64_t batch, channels, height, width, kernel, stride, padding;
  int64_t extra_stride = 0, x_shift = 0, dx_shift = 0;
};

struct PoolData {
  kernels::Pool2dGeometry g;
  int64_t x_stride, x_shift, dx_shift, inputs, outputs;
  std::vector<BFloat16> x, dy;  // x with its shift; dy contiguous
  std::string name;
};

PoolData pool_data(const PoolCase& c, const std::vector<float>& x_values, Generator& gen) {
  PoolData d;
  d.g = testing::pool_geometry(c.batch, c.channels, c.height, c.width, c.kernel, c.stride, c.padding);
  d.x_stride = c.channels * c.height * c.width + c.extra_stride;
  d.x_shift = c.x_shift;
  d.dx_shift = c.dx_shift;
  d.inputs = c.batch * c.channels * c.height * c.width;
  d.outputs = c.batch * c.channels * d.g.out_height * d.g.out_width;
  d.x = to_bf16(x_values);
  REQUIRE(static_cast<int64_t>(d.x.size()) == c.x_shift + c.batch * d.x_stride);
  d.dy = random_bf16(d.outputs, gen);
  std::ostringstream out;
  out << testing::describe_pool(d.g, d.x_stride) << ", x shift " << c.x_shift << ", dx shift " << c.dx_shift;
  d.name = out.str();
  return d;
}

// The twin's rule: the float32 twin's result on the widened values, rounded once to bf16.
void check_twin_rounds_float32_once(const std::string& what, const std::vector<BFloat16>& twin,
                                    const std::vector<float>& float32_twin) {
  INFO(what << ": the bf16 twin against the float32 twin on the widened inputs, rounded once");
  CHECK(differing_elements(twin, to_bf16(float32_twin)) == 0);
}

// How many results bf16 rounded (the data must make rounding matter).
struct Rounded {
  int64_t outputs = 0, input_gradients = 0;
};

// The forward (max or average) and its backward, twins against the float32 twins, then emulated
// against the twins.
Rounded check_pool(const PoolData& d, bool max) {
  const auto& g = d.g;
  const BFloat16* x = d.x.data() + d.x_shift;
  const std::vector<float> wide_x = widen(d.x), wide_dy = widen(d.dy);
  const float* wx = wide_x.data() + d.x_shift;
  const std::string kind = max ? "max_pool2d" : "avg_pool2d";

  std::vector<BFloat16> y_twin(d.outputs), dx_twin(d.inputs);
  std::vector<float> y32(d.outputs), dx32(d.inputs);
  if (max) {
    kernels::cpu::max_pool2d_forward_bf16({}, x, d.x_stride, y_twin.data(), g);
    kernels::cpu::max_pool2d_backward_bf16({}, x, d.x_stride, d.dy.data(), dx_twin.data(), g);
    kernels::cpu::max_pool2d_forward({}, wx, d.x_stride, y32.data(), g);
    kernels::cpu::max_pool2d_backward({}, wx, d.x_stride, wide_dy.data(), dx32.data(), g);
  } else {
    kernels::cpu::avg_pool2d_forward_bf16({}, x, d.x_stride, y_twin.data(), g);
    kernels::cpu::avg_pool2d_backward_bf16({}, d.dy.data(), dx_twin.data(), g);
    kernels::cpu::avg_pool2d_forward({}, wx, d.x_stride, y32.data(), g);
    kernels::cpu::avg_pool2d_backward({}, wide_dy.data(), dx32.data(), g);
  }
  check_twin_rounds_float32_once(kind + "_forward_bf16 " + d.name, y_twin, y32);
  check_twin_rounds_float32_once(kind + "_backward_bf16 " + d.name, dx_twin, dx32);

  check_bits_against_twin<BFloat16>(
      kind + "_forward_bf16 " + d.name,
      [&] {
        std::vector<BFloat16> y(d.outputs, kUnwritten);
        (max ? kernels::emu::max_pool2d_forward_bf16 : kernels::emu::avg_pool2d_forward_bf16)({}, x, d.x_stride,
                                                                                              y.data(), g);
        return y;
      },
      y_twin);
  check_bits_against_twin<BFloat16>(
      kind + "_backward_bf16 " + d.name,
      [&] {
        std::vector<BFloat16> dx(d.dx_shift + d.inputs, kUnwritten);  // must be overwritten everywhere
        BFloat16* at = dx.data() + d.dx_shift;
        if (max) {
          kernels::emu::max_pool2d_backward_bf16({}, x, d.x_stride, d.dy.data(), at, g);
        } else {
          kernels::emu::avg_pool2d_backward_bf16({}, d.dy.data(), at, g);
        }
        for (int64_t i = 0; i < d.dx_shift; ++i) CHECK(dx[static_cast<size_t>(i)].bits == kUnwritten.bits);
        return std::vector<BFloat16>(at, at + d.inputs);
      },
      dx_twin);

  Rounded rounded;
  for (size_t i = 0; i < y32.size(); ++i) rounded.outputs += kernels::to_float(y_twin[i]) != y32[i];
  for (size_t i = 0; i < dx32.size(); ++i) rounded.input_gradients += kernels::to_float(dx_twin[i]) != dx32[i];
  return rounded;
}

}  // namespace

TEST_CASE("bf16 pooling kernels match the twins at DenseNet-121's shapes", "[emu][bf16][pool]") {
  Generator gen(51);
  const models::DenseNetShapes shapes = models::densenet_layer_shapes(2);
  SECTION("stem max pool 3x3/2 padding 1") {
    const models::MapShape& s = shapes.stem_pool_input;
    const PoolCase c{s.batch, s.channels, s.height, s.width, 3, 2, 1};
    const PoolData d = pool_data(c, testing::tied_values(s.batch * s.channels * s.height * s.width, gen), gen);
    // Gradients summed over overlapping windows round (the forward moves values: never).
    CHECK(check_pool(d, true).input_gradients > d.inputs / 100);
  }
  for (const models::MapShape& s : shapes.transition_pool_inputs) {
    DYNAMIC_SECTION("transition avg pool 2x2/2 of [" << s.batch << "," << s.channels << "," << s.height << ","
                                                     << s.width << "]") {
      const PoolCase c{s.batch, s.channels, s.height, s.width, 2, 2, 0};
      const PoolData d = pool_data(c, testing::random_vector(s.batch * s.channels * s.height * s.width, gen), gen);
      // Means of four bf16 values need more than 8 bits (the backward's quarter of a bf16 does not).
      CHECK(check_pool(d, false).outputs > d.outputs / 2);
    }
  }
}

TEST_CASE("bf16 pooling kernels match the twins at awkward shapes and alignments", "[emu][bf16][pool]") {
  Generator gen(52);
  // The launch paths of kernels/pooling.cu, as in the float32 test, plus misaligned x starts and
  // dx shifted by one element (2 bytes: the pair stores of bf16 fall back to scalar ones).
  const std::vector<PoolCase> max_cases{
      {1, 1, 1, 1, 1, 1, 0},            // one element
      {1, 3, 7, 5, 3, 2, 1, 0, 1},      // odd sizes, the stem's window, x misaligned
      {2, 3, 9, 11, 3, 1, 1, 5, 3},     // heavy overlap (sums of up to 9 gradients), a batch-strided x
      {2, 2, 8, 7, 3, 2, 0},            // no padding: the last row/column of x in no window
      {3, 5, 13, 17, 2, 2, 1, 3},       // padding on every side, 1-wide edge windows
      {2, 37, 11, 9, 3, 2, 1},          // more outputs than one block's threads
      {0, 3, 7, 7, 3, 2, 1},            // empty batch
      {2, 3, 9, 8, 3, 2, 1, 7},         // tiles: even width (pair rows), a last tile row of one input
      {2, 3, 9, 8, 3, 2, 1, 7, 1, 1},   // the same with dx misaligned: scalar stores
      {2, 4, 12, 10, 3, 2, 0, 0, 0, 3},  // tiles, no padding, dx shifted by 3
      {1, 2, 7, 6, 1, 2, 0},            // kernel 1 stride 2: inputs under no window get 0
      {2, 3, 11, 10, 2, 3, 1},          // stride 3: the gather
  };
  for (const PoolCase& c : max_cases) {
    const int64_t stride = c.channels * c.height * c.width + c.extra_stride;
    const PoolData d = pool_data(c, testing::tied_values(c.x_shift + c.batch * stride, gen), gen);
    DYNAMIC_SECTION("max pool " << d.name) { check_pool(d, true); }
  }
  const std::vector<PoolCase> avg_cases{
      {1, 1, 1, 1, 1, 1, 0},
      {1, 3, 7, 5, 2, 2, 0, 0, 1},      // odd sizes, x misaligned
      {2, 3, 9, 11, 3, 1, 0, 5},        // overlapping windows: the gather, sums of up to 9 shares
      {2, 2, 8, 7, 3, 2, 0},
      {2, 37, 11, 9, 2, 2, 0, 1, 3, 1},  // odd width: scalar stores; dx misaligned too
      {0, 3, 7, 7, 2, 2, 0},
      {2, 3, 9, 10, 2, 2, 0},           // pair rows, an odd height: the last input row gets 0
      {2, 3, 8, 8, 2, 2, 0, 0, 0, 1},   // dx misaligned: scalar stores
      {1, 2, 10, 11, 3, 3, 0},          // 3x3/3: a row and two columns under no window, and a corner
      {3, 37, 5, 4, 4, 4, 0},           // one window a plane
  };
  for (const PoolCase& c : avg_cases) {
    const int64_t stride = c.channels * c.height * c.width + c.extra_stride;
    const PoolData d = pool_data(c, testing::random_vector(c.x_shift + c.batch * stride, gen), gen);
    DYNAMIC_SECTION("avg pool " << d.name) {
      const Rounded rounded = check_pool(d, false);
      if (c.kernel > 1 && d.outputs >= 16) CHECK(rounded.outputs > d.outputs / 2);  // means round
      // Shares of a gradient over overlapping or 3x3 windows are rounded sums (2x2: exact quarters).
      if (c.kernel == 3 && d.inputs >= 16) CHECK(rounded.input_gradients > d.inputs / 4);
    }
  }
}

TEST_CASE("bf16 max pooling keeps NaN as the maximum and writes the canonical NaN", "[emu][bf16][pool]") {
  Generator gen(53);
  const PoolCase c{1, 2, 5, 5, 3, 2, 1};
  std::vector<float> values = testing::random_vector(50, gen);
  PoolData d = pool_data(c, values, gen);
  d.x[6] = BFloat16{0xffc1};   // a negative NaN with a payload, inside several windows of plane 0
  d.x[12] = BFloat16{0x7f80};  // +inf, in the same windows after the NaN: the NaN still wins
  d.x[37] = BFloat16{0xff80};  // -inf, plane 1
  d.dy[16] = BFloat16{0x7fc0};  // a NaN gradient (plane 1): its sum is NaN, canonical
  check_pool(d, true);
  std::vector<BFloat16> y(static_cast<size_t>(d.outputs));
  kernels::emu::max_pool2d_forward_bf16({}, d.x.data(), d.x_stride, y.data(), d.g);
  CHECK(y[0].bits == kernels::kBFloat16CanonicalNaN);  // window (0, 0) holds x[6]
  CHECK(y[4].bits == kernels::kBFloat16CanonicalNaN);  // window (1, 1) too
}

// ---- ReLU

namespace {

// bf16 values with the edges mixed in: signed zeros, NaNs (canonical, with a payload, negative),
// infinities, subnormals and the largest finite values.
std::vector<BFloat16> bf16_with_edges(int64_t n, Generator& gen) {
  std::vector<BFloat16> v = random_bf16(n, gen, 3.f);
  const uint16_t edges[] = {0x0000, 0x8000, 0x7fff, 0x7fc1, 0xffc1, 0x7f80, 0xff80,
                            0x0001, 0x8001, 0x7f7f, 0xff7f, 0x3f80, 0xbf80};
  for (size_t i = 0; i < v.size(); i += 5) v[i] = BFloat16{edges[(i / 5) % std::size(edges)]};
  return v;
}

}  // namespace

TEST_CASE("bf16 ReLU kernels match the twins at awkward sizes, alignments and edge values",
          "[emu][bf16][relu]") {
  Generator gen(54);
  struct Offsets {
    int64_t x, y;  // elements into their buffers: the vector path needs both 16-byte aligned (8 bf16)
  };
  // Sizes around the 8-element vectors and the 256-thread blocks; both aligned, both not, one not.
  for (const int64_t n : {int64_t{0}, int64_t{1}, int64_t{7}, int64_t{8}, int64_t{9}, int64_t{17}, int64_t{257},
                          int64_t{2051}, int64_t{9000}}) {
    for (const Offsets o : {Offsets{0, 0}, Offsets{1, 1}, Offsets{8, 0}, Offsets{0, 3}}) {
      DYNAMIC_SECTION("n " << n << ", x offset " << o.x << ", y offset " << o.y) {
        const std::vector<BFloat16> x = bf16_with_edges(o.x + n, gen), dy = bf16_with_edges(o.x + n, gen);
        const BFloat16* xs = x.data() + o.x;
        const BFloat16* dys = dy.data() + o.x;  // dy shares x's offset, dx takes y's

        std::vector<BFloat16> y_twin(n), dx_twin(n);
        kernels::cpu::relu_forward_bf16({}, xs, y_twin.data(), n);
        // The backward's y: the forward's (zeros of both signs, NaN, infinities), and dy with edges.
        kernels::cpu::relu_backward_bf16({}, y_twin.data(), dys, dx_twin.data(), n);
        const std::vector<float> wide_x = widen(x), wide_dy = widen(dy), wide_y = widen(y_twin);
        std::vector<float> y32(n), dx32(n);
        kernels::cpu::relu_forward({}, wide_x.data() + o.x, y32.data(), n);
        kernels::cpu::relu_backward({}, wide_y.data(), wide_dy.data() + o.x, dx32.data(), n);
        check_twin_rounds_float32_once("relu_forward_bf16", y_twin, y32);
        check_twin_rounds_float32_once("relu_backward_bf16", dx_twin, dx32);

        check_bits_against_twin<BFloat16>(
            "relu_forward_bf16",
            [&] {
              std::vector<BFloat16> y(o.y + n, kUnwritten);
              kernels::emu::relu_forward_bf16({}, xs, y.data() + o.y, n);
              for (int64_t i = 0; i < o.y; ++i) CHECK(y[static_cast<size_t>(i)].bits == kUnwritten.bits);
              return std::vector<BFloat16>(y.begin() + o.y, y.end());
            },
            y_twin);
        check_bits_against_twin<BFloat16>(
            "relu_forward_bf16 in place",
            [&] {
              std::vector<BFloat16> y(x.begin() + o.x, x.end());
              kernels::emu::relu_forward_bf16({}, y.data(), y.data(), n);
              return y;
            },
            y_twin);
        check_bits_against_twin<BFloat16>(
            "relu_backward_bf16",
            [&] {
              std::vector<BFloat16> y(o.y + n), dx(o.y + n, kUnwritten);
              std::copy(y_twin.begin(), y_twin.end(), y.begin() + o.y);
              kernels::emu::relu_backward_bf16({}, y.data() + o.y, dys, dx.data() + o.y, n);
              return std::vector<BFloat16>(dx.begin() + o.y, dx.end());
            },
            dx_twin);
      }
    }
  }
}

TEST_CASE("bf16 ReLU twins pass, zero and canonicalise as the float32 kernels", "[emu][bf16][relu]") {
  // By hand: the twin (which the emulated kernels equal) on the edge values.
  const std::vector<BFloat16> x{{0x3f80}, {0xbf80}, {0x0000}, {0x8000}, {0xffc1}, {0x7f80}, {0xff80}, {0x0001}};
  std::vector<BFloat16> y(x.size());
  kernels::cpu::relu_forward_bf16({}, x.data(), y.data(), static_cast<int64_t>(x.size()));
  const std::vector<uint16_t> y_expected{0x3f80, 0x0000, 0x0000, 0x8000, 0x7fff, 0x7f80, 0x0000, 0x0001};
  const std::vector<BFloat16> dy{{0x4000}, {0x4000}, {0x4000}, {0x4000}, {0x4000}, {0xffc1}, {0x4000}, {0xc040}};
  std::vector<BFloat16> dx(x.size());
  kernels::cpu::relu_backward_bf16({}, y.data(), dy.data(), dx.data(), static_cast<int64_t>(x.size()));
  // Passes where y > 0 (1, +inf with a NaN gradient: canonical, the smallest subnormal), else 0.
  const std::vector<uint16_t> dx_expected{0x4000, 0x0000, 0x0000, 0x0000, 0x0000, 0x7fff, 0x0000, 0xc040};
  for (size_t i = 0; i < x.size(); ++i) {
    INFO("element " << i);
    CHECK(y[i].bits == y_expected[i]);
    CHECK(dx[i].bits == dx_expected[i]);
  }
}

// ---- Sigmoid + BCE on bf16 logits

TEST_CASE("sigmoid + weighted BCE on bf16 logits matches the twins", "[emu][bf16][bce]") {
  Generator gen(55);
  using testing::BceCase;
  // As the float32 test: CheXNet's [16, 14]; one value; no weights; large logits (bf16 keeps
  // fp32's range); one block's most and one row more; many blocks with a partial last one; a
  // class count whose stride through the grid wraps unevenly.
  const std::vector<BceCase> cases{{16, 14, true, 2.f, 1.f},   {1, 1, true, 1.f, 1.f},    {3, 14, false, 1.f, 1.f},
                                   {37, 14, true, 3.f, 0.5f},  {4, 5, true, 100.f, 2.f}, {73, 14, true, 2.f, 1.f},
                                   {74, 14, true, 2.f, 1.f},   {5000, 14, true, 3.f, 0.25f},
                                   {3001, 7, false, 1.f, 1.f}};
  for (const BceCase& k : cases) {
    DYNAMIC_SECTION("[" << k.batch << ", " << k.classes << "] weighted " << k.weighted << " logit scale "
                        << k.logit_scale << " grad_output " << k.grad_output) {
      const int64_t n = k.batch * k.classes;
      std::vector<BFloat16> logits = random_bf16(n, gen, k.logit_scale);
      // Logits near bf16's (and fp32's) largest, where a naive log(sigmoid) overflows.
      for (int64_t i = 5; i < n; i += 97) logits[static_cast<size_t>(i)] = BFloat16{i % 2 ? kLargest : kLowest};
      const std::vector<float> wide = widen(logits);
      const testing::BceLabels labels = testing::bce_labels(k, gen);
      const std::vector<float>& targets = labels.targets;
      const float* pw = labels.pos();
      const float* nw = labels.neg();

      // The twin: the float32 twin on the widened logits, bit for bit (nothing is rounded to bf16).
      float loss_twin = 0.f, loss32 = 0.f;
      std::vector<float> dlogits_twin(n), dlogits32(n);
      kernels::cpu::bce_with_logits_bf16({}, {k.batch, k.classes, logits.data(), targets.data(), pw, nw, &loss_twin,
                                              &k.grad_output, dlogits_twin.data()});
      kernels::cpu::bce_with_logits({}, {k.batch, k.classes, wide.data(), targets.data(), pw, nw, &loss32,
                                         &k.grad_output, dlogits32.data()});
      REQUIRE(std::isfinite(loss_twin));
      CHECK(std::bit_cast<uint32_t>(loss_twin) == std::bit_cast<uint32_t>(loss32));
      CHECK(differing_elements(dlogits_twin, dlogits32) == 0);

      const float unscale = static_cast<float>(n) / k.grad_output;  // gradients are O(1 / (N*C))
      auto scaled = [&](std::vector<float> g) {
        for (float& v : g) v *= unscale;
        return g;
      };
      const size_t workspace_bytes = kernels::emu::bce_with_logits_workspace_bytes({}, k.batch, k.classes);
      testing::check_outputs_against_twin(
          "bce_with_logits_bf16",
          [&] {
            std::vector<double> workspace(workspace_bytes / sizeof(double) + 1, std::nan(""));
            std::vector<float> loss(1, -7.f), dlogits(n, -7.f);
            kernels::emu::bce_with_logits_bf16({}, {k.batch, k.classes, logits.data(), targets.data(), pw, nw,
                                                    loss.data(), &k.grad_output, dlogits.data(), workspace.data()});
            // The float32 kernel on the widened logits: the same bits.
            std::vector<float> loss_f(1, -7.f), dlogits_f(n, -7.f);
            kernels::emu::bce_with_logits({}, {k.batch, k.classes, wide.data(), targets.data(), pw, nw, loss_f.data(),
                                               &k.grad_output, dlogits_f.data(), workspace.data()});
            CHECK(differing_elements(loss, loss_f) == 0);
            CHECK(differing_elements(dlogits, dlogits_f) == 0);
            // The gradient alone (the op's backward) gives the same values.
            std::vector<float> dlogits_only(n, -7.f);
            kernels::emu::bce_with_logits_bf16({}, {k.batch, k.classes, logits.data(), targets.data(), pw, nw,
                                                    nullptr, &k.grad_output, dlogits_only.data()});
            CHECK(differing_elements(dlogits_only, dlogits) == 0);
            return std::vector<std::vector<float>>{loss, scaled(dlogits)};
          },
          {{"loss", {loss_twin}, 1e-6}, {"dlogits", scaled(dlogits_twin), 1e-6}});
    }
  }
}

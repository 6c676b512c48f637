// The CUDA table's bf16 convolutions (cuDNN's, engine/src/cuda/conv_bf16_cuda.cpp) on a GPU (label
// gpu), on DenseNet-121's geometries, against two CPU references on the same inputs:
//  - the CPU's bf16 kernels (the oracle: the same bf16-rounded operands, fp32 accumulation, fp32
//    result). CUDA rounds its result to bf16 once more, so per element
//      |cuda - oracle| <= 2^-8 |oracle| + 1e-3 rms(oracle)
//    (2^-8: bf16's unit roundoff; 1e-3 of the RMS: the order of cuDNN's fp32 additions, and the
//    operand transforms of a Winograd algorithm, where an element's sum cancels out);
//  - the fp32 kernels on the unrounded operands: bf16 operands (2^-8 relative each) and result
//    leave an error of about 2^-8 of the RMS (the products' errors add at random), so the
//    relative RMS difference must lie within 2^-6, and above 2^-12 (bf16 was really used).
// Images live in wider buffers where the dense block has them there (a bottleneck reading a
// prefix of the block buffer, a 3x3 writing its 32 channels into it), and the channels outside
// the slice must come back untouched.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "chex/device.h"
#include "chex/random.h"
#include "cuda/gpu_test_support.h"
#include "engine/src/backend/backend.h"

using namespace chex;
using kernels::Conv2dGeometry;
using testing::DeviceVector;
using testing::require_gpu;

namespace {

constexpr float kSentinel = -12345.f;  // fills the channels outside a slice

// One DenseNet convolution at a small batch, its x and y channels inside buffers of
// x_channels_total and y_channels_total channels (equal to its own: dense).
struct Case {
  std::string name;
  Conv2dGeometry g;
  int64_t x_channels_total, y_channels_total;
  int64_t x_stride() const { return x_channels_total * g.in_plane(); }
  int64_t y_stride() const { return y_channels_total * g.out_plane(); }
};

std::vector<Case> densenet_cases() {
  auto conv = [](int64_t batch, int64_t c_in, int64_t size, int64_t c_out, int64_t kernel, int64_t stride,
                 int64_t padding) { return Conv2dGeometry::make(batch, c_in, size, size, c_out, kernel, kernel, stride, padding); };
  return {
      {"stem 7x7/2, 3 -> 64 at 224", conv(2, 3, 224, 64, 7, 2, 3), 3, 64},
      {"block 1 bottleneck 1x1, 128 -> 128 at 56, a prefix of the block buffer", conv(4, 128, 56, 128, 1, 1, 0), 256,
       128},
      {"block 1 3x3, 128 -> 32 at 56, into the block buffer", conv(4, 128, 56, 32, 3, 1, 1), 128, 256},
      {"transition 1 1x1, 256 -> 128 at 56", conv(4, 256, 56, 128, 1, 1, 0), 256, 128},
      {"block 4 bottleneck 1x1, 992 -> 128 at 7, a prefix of the block buffer", conv(4, 992, 7, 128, 1, 1, 0), 1024,
       128},
      {"block 4 3x3, 128 -> 32 at 7, into the block buffer", conv(4, 128, 7, 32, 3, 1, 1), 128, 1024},
  };
}

std::vector<float> random_floats(int64_t n, uint64_t seed, float scale) {
  Generator gen(seed);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = scale * gen.normal();
  return v;
}

// A buffer of `batch` images of `stride` floats, the first `sample` of each random, the rest kSentinel.
std::vector<float> sliced_buffer(int64_t batch, int64_t sample, int64_t stride, uint64_t seed) {
  std::vector<float> buffer(static_cast<size_t>(batch * stride), kSentinel);
  const std::vector<float> values = random_floats(batch * sample, seed, 1.f);
  for (int64_t n = 0; n < batch; ++n)
    std::copy_n(values.begin() + n * sample, sample, buffer.begin() + n * stride);
  return buffer;
}

// The slice's values, densely; and a check that the rest still holds the sentinel.
std::vector<float> slice_of(const std::vector<float>& buffer, int64_t batch, int64_t sample, int64_t stride) {
  std::vector<float> dense;
  int64_t touched = 0;
  for (int64_t n = 0; n < batch; ++n) {
    dense.insert(dense.end(), buffer.begin() + n * stride, buffer.begin() + n * stride + sample);
    for (int64_t i = sample; i < stride; ++i) touched += buffer[static_cast<size_t>(n * stride + i)] != kSentinel;
  }
  INFO("elements outside the slice that were written");
  CHECK(touched == 0);
  return dense;
}

double rms(const std::vector<float>& v) {
  double sum = 0;
  for (const float x : v) sum += double(x) * x;
  return std::sqrt(sum / static_cast<double>(std::max<size_t>(v.size(), 1)));
}

// cuda against the CPU's bf16 oracle and its fp32 result (all dense). `offset` is what was added
// to both after the convolution (the bias), left out of the rounding's scale.
void compare(const std::vector<float>& cuda, const std::vector<float>& oracle, const std::vector<float>& fp32,
             const std::vector<float>& offset = {}) {
  REQUIRE(cuda.size() == oracle.size());
  REQUIRE(fp32.size() == oracle.size());
  const double scale = rms(oracle);
  REQUIRE(scale > 0);
  int64_t outside = 0;
  double worst = 0, diff_fp32 = 0;
  for (size_t i = 0; i < cuda.size(); ++i) {
    const double convolved = double(oracle[i]) - (offset.empty() ? 0.0 : offset[i]);
    const double bound = std::ldexp(std::abs(convolved), -8) + 1e-3 * scale;
    const double d = std::abs(double(cuda[i]) - oracle[i]);
    worst = std::max(worst, d / bound);
    outside += !(d <= bound);  // NaN counts as outside
    diff_fp32 += (double(cuda[i]) - fp32[i]) * (double(cuda[i]) - fp32[i]);
  }
  const double relative_fp32 = std::sqrt(diff_fp32 / static_cast<double>(cuda.size())) / rms(fp32);
  INFO("worst |cuda - oracle| / bound " << worst << "; relative RMS difference from fp32 " << relative_fp32);
  CHECK(outside == 0);
  CHECK(relative_fp32 <= std::ldexp(1.0, -6));
  CHECK(relative_fp32 >= std::ldexp(1.0, -12));
}

}  // namespace

TEST_CASE("CUDA bf16 convolutions match the CPU's bf16 kernels and fp32 within bf16's error on DenseNet geometries",
          "[gpu][bf16][conv]") {
  require_gpu();
  const backend::Backend cpu = backend::backend(Device::cpu());
  const backend::Backend gpu = backend::backend(Device::cuda(0));
  REQUIRE(gpu.has(&backend::KernelTable::conv2d_forward_bf16));
  REQUIRE(gpu.has(&backend::KernelTable::conv2d_backward_data_bf16));
  REQUIRE(gpu.has(&backend::KernelTable::conv2d_backward_weight_bf16));
  CHECK(gpu.conv2d_bf16_workspace_bytes(Conv2dGeometry::make(1, 1, 1, 1, 1, 1, 1, 1, 0), kernels::Bf16Layout{}) == 0);
  CHECK(gpu.conv2d_bf16_backward_workspace_bytes(Conv2dGeometry::make(1, 1, 1, 1, 1, 1, 1, 1, 0)) == 0);
  uint64_t seed = 1;
  for (const Case& c : densenet_cases()) {
    const Conv2dGeometry& g = c.g;
    INFO(c.name);
    const int64_t weight_size = g.out_channels * g.patch_size();
    const std::vector<float> x = sliced_buffer(g.batch, g.in_sample(), c.x_stride(), ++seed);
    const std::vector<float> dy = sliced_buffer(g.batch, g.out_sample(), c.y_stride(), ++seed);
    const std::vector<float> weight = random_floats(weight_size, ++seed, 1.f / std::sqrt(float(g.patch_size())));
    const std::vector<float> bias = random_floats(g.out_channels, ++seed, 1.f);
    const DeviceVector<float> x_d(x), dy_d(dy), weight_d(weight), bias_d(bias);

    {  // forward, with bias
      const std::vector<float> y_init(static_cast<size_t>(g.batch * c.y_stride()), kSentinel);
      std::vector<float> oracle = y_init, fp32 = y_init;
      const kernels::Bf16Layout layout{false, false, c.y_stride()};
      {
        const backend::Workspace ws = cpu.workspace(cpu.conv2d_bf16_workspace_bytes(g, layout));
        cpu.conv2d_forward_bf16(kernels::Conv2dForwardBf16Args{
            g, layout, {x.data(), c.x_stride()}, nullptr, weight.data(), bias.data(), {oracle.data(), c.y_stride()}, ws.get()});
      }
      {
        const backend::Workspace ws = cpu.workspace(cpu.conv2d_workspace_bytes(g));
        cpu.conv2d_forward(kernels::Conv2dForwardArgs{
            g, {x.data(), c.x_stride()}, weight.data(), bias.data(), {fp32.data(), c.y_stride()}, ws.get()});
      }
      const DeviceVector<float> y_d(y_init);
      gpu.conv2d_forward_bf16(kernels::Conv2dForwardBf16Args{g, kernels::Bf16Layout{}, {x_d.get(), c.x_stride()}, nullptr,
                                                             weight_d.get(), bias_d.get(), {y_d.get(), c.y_stride()}, nullptr});
      std::vector<float> offset;
      for (int64_t n = 0; n < g.batch; ++n)
        for (int64_t k = 0; k < g.out_channels; ++k) offset.insert(offset.end(), static_cast<size_t>(g.out_plane()), bias[k]);
      compare(slice_of(y_d.read(), g.batch, g.out_sample(), c.y_stride()),
              slice_of(oracle, g.batch, g.out_sample(), c.y_stride()), slice_of(fp32, g.batch, g.out_sample(), c.y_stride()),
              offset);
    }

    {  // backward data
      const std::vector<float> dx_init(static_cast<size_t>(g.batch * c.x_stride()), kSentinel);
      std::vector<float> oracle = dx_init, fp32 = dx_init;
      {
        const backend::Workspace ws = cpu.workspace(cpu.conv2d_bf16_backward_workspace_bytes(g));
        cpu.conv2d_backward_data_bf16(kernels::Conv2dBackwardDataArgs{
            g, {dy.data(), c.y_stride()}, weight.data(), {oracle.data(), c.x_stride()}, ws.get()});
      }
      {
        const backend::Workspace ws = cpu.workspace(cpu.conv2d_backward_workspace_bytes(g));
        cpu.conv2d_backward_data(kernels::Conv2dBackwardDataArgs{
            g, {dy.data(), c.y_stride()}, weight.data(), {fp32.data(), c.x_stride()}, ws.get()});
      }
      const DeviceVector<float> dx_d(dx_init);
      gpu.conv2d_backward_data_bf16(kernels::Conv2dBackwardDataArgs{
          g, {dy_d.get(), c.y_stride()}, weight_d.get(), {dx_d.get(), c.x_stride()}, nullptr});
      compare(slice_of(dx_d.read(), g.batch, g.in_sample(), c.x_stride()),
              slice_of(oracle, g.batch, g.in_sample(), c.x_stride()), slice_of(fp32, g.batch, g.in_sample(), c.x_stride()));
    }

    {  // backward weight and bias
      std::vector<float> oracle(static_cast<size_t>(weight_size)), fp32(oracle.size());
      std::vector<float> oracle_bias(static_cast<size_t>(g.out_channels));
      {
        const backend::Workspace ws = cpu.workspace(cpu.conv2d_bf16_backward_workspace_bytes(g));
        cpu.conv2d_backward_weight_bf16(kernels::Conv2dBackwardWeightArgs{
            g, {x.data(), c.x_stride()}, {dy.data(), c.y_stride()}, oracle.data(), oracle_bias.data(), ws.get()});
      }
      {
        const backend::Workspace ws = cpu.workspace(cpu.conv2d_backward_workspace_bytes(g));
        cpu.conv2d_backward_weight(kernels::Conv2dBackwardWeightArgs{
            g, {x.data(), c.x_stride()}, {dy.data(), c.y_stride()}, fp32.data(), nullptr, ws.get()});
      }
      const DeviceVector<float> dweight_d(std::vector<float>(oracle.size(), kSentinel));
      const DeviceVector<float> dbias_d(std::vector<float>(oracle_bias.size(), kSentinel));
      gpu.conv2d_backward_weight_bf16(kernels::Conv2dBackwardWeightArgs{
          g, {x_d.get(), c.x_stride()}, {dy_d.get(), c.y_stride()}, dweight_d.get(), dbias_d.get(), nullptr});
      compare(dweight_d.read(), oracle, fp32);
      // dbias: the fp32 sum of dy as given, on both; only the order of the additions differs.
      const std::vector<float> dbias = dbias_d.read();
      for (int64_t k = 0; k < g.out_channels; ++k) {
        double magnitude = 0;
        for (int64_t n = 0; n < g.batch; ++n)
          for (int64_t i = 0; i < g.out_plane(); ++i)
            magnitude += std::abs(dy[static_cast<size_t>(n * c.y_stride() + k * g.out_plane() + i)]);
        INFO("dbias[" << k << "]");
        CHECK(std::abs(double(dbias[k]) - oracle_bias[k]) <= 1e-5 * magnitude);
      }
    }
  }
}

TEST_CASE("CUDA bf16 convolutions refuse channels-last layouts and input normalisation clearly", "[gpu][bf16][conv]") {
  require_gpu();
  const backend::Backend gpu = backend::backend(Device::cuda(0));
  const Conv2dGeometry g = Conv2dGeometry::make(1, 4, 4, 4, 4, 1, 1, 1, 0);
  const DeviceVector<float> x(std::vector<float>(16 * 4, 1.f)), w(std::vector<float>(16, 1.f)),
      y(std::vector<float>(16 * 4, 0.f));
  kernels::Conv2dForwardBf16Args args{g, kernels::Bf16Layout{}, {x.get(), 64}, nullptr, w.get(), nullptr, {y.get(), 64}, nullptr};
  args.layout.x_channels_last = true;
  CHECK_THROWS_WITH(gpu.conv2d_forward_bf16(args), Catch::Contains("NCHW images only"));
  args.layout = kernels::Bf16Layout{false, true, 64};
  CHECK_THROWS_WITH(gpu.conv2d_forward_bf16(args), Catch::Contains("channels-last y"));
  args.layout = kernels::Bf16Layout{};
  const kernels::InputNormalization norm{};
  args.norm = &norm;
  CHECK_THROWS_WITH(gpu.conv2d_forward_bf16(args), Catch::Contains("normalise into a buffer first"));
}

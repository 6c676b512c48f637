// The bf16 kernels on a GPU (label gpu): the CUDA launchers (chex::kernels::cuda) against the CPU
// twins, as the emulated tests (tests/emu/test_kernel_bf16.cpp) check the same sources on the CPU.
// What only hardware can say: the bits of its conversion instructions (cvt.rn.bf16.f32; a NaN
// must come out as 0x7fff, the emulator's and CUDA's host conversion's canonical NaN) and that the
// vector paths read and write device memory as the emulator does. Exact throughout, as there, but
// for the BCE against its twin (the device's expf and log1p are not glibc's): there the bf16 kernel
// equals the float32 kernel on the widened logits bit for bit, and the twin within 1e-5.
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
#include "kernels/batchnorm.h"
#include "kernels/bce.h"
#include "kernels/cast.h"
#include "kernels/concat.h"
#include "kernels/elementwise.h"
#include "kernels/global_pool.h"
#include "kernels/pooling.h"

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

namespace {

// Buffers shifted by `shift` elements (an odd shift misaligns a bf16 pair).
std::vector<BFloat16> unwritten_bf16(size_t n) { return std::vector<BFloat16>(n, BFloat16{0x7fc1}); }

kernels::Pool2dGeometry pool_geometry(int64_t batch, int64_t channels, int64_t height, int64_t width, int64_t kernel,
                                      int64_t stride, int64_t padding) {
  return {batch,  channels, height, width, kernel, stride, padding,
          kernels::pool_output_size(height, kernel, stride, padding),
          kernels::pool_output_size(width, kernel, stride, padding)};
}

}  // namespace

TEST_CASE("GPU bf16 max and average pooling equal the twins bit for bit", "[gpu][bf16]") {
  require_gpu();
  struct Case {
    bool max;
    int64_t batch, channels, height, width, kernel, stride, padding, dx_shift;
  };
  // The stem's 3x3/2 max pool (the tile path) and a transition's 2x2/2 average (the window path)
  // at DenseNet-121's 224-px sizes, each with dx misaligned too; a 3x3/1 of each (the gathers).
  for (const Case& c : {Case{true, 2, 64, 112, 112, 3, 2, 1, 0}, Case{true, 2, 64, 112, 112, 3, 2, 1, 1},
                        Case{false, 2, 128, 56, 56, 2, 2, 0, 0}, Case{false, 2, 128, 56, 56, 2, 2, 0, 1},
                        Case{true, 2, 5, 17, 13, 3, 1, 1, 0}, Case{false, 2, 5, 17, 13, 3, 1, 0, 1}}) {
    const kernels::Pool2dGeometry g =
        pool_geometry(c.batch, c.channels, c.height, c.width, c.kernel, c.stride, c.padding);
    const auto inputs = static_cast<size_t>(c.batch * c.channels * c.height * c.width);
    const auto outputs = static_cast<size_t>(c.batch * c.channels * g.out_height * g.out_width);
    const int64_t x_stride = c.channels * c.height * c.width;
    std::vector<BFloat16> x = random_bf16(inputs, 101);
    if (c.max)  // ties: values on a grid of halves
      for (BFloat16& v : x) v = kernels::to_bfloat16(std::round(kernels::to_float(v) * 0.7f) / 2.f);
    const std::vector<BFloat16> dy = random_bf16(outputs, 102);
    std::vector<BFloat16> y_twin(outputs), dx_twin(inputs);
    const DeviceVector<BFloat16> x_d(x), dy_d(dy), y_d(unwritten_bf16(outputs));
    const DeviceVector<BFloat16> dx_d(unwritten_bf16(inputs + static_cast<size_t>(c.dx_shift)));
    BFloat16* dx_at = dx_d.get() + c.dx_shift;
    if (c.max) {
      kernels::cpu::max_pool2d_forward_bf16(kQueue, x.data(), x_stride, y_twin.data(), g);
      kernels::cpu::max_pool2d_backward_bf16(kQueue, x.data(), x_stride, dy.data(), dx_twin.data(), g);
      kernels::cuda::max_pool2d_forward_bf16(kQueue, x_d.get(), x_stride, y_d.get(), g);
      kernels::cuda::max_pool2d_backward_bf16(kQueue, x_d.get(), x_stride, dy_d.get(), dx_at, g);
    } else {
      kernels::cpu::avg_pool2d_forward_bf16(kQueue, x.data(), x_stride, y_twin.data(), g);
      kernels::cpu::avg_pool2d_backward_bf16(kQueue, dy.data(), dx_twin.data(), g);
      kernels::cuda::avg_pool2d_forward_bf16(kQueue, x_d.get(), x_stride, y_d.get(), g);
      kernels::cuda::avg_pool2d_backward_bf16(kQueue, dy_d.get(), dx_at, g);
    }
    INFO((c.max ? "max" : "avg") << " pool [" << c.batch << ", " << c.channels << ", " << c.height << ", " << c.width
                                 << "] kernel " << c.kernel << " stride " << c.stride << ", dx shift " << c.dx_shift);
    CHECK(differing(y_d.read(), y_twin) == 0);
    std::vector<BFloat16> dx = dx_d.read();
    dx.erase(dx.begin(), dx.begin() + c.dx_shift);
    CHECK(differing(dx, dx_twin) == 0);
  }
}

TEST_CASE("GPU bf16 ReLU equals the twins bit for bit", "[gpu][bf16]") {
  require_gpu();
  const size_t n = (size_t{1} << 20) + 3;
  std::vector<BFloat16> x = random_bf16(n + 1, 103), dy = random_bf16(n + 1, 104);
  const uint16_t edges[] = {0x0000, 0x8000, 0x7fff, 0xffc1, 0x7f80, 0xff80, 0x0001, 0x8001};
  for (size_t i = 0; i < x.size(); i += 11) x[i] = BFloat16{edges[(i / 11) % std::size(edges)]};
  for (const int64_t offset : {int64_t{0}, int64_t{1}}) {  // the 16-byte vectors, then scalar accesses
    INFO("offset " << offset);
    std::vector<BFloat16> y_twin(n), dx_twin(n);
    kernels::cpu::relu_forward_bf16(kQueue, x.data() + offset, y_twin.data(), static_cast<int64_t>(n));
    kernels::cpu::relu_backward_bf16(kQueue, y_twin.data(), dy.data() + offset, dx_twin.data(),
                                     static_cast<int64_t>(n));
    const DeviceVector<BFloat16> x_d(x), dy_d(dy), y_d(unwritten_bf16(n + 1)), dx_d(unwritten_bf16(n + 1));
    kernels::cuda::relu_forward_bf16(kQueue, x_d.get() + offset, y_d.get() + offset, static_cast<int64_t>(n));
    kernels::cuda::relu_backward_bf16(kQueue, y_d.get() + offset, dy_d.get() + offset, dx_d.get() + offset,
                                      static_cast<int64_t>(n));
    std::vector<BFloat16> y = y_d.read(), dx = dx_d.read();
    y.erase(y.begin(), y.begin() + offset);
    dx.erase(dx.begin(), dx.begin() + offset);
    y.resize(n);
    dx.resize(n);
    check_bits(y, y_twin);
    check_bits(dx, dx_twin);
  }
}

TEST_CASE("GPU BCE on bf16 logits equals the float32 kernel on the widened logits", "[gpu][bf16]") {
  require_gpu();
  for (const int64_t batch : {int64_t{16}, int64_t{5000}}) {  // one block; many blocks and their partial sums
    const int64_t classes = 14, n = batch * classes;
    const std::vector<BFloat16> logits = random_bf16(static_cast<size_t>(n), 105);
    std::vector<float> wide, targets, pos_weight(classes), neg_weight(classes);
    Generator gen(106);
    for (const BFloat16 v : logits) wide.push_back(kernels::to_float(v));
    for (int64_t i = 0; i < n; ++i) targets.push_back(gen.uniform() < 0.3f ? 1.f : 0.f);
    for (int64_t c = 0; c < classes; ++c) {
      pos_weight[static_cast<size_t>(c)] = 0.5f + 2.f * gen.uniform();
      neg_weight[static_cast<size_t>(c)] = 0.5f + gen.uniform();
    }
    const DeviceVector<BFloat16> logits_d(logits);
    const DeviceVector<float> wide_d(wide), targets_d(targets), pos_d(pos_weight), neg_d(neg_weight);
    const size_t workspace_bytes = kernels::cuda::bce_with_logits_workspace_bytes(kQueue, batch, classes);
    const DeviceVector<double> workspace_d{std::vector<double>(workspace_bytes / sizeof(double) + 1)};
    const DeviceVector<float> loss_d{std::vector<float>(2)}, dlogits_d{std::vector<float>(2 * static_cast<size_t>(n))};
    kernels::cuda::bce_with_logits_bf16(kQueue, {batch, classes, logits_d.get(), targets_d.get(), pos_d.get(),
                                                 neg_d.get(), loss_d.get(), nullptr, dlogits_d.get(),
                                                 workspace_d.get()});
    kernels::cuda::bce_with_logits(kQueue, {batch, classes, wide_d.get(), targets_d.get(), pos_d.get(), neg_d.get(),
                                            loss_d.get() + 1, nullptr, dlogits_d.get() + n, workspace_d.get()});
    const std::vector<float> loss = loss_d.read(), dlogits = dlogits_d.read();
    INFO("[" << batch << ", " << classes << "]");
    CHECK(std::bit_cast<uint32_t>(loss[0]) == std::bit_cast<uint32_t>(loss[1]));
    CHECK(differing(std::vector<float>(dlogits.begin(), dlogits.begin() + n),
                    std::vector<float>(dlogits.begin() + n, dlogits.end())) == 0);
    float loss_twin = 0.f;
    std::vector<float> dlogits_twin(static_cast<size_t>(n));
    kernels::cpu::bce_with_logits_bf16(kQueue, {batch, classes, logits.data(), targets.data(), pos_weight.data(),
                                                neg_weight.data(), &loss_twin, nullptr, dlogits_twin.data()});
    CHECK(std::fabs(loss[0] - loss_twin) <= 1e-5f * std::max(1.f, std::fabs(loss_twin)));
    double worst = 0;  // dlogits scaled by N*C to O(1)
    for (int64_t i = 0; i < n; ++i)
      worst = std::max(worst, std::fabs(static_cast<double>(dlogits[static_cast<size_t>(i)]) -
                                        dlogits_twin[static_cast<size_t>(i)]) * static_cast<double>(n));
    CHECK(worst <= 1e-5);
  }
}

TEST_CASE("GPU bf16 batch-norm inference and apply equal the twins bit for bit", "[gpu][bf16]") {
  require_gpu();
  struct Case {
    int64_t batch, channels, spatial, offset, pad;
    bool in_place;
  };
  // One block per channel ([16, 1024, 7x7]), several ([16, 128, 28x28], a strided slice of a
  // 160-channel buffer), the scalar path (a misaligned start), in place.
  for (const Case& c : {Case{16, 1024, 49, 0, 0, false}, Case{16, 128, 784, 0, 32 * 784, false},
                        Case{2, 64, 3136, 1, 0, false}, Case{4, 32, 196, 0, 0, true}}) {
    const int64_t stride = c.channels * c.spatial + c.pad;
    const auto size = static_cast<size_t>(c.offset + c.batch * stride);
    const std::vector<BFloat16> x = random_bf16(size, 101);
    const std::vector<float> gamma = random_floats(static_cast<size_t>(c.channels), 102);
    const std::vector<float> beta = random_floats(static_cast<size_t>(c.channels), 103);
    const std::vector<float> running_mean = random_floats(static_cast<size_t>(c.channels), 104);
    std::vector<float> running_var = random_floats(static_cast<size_t>(c.channels), 105);
    for (float& v : running_var) v = 0.5f + std::fabs(v);
    const std::vector<float> channel_floats(static_cast<size_t>(c.channels));
    const DeviceVector<float> gamma_d(gamma), beta_d(beta), rm_d(running_mean), rv_d(running_var);
    const DeviceVector<float> mean_d(channel_floats), invstd_d(channel_floats);

    // The twin: inference, saving its statistics, then apply with them (relu fused, as DenseNet).
    std::vector<BFloat16> y_twin = c.in_place ? x : unwritten_bf16(size), applied_twin = y_twin;
    std::vector<float> mean(channel_floats), invstd(channel_floats);
    const kernels::ImageShape shape{c.batch, c.channels, c.spatial};
    kernels::cpu::batch_norm_forward_inference_bf16(
        kQueue, {.shape = shape, .x = {(c.in_place ? y_twin.data() : x.data()) + c.offset, stride},
                 .y = {y_twin.data() + c.offset, stride}, .gamma = gamma.data(), .beta = beta.data(),
                 .running_mean = const_cast<float*>(running_mean.data()),
                 .running_var = running_var.data(), .save_mean = mean.data(), .save_invstd = invstd.data(),
                 .fuse_relu = true});
    kernels::cpu::batch_norm_apply_bf16(
        kQueue, {.shape = shape, .x = {(c.in_place ? applied_twin.data() : x.data()) + c.offset, stride},
                 .y = {applied_twin.data() + c.offset, stride}, .mean = mean.data(), .invstd = invstd.data(),
                 .gamma = gamma.data(), .beta = beta.data(), .fuse_relu = true});

    const DeviceVector<BFloat16> x_d(x), y_d(c.in_place ? x : unwritten_bf16(size)), applied_d(y_d.read());
    kernels::cuda::batch_norm_forward_inference_bf16(
        kQueue, {.shape = shape, .x = {(c.in_place ? y_d.get() : x_d.get()) + c.offset, stride},
                 .y = {y_d.get() + c.offset, stride}, .gamma = gamma_d.get(), .beta = beta_d.get(),
                 .running_mean = rm_d.get(), .running_var = rv_d.get(), .save_mean = mean_d.get(),
                 .save_invstd = invstd_d.get(), .fuse_relu = true});
    kernels::cuda::batch_norm_apply_bf16(
        kQueue, {.shape = shape, .x = {(c.in_place ? applied_d.get() : x_d.get()) + c.offset, stride},
                 .y = {applied_d.get() + c.offset, stride}, .mean = mean_d.get(), .invstd = invstd_d.get(),
                 .gamma = gamma_d.get(), .beta = beta_d.get(), .fuse_relu = true});
    INFO("[" << c.batch << ", " << c.channels << ", " << c.spatial << "] offset " << c.offset << " pad " << c.pad
             << (c.in_place ? " in place" : ""));
    check_bits(y_d.read(), y_twin);
    check_bits(applied_d.read(), applied_twin);
    CHECK(differing(mean_d.read(), mean) == 0);
    CHECK(differing(invstd_d.read(), invstd) == 0);
  }
}

namespace {

// What one training batch norm on the GPU wrote: its float32 outputs each in one vector.
template <typename T>
struct TrainingRun {
  std::vector<T> y, dx;
  std::vector<float> statistics, gradients;
  std::vector<double> moments;
};

struct TrainingCase {
  int64_t batch, channels, spatial, offset, pad;
  bool in_place;
  int64_t stride() const { return channels * spatial + pad; }
  size_t size() const { return static_cast<size_t>(offset + batch * stride()); }
  kernels::ImageShape shape() const { return {batch, channels, spatial}; }
};

struct TrainingInputs {
  std::vector<BFloat16> x, dy;
  std::vector<float> gamma, beta, running_mean, running_var;
};

void gpu_forward(const kernels::BatchNormForwardArgs& a) { kernels::cuda::batch_norm_forward_training(kQueue, a); }
void gpu_forward(const kernels::BatchNormForwardArgsBf16& a) { kernels::cuda::batch_norm_forward_training_bf16(kQueue, a); }
void gpu_backward(const kernels::BatchNormBackwardArgs& a) { kernels::cuda::batch_norm_backward(kQueue, a); }
void gpu_backward(const kernels::BatchNormBackwardArgsBf16& a) { kernels::cuda::batch_norm_backward_bf16(kQueue, a); }
void gpu_moments(const kernels::BatchNormMomentsArgs& a) { kernels::cuda::batch_norm_moments(kQueue, a); }
void gpu_moments(const kernels::BatchNormMomentsArgsBf16& a) { kernels::cuda::batch_norm_moments_bf16(kQueue, a); }

// The moments, the training forward and the backward (relu fused, as DenseNet) on the GPU, on x and
// dy of element type T: the bf16 inputs, or those widened to float32. In place, y is x's buffer and
// dx dy's.
template <typename T>
TrainingRun<T> train_on_gpu(const TrainingCase& c, const TrainingInputs& in, const std::vector<T>& x,
                            const std::vector<T>& dy, const std::vector<T>& unwritten) {
  const auto C = static_cast<size_t>(c.channels);
  const std::vector<float> channel_floats(C, -1.f);
  const DeviceVector<float> gamma_d(in.gamma), beta_d(in.beta), rm_d(in.running_mean), rv_d(in.running_var);
  const DeviceVector<float> mean_d(channel_floats), invstd_d(channel_floats), dgamma_d(channel_floats),
      dbeta_d(channel_floats);
  const DeviceVector<double> moments_d(std::vector<double>(2 * C));
  const size_t workspace_floats = kernels::cuda::batch_norm_workspace_bytes(kQueue, c.shape()) / sizeof(float) + 1;
  const DeviceVector<float> workspace{std::vector<float>(workspace_floats)};
  const DeviceVector<T> x_d(x), y_d(c.in_place ? x : unwritten), dy_d(dy), dx_d(c.in_place ? dy : unwritten);
  const int64_t s = c.stride();
  gpu_moments(kernels::BasicBatchNormMomentsArgs<T>{.shape = c.shape(), .x = {x_d.get() + c.offset, s},
                                                    .mean = moments_d.get(), .var = moments_d.get() + C,
                                                    .workspace = workspace.get()});
  gpu_forward(kernels::BasicBatchNormForwardArgs<T>{
      .shape = c.shape(), .x = {(c.in_place ? y_d.get() : x_d.get()) + c.offset, s}, .y = {y_d.get() + c.offset, s},
      .gamma = gamma_d.get(), .beta = beta_d.get(), .running_mean = rm_d.get(), .running_var = rv_d.get(),
      .save_mean = mean_d.get(), .save_invstd = invstd_d.get(), .fuse_relu = true, .workspace = workspace.get()});
  gpu_backward(kernels::BasicBatchNormBackwardArgs<T>{
      .shape = c.shape(), .x = {x_d.get() + c.offset, s},
      .dy = {(c.in_place ? dx_d.get() : dy_d.get()) + c.offset, s}, .dx = {dx_d.get() + c.offset, s},
      .mean = mean_d.get(), .invstd = invstd_d.get(), .gamma = gamma_d.get(), .beta = beta_d.get(),
      .batch_statistics = true, .fuse_relu = true, .dgamma = dgamma_d.get(), .dbeta = dbeta_d.get(),
      .workspace = workspace.get()});
  TrainingRun<T> run{y_d.read(), dx_d.read(), {}, {}, moments_d.read()};
  for (const auto* v : {&mean_d, &invstd_d, &rm_d, &rv_d}) {
    const std::vector<float> part = v->read();
    run.statistics.insert(run.statistics.end(), part.begin(), part.end());
  }
  for (const auto* v : {&dgamma_d, &dbeta_d}) {
    const std::vector<float> part = v->read();
    run.gradients.insert(run.gradients.end(), part.begin(), part.end());
  }
  return run;
}

std::vector<float> widened(const std::vector<BFloat16>& v) {
  std::vector<float> out;
  for (const BFloat16 b : v) out.push_back(kernels::to_float(b));
  return out;
}

// float32 results rounded once to bf16; the widened unwritten marker back to itself.
std::vector<BFloat16> rounded_once(const std::vector<float>& v) {
  const float marker = kernels::to_float(BFloat16{0x7fc1});
  std::vector<BFloat16> out;
  for (const float f : v)
    out.push_back(std::memcmp(&f, &marker, sizeof(float)) == 0 ? BFloat16{0x7fc1} : kernels::to_bfloat16(f));
  return out;
}

// Largest |a - b| / max(|b|, 1) over the elements whose bits differ.
double worst_scaled_difference(const std::vector<BFloat16>& a, const std::vector<BFloat16>& b) {
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].bits == b[i].bits) continue;
    const double va = kernels::to_float(a[i]), vb = kernels::to_float(b[i]);
    const double d = std::fabs(va - vb) / std::max(1.0, std::fabs(vb));
    worst = std::max(worst, std::isnan(d) ? INFINITY : d);
  }
  return worst;
}

}  // namespace

TEST_CASE("GPU bf16 batch-norm training equals the float32 kernels on widened inputs, rounded once",
          "[gpu][bf16]") {
  // As the emulated test (tests/emu/test_kernel_bf16_batchnorm_training.cpp): the bf16 forward,
  // backward and moments equal the float32 kernels on the widened x and dy bit for bit (y and dx
  // rounded once; statistics, running update, dgamma, dbeta and moments the same bits), and the
  // twin within one bf16 rounding (the kernels sum in another order than the twin).
  require_gpu();
  // One pass ([16, 1024, 7x7], [16, 512, 14x14]), several blocks per channel ([16, 128, 28x28], a
  // strided slice of a 160-channel buffer; [16, 64, 56x56]), the scalar path (a misaligned start),
  // in place.
  for (const TrainingCase& c :
       {TrainingCase{16, 1024, 49, 0, 0, false}, TrainingCase{16, 512, 196, 0, 0, false},
        TrainingCase{16, 128, 784, 0, 32 * 784, false}, TrainingCase{16, 64, 3136, 0, 0, false},
        TrainingCase{2, 64, 3136, 1, 0, false}, TrainingCase{4, 32, 196, 0, 0, true}}) {
    const auto C = static_cast<size_t>(c.channels);
    TrainingInputs in{random_bf16(c.size(), 111), random_bf16(c.size(), 112), random_floats(C, 113),
                      random_floats(C, 114), random_floats(C, 115), random_floats(C, 116)};
    for (float& v : in.running_var) v = 0.5f + std::fabs(v);
    const std::vector<BFloat16> unwritten = unwritten_bf16(c.size());
    const TrainingRun<BFloat16> bf16 = train_on_gpu(c, in, in.x, in.dy, unwritten);
    const TrainingRun<float> fp32 = train_on_gpu(c, in, widened(in.x), widened(in.dy), widened(unwritten));
    INFO("[" << c.batch << ", " << c.channels << ", " << c.spatial << "] offset " << c.offset << " pad " << c.pad
             << (c.in_place ? " in place" : ""));
    check_bits(bf16.y, rounded_once(fp32.y));
    check_bits(bf16.dx, rounded_once(fp32.dx));
    CHECK(differing(bf16.statistics, fp32.statistics) == 0);
    CHECK(differing(bf16.gradients, fp32.gradients) == 0);
    CHECK(differing(bf16.moments, fp32.moments) == 0);

    // The twin's forward, within one bf16 rounding.
    std::vector<BFloat16> y_twin = c.in_place ? in.x : unwritten;
    std::vector<float> rm = in.running_mean, rv = in.running_var, mean(C), invstd(C);
    kernels::cpu::batch_norm_forward_training_bf16(
        kQueue, {.shape = c.shape(), .x = {(c.in_place ? y_twin.data() : in.x.data()) + c.offset, c.stride()},
                 .y = {y_twin.data() + c.offset, c.stride()}, .gamma = in.gamma.data(), .beta = in.beta.data(),
                 .running_mean = rm.data(), .running_var = rv.data(), .save_mean = mean.data(),
                 .save_invstd = invstd.data(), .fuse_relu = true});
    CHECK(worst_scaled_difference(bf16.y, y_twin) <= 1.0 / 128);
  }
}

// bench_conv_bf16: the convolutions of one DenseNet-121 training step on the CPU, fp32 kernels
// against bf16 kernels (kernels/conv2d.h): per distinct geometry (models::densenet_layer_shapes),
// the forward, the input gradient and the weight gradient, each timed alone (median of --reps
// runs after one warm-up) and weighted by how many times a step runs it (each 3x3 recurs once per
// layer of its block; the stem has no input gradient). The kernels are the plain NCHW ones
// (conv2d_forward, conv2d_backward_*, and their bf16 counterparts with NCHW images), not the
// dense block's fused BN-ReLU forms: this measures what bf16 arithmetic saves, not a whole step.
// Prints a table per geometry and the totals, then one JSON line.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "chex/error.h"
#include "chex/parallel.h"
#include "kernels/conv2d.h"
#include "models/densenet_shapes.h"

namespace {

using namespace chex;
namespace k = chex::kernels::cpu;

struct Options {
  int64_t batch = 16, size = 224;
  int reps = 3;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      CHEX_CHECK(i + 1 < argc, arg, " needs a value");
      return argv[++i];
    };
    if (arg == "--batch") o.batch = std::stoll(value());
    else if (arg == "--size") o.size = std::stoll(value());
    else if (arg == "--reps") o.reps = std::stoi(value());
    else if (arg == "-h" || arg == "--help") {
      std::printf(
          "usage: bench_conv_bf16 [--batch N] [--size S] [--reps R]\n"
          "\n"
          "Times DenseNet-121's convolutions of one training step on the CPU, fp32 kernels against\n"
          "bf16 kernels (bf16 operands, fp32 accumulation; oneDNN on AMX / AVX512_BF16): forward,\n"
          "input gradient and weight gradient per geometry, weighted by their count in a step.\n"
          "Prints a table and one JSON line. Threads: OMP_NUM_THREADS.\n"
          "  --batch N  images per step (default 16)\n"
          "  --size S   square image size (default 224)\n"
          "  --reps R   timed runs per kernel and geometry, the median kept (default 3)\n");
      std::exit(0);
    } else CHEX_FAIL("unknown argument '", arg, "' (see --help)");
  }
  CHEX_CHECK(o.batch > 0 && o.size >= 32 && o.reps > 0, "--batch, --size (>= 32) and --reps must be positive");
  return o;
}

// Each distinct convolution of a step and how many times the step runs it, walking the network as
// densenet_layer_shapes does (a dense block's 3x3s share one geometry).
std::vector<std::pair<models::ConvShape, int64_t>> step_convolutions(int64_t batch, int64_t size) {
  const models::DenseNetConfig config = models::DenseNetConfig::densenet121();
  std::map<models::ConvShape, int64_t> counts;
  const models::DenseNetShapes shapes = models::densenet_layer_shapes(batch, size, config);
  // Every 1x1 (conv1 of a layer, a transition) and the stem occur once; a block's 3x3 once per layer.
  size_t block = 0;
  for (const models::ConvShape& s : shapes.convolutions) {
    const bool three = s.kernel == 3;
    counts[s] = three ? config.block_config.at(block++) : 1;
  }
  std::vector<std::pair<models::ConvShape, int64_t>> out;
  for (const models::ConvShape& s : shapes.convolutions) out.emplace_back(s, counts[s]);
  return out;
}

template <class Run>
double median_seconds(int reps, const Run& run) {
  run();  // warm-up: builds oneDNN's primitives, touches the buffers
  std::vector<double> times;
  for (int r = 0; r < reps; ++r) {
    const auto start = std::chrono::steady_clock::now();
    run();
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

// Forward, input gradient, weight gradient, in seconds.
struct Times {
  double forward = 0, data = 0, weight = 0;
  double total() const { return forward + data + weight; }
};

std::vector<float> random_floats(int64_t count, std::mt19937& gen, float scale) {
  std::normal_distribution<float> normal(0.f, scale);
  std::vector<float> v(static_cast<size_t>(count));
  for (float& x : v) x = normal(gen);
  return v;
}

struct Measured {
  Times fp32, bf16;
};

Measured measure(const models::ConvShape& s, int reps, std::mt19937& gen) {
  const kernels::Queue q{};
  const auto g = kernels::Conv2dGeometry::make(s.batch, s.in_channels, s.height, s.width, s.out_channels, s.kernel,
                                               s.kernel, s.stride, s.padding);
  const std::vector<float> x = random_floats(g.batch * g.in_sample(), gen, 1.f),
                           dy = random_floats(g.batch * g.out_sample(), gen, 0.1f),
                           weight = random_floats(g.out_channels * g.patch_size(), gen, 0.1f);
  std::vector<float> y(dy.size()), dx(x.size()), dweight(weight.size());
  const kernels::Bf16Layout layout{false, false, g.out_sample()};
  const size_t bytes = std::max({k::conv2d_workspace_bytes(q, g), k::conv2d_backward_workspace_bytes(q, g),
                                 k::conv2d_bf16_workspace_bytes(q, g, layout),
                                 k::conv2d_bf16_backward_workspace_bytes(q, g)});
  std::vector<float> workspace(bytes / sizeof(float) + 1);
  float* ws = workspace.data();
  const kernels::StridedIn x_in{x.data(), g.in_sample()}, dy_in{dy.data(), g.out_sample()};
  const kernels::StridedOut y_out{y.data(), g.out_sample()}, dx_out{dx.data(), g.in_sample()};
  const bool stem = s.in_channels == 3;  // its input is the image: no input gradient
  Measured m;
  m.fp32.forward = median_seconds(reps, [&] { k::conv2d_forward(q, {g, x_in, weight.data(), nullptr, y_out, ws}); });
  m.bf16.forward = median_seconds(reps, [&] {
    k::conv2d_forward_bf16(q, {g, layout, x_in, nullptr, weight.data(), nullptr, y_out, ws});
  });
  if (!stem) {
    m.fp32.data = median_seconds(reps, [&] { k::conv2d_backward_data(q, {g, dy_in, weight.data(), dx_out, ws}); });
    m.bf16.data = median_seconds(reps, [&] { k::conv2d_backward_data_bf16(q, {g, dy_in, weight.data(), dx_out, ws}); });
  }
  m.fp32.weight = median_seconds(
      reps, [&] { k::conv2d_backward_weight(q, {g, x_in, dy_in, dweight.data(), nullptr, ws}); });
  m.bf16.weight = median_seconds(
      reps, [&] { k::conv2d_backward_weight_bf16(q, {g, x_in, dy_in, dweight.data(), nullptr, ws}); });
  return m;
}

void add(Times& total, const Times& t, int64_t count) {
  total.forward += t.forward * count;
  total.data += t.data * count;
  total.weight += t.weight * count;
}

}  // namespace

int main(int argc, char** argv) try {
  const Options o = parse(argc, argv);
  if (!k::cpu_has_native_bf16())
    std::printf("note: this CPU has neither AVX512_BF16 nor AMX: bf16 runs, but not faster than fp32\n");
  std::mt19937 gen(7);
  Times fp32, bf16, stem_fp32, stem_bf16;
  std::printf("| convolution (batch %lld) | count | fp32 fwd / dx / dw (ms) | bf16 fwd / dx / dw (ms) "
              "| step fp32 / bf16 (ms) |\n|---|---|---|---|---|\n",
              static_cast<long long>(o.batch));
  for (const auto& [s, count] : step_convolutions(o.batch, o.size)) {
    const Measured m = measure(s, o.reps, gen);
    std::printf("| %lldx%lld %lld->%lld k%lld s%lld p%lld | %lld ", static_cast<long long>(s.height),
                static_cast<long long>(s.width), static_cast<long long>(s.in_channels),
                static_cast<long long>(s.out_channels), static_cast<long long>(s.kernel),
                static_cast<long long>(s.stride), static_cast<long long>(s.padding), static_cast<long long>(count));
    std::printf("| %.2f / %.2f / %.2f | %.2f / %.2f / %.2f | %.1f / %.1f |\n", m.fp32.forward * 1e3,
                m.fp32.data * 1e3, m.fp32.weight * 1e3, m.bf16.forward * 1e3, m.bf16.data * 1e3, m.bf16.weight * 1e3,
                m.fp32.total() * count * 1e3, m.bf16.total() * count * 1e3);
    std::fflush(stdout);
    add(fp32, m.fp32, count);
    add(bf16, m.bf16, count);
    if (s.in_channels == 3) {
      add(stem_fp32, m.fp32, count);
      add(stem_bf16, m.bf16, count);
    }
  }
  auto row = [](const char* name, const Times& t, const Times& stem) {
    std::printf("%-14s %7.3f  %10.3f  %11.3f  %7.3f  %7.3f\n", name, t.forward, t.data, t.weight, t.total(),
                stem.total());
  };
  std::printf("\nper step (s)   forward  input grad  weight grad  total    of which the stem\n");
  row("fp32", fp32, stem_fp32);
  row("bf16", bf16, stem_bf16);
  std::printf("fp32 / bf16    %7.2f  %10.2f  %11.2f  %7.2f  %7.2f\n", fp32.forward / bf16.forward,
              fp32.data / bf16.data, fp32.weight / bf16.weight, fp32.total() / bf16.total(),
              stem_fp32.total() / stem_bf16.total());
  std::printf(
      "{\"bench\": \"conv_bf16\", \"batch\": %lld, \"size\": %lld, \"threads\": %d, \"native_bf16\": %s, "
      "\"fp32_s\": {\"forward\": %.5f, \"data\": %.5f, \"weight\": %.5f, \"total\": %.5f, \"stem\": %.5f}, "
      "\"bf16_s\": {\"forward\": %.5f, \"data\": %.5f, \"weight\": %.5f, \"total\": %.5f, \"stem\": %.5f}, "
      "\"speedup\": %.3f}\n",
      static_cast<long long>(o.batch), static_cast<long long>(o.size), num_threads(),
      k::cpu_has_native_bf16() ? "true" : "false", fp32.forward, fp32.data, fp32.weight, fp32.total(),
      stem_fp32.total(), bf16.forward, bf16.data, bf16.weight, bf16.total(), stem_bf16.total(),
      fp32.total() / bf16.total());
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "bench_conv_bf16: %s\n", e.what());
  return 1;
}

// bench_kernels: our hand-written CUDA kernels against their cuDNN counterparts, at every distinct
// DenseNet-121 shape (batch 16) and at one large shape. For each case both sides are run once and
// compared (they must agree within the case's tolerance), then timed: median over repeats, with
// the L2 cache flushed before each (by reading a buffer twice its size), as GB/s over the bytes the
// kernel moves on paper, as a share of the device's peak DRAM bandwidth and of a plain copy
// kernel's bandwidth measured in the same run, and as the speed-up over cuDNN (over the faster of
// its modes where it has two: batch norm's SPATIAL and SPATIAL_PERSISTENT). The totals weight each
// case by how often one DenseNet-121 training step, and one inference pass, makes that call on the
// CUDA backend (models::densenet_kernel_calls, checked against a real step by a CPU test); cases
// the step never runs weigh nothing, and the calls no case measures are listed. A table on stdout;
// one JSON line per case, then one per total, with --json.
//
// Without a usable GPU it says so in one line and exits with status 3.
#include <cuda_runtime_api.h>
#include <cudnn.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <regex>
#include <string>
#include <vector>

#include "bench/bench_baselines.h"
#include "bench/bench_cases.h"
#include "chex/cuda_check.h"
#include "chex/error.h"
#include "models/densenet_shapes.h"

namespace chex::bench {
namespace {

constexpr int kNoGpuExit = 3;

// A bad command line (exit status 2).
struct UsageError : Error {
  using Error::Error;
};

struct Options {
  std::string filter = ".*";
  std::string json_path;
  int repeats = 30;
  int64_t batch = 16;
  bool list = false;
};

void usage() {
  std::puts(
      "usage: bench_kernels [--filter REGEX] [--json FILE] [--repeats N] [--batch N] [--list]\n"
      "\n"
      "Times chex's hand-written CUDA kernels against their cuDNN counterparts at every distinct\n"
      "DenseNet-121 shape and at one large shape. Each case is first checked (both sides must agree),\n"
      "then timed: median microseconds over the repeats with the L2 cache flushed (read) before each.\n"
      "Batch norm is compared with both cuDNN modes, SPATIAL and SPATIAL_PERSISTENT; the speed-up is\n"
      "against the faster. The totals weight each case by how often one DenseNet-121 training step\n"
      "(and one inference pass) at 224 px runs it on the GPU; cases the step never runs (standalone\n"
      "ReLU) weigh nothing, and the step's calls that no case measures are listed.\n"
      "  --filter REGEX  only the cases whose \"kernel shape\" text matches (ECMAScript regex)\n"
      "  --json FILE     also write one JSON line per case to FILE\n"
      "  --repeats N     timed runs per side and case (default 30)\n"
      "  --batch N       batch of the DenseNet-121 shapes (default 16)\n"
      "  --list          list the cases and the calls each stands for, then stop (no GPU needed)\n"
      "  -h, --help      this help\n"
      "Exit status: 0 done, 1 a check failed or a CUDA error, 2 bad arguments, 3 no usable GPU.\n"
      "CHEX_DEBUG=1 in the environment adds each error's failed check and source line.");
}

bool parse(int argc, char** argv, Options& o, int& exit_code) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) throw UsageError("option " + a + " needs a value");
      return argv[++i];
    };
    if (a == "-h" || a == "--help") {
      usage();
      exit_code = 0;
      return false;
    } else if (a == "--list") {
      o.list = true;
    } else if (a == "--filter") {
      o.filter = value();
    } else if (a == "--json") {
      o.json_path = value();
    } else if (a == "--repeats") {
      o.repeats = std::max(1, std::atoi(value()));
    } else if (a == "--batch") {
      o.batch = std::max(1, std::atoi(value()));
    } else {
      throw UsageError("unknown option '" + a + "' (see --help)");
    }
  }
  return true;
}

// Median of `repeats` timed runs of `fn`, each after reading a buffer twice L2's size.
double median_us(const std::function<void()>& fn, const Bench& b, int repeats) {
  fn();  // warm-up (and first-use costs such as workspace queries)
  CHEX_CUDA_CHECK(cudaStreamSynchronize(b.stream));
  std::vector<double> us;
  cudaEvent_t start, stop;
  CHEX_CUDA_CHECK(cudaEventCreate(&start));
  CHEX_CUDA_CHECK(cudaEventCreate(&stop));
  for (int r = 0; r < repeats; ++r) {
    read_floats(b.flush.get(), b.flush.size(), b.sink.get(), b.stream);
    CHEX_CUDA_CHECK(cudaEventRecord(start, b.stream));
    fn();
    CHEX_CUDA_CHECK(cudaEventRecord(stop, b.stream));
    CHEX_CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0;
    CHEX_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    us.push_back(1e3 * ms);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::nth_element(us.begin(), us.begin() + static_cast<long>(us.size() / 2), us.end());
  return us[us.size() / 2];
}

// Peak DRAM bandwidth in GB/s from the device attributes (0 when the toolkit no longer reports
// the memory clock).
double peak_dram_gbs(int device) {
  int clock_khz = 0, bus_bits = 0;
  if (cudaDeviceGetAttribute(&clock_khz, cudaDevAttrMemoryClockRate, device) != cudaSuccess ||
      cudaDeviceGetAttribute(&bus_bits, cudaDevAttrGlobalMemoryBusWidth, device) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return 2.0 * clock_khz * 1e3 * (bus_bits / 8.0) / 1e9;  // double data rate
}

std::string percent(double part, double whole) {
  if (whole <= 0) return "n/a";
  char text[32];
  std::snprintf(text, sizeof text, "%.0f%%", 100.0 * part / whole);
  return text;
}

// How often a DenseNet-121 pass makes each kernel call (models::densenet_kernel_calls).
struct Weights {
  std::map<KernelCall, int64_t> calls;
  // The calls one run of the case stands for; 0 for a call the pass never makes.
  double of(const CaseFactory& f) const {
    if (f.counted_as.kernel.empty()) return 0;
    const auto it = calls.find(f.counted_as);
    return it == calls.end() ? 0 : static_cast<double>(it->second) / static_cast<double>(f.calls_per_run);
  }
};

// A pass's measured kernels, each case's time times its calls.
struct Total {
  double ours = 0, legacy = 0, best = 0, calls = 0;
  void add(double weight, double ours_us, double legacy_us, double best_us) {
    ours += weight * ours_us;
    legacy += weight * legacy_us;
    best += weight * best_us;
    calls += weight;
  }
};

void report_total(const char* pass, const Total& t, int64_t batch, std::ofstream* json) {
  if (t.calls == 0) return;
  // One line (the GPU check script greps "summed").
  std::printf("DenseNet-121 %s (batch %lld, 224 px), summed over its %.0f calls of the measured kernels: ours %.0f "
              "µs, cuDNN %.0f µs (the faster mode per case), speed-up %.2fx; legacy SPATIAL only %.0f µs, %.2fx\n",
              pass, static_cast<long long>(batch), t.calls, t.ours, t.best, t.best / t.ours, t.legacy,
              t.legacy / t.ours);
  if (json)
    *json << "{\"total\": \"densenet121 " << pass << "\", \"batch\": " << batch << ", \"calls\": " << t.calls
          << ", \"ours_us\": " << t.ours << ", \"cudnn_us\": " << t.best << ", \"cudnn_legacy_us\": " << t.legacy
          << ", \"speedup\": " << t.best / t.ours << ", \"speedup_legacy\": " << t.legacy / t.ours << "}\n";
}

// The training step's calls of the analysed kernels that no case measures, per kernel: what the
// totals leave out.
void report_unmeasured(const Weights& step, const std::vector<CaseFactory>& factories) {
  std::map<std::string, int64_t> missing;
  for (const auto& [call, times] : step.calls) {
    const bool measured = std::any_of(factories.begin(), factories.end(),
                                      [&](const CaseFactory& f) { return f.counted_as == call; });
    if (!measured) missing[call.kernel] += times;
  }
  if (missing.empty()) return;
  std::printf("not measured (calls per training step, no case):");
  for (const auto& [kernel, times] : missing) std::printf(" %s %lld", kernel.c_str(), static_cast<long long>(times));
  std::printf("\n");
}

// --list: the cases --filter keeps, with the calls per training step and per inference pass each
// stands for, and the step's calls no case measures.
int list(const Options& o) {
  const std::regex filter(o.filter);
  const std::vector<CaseFactory> factories = case_factories(o.batch);
  const Weights step{models::densenet_kernel_calls(models::DenseNetPass::training_step, o.batch)};
  const Weights inference{models::densenet_kernel_calls(models::DenseNetPass::inference, o.batch)};
  std::printf("%-28s %-34s %5s %5s\n", "kernel", "shape", "step", "infer");
  for (const CaseFactory& f : factories)
    if (std::regex_search(f.kernel + " " + f.shape, filter))
      std::printf("%-28s %-34s %5.0f %5.0f\n", f.kernel.c_str(), f.shape.c_str(), step.of(f), inference.of(f));
  report_unmeasured(step, factories);
  return 0;
}

int run(const Options& o) {
  if (o.list) return list(o);
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess || count == 0) {
    std::fprintf(stderr, "bench_kernels: no usable GPU (%s); nothing to measure\n",
                 status != cudaSuccess ? cudaGetErrorString(status) : "no CUDA devices");
    return kNoGpuExit;
  }
  Bench b(0);
  const double peak = peak_dram_gbs(0);

  // The practical ceiling: a float4 copy of 256 MiB.
  double copy_gbs = 0;
  {
    const int64_t n = int64_t{64} << 20;
    DeviceArray src(n), dst(n);
    const double us = median_us([&] { copy_floats(src.get(), dst.get(), n, b.stream); }, b, o.repeats);
    copy_gbs = 2.0 * n * sizeof(float) / (us * 1e3);
  }
  std::printf("device: %s, L2 %.0f MiB, peak DRAM %s, copy kernel %.0f GB/s (%s of peak)\n", b.name.c_str(),
              b.l2_bytes / 1048576.0, peak > 0 ? (std::to_string(static_cast<int>(peak)) + " GB/s").c_str() : "n/a",
              copy_gbs, percent(copy_gbs, peak).c_str());
  // "step" and "infer": the calls per training step and per inference pass the case stands for.
  std::printf("%-28s %-34s %9s %9s %9s %7s %6s %6s %8s %5s %5s %s\n", "kernel", "shape", "ours µs", "cuDNN µs",
              "persist.", "GB/s", "%peak", "%copy", "speed-up", "step", "infer", "check");

  std::unique_ptr<std::ofstream> json;
  if (!o.json_path.empty()) {
    json = std::make_unique<std::ofstream>(o.json_path);
    if (!*json) throw Error("cannot write " + o.json_path);
  }
  const std::regex filter(o.filter);
  const std::vector<CaseFactory> factories = case_factories(o.batch);
  const Weights step{models::densenet_kernel_calls(models::DenseNetPass::training_step, o.batch)};
  const Weights inference{models::densenet_kernel_calls(models::DenseNetPass::inference, o.batch)};
  bool all_agree = true;
  Total step_total, inference_total;
  for (const CaseFactory& factory : factories) {
    if (!std::regex_search(factory.kernel + " " + factory.shape, filter)) continue;
    const std::unique_ptr<Case> c = factory.make(b);
    const bool has_alternative = !c->alternative.empty();
    const double difference = std::max(c->difference(), has_alternative ? c->alternative_difference() : 0.0);
    const bool agree = difference <= c->tolerance;
    all_agree = all_agree && agree;
    const double ours = median_us([&] { c->ours(); }, b, o.repeats);
    const double legacy = median_us([&] { c->cudnn(); }, b, o.repeats);
    const double alternative = has_alternative ? median_us([&] { c->cudnn_alternative(); }, b, o.repeats) : 0;
    const double best = has_alternative ? std::min(legacy, alternative) : legacy;
    const double step_calls = step.of(factory), inference_calls = inference.of(factory);
    step_total.add(step_calls, ours, legacy, best);
    inference_total.add(inference_calls, ours, legacy, best);
    const double gbs = c->bytes / (ours * 1e3);
    char alternative_text[32] = "-";
    if (has_alternative) std::snprintf(alternative_text, sizeof alternative_text, "%.1f", alternative);
    std::printf("%-28s %-34s %9.1f %9.1f %9s %7.0f %6s %6s %7.2fx %5.0f %5.0f %s\n", factory.kernel.c_str(),
                factory.shape.c_str(), ours, legacy, alternative_text, gbs, percent(gbs, peak).c_str(),
                percent(gbs, copy_gbs).c_str(), best / ours, step_calls, inference_calls,
                agree ? "ok" : ("DIFFERS " + std::to_string(difference)).c_str());
    if (json) {
      *json << "{\"kernel\": \"" << factory.kernel << "\", \"shape\": \"" << factory.shape
            << "\", \"densenet\": " << (factory.densenet ? "true" : "false") << ", \"ours_us\": " << ours
            << ", \"cudnn_us\": " << legacy << ", \"cudnn_alternative\": ";
      if (has_alternative)
        *json << "\"" << c->alternative << "\", \"cudnn_alternative_us\": " << alternative;
      else
        *json << "null, \"cudnn_alternative_us\": null";
      *json << ", \"baseline_us\": " << best << ", \"bytes\": " << c->bytes << ", \"gbs\": " << gbs
            << ", \"peak_gbs\": " << peak << ", \"copy_gbs\": " << copy_gbs << ", \"speedup\": " << best / ours
            << ", \"speedup_legacy\": " << legacy / ours << ", \"step_calls\": " << step_calls
            << ", \"inference_calls\": " << inference_calls << ", \"max_difference\": " << difference
            << ", \"agree\": " << (agree ? "true" : "false") << "}\n";
    }
  }
  report_total("training step", step_total, o.batch, json.get());
  report_total("inference pass", inference_total, o.batch, json.get());
  report_unmeasured(step, factories);
  if (!all_agree) std::fprintf(stderr, "bench_kernels: error: some kernels disagree with cuDNN (see 'check')\n");
  return all_agree ? 0 : 1;
}

}  // namespace
}  // namespace chex::bench

int main(int argc, char** argv) {
  try {
    chex::bench::Options options;
    int exit_code = 0;
    if (!chex::bench::parse(argc, argv, options, exit_code)) return exit_code;
    return chex::bench::run(options);
  } catch (const std::regex_error& e) {
    std::fprintf(stderr, "bench_kernels: error: bad --filter expression: %s\n", e.what());
    return 2;
  } catch (const chex::bench::UsageError& e) {
    chex::print_error("bench_kernels", e, false);
    return 2;
  } catch (const std::exception& e) {
    chex::print_error("bench_kernels", e, false);  // CHEX_DEBUG=1 adds the failed check and its line
    return 1;
  }
}

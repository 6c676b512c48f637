// bench_kernels: our hand-written CUDA kernels against their cuDNN counterparts, at every distinct
// DenseNet-121 shape (batch 16) and at one large shape. For each case both sides are run once and
// compared (they must agree within the case's tolerance), then timed: median over repeats, with
// the L2 cache flushed before each, as GB/s over the bytes the kernel moves on paper, as a share
// of the device's peak DRAM bandwidth and of a plain copy kernel's bandwidth measured in the same
// run, and as the speed-up over cuDNN. A table on stdout; one JSON line per case with --json.
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
#include <memory>
#include <random>
#include <regex>
#include <string>
#include <vector>

#include "bench/bench_baselines.h"
#include "bench/bench_cases.h"
#include "chex/cuda_check.h"
#include "chex/error.h"

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
};

void usage() {
  std::puts(
      "usage: bench_kernels [--filter REGEX] [--json FILE] [--repeats N] [--batch N]\n"
      "\n"
      "Times chex's hand-written CUDA kernels against their cuDNN counterparts at every distinct\n"
      "DenseNet-121 shape and at one large shape. Each case is first checked (both sides must agree),\n"
      "then timed: median microseconds over the repeats with the L2 cache flushed before each.\n"
      "  --filter REGEX  only the cases whose \"kernel shape\" text matches (ECMAScript regex)\n"
      "  --json FILE     also write one JSON line per case to FILE\n"
      "  --repeats N     timed runs per side and case (default 30)\n"
      "  --batch N       batch of the DenseNet-121 shapes (default 16)\n"
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

// Median of `repeats` timed runs of `fn`, each after writing a buffer larger than L2.
double median_us(const std::function<void()>& fn, const Bench& b, int repeats) {
  fn();  // warm-up (and first-use costs such as workspace queries)
  CHEX_CUDA_CHECK(cudaStreamSynchronize(b.stream));
  std::vector<double> us;
  cudaEvent_t start, stop;
  CHEX_CUDA_CHECK(cudaEventCreate(&start));
  CHEX_CUDA_CHECK(cudaEventCreate(&stop));
  for (int r = 0; r < repeats; ++r) {
    CHEX_CUDA_CHECK(cudaMemsetAsync(b.flush.get(), r & 0xff, b.flush.bytes, b.stream));
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

int run(const Options& o) {
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
  std::printf("%-28s %-30s %10s %10s %8s %7s %7s %8s %s\n", "kernel", "shape", "ours µs", "cuDNN µs", "GB/s",
              "%peak", "%copy", "speed-up", "check");

  std::unique_ptr<std::ofstream> json;
  if (!o.json_path.empty()) {
    json = std::make_unique<std::ofstream>(o.json_path);
    if (!*json) throw Error("cannot write " + o.json_path);
  }
  const std::regex filter(o.filter);
  bool all_agree = true;
  double ours_total = 0, cudnn_total = 0;
  for (const CaseFactory& factory : case_factories(o.batch)) {
    if (!std::regex_search(factory.kernel + " " + factory.shape, filter)) continue;
    const std::unique_ptr<Case> c = factory.make(b);
    const double difference = c->difference();
    const bool agree = difference <= c->tolerance;
    all_agree = all_agree && agree;
    const double ours = median_us([&] { c->ours(); }, b, o.repeats);
    const double theirs = median_us([&] { c->cudnn(); }, b, o.repeats);
    if (factory.densenet) {
      ours_total += ours;
      cudnn_total += theirs;
    }
    const double gbs = c->bytes / (ours * 1e3);
    std::printf("%-28s %-30s %10.1f %10.1f %8.0f %7s %7s %7.2fx %s\n", factory.kernel.c_str(), factory.shape.c_str(),
                ours, theirs, gbs, percent(gbs, peak).c_str(), percent(gbs, copy_gbs).c_str(), theirs / ours,
                agree ? "ok" : ("DIFFERS " + std::to_string(difference)).c_str());
    if (json)
      *json << "{\"kernel\": \"" << factory.kernel << "\", \"shape\": \"" << factory.shape
            << "\", \"densenet\": " << (factory.densenet ? "true" : "false") << ", \"ours_us\": " << ours
            << ", \"cudnn_us\": " << theirs << ", \"bytes\": " << c->bytes << ", \"gbs\": " << gbs
            << ", \"peak_gbs\": " << peak << ", \"copy_gbs\": " << copy_gbs << ", \"speedup\": " << theirs / ours
            << ", \"max_difference\": " << difference << ", \"agree\": " << (agree ? "true" : "false") << "}\n";
  }
  if (cudnn_total > 0)
    std::printf("DenseNet-121 shapes, summed: ours %.0f µs, cuDNN %.0f µs, speed-up %.2fx\n", ours_total, cudnn_total,
                cudnn_total / ours_total);
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

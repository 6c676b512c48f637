// bench_gemm: oneDNN's dnnl_sgemm against OpenBLAS's cblas_sgemm in one process, at square sizes
// and at the GEMM shapes of DenseNet-121's convolutions. The two libraries are timed in
// interleaved rounds (alternating which goes first) and each figure is the median over rounds,
// because these machines are shared and noisy: the ratio is the number to trust.
#include <cblas.h>
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

struct GemmShape {
  const char* name;
  int64_t m, n, k;
  bool trans_a = false, trans_b = false;
  double flops() const { return 2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k); }
};

// Row-major C [m, n] = op(A) op(B). DenseNet-121 at 224 px, per sample, as conv2d calls the GEMM:
// forward  y [C_out, HW] = W [C_out, K] col [K, HW];
// weights  dW [C_out, K] = dy [C_out, HW] col^T;  data  col [K, HW] = W^T dy.
const std::vector<GemmShape> kShapes = {
    {"square 256", 256, 256, 256},
    {"square 512", 512, 512, 512},
    {"square 1024", 1024, 1024, 1024},
    {"square 2048", 2048, 2048, 2048},
    {"block1 1x1 fwd (256->128, 56x56)", 128, 3136, 256},
    {"block1 3x3 fwd (128->32, 56x56)", 32, 3136, 1152},
    {"block1 3x3 dW (128->32, 56x56)", 32, 1152, 3136, false, true},
    {"block1 3x3 dX (128->32, 56x56)", 1152, 3136, 32, true, false},
    {"block4 1x1 fwd (1024->128, 7x7)", 128, 49, 1024},
    {"stem 7x7/2 fwd (3->64, 112x112)", 64, 12544, 147},
};

struct Options {
  int threads = 0;
  int rounds = 7;
  double block_seconds = 0.1;  // length of one timed block of calls
  double settle_seconds = 0.2;  // idle time before each block, see time_block
};

void print_help() {
  std::printf(
      "usage: bench_gemm [--threads N] [--rounds R] [--block-seconds S]\n"
      "\n"
      "Times oneDNN's dnnl_sgemm and OpenBLAS's cblas_sgemm (float32, row-major) side by side at\n"
      "square sizes and at DenseNet-121's convolution GEMM shapes. Each round times a block of calls\n"
      "of each library (alternating which goes first); the figures are medians over the rounds.\n"
      "Prints a table, then one JSON line per shape. Both results are compared as a sanity check.\n"
      "\n"
      "  --threads N        threads for both libraries (default: all cores, %d here)\n"
      "  --rounds R         interleaved rounds per shape (default 7)\n"
      "  --block-seconds S  approximate length of one timed block (default 0.1)\n"
      "  --settle-seconds S idle time before each block, for the other library's threads to stop\n"
      "                     spinning (default 0.2)\n"
      "  --help             this text\n"
      "\n"
      "OpenBLAS picks its kernels from OPENBLAS_CORETYPE when set (it is printed in the header).\n",
      omp_get_num_procs());
}

[[noreturn]] void usage_error(const std::string& message) {
  std::fprintf(stderr, "bench_gemm: error: %s (see bench_gemm --help)\n", message.c_str());
  std::exit(2);
}

double parse_number(const char* flag, const char* text, double low) {
  char* end = nullptr;
  const double value = std::strtod(text, &end);
  if (end == text || *end != '\0' || !(value >= low))
    usage_error(std::string(flag) + " needs a number >= " + std::to_string(low) + ", got '" + text + "'");
  return value;
}

Options parse_options(int argc, char** argv) {
  Options options;
  options.threads = omp_get_num_procs();
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      print_help();
      std::exit(0);
    }
    if (i + 1 >= argc) usage_error("unknown argument or missing value: '" + arg + "'");
    if (arg == "--threads") {
      options.threads = static_cast<int>(parse_number("--threads", argv[++i], 1));
    } else if (arg == "--rounds") {
      options.rounds = static_cast<int>(parse_number("--rounds", argv[++i], 1));
    } else if (arg == "--block-seconds") {
      options.block_seconds = parse_number("--block-seconds", argv[++i], 0);
    } else if (arg == "--settle-seconds") {
      options.settle_seconds = parse_number("--settle-seconds", argv[++i], 0);
    } else {
      usage_error("unknown argument '" + arg + "'");
    }
  }
  return options;
}

struct Operands {
  std::vector<float> a, b, c;
};

Operands make_operands(const GemmShape& s, std::mt19937& rng) {
  std::normal_distribution<float> normal;
  Operands o;
  o.a.resize(static_cast<size_t>(s.m * s.k));
  o.b.resize(static_cast<size_t>(s.k * s.n));
  o.c.assign(static_cast<size_t>(s.m * s.n), 0.f);
  for (float& v : o.a) v = normal(rng);
  for (float& v : o.b) v = normal(rng);
  return o;
}

// Leading dimensions of the matrices as stored (op() transposes them).
int64_t lda_of(const GemmShape& s) { return s.trans_a ? s.m : s.k; }
int64_t ldb_of(const GemmShape& s) { return s.trans_b ? s.k : s.n; }

void onednn_sgemm(const GemmShape& s, Operands& o) {
  const dnnl_status_t status = dnnl_sgemm(s.trans_a ? 'T' : 'N', s.trans_b ? 'T' : 'N', s.m, s.n, s.k, 1.f,
                                          o.a.data(), lda_of(s), o.b.data(), ldb_of(s), 0.f, o.c.data(), s.n);
  if (status != dnnl_success) {
    std::fprintf(stderr, "bench_gemm: error: dnnl_sgemm failed with status %d on %s\n", static_cast<int>(status),
                 s.name);
    std::exit(1);
  }
}

void openblas_sgemm(const GemmShape& s, Operands& o) {
  cblas_sgemm(CblasRowMajor, s.trans_a ? CblasTrans : CblasNoTrans, s.trans_b ? CblasTrans : CblasNoTrans,
              static_cast<int>(s.m), static_cast<int>(s.n), static_cast<int>(s.k), 1.f, o.a.data(),
              static_cast<int>(lda_of(s)), o.b.data(), static_cast<int>(ldb_of(s)), 0.f, o.c.data(),
              static_cast<int>(s.n));
}

using GemmFunction = void (*)(const GemmShape&, Operands&);

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Seconds per call over a block of `calls` calls. Both libraries keep their worker threads
// spinning for a while after a call (OpenBLAS for ~2^28 cycles by default), which on a machine with
// few cores steals the other library's cores: so first wait `settle_seconds`, then make one
// untimed call that brings the operands into cache.
double time_block(GemmFunction gemm, const GemmShape& s, Operands& o, int calls, double settle_seconds) {
  std::this_thread::sleep_for(std::chrono::duration<double>(settle_seconds));
  gemm(s, o);
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < calls; ++i) gemm(s, o);
  return seconds_since(start) / calls;
}

int calls_per_block(GemmFunction gemm, const GemmShape& s, Operands& o, const Options& options) {
  const double once = time_block(gemm, s, o, 1, options.settle_seconds);
  const double block_seconds = options.block_seconds;
  return std::clamp(static_cast<int>(block_seconds / std::max(once, 1e-9)), 1, 100000);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t h = v.size() / 2;
  return v.size() % 2 ? v[h] : 0.5 * (v[h - 1] + v[h]);
}

// max |x - y| / max |y|: the two libraries sum in different orders, so they agree to rounding.
double relative_difference(const std::vector<float>& x, const std::vector<float>& y) {
  double diff = 0.0, scale = 0.0;
  for (size_t i = 0; i < x.size(); ++i) {
    diff = std::max(diff, std::fabs(static_cast<double>(x[i]) - y[i]));
    scale = std::max(scale, std::fabs(static_cast<double>(y[i])));
  }
  return scale > 0 ? diff / scale : diff;
}

const char* isa_name(dnnl_cpu_isa_t isa) {
  switch (isa) {
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    default: return "other";
  }
}

struct Result {
  double onednn_seconds, openblas_seconds, difference;
};

}  // namespace

int main(int argc, char** argv) {
  const Options options = parse_options(argc, argv);
  omp_set_num_threads(options.threads);       // oneDNN here is built on OpenMP
  openblas_set_num_threads(options.threads);  // OpenBLAS here is the pthreads build

  const dnnl_version_t* version = dnnl_version();
  const char* coretype = std::getenv("OPENBLAS_CORETYPE");
  std::printf("bench_gemm: %d threads, %d rounds; oneDNN %d.%d.%d (isa %s); OpenBLAS core %s, OPENBLAS_CORETYPE=%s\n",
              options.threads, options.rounds, version->major, version->minor, version->patch,
              isa_name(dnnl_get_effective_cpu_isa()), openblas_get_corename(), coretype ? coretype : "(unset)");
  std::printf("%-34s %5s %6s %5s %3s | %9s %8s | %9s %8s | %7s | %8s\n", "shape", "m", "n", "k", "op", "oneDNN ms",
              "GFLOP/s", "OpenBLAS", "GFLOP/s", "ratio", "rel diff");

  std::mt19937 rng(42);
  std::vector<std::string> json_lines;
  bool all_agree = true;
  for (const GemmShape& s : kShapes) {
    Operands operands = make_operands(s, rng);
    const int onednn_calls = calls_per_block(onednn_sgemm, s, operands, options);
    const int openblas_calls = calls_per_block(openblas_sgemm, s, operands, options);
    std::vector<double> onednn_times, openblas_times;
    for (int round = 0; round < options.rounds; ++round) {
      if (round % 2 == 0) {
        onednn_times.push_back(time_block(onednn_sgemm, s, operands, onednn_calls, options.settle_seconds));
        openblas_times.push_back(time_block(openblas_sgemm, s, operands, openblas_calls, options.settle_seconds));
      } else {
        openblas_times.push_back(time_block(openblas_sgemm, s, operands, openblas_calls, options.settle_seconds));
        onednn_times.push_back(time_block(onednn_sgemm, s, operands, onednn_calls, options.settle_seconds));
      }
    }
    onednn_sgemm(s, operands);
    const std::vector<float> onednn_c = operands.c;
    openblas_sgemm(s, operands);
    const Result r{median(onednn_times), median(openblas_times), relative_difference(operands.c, onednn_c)};
    const bool agree = r.difference <= 1e-4;
    all_agree = all_agree && agree;

    const double onednn_gflops = s.flops() / r.onednn_seconds * 1e-9;
    const double openblas_gflops = s.flops() / r.openblas_seconds * 1e-9;
    const std::string op = std::string(s.trans_a ? "T" : "N") + (s.trans_b ? "T" : "N");
    std::printf("%-34s %5lld %6lld %5lld %3s | %9.3f %8.1f | %9.3f %8.1f | %6.2fx | %8.1e%s\n", s.name,
                static_cast<long long>(s.m), static_cast<long long>(s.n), static_cast<long long>(s.k), op.c_str(),
                r.onednn_seconds * 1e3, onednn_gflops, r.openblas_seconds * 1e3, openblas_gflops,
                r.openblas_seconds / r.onednn_seconds, r.difference, agree ? "" : "  DISAGREE");
    std::fflush(stdout);

    char json[512];
    std::snprintf(json, sizeof json,
                  "{\"bench\":\"gemm\",\"shape\":\"%s\",\"m\":%lld,\"n\":%lld,\"k\":%lld,\"op\":\"%s\",\"threads\":%d,"
                  "\"onednn_ms\":%.4f,\"onednn_gflops\":%.1f,\"openblas_ms\":%.4f,\"openblas_gflops\":%.1f,"
                  "\"onednn_speedup\":%.3f,\"relative_difference\":%.2e}",
                  s.name, static_cast<long long>(s.m), static_cast<long long>(s.n), static_cast<long long>(s.k),
                  op.c_str(), options.threads, r.onednn_seconds * 1e3, onednn_gflops, r.openblas_seconds * 1e3,
                  openblas_gflops, r.openblas_seconds / r.onednn_seconds, r.difference);
    json_lines.emplace_back(json);
  }
  std::printf("(ratio = OpenBLAS time / oneDNN time; rel diff = max |C_openblas - C_onednn| / max |C_onednn|)\n");
  for (const std::string& line : json_lines) std::printf("%s\n", line.c_str());
  if (!all_agree) {
    std::fprintf(stderr, "bench_gemm: error: the libraries disagree beyond rounding on some shape (see rel diff)\n");
    return 1;
  }
  return 0;
}

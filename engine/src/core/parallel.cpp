#include "chex/parallel.h"

#include <omp.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "chex/error.h"
#include "kernels/gemm.h"

namespace chex {
namespace {

int initial_threads() {
  for (const char* var : {"CHEX_NUM_THREADS", "OMP_NUM_THREADS"}) {
    if (const char* text = std::getenv(var)) {
      char* end = nullptr;
      long n = std::strtol(text, &end, 10);
      if (end != text && n > 0) return static_cast<int>(n);
    }
  }
  return omp_get_num_procs();
}

int& configured_threads() {
  static int threads = [] {
    int n = initial_threads();
    omp_set_num_threads(n);
    kernels::cpu::gemm_set_num_threads(n);
    return n;
  }();
  return threads;
}

// Applied when the library loads, so that the GEMM library and OpenMP follow CHEX_NUM_THREADS
// even before anything asks for the thread count.
[[maybe_unused]] const int initial_thread_count = configured_threads();

}  // namespace

int num_threads() { return configured_threads(); }

void set_num_threads(int threads) {
  CHEX_CHECK(threads > 0, "set_num_threads: the thread count must be positive, got ", threads);
  configured_threads() = threads;
  omp_set_num_threads(threads);
  kernels::cpu::gemm_set_num_threads(threads);
}

void prefer_passive_openmp_waiting(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") || !argv || !argv[0]) return;
  ::setenv("OMP_WAIT_POLICY", "passive", 1);  // set first: the re-executed program sees it and goes on
  ::execv("/proc/self/exe", argv);            // returns only on failure: then run as we are
}

}  // namespace chex

#pragma once
// Tests that run a case at several thread counts: the kernels take different paths above and
// below the batch size, and their results must not depend on the count beyond rounding.
#include "chex/parallel.h"

namespace chex::testing {

// Runs the enclosing scope at `threads` threads and restores the count afterwards.
struct ThreadCount {
  explicit ThreadCount(int threads) : saved(num_threads()) { set_num_threads(threads); }
  ~ThreadCount() { set_num_threads(saved); }
  ThreadCount(const ThreadCount&) = delete;
  ThreadCount& operator=(const ThreadCount&) = delete;
  int saved;
};

}  // namespace chex::testing

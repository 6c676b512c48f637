#pragma once
// CPU threading. The CPU ops use OpenMP with static schedules and fixed-order reductions, so
// results are deterministic for a given thread count.
namespace chex {

// Number of threads the CPU ops use. Default: $CHEX_NUM_THREADS, else $OMP_NUM_THREADS, else all
// cores.
int num_threads();
void set_num_threads(int threads);

}  // namespace chex

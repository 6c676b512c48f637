#pragma once
// CPU threading. The CPU ops use OpenMP with static schedules and fixed-order reductions, so
// results are deterministic for a given thread count.
namespace chex {

// Number of threads the CPU ops use. Default: $CHEX_NUM_THREADS, else $OMP_NUM_THREADS, else all
// cores.
int num_threads();
void set_num_threads(int threads);

// OpenMP threads that spin while they wait (libgomp's default) collapse when another process holds
// a core (on a shared 2-core machine a DenseNet-121 training step became over 20x slower;
// docs/performance.md has the figures). libgomp reads OMP_WAIT_POLICY only when it loads, so a
// program calls this first thing in main(): when the variable is unset, it is set to "passive" and the program re-executes itself
// once with the same arguments. A user's own OMP_WAIT_POLICY is respected.
void prefer_passive_openmp_waiting(char** argv);

}  // namespace chex

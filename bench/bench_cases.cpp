// The families bench_kernels measures, in the order it prints them.
#include "bench/bench_cases.h"

namespace chex::bench {

std::vector<CaseFactory> case_factories(int64_t batch) {
  std::vector<CaseFactory> all;
  add_batchnorm_cases(all, batch);
  add_pooling_cases(all, batch);
  add_loss_cases(all, batch);
  add_concat_cases(all, batch);
  add_relu_cases(all, batch);
  return all;
}

}  // namespace chex::bench

#pragma once
// Support for the emulated pooling tests (float32 and bf16): geometries, their description, and
// data with ties.
#include <cmath>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "kernel_test_support.h"
#include "kernels/pooling.h"

namespace chex::testing {

inline kernels::Pool2dGeometry pool_geometry(int64_t batch, int64_t channels, int64_t height, int64_t width,
                                             int64_t kernel, int64_t stride, int64_t padding) {
  using kernels::pool_output_size;
  return {batch,   channels, height, width, kernel, stride, padding, pool_output_size(height, kernel, stride, padding),
          pool_output_size(width, kernel, stride, padding)};
}

inline std::string describe_pool(const kernels::Pool2dGeometry& g, int64_t x_batch_stride) {
  std::ostringstream out;
  out << "[" << g.batch << "," << g.channels << "," << g.height << "," << g.width << "] kernel " << g.kernel
      << " stride " << g.stride << " padding " << g.padding << ", x batch stride " << x_batch_stride;
  return out.str();
}

// Values from a few levels (multiples of 1/2, exact in bf16 too), so that windows hold ties (the
// first maximum must win).
inline std::vector<float> tied_values(int64_t n, Generator& gen) {
  std::vector<float> v = random_vector(n, gen);
  for (float& x : v) x = std::round(x * 2.f) / 2.f;
  return v;
}

}  // namespace chex::testing

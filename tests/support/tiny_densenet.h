#pragma once
// A DenseNet small enough for a test: growth 4, bottleneck 2 (8 channels), 8 initial features.
#include <cstdint>
#include <utility>
#include <vector>

#include "models/densenet.h"

namespace chex::testing {

inline models::DenseNetConfig tiny_densenet_config(std::vector<int64_t> blocks, int64_t classes,
                                                   bool memory_efficient = true) {
  models::DenseNetConfig c;
  c.growth_rate = 4;
  c.block_config = std::move(blocks);
  c.num_init_features = 8;
  c.bn_size = 2;
  c.num_classes = classes;
  c.memory_efficient = memory_efficient;
  return c;
}

}  // namespace chex::testing

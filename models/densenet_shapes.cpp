#include "models/densenet_shapes.h"

#include <set>

namespace chex::models {

// Walks the structure DenseNet's constructor builds (densenet.cpp, dense_block.cpp).
DenseNetShapes densenet_layer_shapes(int64_t batch, int64_t size, const DenseNetConfig& config) {
  const int64_t growth = config.growth_rate, bottleneck = config.bn_size * growth;
  DenseNetShapes s;
  std::set<ConvShape> seen_conv;
  std::set<MapShape> seen_map;
  auto conv = [&](ConvShape c) {
    if (seen_conv.insert(c).second) s.convolutions.push_back(c);
  };
  auto bn = [&](MapShape m) {
    if (seen_map.insert(m).second) s.batch_norms.push_back(m);
  };
  int64_t channels = config.num_init_features;
  int64_t hw = (size + 2 * 3 - 7) / 2 + 1;  // conv0: 7x7/2 pad 3
  conv({batch, 3, size, size, channels, 7, 2, 3});
  bn({batch, channels, hw, hw});
  s.stem_pool_input = {batch, channels, hw, hw};
  hw = (hw + 2 - 3) / 2 + 1;  // pool0: 3x3/2 pad 1
  const size_t blocks = config.block_config.size();
  for (size_t b = 0; b < blocks; ++b) {
    for (int64_t layer = 0; layer < config.block_config[b]; ++layer) {
      const int64_t in = channels + layer * growth;
      bn({batch, in, hw, hw});
      conv({batch, in, hw, hw, bottleneck, 1, 1, 0});
      bn({batch, bottleneck, hw, hw});
      conv({batch, bottleneck, hw, hw, growth, 3, 1, 1});
    }
    channels += config.block_config[b] * growth;
    if (b + 1 < blocks) {  // transition: norm, relu, 2x2/2 average pool, then the 1x1 convolution
      bn({batch, channels, hw, hw});
      s.transition_pool_inputs.push_back({batch, channels, hw, hw});
      hw /= 2;
      conv({batch, channels, hw, hw, channels / 2, 1, 1, 0});
      channels /= 2;
    }
  }
  bn({batch, channels, hw, hw});
  s.global_pool_input = {batch, channels, hw, hw};
  return s;
}

}  // namespace chex::models

#pragma once
// The distinct layer shapes of DenseNet-121 (growth 32, blocks 6-12-24-16, bottleneck 4,
// compression 0.5) at a given batch and input size: what kernel tests and benchmarks iterate over.
#include <cstdint>
#include <set>
#include <string>
#include <tuple>
#include <vector>

namespace chex::testing {

struct ConvShape {
  int64_t batch, in_channels, height, width, out_channels, kernel, stride, padding;
  auto key() const { return std::tie(batch, in_channels, height, width, out_channels, kernel, stride, padding); }
  bool operator<(const ConvShape& o) const { return key() < o.key(); }
};

// A feature map [batch, channels, height, width] seen by batch norm / ReLU / pooling.
struct MapShape {
  int64_t batch, channels, height, width;
  auto key() const { return std::tie(batch, channels, height, width); }
  bool operator<(const MapShape& o) const { return key() < o.key(); }
};

struct DenseNetShapes {
  std::vector<ConvShape> convolutions;  // distinct, in network order of first appearance
  std::vector<MapShape> batch_norms;    // inputs of every BN (norm0, norm1/norm2 of each layer, transitions, norm5)
  MapShape stem_pool_input{};           // max pool 3x3/2 pad 1
  std::vector<MapShape> transition_pool_inputs;  // avg pool 2x2/2
  MapShape global_pool_input{};         // after norm5
};

inline DenseNetShapes densenet121_shapes(int64_t batch, int64_t size = 224) {
  const int64_t growth = 32, bottleneck = 4 * growth;
  const std::vector<int64_t> blocks{6, 12, 24, 16};
  DenseNetShapes s;
  std::set<ConvShape> seen_conv;
  std::set<MapShape> seen_map;
  auto conv = [&](ConvShape c) {
    if (seen_conv.insert(c).second) s.convolutions.push_back(c);
  };
  auto bn = [&](MapShape m) {
    if (seen_map.insert(m).second) s.batch_norms.push_back(m);
  };
  int64_t hw = (size + 2 * 3 - 7) / 2 + 1;  // stem conv 7x7/2 pad 3
  conv({batch, 3, size, size, 64, 7, 2, 3});
  bn({batch, 64, hw, hw});
  s.stem_pool_input = {batch, 64, hw, hw};
  hw = (hw + 2 - 3) / 2 + 1;
  int64_t channels = 64;
  for (size_t b = 0; b < blocks.size(); ++b) {
    for (int64_t layer = 0; layer < blocks[b]; ++layer) {
      const int64_t in = channels + layer * growth;
      bn({batch, in, hw, hw});
      conv({batch, in, hw, hw, bottleneck, 1, 1, 0});
      bn({batch, bottleneck, hw, hw});
      conv({batch, bottleneck, hw, hw, growth, 3, 1, 1});
    }
    channels += blocks[b] * growth;
    if (b + 1 < blocks.size()) {
      bn({batch, channels, hw, hw});
      conv({batch, channels, hw, hw, channels / 2, 1, 1, 0});
      s.transition_pool_inputs.push_back({batch, channels / 2, hw, hw});
      channels /= 2;
      hw /= 2;
    }
  }
  bn({batch, channels, hw, hw});
  s.global_pool_input = {batch, channels, hw, hw};
  return s;
}

}  // namespace chex::testing

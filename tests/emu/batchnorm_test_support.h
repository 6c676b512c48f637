#pragma once
// The batch-norm shapes the emulated tests run (float32 and bf16): awkward sizes and alignments, and
// DenseNet-121's, as batch-strided cases.
#include <cmath>
#include <cstdint>
#include <map>
#include <set>
#include <vector>

#include "kernel_test_support.h"
#include "kernels/batchnorm.h"
#include "models/densenet_shapes.h"

namespace chex::testing {

// The awkward sizes: not multiples of the block (256) or of the vector width (4), one value per
// channel in all (N*HW == 1 is legal only outside training), N*HW == 2, a plane of one value, and
// batch-strided slices whose offset or stride breaks 16-byte alignment; channels on either side of
// the one-pass kernels' capacity (4,096 items).
inline std::vector<StridedCase> batch_norm_awkward_cases() {
  return {
      {2, 3, 1},                 // N*HW == 2: the smallest training batch
      {1, 5, 3},                 // odd plane
      {3, 2, 257},               // not a multiple of the block or of 4
      {2, 3, 1000, 0, 0},        // float4 path
      {2, 3, 1000, 1, 0},        // misaligned base: scalar path
      {2, 3, 1000, 0, 3},        // batch stride not a multiple of 4: scalar path
      {3, 4, 196, 4, 8},         // aligned channel slice of a larger buffer: float4 path with a stride
      {5, 2, 4099, 2, 1},        // several blocks per channel, misaligned
      {4, 2, 8192, 0, 4},        // several blocks per channel, float4
      // The one-pass kernels (a block of 512 threads holding at most 8 items each per channel):
      {16, 3, 49},               // DenseNet's 7x7 at batch 16: 784 scalar items
      {16, 2, 196, 0, 0},        // 14x14 at batch 16: 784 float4 items
      {16, 2, 784, 0, 4},        // 28x28 at batch 16, a channel slice: 3,136 float4 items
      {4, 2, 1024, 1, 0},        // 4,096 scalar items: the most one block holds
      {1, 2, 4097, 0, 0},        // 4,097 scalar items: one too many, several blocks again
      {4, 2, 4096, 0, 0},        // 4,096 float4 items fused, though its scalar workspace is asked for
  };
}

// The workspace a case asks for, poisoned with NaN (a partial read before it is written shows), and
// the pointer to pass: null when it asks for none (the one-pass kernels of small channels).
struct Workspace {
  std::vector<float> storage;
  explicit Workspace(const StridedCase& k)
      : storage(kernels::emu::batch_norm_workspace_bytes({}, {k.batch, k.channels, k.spatial}) / sizeof(float),
                std::nanf("")) {}
  void* get() { return storage.empty() ? nullptr : storage.data(); }
};

// DenseNet-121's batch norms at batch 2, reduced to keep the emulated suite fast: at each spatial
// size, the fewest and the most channels and the bottleneck's 128 (the other channel counts take
// the same code paths with the same blocks per channel). Emulated threads cost about a microsecond
// each, and the full list (about 60 shapes, 35k channels) would take minutes. DenseNet always fuses
// the ReLU; the unfused forms and the eval backward are covered at the awkward sizes.
inline std::vector<StridedCase> batch_norm_densenet_cases() {
  std::map<int64_t, std::set<int64_t>> channels_by_spatial;
  for (const models::MapShape& s : models::densenet_layer_shapes(2).batch_norms)
    channels_by_spatial[s.height * s.width].insert(s.channels);
  std::vector<StridedCase> cases;
  for (const auto& [spatial, channels] : channels_by_spatial) {
    std::set<int64_t> picked{*channels.begin(), *channels.rbegin()};
    if (channels.contains(128)) picked.insert(128);
    for (int64_t c : picked) cases.push_back({2, c, spatial});
  }
  return cases;
}

}  // namespace chex::testing

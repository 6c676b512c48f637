#pragma once
// Support for the emulated sigmoid + BCE tests (float32 and bf16 logits): a case's shape and
// options, and its targets and class weights, drawn in one order so both tests draw alike.
#include <cstdint>
#include <vector>

#include "chex/random.h"

namespace chex::testing {

struct BceCase {
  int64_t batch, classes;
  bool weighted;
  float logit_scale, grad_output;
};

// A case's labels (30% positive) and per-class weights; pos()/neg() are null when unweighted.
struct BceLabels {
  std::vector<float> targets, pos_weight, neg_weight;
  bool weighted = false;
  const float* pos() const { return weighted ? pos_weight.data() : nullptr; }
  const float* neg() const { return weighted ? neg_weight.data() : nullptr; }
};

inline BceLabels bce_labels(const BceCase& k, Generator& gen) {
  BceLabels b;
  b.weighted = k.weighted;
  b.targets.resize(static_cast<size_t>(k.batch * k.classes));
  for (float& t : b.targets) t = gen.uniform() < 0.3f ? 1.f : 0.f;
  for (int64_t c = 0; c < k.classes; ++c) {
    b.pos_weight.push_back(0.5f + 2.f * gen.uniform());
    b.neg_weight.push_back(0.5f + gen.uniform());
  }
  return b;
}

}  // namespace chex::testing

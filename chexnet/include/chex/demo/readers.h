#pragma once
// Simulated readers for the demo: each marks the findings of every image as a radiologist might,
// the truth with misses (sensitivity by finding, by reader, and lower for a faint finding: a small
// nodule is missed more than a large one) and false marks (specificity by finding and by reader).
// The same seed and reader number give the same reader.
#include <array>
#include <cstdint>
#include <vector>

#include "chex/demo/phantom.h"

namespace chex::demo {

struct ReaderModel {
  std::array<float, kFindingKinds> sensitivity{};      // at middling conspicuity, by kAllFindings order
  std::array<float, kFindingKinds> false_mark_rate{};  // per image without that finding
};

// Reader `reader` (1, 2, ...) of the set made with `seed`.
ReaderModel reader_model(int reader, uint64_t seed);
// The chance this reader marks this finding: sensitivity moved by up to +-0.15 with its conspicuity.
float detection_probability(const ReaderModel& model, const Finding& finding);
// The kinds a reader marks on an image holding `truth` (each kind once, in kAllFindings order).
std::vector<FindingKind> read_image(const ReaderModel& model, const std::vector<Finding>& truth, Generator& generator);

}  // namespace chex::demo

// Simulated readers: per-finding sensitivities and false-mark rates near what reader studies of chest
// radiographs report (large, plain findings are rarely missed; infiltrates, nodules and pleural
// thickening often are), varied per reader by a skill offset and a per-finding jitter.
#include "chex/demo/readers.h"

#include <algorithm>

#include "chex/error.h"

namespace chex::demo {
namespace {

// By kAllFindings order (NIH's).
constexpr std::array<float, kFindingKinds> kSensitivity = {
    0.70f,  // Atelectasis
    0.88f,  // Cardiomegaly
    0.86f,  // Effusion
    0.60f,  // Infiltration
    0.84f,  // Mass
    0.64f,  // Nodule
    0.66f,  // Pneumonia
    0.80f,  // Pneumothorax
    0.68f,  // Consolidation
    0.74f,  // Edema
    0.78f,  // Emphysema
    0.72f,  // Fibrosis
    0.62f,  // Pleural_Thickening
    0.82f,  // Hernia
};
constexpr std::array<float, kFindingKinds> kFalseMarkRate = {
    0.030f, 0.020f, 0.020f, 0.050f, 0.010f, 0.030f, 0.030f,
    0.010f, 0.025f, 0.015f, 0.015f, 0.015f, 0.020f, 0.005f,
};

std::size_t index_of(FindingKind kind) {
  return static_cast<std::size_t>(std::find(kAllFindings.begin(), kAllFindings.end(), kind) - kAllFindings.begin());
}

}  // namespace

ReaderModel reader_model(int reader, uint64_t seed) {
  CHEX_CHECK(reader >= 1, "reader_model: readers are numbered from 1, got ", reader);
  Generator g(seed * 0x9e3779b97f4a7c15ull + static_cast<uint64_t>(reader) * 0xd1b54a32d192ed03ull + 0x5eed);
  const float skill = 0.16f * (g.uniform() - 0.5f);       // +-0.08 on every sensitivity
  const float caution = 0.6f + 1.0f * g.uniform();         // false marks x0.6 .. x1.6
  ReaderModel m;
  for (std::size_t k = 0; k < kFindingKinds; ++k) {
    m.sensitivity[k] = std::clamp(kSensitivity[k] + skill + 0.10f * (g.uniform() - 0.5f), 0.3f, 0.97f);
    m.false_mark_rate[k] = kFalseMarkRate[k] * caution;
  }
  return m;
}

float detection_probability(const ReaderModel& model, const Finding& finding) {
  const float p = model.sensitivity[index_of(finding.kind)] + 0.3f * (conspicuity(finding) - 0.5f);
  return std::clamp(p, 0.05f, 0.99f);
}

std::vector<FindingKind> read_image(const ReaderModel& model, const std::vector<Finding>& truth, Generator& g) {
  std::vector<FindingKind> marked;
  for (std::size_t k = 0; k < kFindingKinds; ++k) {
    const FindingKind kind = kAllFindings[k];
    const auto present = std::find_if(truth.begin(), truth.end(), [&](const Finding& f) { return f.kind == kind; });
    // One draw per kind whatever the truth, so a reader's other marks do not shift with it.
    const float u = g.uniform();
    const bool mark = present != truth.end() ? u < detection_probability(model, *present) : u < model.false_mark_rate[k];
    if (mark) marked.push_back(kind);
  }
  return marked;
}

}  // namespace chex::demo

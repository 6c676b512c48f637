#pragma once
// The 14 CheXNet findings, in CheXNet's order: the order of the model's outputs, of the label
// tensors and of every per-class table.
#include <array>
#include <bitset>
#include <optional>
#include <string_view>

namespace chex::data {

inline constexpr int kNumLabels = 14;
inline constexpr std::array<std::string_view, kNumLabels> kLabelNames = {
    "Atelectasis", "Cardiomegaly", "Effusion",      "Infiltration", "Mass",     "Nodule",   "Pneumonia",
    "Pneumothorax", "Consolidation", "Edema",       "Emphysema",    "Fibrosis", "Pleural_Thickening", "Hernia"};
// What the label file writes for an image with none of the 14.
inline constexpr std::string_view kNoFinding = "No Finding";

// Bit i set: the image is positive for kLabelNames[i].
using LabelSet = std::bitset<kNumLabels>;

// The index of a finding's name (exact spelling, as in the label file), or nothing.
std::optional<int> label_index(std::string_view name);

}  // namespace chex::data

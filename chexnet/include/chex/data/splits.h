#pragma once
// Train/validation/test splits, always patient-disjoint: a patient's images all fall in one split,
// so a model is never tested on a patient it saw in training.
//   random:   CheXNet's 70/10/20 of the patients, drawn with a seed (patients are shuffled, not
//             images: a split's share of images varies with the patients drawn);
//   official: test_list.txt is the test set; validation is 10% of the train_val patients.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "chex/data/nih_dataset.h"

namespace chex::data {

enum class SplitMethod { Random, Official };
// "random" or "official"; anything else is an error listing both.
SplitMethod parse_split_method(std::string_view name);

struct DatasetSplits {
  std::vector<Sample> train, val, test;  // each in label-file order
  // Rows left out of every split (official: listed in neither list), with the first names; "" if none.
  std::string notice;
};

DatasetSplits random_split(const std::vector<Sample>& samples, uint64_t seed);
// `train_val` may be empty, meaning "every image not in the test list".
DatasetSplits official_split(const std::vector<Sample>& samples, const std::vector<std::string>& test_list,
                             const std::vector<std::string>& train_val, uint64_t seed);
// The split of an opened NIH folder (official reads root/test_list.txt and, if present,
// root/train_val_list.txt).
DatasetSplits make_splits(const NihDataset& dataset, SplitMethod method, uint64_t seed);

// Throws chex::Error if a split is empty or two splits share a patient. Every function above ends
// with this check.
void check_splits(const DatasetSplits& splits);

struct SplitSummary {
  std::string name;
  int64_t images = 0;
  int64_t patients = 0;
  std::array<int64_t, kNumLabels> positives{};
};
SplitSummary summarize_split(const std::string& name, const std::vector<Sample>& samples);
// A Markdown table: one row for images, one for patients, one per label; one column per split.
std::string format_split_table(const std::vector<SplitSummary>& summaries);

}  // namespace chex::data

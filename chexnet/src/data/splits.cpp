#include "chex/data/splits.h"

#include <algorithm>
#include <filesystem>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "chex/error.h"
#include "chex/random.h"
#include "seed_streams.h"

namespace chex::data {
namespace {

enum class Part : uint8_t { Train, Val, Test, None };

// The distinct patients of `samples`, ascending, then shuffled with the split stream: the draw
// depends on the seed and the set of patients only, never on the row order.
std::vector<int64_t> shuffled_patients(const std::vector<Sample>& samples, uint64_t seed) {
  std::vector<int64_t> patients;
  patients.reserve(samples.size());
  for (const Sample& s : samples) patients.push_back(s.patient);
  std::sort(patients.begin(), patients.end());
  patients.erase(std::unique(patients.begin(), patients.end()), patients.end());
  Generator gen(detail::stream_seed(seed, detail::kSplitStream));
  for (size_t i = patients.size(); i > 1; --i) std::swap(patients[i - 1], patients[gen.below(i)]);
  return patients;
}

DatasetSplits assemble(const std::vector<Sample>& samples, const std::unordered_map<int64_t, Part>& part_of) {
  DatasetSplits splits;
  for (const Sample& s : samples) {
    const auto it = part_of.find(s.patient);
    const Part part = it == part_of.end() ? Part::None : it->second;
    if (part == Part::Train) splits.train.push_back(s);
    if (part == Part::Val) splits.val.push_back(s);
    if (part == Part::Test) splits.test.push_back(s);
  }
  return splits;
}

int64_t rounded_share(int64_t n, int64_t tenths) { return (n * tenths + 5) / 10; }

}  // namespace

SplitMethod parse_split_method(std::string_view name) {
  if (name == "random") return SplitMethod::Random;
  if (name == "official") return SplitMethod::Official;
  CHEX_FAIL("unknown split '", name, "': use 'random' (patient-disjoint 70/10/20) or 'official' (test_list.txt)");
}

DatasetSplits random_split(const std::vector<Sample>& samples, uint64_t seed) {
  const std::vector<int64_t> patients = shuffled_patients(samples, seed);
  const int64_t n = std::ssize(patients);
  const int64_t n_train = rounded_share(n, 7), n_val = rounded_share(n, 1);
  std::unordered_map<int64_t, Part> part_of;
  part_of.reserve(patients.size());
  for (int64_t i = 0; i < n; ++i)
    part_of[patients[i]] = i < n_train ? Part::Train : i < n_train + n_val ? Part::Val : Part::Test;
  DatasetSplits splits = assemble(samples, part_of);
  for (auto [split, name] : {std::pair{&splits.train, "training"}, {&splits.val, "validation"}, {&splits.test, "test"}})
    CHEX_CHECK(!split->empty(), "the ", name, " split is empty: ", n,
               " patients are too few for a patient-disjoint 70/10/20 split");
  check_splits(splits);
  return splits;
}

DatasetSplits official_split(const std::vector<Sample>& samples, const std::vector<std::string>& test_list,
                             const std::vector<std::string>& train_val, uint64_t seed) {
  const std::unordered_set<std::string> test_names(test_list.begin(), test_list.end());
  const std::unordered_set<std::string> train_val_names(train_val.begin(), train_val.end());
  std::unordered_map<int64_t, Part> part_of;
  std::vector<Sample> train_val_samples;
  int64_t unlisted = 0;
  std::vector<std::string> unlisted_examples;
  for (const Sample& s : samples) {
    Part part = Part::None;
    if (test_names.contains(s.image)) {
      part = Part::Test;
    } else if (train_val.empty() || train_val_names.contains(s.image)) {
      part = Part::Train;
      train_val_samples.push_back(s);
    } else {
      if (++unlisted <= 5) unlisted_examples.push_back(s.image);
      continue;
    }
    const auto [it, inserted] = part_of.emplace(s.patient, part);
    CHEX_CHECK(inserted || it->second == part, "patient ", s.patient, " has images in both the test list and ",
               "the train_val list (", s.image, "): the official split must be patient-disjoint");
  }
  // Validation: 10% of the train_val patients, drawn with the seed.
  const std::vector<int64_t> patients = shuffled_patients(train_val_samples, seed);
  const int64_t n_val = rounded_share(std::ssize(patients), 1);
  for (int64_t i = 0; i < n_val; ++i) part_of[patients[i]] = Part::Val;

  DatasetSplits splits = assemble(samples, part_of);
  CHEX_CHECK(!splits.test.empty(), "the test split is empty: no image of test_list.txt is in the data (",
             test_list.size(), " names listed)");
  CHEX_CHECK(!splits.train.empty() && !splits.val.empty(), "the ", splits.train.empty() ? "training" : "validation",
             " split is empty: the train_val images hold ", patients.size(),
             " patients, too few to keep 10% for validation");
  if (unlisted > 0) {
    splits.notice = std::to_string(unlisted) + " images are in neither test_list.txt nor train_val_list.txt and are left out (";
    for (size_t i = 0; i < unlisted_examples.size(); ++i) splits.notice += (i ? ", " : "") + unlisted_examples[i];
    splits.notice += unlisted > 5 ? ", ...)" : ")";
  }
  check_splits(splits);
  return splits;
}

DatasetSplits make_splits(const NihDataset& dataset, SplitMethod method, uint64_t seed) {
  if (method == SplitMethod::Random) return random_split(dataset.samples, seed);
  namespace fs = std::filesystem;
  const fs::path test_path = fs::path(dataset.root) / "test_list.txt";
  const fs::path train_val_path = fs::path(dataset.root) / "train_val_list.txt";
  CHEX_CHECK(fs::is_regular_file(test_path), "--split official needs '", test_path.string(),
             "' (the NIH test list); use --split random without it");
  const std::vector<std::string> train_val =
      fs::is_regular_file(train_val_path) ? read_image_list(train_val_path.string()) : std::vector<std::string>{};
  return official_split(dataset.samples, read_image_list(test_path.string()), train_val, seed);
}

void check_splits(const DatasetSplits& splits) {
  std::unordered_map<int64_t, int> owner;
  const std::vector<Sample>* parts[] = {&splits.train, &splits.val, &splits.test};
  const char* names[] = {"training", "validation", "test"};
  for (int p = 0; p < 3; ++p) {
    CHEX_CHECK(!parts[p]->empty(), "the ", names[p], " split is empty");
    for (const Sample& s : *parts[p]) {
      const auto [it, inserted] = owner.emplace(s.patient, p);
      CHEX_CHECK(inserted || it->second == p, "patient ", s.patient, " is in both the ", names[it->second], " and the ",
                 names[p], " split");
    }
  }
}

SplitSummary summarize_split(const std::string& name, const std::vector<Sample>& samples) {
  SplitSummary summary{name, std::ssize(samples), 0, {}};
  std::unordered_set<int64_t> patients;
  for (const Sample& s : samples) {
    patients.insert(s.patient);
    for (int i = 0; i < kNumLabels; ++i) summary.positives[i] += s.labels.test(static_cast<size_t>(i));
  }
  summary.patients = std::ssize(patients);
  return summary;
}

std::string format_split_table(const std::vector<SplitSummary>& summaries) {
  std::ostringstream out;
  out << "| |";
  for (const SplitSummary& s : summaries) out << ' ' << s.name << " |";
  out << "\n|---|";
  for (size_t i = 0; i < summaries.size(); ++i) out << "---:|";
  out << "\n| images |";
  for (const SplitSummary& s : summaries) out << ' ' << s.images << " |";
  out << "\n| patients |";
  for (const SplitSummary& s : summaries) out << ' ' << s.patients << " |";
  for (int i = 0; i < kNumLabels; ++i) {
    out << "\n| " << kLabelNames[i] << " |";
    for (const SplitSummary& s : summaries) out << ' ' << s.positives[i] << " |";
  }
  out << '\n';
  return out.str();
}

}  // namespace chex::data

// Splits (patient-disjoint, seeded), their summary table, and CheXNet's class weights.
#include <catch2/catch.hpp>

#include <set>

#include "chex/data/class_weights.h"
#include "chex/data/splits.h"
#include "chex/error.h"
#include "support/shared_data.h"

using namespace chex;
using namespace chex::data;

namespace {
std::set<int64_t> patients_of(const std::vector<Sample>& samples) {
  std::set<int64_t> patients;
  for (const Sample& s : samples) patients.insert(s.patient);
  return patients;
}

bool disjoint(const std::set<int64_t>& a, const std::set<int64_t>& b) {
  for (int64_t p : a)
    if (b.contains(p)) return false;
  return true;
}

std::vector<Sample> samples_of(const LabelTable& table) {
  std::vector<Sample> samples;
  for (const LabelRecord& r : table.records) samples.push_back({r.image, r.image, r.patient, r.labels});
  return samples;
}

std::vector<std::string> names_of(const std::vector<Sample>& samples) {
  std::vector<std::string> names;
  for (const Sample& s : samples) names.push_back(s.image);
  return names;
}

std::vector<Sample> synthetic(int patients, int images_each) {
  std::vector<Sample> samples;
  for (int p = 1; p <= patients; ++p)
    for (int i = 0; i < images_each; ++i) samples.push_back({std::to_string(p) + "_" + std::to_string(i), "", p, {}});
  return samples;
}
}  // namespace

TEST_CASE("data: random split is patient-disjoint 70/10/20 of the patients, seeded", "[data]") {
  const std::vector<Sample> samples = synthetic(100, 3);
  const DatasetSplits a = random_split(samples, 1);
  CHECK(patients_of(a.train).size() == 70);
  CHECK(patients_of(a.val).size() == 10);
  CHECK(patients_of(a.test).size() == 20);
  CHECK(a.train.size() + a.val.size() + a.test.size() == samples.size());
  CHECK(disjoint(patients_of(a.train), patients_of(a.test)));
  CHECK(names_of(random_split(samples, 1).test) == names_of(a.test));
  CHECK(names_of(random_split(samples, 2).test) != names_of(a.test));
  // The draw depends on the patients, not on the row order.
  std::vector<Sample> reversed(samples.rbegin(), samples.rend());
  CHECK(patients_of(random_split(reversed, 1).val) == patients_of(a.val));
}

TEST_CASE("data: an empty split is an error", "[data]") {
  using Catch::Matchers::Contains;
  CHECK_THROWS_WITH(random_split(synthetic(4, 2), 0), Contains("validation split is empty") && Contains("4 patients"));
  const std::vector<Sample> samples = synthetic(30, 1);
  CHECK_THROWS_WITH(official_split(samples, {"nothing.png"}, {}, 0), Contains("test split is empty"));
  CHECK_THROWS_WITH(official_split(samples, names_of(samples), {}, 0), Contains("split is empty"));
  CHECK_THROWS_WITH(check_splits(DatasetSplits{samples, {}, samples, ""}), Contains("validation split is empty"));
}

TEST_CASE("data: patient overlap between splits is caught", "[data]") {
  const std::vector<Sample> samples = synthetic(3, 2);
  DatasetSplits overlapping{{samples[0]}, {samples[2]}, {samples[1]}, ""};  // patient 1 in train and test
  CHECK_THROWS_WITH(check_splits(overlapping), Catch::Matchers::Contains("patient 1 is in both the training and the test"));
  // An official list that splits a patient is refused.
  CHECK_THROWS_WITH(official_split(synthetic(20, 2), {"1_0"}, {}, 0), Catch::Matchers::Contains("patient 1"));
}

TEST_CASE("data: splits of the real sample and their summary table", "[data]") {
  CHEX_REQUIRE_SHARED_DATA(shared);
  const NihDataset dataset = open_nih_dataset((shared / "nih-sample").string());
  const DatasetSplits official = make_splits(dataset, SplitMethod::Official, 0);
  CHECK(official.test.size() == 18);
  CHECK(official.train.size() + official.val.size() == 82);
  CHECK(official.notice.empty());
  const DatasetSplits random = make_splits(dataset, SplitMethod::Random, 0);
  // 84 patients: 59 / 8 / 17.
  CHECK(patients_of(random.train).size() == 59);
  CHECK(patients_of(random.val).size() == 8);
  CHECK(patients_of(random.test).size() == 17);

  const std::string table = format_split_table({summarize_split("train", random.train), summarize_split("val", random.val),
                                                summarize_split("test", random.test)});
  CHECK_THAT(table, Catch::Matchers::StartsWith("| | train | val | test |"));
  CHECK_THAT(table, Catch::Matchers::Contains("| patients | 59 | 8 | 17 |"));
  CHECK_THAT(table, Catch::Matchers::Contains("| Pleural_Thickening |"));
  const SplitSummary all = summarize_split("all", dataset.samples);
  CHECK(all.positives[static_cast<size_t>(*label_index("Infiltration"))] == 25);
  CHECK(all.patients == 84);
}

TEST_CASE("data: splits at scale: 112,120 images, 30,805 patients", "[data]") {
  CHEX_REQUIRE_SHARED_DATA(shared);
  const LabelTable table =
      parse_label_csv(testing::gunzip_file(shared / "nih-meta" / "Data_Entry_2017_v2020.csv.gz"), "Data_Entry_2017_v2020.csv");
  const std::vector<Sample> samples = samples_of(table);

  const DatasetSplits random = random_split(samples, 42);
  CHECK(patients_of(random.train).size() == 21564);  // round(0.7 * 30805)
  CHECK(patients_of(random.val).size() == 3081);     // round(0.1 * 30805)
  CHECK(patients_of(random.test).size() == 6160);   // the rest
  CHECK(random.train.size() + random.val.size() + random.test.size() == 112120);
  CHECK(disjoint(patients_of(random.train), patients_of(random.val)));
  CHECK(disjoint(patients_of(random.train), patients_of(random.test)));
  CHECK(disjoint(patients_of(random.val), patients_of(random.test)));
  // Determinism: the same seed, the same split; another seed, another.
  const DatasetSplits again = random_split(samples, 42);
  CHECK(names_of(again.val) == names_of(random.val));
  CHECK(names_of(again.test) == names_of(random.test));
  CHECK(names_of(random_split(samples, 43).val) != names_of(random.val));

  const DatasetSplits official =
      official_split(samples, parse_image_list(testing::gunzip_file(shared / "nih-meta" / "test_list.txt.gz")),
                     parse_image_list(testing::gunzip_file(shared / "nih-meta" / "train_val_list.txt.gz")), 42);
  CHECK(official.test.size() == 25596);
  CHECK(official.train.size() + official.val.size() == 86524);
  CHECK(patients_of(official.val).size() == 2801);  // 10% of the 28,008 train_val patients
  CHECK(patients_of(official.train).size() == 28008 - 2801);
  CHECK(official.notice.empty());
}

TEST_CASE("data: class weights by hand", "[data]") {
  // 4 images: Atelectasis positive in 1, Cardiomegaly in 3, Hernia in none.
  std::vector<Sample> samples(4);
  for (int i = 0; i < 4; ++i) samples[i].patient = i + 1;
  samples[0].labels.set(0);
  for (int i = 0; i < 3; ++i) samples[i].labels.set(1);
  const ClassWeights w = compute_class_weights(samples);
  CHECK(w.positive[0] == 0.75f);  // |N| / (|P| + |N|) = 3 / 4
  CHECK(w.negative[0] == 0.25f);  // |P| / (|P| + |N|) = 1 / 4
  CHECK(w.positive[1] == 0.25f);
  CHECK(w.negative[1] == 0.75f);
  CHECK(w.positive[13] == 1.f);
  CHECK(w.negative[13] == 0.f);
  CHECK(w.positive_tensor().shape() == Shape{kNumLabels});
  CHECK(w.negative_tensor().to_vector()[1] == 0.75f);
  CHECK_THROWS_WITH(compute_class_weights({}), Catch::Matchers::Contains("non-empty"));
}

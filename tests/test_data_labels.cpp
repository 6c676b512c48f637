// The NIH label file: both variants, quoting, the bracketed header names, and errors that name the
// file and the line.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <set>

#include "chex/data/label_file.h"
#include "chex/data/nih_dataset.h"
#include "chex/error.h"
#include "support/shared_data.h"

using namespace chex;
using namespace chex::data;
namespace fs = std::filesystem;

namespace {
const std::string kHeader =
    "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
    "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]\n";

LabelSet labels_of(std::initializer_list<const char*> names) {
  LabelSet set;
  for (const char* n : names) set.set(static_cast<size_t>(*label_index(n)));
  return set;
}

std::string error_of(const std::string& text) {
  try {
    parse_label_csv(text, "labels.csv");
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}
}  // namespace

TEST_CASE("data: the 14 labels in CheXNet's order", "[data]") {
  CHECK(kLabelNames.front() == "Atelectasis");
  CHECK(kLabelNames[7] == "Pneumothorax");
  CHECK(kLabelNames[12] == "Pleural_Thickening");
  CHECK(kLabelNames.back() == "Hernia");
  CHECK(label_index("Hernia") == 13);
  CHECK(!label_index("Infiltrate"));  // the box file's spelling is not a label
  CHECK(!label_index("No Finding"));
}

TEST_CASE("data: label file v2020 rows, multi-labels, No Finding, quotes, CRLF", "[data]") {
  const std::string text = kHeader +
                           "00000001_000.png,Cardiomegaly,0,1,57,M,PA,2682,2749,0.143,0.143\r\n"
                           "00000001_001.png,Cardiomegaly|Emphysema,1,1,58,M,PA,2894,2729,0.143,0.143\r\n"
                           "\"00000002_000.png\",No Finding,0,2,80,M,PA,2500,2048,0.171,0.171\n"
                           "00000003_000.png,\"Hernia|Pleural_Thickening\",0,3,81,F,PA,2582,2991,0.143,0.143\n\n";
  const LabelTable table = parse_label_csv(text, "labels.csv");
  REQUIRE(table.records.size() == 4);
  CHECK(table.records[0].image == "00000001_000.png");
  CHECK(table.records[0].patient == 1);
  CHECK(table.records[0].labels == labels_of({"Cardiomegaly"}));
  CHECK(table.records[1].labels == labels_of({"Cardiomegaly", "Emphysema"}));
  CHECK(table.records[2].image == "00000002_000.png");
  CHECK(table.records[2].labels.none());
  CHECK(table.records[3].labels == labels_of({"Hernia", "Pleural_Thickening"}));
  CHECK(table.records[3].line == 5);
}

TEST_CASE("data: columns are found by name, across the bracketed header names", "[data]") {
  // Reordered columns; the bracketed names still count two fields each.
  const std::string text =
      "Patient ID,OriginalImage[Width,Height],Image Index,OriginalImagePixelSpacing[x,y],Finding Labels\n"
      "7,2048,2500,00000007_000.png,0.1,0.1,Mass|Nodule\n";
  const LabelTable table = parse_label_csv(text, "labels.csv");
  REQUIRE(table.records.size() == 1);
  CHECK(table.records[0].image == "00000007_000.png");
  CHECK(table.records[0].patient == 7);
  CHECK(table.records[0].labels == labels_of({"Mass", "Nodule"}));
}

TEST_CASE("data: the 2017 variant (rows end with an extra empty field) parses as v2020 does", "[data]") {
  CHEX_REQUIRE_SHARED_DATA(shared);
  const fs::path v2020 = shared / "nih-sample" / "Data_Entry_2017_v2020.csv";
  const LabelTable expected = read_label_file(v2020.string());
  REQUIRE(expected.records.size() == 100);

  // Data_Entry_2017.csv from the sample's rows: every row ends with one more, empty, field. The
  // header comes both ways: with its own trailing comma (as the NIH file) and without.
  std::ifstream in(v2020);
  std::string header, line, rows;
  std::getline(in, header);
  while (std::getline(in, line)) rows += line + ",\n";
  for (const std::string& file : {header + ",\n" + rows, header + "\n" + rows}) {
    const LabelTable table = parse_label_csv(file, "Data_Entry_2017.csv");
    REQUIRE(table.records.size() == expected.records.size());
    for (size_t i = 0; i < table.records.size(); ++i) {
      CHECK(table.records[i].image == expected.records[i].image);
      CHECK(table.records[i].patient == expected.records[i].patient);
      CHECK(table.records[i].labels == expected.records[i].labels);
    }
  }
}

TEST_CASE("data: label file errors name the file and the line", "[data]") {
  using Catch::Matchers::Contains;
  CHECK_THAT(error_of("Image Index,Finding Labels,Follow-up #\nx.png,Mass,0\n"),
             Contains("labels.csv:1") && Contains("'Patient ID'"));
  CHECK_THAT(error_of(kHeader + "a.png,Mass,0,1,57,M,PA,1,1,0.1,0.1\nb.png,Pneumonia|Flu,0,2,57,M,PA,1,1,0.1,0.1\n"),
             Contains("labels.csv:3") && Contains("'Flu'"));
  CHECK_THAT(error_of(kHeader + "a.png,Infiltrate,0,1,57,M,PA,1,1,0.1,0.1\n"), Contains("labels.csv:2"));
  CHECK_THAT(error_of(kHeader + "a.png,Mass,0,1,57,M,PA,1,1,0.1\n"),
             Contains("labels.csv:2") && Contains("expected 11 fields") && Contains("found 10"));
  CHECK_THAT(error_of(kHeader + "a.png,Mass,0,1,57,M,PA,1,1,0.1,0.1,,\n"), Contains("labels.csv:2") && Contains("13"));
  CHECK_THAT(error_of(kHeader + "a.png,Mass,0,P01,57,M,PA,1,1,0.1,0.1\n"),
             Contains("labels.csv:2") && Contains("bad patient id 'P01'"));
  CHECK_THAT(error_of(kHeader + "a.png,Mass,0,-4,57,M,PA,1,1,0.1,0.1\n"), Contains("bad patient id"));
  CHECK_THAT(error_of(kHeader + "a.png,No Finding|Mass,0,1,57,M,PA,1,1,0.1,0.1\n"), Contains("labels.csv:2"));
  CHECK_THAT(error_of(kHeader + "a.png,Mass,0,1,57,M,PA,1,1,0.1,0.1\na.png,Mass,0,1,57,M,PA,1,1,0.1,0.1\n"),
             Contains("labels.csv:3") && Contains("line 2"));
  CHECK_THAT(error_of(kHeader + "\"a.png,Mass,0,1,57,M,PA,1,1,0.1,0.1\n"),
             Contains("labels.csv:2") && Contains("unterminated"));
  CHECK_THAT(error_of(""), Contains("empty"));
  CHECK_THROWS_WITH(read_label_file("/nonexistent/Data_Entry_2017.csv"), Contains("/nonexistent/Data_Entry_2017.csv"));
}

TEST_CASE("data: the NIH folder: images/ or images_*/images/, missing images reported", "[data]") {
  const fs::path root = fs::temp_directory_path() / "chex_test_data_layout";
  fs::remove_all(root);
  fs::create_directories(root / "images_001" / "images");
  fs::create_directories(root / "images_002" / "images");
  for (const char* p : {"images_001/images/00000001_000.png", "images_002/images/00000002_000.png"})
    std::ofstream(root / p) << "png";
  std::ofstream(root / "Data_Entry_2017.csv")
      << kHeader.substr(0, kHeader.size() - 1) << ",\n"
      << "00000001_000.png,Mass,0,1,57,M,PA,1,1,0.1,0.1,\n"
      << "00000002_000.png,No Finding,0,2,57,M,PA,1,1,0.1,0.1,\n"
      << "00000003_000.png,Hernia,0,3,57,M,PA,1,1,0.1,0.1,\n";
  const NihDataset dataset = open_nih_dataset(root.string());
  REQUIRE(dataset.samples.size() == 2);
  CHECK(dataset.samples[1].path == (root / "images_002" / "images" / "00000002_000.png").string());
  CHECK(dataset.missing_images == 1);
  CHECK_THAT(dataset.missing_notice(), Catch::Matchers::Contains("1 of 3") && Catch::Matchers::Contains("00000003_000.png"));

  // The same name in two folders is an error naming both.
  std::ofstream(root / "images_002" / "images" / "00000001_000.png") << "png";
  CHECK_THROWS_WITH(discover_images(root.string()), Catch::Matchers::Contains("present twice"));
  fs::remove_all(root);
  CHECK_THROWS_WITH(open_nih_dataset(root.string()), Catch::Matchers::Contains("does not exist"));
}

TEST_CASE("data: the real sample folder opens with its 100 images and positives", "[data]") {
  CHEX_REQUIRE_SHARED_DATA(shared);
  const NihDataset dataset = open_nih_dataset((shared / "nih-sample").string());
  CHECK(dataset.samples.size() == 100);
  CHECK(dataset.missing_images == 0);
  std::array<int, kNumLabels> positives{};
  for (const Sample& s : dataset.samples)
    for (int i = 0; i < kNumLabels; ++i) positives[i] += s.labels.test(static_cast<size_t>(i));
  // From ../shared/data/README.md.
  CHECK(positives == std::array<int, kNumLabels>{15, 9, 13, 25, 14, 11, 5, 6, 15, 4, 3, 8, 13, 11});
}

TEST_CASE("data: the full 112,120-row label file parses", "[data]") {
  CHEX_REQUIRE_SHARED_DATA(shared);
  const LabelTable table =
      parse_label_csv(testing::gunzip_file(shared / "nih-meta" / "Data_Entry_2017_v2020.csv.gz"), "Data_Entry_2017_v2020.csv");
  REQUIRE(table.records.size() == 112120);
  std::set<int64_t> patients;
  int64_t no_finding = 0, infiltration = 0;
  for (const LabelRecord& r : table.records) {
    patients.insert(r.patient);
    no_finding += r.labels.none();
    infiltration += r.labels.test(static_cast<size_t>(*label_index("Infiltration")));
  }
  CHECK(patients.size() == 30805);
  CHECK(no_finding == 60361);
  CHECK(infiltration == 19894);
}

// The demo dataset: phantoms with findings where their boxes say, the exact NIH layout, every
// finding in every split, and the same files for a seed whatever the thread count.
#include <catch2/catch.hpp>

#include <omp.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "chex/demo/demo_dataset.h"
#include "chex/demo/phantom.h"

using namespace chex::demo;
namespace fs = std::filesystem;

namespace {

fs::path fresh_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("chex_test_demo_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  return dir;
}

std::vector<std::string> lines_of(const fs::path& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::vector<std::string> fields_of(const std::string& line) {
  std::vector<std::string> fields;
  std::stringstream s(line);
  for (std::string f; std::getline(s, f, ',');) fields.push_back(f);
  if (!line.empty() && line.back() == ',') fields.emplace_back();
  return fields;
}

std::string bytes_of(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

double mean_in(const Radiograph& r, const Box& b) {
  double sum = 0;
  int n = 0;
  for (int y = static_cast<int>(b.y); y < static_cast<int>(b.y + b.h); ++y)
    for (int x = static_cast<int>(b.x); x < static_cast<int>(b.x + b.w); ++x, ++n) sum += r.pixels[static_cast<std::size_t>(y) * r.size + x];
  return sum / n;
}

}  // namespace

TEST_CASE("phantom: every finding's box lies in the image, over what the finding changed", "[demo]") {
  chex::Generator g(3);
  for (int trial = 0; trial < 3; ++trial)
    for (const FindingKind kind : kAllFindings) {
      const Anatomy anatomy = random_anatomy(g);
      View view = random_view(g);
      const Finding finding = random_finding(kind, anatomy, {}, g);
      const Radiograph with = draw_radiograph(anatomy, view, {finding}, 128);
      const Radiograph without = draw_radiograph(anatomy, view, {}, 128);  // same patient, same exposure and noise
      REQUIRE(with.boxes.size() == 1);
      const Box& b = with.boxes[0];
      INFO(label_name(kind) << " box " << b.x << ',' << b.y << ',' << b.w << ',' << b.h);
      CHECK(b.w >= 3);
      CHECK(b.h >= 3);
      CHECK(b.x >= 0);
      CHECK(b.y >= 0);
      CHECK(b.x + b.w <= 128);
      CHECK(b.y + b.h <= 128);
      // Conspicuous: the box's mean grey level moves by several levels (a pneumothorax darkens).
      CHECK(std::abs(mean_in(with, b) - mean_in(without, b)) > 6.0);
    }
}

TEST_CASE("phantom: deterministic, and different patients differ", "[demo]") {
  chex::Generator g1(9), g2(9);
  const Anatomy a1 = random_anatomy(g1), a2 = random_anatomy(g2);
  const View v1 = random_view(g1), v2 = random_view(g2);
  CHECK(draw_radiograph(a1, v1, {}, 96).pixels == draw_radiograph(a2, v2, {}, 96).pixels);
  const Anatomy a3 = random_anatomy(g1);
  CHECK(draw_radiograph(a1, v1, {}, 96).pixels != draw_radiograph(a3, v1, {}, 96).pixels);
  CHECK(box_label_name(FindingKind::Infiltration) == "Infiltrate");
  CHECK(label_name(FindingKind::Infiltration) == "Infiltration");
}

TEST_CASE("make_demo_dataset: the NIH layout, exactly", "[demo]") {
  const fs::path dir = fresh_dir("layout");
  const DemoSummary summary = make_demo_dataset({.out = dir.string(), .images = 40, .size = 64, .seed = 5,
                                                 .test_fraction = 0.2, .progress = {}});
  const auto entries = lines_of(dir / "Data_Entry_2017_v2020.csv");
  REQUIRE(entries.size() == 41);
  CHECK(entries[0] ==
        "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
        "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]");
  const std::set<std::string> known = {"Cardiomegaly", "Effusion",     "Infiltration", "Mass",
                                       "Nodule",       "Pneumothorax", "Consolidation"};
  std::map<std::string, std::string> patient_of, labels_of;
  std::map<std::string, int> patient_images;
  for (std::size_t i = 1; i < entries.size(); ++i) {
    const auto f = fields_of(entries[i]);
    INFO(entries[i]);
    REQUIRE(f.size() == 11);
    CHECK(fs::is_regular_file(dir / "images" / f[0]));
    CHECK(f[0].substr(0, 8) == std::string(8 - f[3].size(), '0') + f[3]);  // PPPPPPPP_FFF.png
    CHECK((f[5] == "M" || f[5] == "F"));
    CHECK(f[6] == "PA");
    CHECK(f[7] == "64");
    if (f[1] != "No Finding") {
      std::stringstream s(f[1]);
      for (std::string label; std::getline(s, label, '|');) CHECK(known.count(label) == 1);
    }
    patient_of[f[0]] = f[3];
    labels_of[f[0]] = f[1];
    ++patient_images[f[3]];
  }
  CHECK(std::any_of(patient_images.begin(), patient_images.end(), [](const auto& p) { return p.second > 1; }));

  // Boxes: NIH's header, six fields, inside the image, on an image that carries that label.
  const auto boxes = lines_of(dir / "BBox_List_2017.csv");
  CHECK(boxes[0] == "Image Index,Finding Label,Bbox [x,y,w,h],,,");
  CHECK(static_cast<int>(boxes.size()) == summary.boxes + 1);
  for (std::size_t i = 1; i < boxes.size(); ++i) {
    const auto f = fields_of(boxes[i]);
    INFO(boxes[i]);
    REQUIRE(f.size() == 6);
    const std::string label = f[1] == "Infiltrate" ? "Infiltration" : f[1];
    CHECK(f[1] != "Infiltration");
    CHECK(labels_of[f[0]].find(label) != std::string::npos);
    const double x = std::stod(f[2]), y = std::stod(f[3]), w = std::stod(f[4]), h = std::stod(f[5]);
    CHECK((x >= 0 && y >= 0 && w > 0 && h > 0 && x + w <= 64 && y + h <= 64));
  }

  // Split lists: a partition of the images, patient-disjoint, every finding positive in both.
  const auto train_val = lines_of(dir / "train_val_list.txt"), test = lines_of(dir / "test_list.txt");
  CHECK(train_val.size() + test.size() == 40);
  std::set<std::string> train_patients;
  for (const auto& name : train_val) train_patients.insert(patient_of.at(name));
  for (const auto& name : test) CHECK(train_patients.count(patient_of.at(name)) == 0);
  for (int k = 0; k < kFindingKinds; ++k) {
    INFO(label_name(kAllFindings[static_cast<std::size_t>(k)]));
    CHECK(summary.train_val.positives[static_cast<std::size_t>(k)] > 0);
    CHECK(summary.test.positives[static_cast<std::size_t>(k)] > 0);
  }
  CHECK(summary.test.images == static_cast<int>(test.size()));

  // The images are 8-bit grey PNGs of the stated size (signature and IHDR chunk).
  const std::string png = bytes_of(dir / "images" / train_val[0]);
  REQUIRE(png.size() > 33);
  CHECK(png.substr(0, 8) == "\x89PNG\r\n\x1a\n");
  CHECK(png.substr(12, 4) == "IHDR");
  const auto u32 = [&](std::size_t at) {
    return (uint32_t(uint8_t(png[at])) << 24) | (uint32_t(uint8_t(png[at + 1])) << 16) |
           (uint32_t(uint8_t(png[at + 2])) << 8) | uint32_t(uint8_t(png[at + 3]));
  };
  CHECK(u32(16) == 64);
  CHECK(u32(20) == 64);
  CHECK(int(png[24]) == 8);  // bit depth
  CHECK(int(png[25]) == 0);  // colour type: grey
  fs::remove_all(dir);
}

TEST_CASE("make_demo_dataset: the same files for a seed, whatever the thread count", "[demo]") {
  const fs::path a = fresh_dir("seed_a"), b = fresh_dir("seed_b"), c = fresh_dir("seed_c");
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  make_demo_dataset({.out = a.string(), .images = 24, .size = 64, .seed = 11, .test_fraction = 0.2, .progress = {}});
  omp_set_num_threads(3);
  make_demo_dataset({.out = b.string(), .images = 24, .size = 64, .seed = 11, .test_fraction = 0.2, .progress = {}});
  make_demo_dataset({.out = c.string(), .images = 24, .size = 64, .seed = 12, .test_fraction = 0.2, .progress = {}});
  omp_set_num_threads(threads);
  int compared = 0;
  for (const auto& entry : fs::recursive_directory_iterator(a)) {
    if (!entry.is_regular_file()) continue;
    const fs::path relative = fs::relative(entry.path(), a);
    INFO(relative.string());
    CHECK(bytes_of(entry.path()) == bytes_of(b / relative));
    ++compared;
  }
  CHECK(compared == 24 + 4);
  CHECK(bytes_of(a / "Data_Entry_2017_v2020.csv") != bytes_of(c / "Data_Entry_2017_v2020.csv"));
  for (const auto& d : {a, b, c}) fs::remove_all(d);
}

TEST_CASE("make_demo_dataset: rejects bad options with a message", "[demo]") {
  using Catch::Matchers::Contains;
  CHECK_THROWS_WITH(make_demo_dataset({.out = "", .images = 40, .size = 64, .seed = 1, .test_fraction = 0.2, .progress = {}}),
                    Contains("no output folder"));
  CHECK_THROWS_WITH(make_demo_dataset({.out = "x", .images = 5, .size = 64, .seed = 1, .test_fraction = 0.2, .progress = {}}),
                    Contains("at least 14 images"));
}

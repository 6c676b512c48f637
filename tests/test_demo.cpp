// The demo dataset: phantoms with all 14 findings where their boxes say, the exact NIH layout, every
// finding in every split, simulated readers with the rates their model states, and the same files
// for a seed whatever the thread count.
#include <catch2/catch.hpp>

#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "chex/demo/demo_dataset.h"
#include "chex/demo/phantom.h"
#include "chex/demo/readers.h"

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

double mean_abs_difference_in(const Radiograph& a, const Radiograph& b, const Box& box) {
  double sum = 0;
  int n = 0;
  for (int y = static_cast<int>(box.y); y < static_cast<int>(box.y + box.h); ++y)
    for (int x = static_cast<int>(box.x); x < static_cast<int>(box.x + box.w); ++x, ++n) {
      const std::size_t i = static_cast<std::size_t>(y) * a.size + x;
      sum += std::abs(int(a.pixels[i]) - int(b.pixels[i]));
    }
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
      // Conspicuous: the box's grey levels move by several levels on average (either way: a
      // pneumothorax darkens, a hernia has gas above its fluid).
      CHECK(mean_abs_difference_in(with, without, b) > 6.0);
      // And nothing much changes outside it: of all the grey levels the finding moved, at most 3%
      // lie more than 2 pixels (the detector's blur and the soft edges) outside its box.
      double inside = 0, outside = 0;
      for (int y = 0; y < 128; ++y)
        for (int x = 0; x < 128; ++x) {
          const std::size_t i = static_cast<std::size_t>(y) * 128 + x;
          const double d = std::abs(int(with.pixels[i]) - int(without.pixels[i]));
          const bool near_box = x >= b.x - 2 && x < b.x + b.w + 2 && y >= b.y - 2 && y < b.y + b.h + 2;
          (near_box ? inside : outside) += d;
        }
      CHECK(outside <= 0.03 * (inside + outside));
    }
}

TEST_CASE("phantom: each finding is drawn the same from its seed, and its shape follows the seed", "[demo]") {
  chex::Generator g(21);
  const Anatomy anatomy = random_anatomy(g);
  const View view = random_view(g);
  for (const FindingKind kind : kAllFindings) {
    INFO(label_name(kind));
    chex::Generator a(100 + static_cast<int>(kind)), b(100 + static_cast<int>(kind));
    const Finding fa = random_finding(kind, anatomy, {}, a), fb = random_finding(kind, anatomy, {}, b);
    const Radiograph ra = draw_radiograph(anatomy, view, {fa}, 96), rb = draw_radiograph(anatomy, view, {fb}, 96);
    CHECK(ra.pixels == rb.pixels);
    CHECK(ra.boxes[0].x == rb.boxes[0].x);
    CHECK(ra.boxes[0].w == rb.boxes[0].w);
    // Another draw of the same kind looks different (size, side, place or shape).
    const Finding other = random_finding(kind, anatomy, {}, a);
    CHECK(draw_radiograph(anatomy, view, {other}, 96).pixels != ra.pixels);
    CHECK(conspicuity(fa) >= 0.0f);
    CHECK(conspicuity(fa) <= 1.0f);
  }
}

TEST_CASE("readers: misses and false marks at the rates the reader model states", "[demo]") {
  // Many images of random findings: each reader's count of misses and of false marks against the
  // sum of the model's probabilities, within 4 standard deviations of that Poisson-binomial count.
  chex::Generator g(5);
  const Anatomy anatomy = random_anatomy(g);
  std::vector<std::vector<Finding>> images;
  for (int i = 0; i < 3000; ++i) {
    std::vector<Finding> truth;
    for (const FindingKind kind : kAllFindings)
      if (g.uniform() < 0.15f) truth.push_back(random_finding(kind, anatomy, truth, g));
    images.push_back(truth);
  }
  for (int r = 1; r <= 4; ++r) {
    const ReaderModel model = reader_model(r, 17);
    double misses = 0, expected_misses = 0, miss_variance = 0, marks = 0, expected_marks = 0, mark_variance = 0;
    double faint_misses = 0, faint = 0, plain_misses = 0, plain = 0;
    chex::Generator reading(1000 + r);
    for (const auto& truth : images) {
      const std::vector<FindingKind> marked = read_image(model, truth, reading);
      for (std::size_t k = 0; k < kFindingKinds; ++k) {
        const FindingKind kind = kAllFindings[k];
        const bool said = std::find(marked.begin(), marked.end(), kind) != marked.end();
        const auto it = std::find_if(truth.begin(), truth.end(), [&](const Finding& f) { return f.kind == kind; });
        if (it != truth.end()) {
          const double p = detection_probability(model, *it);
          misses += !said, expected_misses += 1 - p, miss_variance += p * (1 - p);
          if (conspicuity(*it) < 0.3f) faint += 1, faint_misses += !said;
          if (conspicuity(*it) > 0.7f) plain += 1, plain_misses += !said;
        } else {
          const double q = model.false_mark_rate[k];
          marks += said, expected_marks += q, mark_variance += q * (1 - q);
        }
      }
    }
    INFO("reader " << r << ": misses " << misses << " expected " << expected_misses << ", false marks " << marks
                   << " expected " << expected_marks);
    CHECK(std::abs(misses - expected_misses) <= 4 * std::sqrt(miss_variance));
    CHECK(std::abs(marks - expected_marks) <= 4 * std::sqrt(mark_variance));
    CHECK(faint_misses / faint > plain_misses / plain);  // faint findings are missed more
  }
  // Readers differ: their sensitivities are not all the same.
  std::set<float> nodule_sensitivities;
  for (int r = 1; r <= 4; ++r) nodule_sensitivities.insert(reader_model(r, 17).sensitivity[5]);
  CHECK(nodule_sensitivities.size() == 4);
  CHECK(reader_model(2, 17).sensitivity == reader_model(2, 17).sensitivity);
  CHECK(reader_model(2, 17).sensitivity != reader_model(2, 18).sensitivity);
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
                                                 .test_fraction = 0.2, .readers = 0, .progress = {}});
  CHECK(!fs::exists(dir / "readers"));
  const auto entries = lines_of(dir / "Data_Entry_2017_v2020.csv");
  REQUIRE(entries.size() == 41);
  CHECK(entries[0] ==
        "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
        "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]");
  std::set<std::string> known;
  for (const FindingKind kind : kAllFindings) known.insert(std::string(label_name(kind)));
  REQUIRE(known.size() == 14);
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
  make_demo_dataset({.out = a.string(), .images = 30, .size = 64, .seed = 11, .test_fraction = 0.2, .readers = 2, .progress = {}});
  omp_set_num_threads(3);
  make_demo_dataset({.out = b.string(), .images = 30, .size = 64, .seed = 11, .test_fraction = 0.2, .readers = 2, .progress = {}});
  make_demo_dataset({.out = c.string(), .images = 30, .size = 64, .seed = 12, .test_fraction = 0.2, .readers = 2, .progress = {}});
  omp_set_num_threads(threads);
  int compared = 0;
  for (const auto& entry : fs::recursive_directory_iterator(a)) {
    if (!entry.is_regular_file()) continue;
    const fs::path relative = fs::relative(entry.path(), a);
    INFO(relative.string());
    CHECK(bytes_of(entry.path()) == bytes_of(b / relative));
    ++compared;
  }
  CHECK(compared == 30 + 4 + 2);
  CHECK(bytes_of(a / "Data_Entry_2017_v2020.csv") != bytes_of(c / "Data_Entry_2017_v2020.csv"));
  CHECK(bytes_of(a / "readers" / "reader_1.csv") != bytes_of(c / "readers" / "reader_1.csv"));
  CHECK(bytes_of(a / "readers" / "reader_1.csv") != bytes_of(a / "readers" / "reader_2.csv"));
  for (const auto& d : {a, b, c}) fs::remove_all(d);
}

TEST_CASE("make_demo_dataset: reader files cover every image, NIH names, at the model's rates", "[demo]") {
  const fs::path dir = fresh_dir("readers");
  const DemoSummary summary = make_demo_dataset({.out = dir.string(), .images = 300, .size = 64, .seed = 8,
                                                 .test_fraction = 0.2, .readers = 4, .progress = {}});
  REQUIRE(summary.readers.size() == 4);
  CHECK(!fs::exists(dir / "readers" / "reader_5.csv"));
  std::map<std::string, std::set<std::string>> truth;
  for (const auto& line : lines_of(dir / "Data_Entry_2017_v2020.csv")) {
    const auto f = fields_of(line);
    std::stringstream s(f[1]);
    for (std::string label; std::getline(s, label, '|');)
      if (label != "No Finding") truth[f[0]].insert(label);
    truth[f[0]];
  }
  truth.erase("Image Index");
  std::set<std::string> known;
  for (const FindingKind kind : kAllFindings) known.insert(std::string(label_name(kind)));
  for (int r = 1; r <= 4; ++r) {
    INFO("reader_" << r);
    const auto lines = lines_of(dir / "readers" / ("reader_" + std::to_string(r) + ".csv"));
    REQUIRE(lines.size() == truth.size() + 1);
    CHECK(lines[0] == "Image Index,Finding Labels");
    int positives = 0, misses = 0, negatives = 0, false_marks = 0;
    std::set<std::string> images;
    for (std::size_t i = 1; i < lines.size(); ++i) {
      const auto f = fields_of(lines[i]);
      INFO(lines[i]);
      REQUIRE(f.size() == 2);
      REQUIRE(truth.count(f[0]) == 1);
      images.insert(f[0]);
      std::set<std::string> marked;
      if (f[1] != "No Finding") {
        std::stringstream s(f[1]);
        std::string previous;
        for (std::string label; std::getline(s, label, '|');) {
          CHECK(known.count(label) == 1);
          CHECK(label > previous);  // alphabetical, each once, as NIH joins them
          previous = label;
          marked.insert(label);
        }
        CHECK(!marked.empty());
      }
      for (const auto& name : known) {
        const bool present = truth[f[0]].count(name) > 0, said = marked.count(name) > 0;
        positives += present, misses += present && !said, negatives += !present, false_marks += !present && said;
      }
    }
    CHECK(images.size() == truth.size());
    const ReaderSummary& t = summary.readers[static_cast<std::size_t>(r - 1)];
    CHECK(t.positives == positives);
    CHECK(t.misses == misses);
    CHECK(t.negatives == negatives);
    CHECK(t.false_marks == false_marks);
    // The counts against the model's expectation: binomial tolerance (4 standard deviations, the
    // variance of a Poisson-binomial count being at most its mean).
    CHECK(std::abs(misses - t.expected_misses) <= 4 * std::sqrt(t.expected_misses) + 1);
    CHECK(std::abs(false_marks - t.expected_false_marks) <= 4 * std::sqrt(t.expected_false_marks) + 1);
    // Plausible readers: most findings marked, few false marks, not perfect.
    CHECK(misses > 0);
    CHECK(double(misses) / positives < 0.45);
    CHECK(double(false_marks) / negatives < 0.06);
  }
  fs::remove_all(dir);
}

TEST_CASE("make_demo_dataset: rejects bad options with a message", "[demo]") {
  using Catch::Matchers::Contains;
  CHECK_THROWS_WITH(make_demo_dataset({.out = "", .images = 40, .size = 64, .seed = 1, .test_fraction = 0.2, .readers = 0, .progress = {}}),
                    Contains("no output folder"));
  CHECK_THROWS_WITH(make_demo_dataset({.out = "x", .images = 5, .size = 64, .seed = 1, .test_fraction = 0.2, .readers = 0, .progress = {}}),
                    Contains("at least 20 images"));
}

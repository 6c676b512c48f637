// The reader study (chex eval --readers): reader files, the majority of the other readers with its
// tie rule, F1 per reader and for the model, and the paired bootstrap; checked against a case
// computed by hand. Also the plotted curves (ROC, precision-recall) against the metrics.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "chex/metrics/auroc.h"
#include "chex/metrics/curves.h"
#include "chex/metrics/reader_study.h"

using namespace chex::metrics;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

std::string write_temp(const std::string& name, const std::string& text) {
  const fs::path path = fs::temp_directory_path() / ("chex_test_readers_" + std::to_string(::getpid()) + "_" + name);
  std::ofstream(path) << text;
  return path.string();
}

// A reader who marked `finding` on the images where marks[i] is 1.
ReaderMarks reader(const std::string& name, const std::vector<std::string>& images, const std::vector<int>& marks,
                   const std::string& finding) {
  ReaderMarks r;
  r.name = name;
  for (std::size_t i = 0; i < images.size(); ++i)
    r.findings[images[i]] = marks[i] ? std::set<std::string>{finding} : std::set<std::string>{};
  return r;
}

const ReaderStudyClass& row(const ReaderStudy& s, const std::string& name) {
  for (const auto& c : s.classes)
    if (c.name == name) return c;
  FAIL("no row " << name);
  throw;
}

}  // namespace

TEST_CASE("reader file: the label file's convention, extra columns ignored, errors name file and line", "[metrics][readers]") {
  const std::string good = write_temp("good.csv",
                                      "Reader,Image Index,Finding Labels\n"
                                      "r1,a.png,Effusion|Pneumonia\n"
                                      "r1,b.png,No Finding\n");
  const ReaderMarks marks = read_reader_file(good);
  CHECK(marks.findings.size() == 2);
  CHECK(marks.findings.at("a.png") == std::set<std::string>{"Effusion", "Pneumonia"});
  CHECK(marks.findings.at("b.png").empty());

  const std::string unknown = write_temp("unknown.csv", "Image Index,Finding Labels\na.png,Effusion\nb.png,Pneumonai\n");
  CHECK_THROWS_WITH(read_reader_file(unknown), Contains(unknown + ":3") && Contains("'Pneumonai'"));
  const std::string no_column = write_temp("nocolumn.csv", "Image Index,Labels\na.png,Effusion\n");
  CHECK_THROWS_WITH(read_reader_file(no_column), Contains(no_column + ":1") && Contains("'Finding Labels'"));
  const std::string twice = write_temp("twice.csv", "Image Index,Finding Labels\na.png,Mass\na.png,Mass\n");
  CHECK_THROWS_WITH(read_reader_file(twice), Contains(twice + ":3") && Contains("listed twice"));
  for (const auto& f : {good, unknown, no_column, twice}) fs::remove(f);
}

TEST_CASE("reader study: four readers and the model, F1 against the majority of the others, by hand", "[metrics][readers]") {
  // Pneumonia marks on five images A..E:
  //        A  B  C  D  E
  //   R1   1  1  0  0  0
  //   R2   1  0  1  0  0
  //   R3   1  0  1  0  0
  //   R4   0  1  1  1  0
  // Each reference is the strict majority (2 of 3) of the other three:
  //   ref1 (R2,R3,R4) = A C      R1: TP A, FP B, FN C         F1 = 2/(2+1+1) = 0.5
  //   ref2 (R1,R3,R4) = A B C    R2: TP A C, FN B             F1 = 4/(4+0+1) = 0.8
  //   ref3 (R1,R2,R4) = A B C    R3: as R2                    F1 = 0.8
  //   ref4 (R1,R2,R3) = A C      R4: TP C, FP B D, FN A       F1 = 2/(2+2+1) = 0.4
  //   readers' mean = (0.5 + 0.8 + 0.8 + 0.4) / 4 = 0.625
  // The model scores A 0.9, B 0.2, C 0.6, D 0.7, E 0.1; at threshold 0.5 it calls A C D:
  //   vs ref1: TP A C, FP D = 4/5 = 0.8;  vs ref2: TP A C, FP D, FN B = 4/6;  vs ref3: 4/6;  vs ref4: 0.8
  //   model mean = (0.8 + 2/3 + 2/3 + 0.8) / 4 = 11/15;  difference = 11/15 - 5/8 = 13/120
  const std::vector<std::string> images = {"A", "B", "C", "D", "E"};
  ReaderStudyInputs in;
  in.readers = {reader("R1", images, {1, 1, 0, 0, 0}, "Pneumonia"), reader("R2", images, {1, 0, 1, 0, 0}, "Pneumonia"),
                reader("R3", images, {1, 0, 1, 0, 0}, "Pneumonia"), reader("R4", images, {0, 1, 1, 1, 0}, "Pneumonia")};
  Predictions model;
  model.classes = {"Pneumonia"};
  model.images = images;
  model.scores = {{0.9}, {0.2}, {0.6}, {0.7}, {0.1}};
  in.model = &model;
  in.thresholds = {0.5};
  in.threshold_source = "0.5";
  in.bootstrap.resamples = 0;
  const ReaderStudy study = run_reader_study(in);
  CHECK(study.images == 5);
  const ReaderStudyClass& p = row(study, "Pneumonia");
  REQUIRE(p.reader_f1.size() == 4);
  CHECK(*p.reader_f1[0] == Approx(0.5).margin(1e-12));
  CHECK(*p.reader_f1[1] == Approx(0.8).margin(1e-12));
  CHECK(*p.reader_f1[2] == Approx(0.8).margin(1e-12));
  CHECK(*p.reader_f1[3] == Approx(0.4).margin(1e-12));
  CHECK(*p.readers_mean == Approx(0.625).margin(1e-12));
  REQUIRE(p.model_f1.size() == 4);
  CHECK(*p.model_f1[0] == Approx(0.8).margin(1e-12));
  CHECK(*p.model_f1[1] == Approx(2.0 / 3).margin(1e-12));
  CHECK(*p.model_f1[2] == Approx(2.0 / 3).margin(1e-12));
  CHECK(*p.model_f1[3] == Approx(0.8).margin(1e-12));
  CHECK(*p.model_mean == Approx(11.0 / 15).margin(1e-12));
  CHECK(*p.difference == Approx(13.0 / 120).margin(1e-12));
  // No one marked Effusion and the model has no column for it: undefined, and said so.
  const ReaderStudyClass& e = row(study, "Effusion");
  CHECK_FALSE(e.readers_mean);
  CHECK_FALSE(e.model_mean);
  CHECK(e.model_f1.empty());
  REQUIRE_FALSE(study.notices.empty());

  SECTION("the Markdown and JSON carry the same numbers") {
    const nlohmann::json j = nlohmann::json::parse(reader_study_json(study));
    CHECK(j["readers"] == nlohmann::json({"R1", "R2", "R3", "R4"}));
    CHECK(j["classes"]["Pneumonia"]["reader_f1"][3].get<double>() == Approx(0.4).margin(1e-12));
    CHECK(j["classes"]["Pneumonia"]["difference"].get<double>() == Approx(13.0 / 120).margin(1e-12));
    CHECK(j["classes"]["Effusion"]["model_mean"].is_null());
    const std::string markdown = reader_study_markdown(study);
    CHECK_THAT(markdown, Contains("| Pneumonia | 0.500 | 0.800 | 0.800 | 0.400 | 0.625 | 0.733 | 0.108 |"));
  }
  SECTION("the paired bootstrap: deterministic for a seed, intervals around resampled values") {
    in.bootstrap = {.resamples = 2000, .seed = 7};
    const ReaderStudy a = run_reader_study(in), b = run_reader_study(in);
    const ReaderStudyClass& pa = row(a, "Pneumonia");
    REQUIRE(pa.difference_ci);
    CHECK(pa.difference_ci->lower == row(b, "Pneumonia").difference_ci->lower);
    CHECK(pa.difference_ci->upper == row(b, "Pneumonia").difference_ci->upper);
    CHECK(pa.difference_ci->lower <= pa.difference_ci->upper);
    // F1 lies in [0, 1], so the difference of two means in [-1, 1].
    CHECK(pa.difference_ci->lower >= -1.0);
    CHECK(pa.difference_ci->upper <= 1.0);
    CHECK(pa.readers_ci->lower >= 0.0);
    CHECK(pa.model_ci->upper <= 1.0);
    CHECK_FALSE(row(a, "Effusion").difference_ci);
  }
  SECTION("only the images every reader covers count") {
    in.readers[3].findings.erase("E");
    CHECK(run_reader_study(in).images == 4);
  }
}

TEST_CASE("reader study: with three readers a tie among the other two counts as absent", "[metrics][readers]") {
  // Effusion on X and Y:   R1 marks X Y,  R2 marks X,  R3 marks nothing.
  //   ref1 = majority of (R2, R3): X has 1 of 2, a tie -> absent; Y 0 -> absent. R1: FP X Y   F1 = 0
  //   (were a tie present, R1 would score TP X, FP Y: F1 = 2/3)
  //   ref2 = (R1, R3): X, Y ties -> absent.                                    R2: FP X     F1 = 0
  //   ref3 = (R1, R2): X 2 of 2 -> present; Y a tie -> absent.                 R3: FN X     F1 = 0
  const std::vector<std::string> images = {"X", "Y"};
  ReaderStudyInputs in;
  in.readers = {reader("R1", images, {1, 1}, "Effusion"), reader("R2", images, {1, 0}, "Effusion"),
                reader("R3", images, {0, 0}, "Effusion")};
  Predictions model;
  model.classes = {"Effusion"};
  model.images = images;
  model.scores = {{0.9}, {0.1}};  // calls X: vs ref1 FP (0), vs ref2 FP (0), vs ref3 TP (1)
  in.model = &model;
  in.thresholds = {0.5};
  in.bootstrap.resamples = 0;
  const ReaderStudy study = run_reader_study(in);
  const ReaderStudyClass& e = row(study, "Effusion");
  CHECK(*e.reader_f1[0] == 0.0);
  CHECK(*e.reader_f1[1] == 0.0);
  CHECK(*e.reader_f1[2] == 0.0);
  CHECK(*e.model_f1[0] == 0.0);
  CHECK(*e.model_f1[1] == 0.0);
  CHECK(*e.model_f1[2] == 1.0);
  CHECK(*e.model_mean == Approx(1.0 / 3).margin(1e-12));
}

TEST_CASE("reader study: fewer than two readers, or no common image, is an error", "[metrics][readers]") {
  Predictions model;
  model.classes = {"Mass"};
  model.images = {"a"};
  model.scores = {{0.5}};
  ReaderStudyInputs in;
  in.model = &model;
  in.thresholds = {0.5};
  in.readers = {reader("R1", {"a"}, {1}, "Mass")};
  CHECK_THROWS_WITH(run_reader_study(in), Contains("at least two readers"));
  in.readers = {reader("R1", {"b"}, {1}, "Mass"), reader("R2", {"b"}, {1}, "Mass")};
  CHECK_THROWS_WITH(run_reader_study(in), Contains("no image is covered"));
}

TEST_CASE("curves: the ROC trapezoids' area is the AUROC, precision-recall ends at recall 1", "[metrics][curves]") {
  std::mt19937 rng(3);
  std::vector<double> scores;
  std::vector<uint8_t> truth;
  for (int i = 0; i < 300; ++i) {
    truth.push_back(rng() % 4 == 0);
    scores.push_back(static_cast<double>(rng() % 20) / 20 + 0.1 * truth.back());  // many ties
  }
  const auto roc = roc_curve(scores, truth);
  double area = 0;
  for (std::size_t i = 1; i < roc.size(); ++i) area += (roc[i].x - roc[i - 1].x) * (roc[i].y + roc[i - 1].y) / 2;
  CHECK(area == Approx(*auroc(scores, truth)).margin(1e-12));
  CHECK(roc.front().x == 0);
  CHECK(roc.back().x == 1);
  CHECK(roc.back().y == 1);
  const auto pr = precision_recall_curve(scores, truth);
  CHECK(pr.back().x == 1);
  // At the lowest threshold every image is called: precision is the prevalence.
  CHECK(pr.back().y == Approx(static_cast<double>(std::count(truth.begin(), truth.end(), 1)) / 300).margin(1e-15));
  CHECK(roc_curve(scores, std::vector<uint8_t>(300, 0)).empty());
  const auto bins = reliability(scores, truth, 10);
  std::size_t counted = 0;
  for (const auto& b : bins) counted += b.count;
  CHECK(counted == 300);
}

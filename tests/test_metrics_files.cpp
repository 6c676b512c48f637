// Evaluation inputs and outputs: the predictions CSV, the NIH label file, image lists, thresholds,
// the Markdown and JSON reports; errors that name the file and line.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "chex/metrics/evaluation_inputs.h"
#include "chex/metrics/nih_label_file.h"
#include "chex/metrics/report.h"

using namespace chex::metrics;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {
std::string write_temp(const std::string& name, const std::string& text) {
  const fs::path path = fs::temp_directory_path() / ("chex_test_metrics_" + std::to_string(::getpid()) + "_" + name);
  std::ofstream(path) << text;
  return path.string();
}
const char* kHeader =
    "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
    "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]\n";
}  // namespace

TEST_CASE("NIH label file: bracketed header, '|'-joined labels, No Finding, 2017's extra field", "[metrics][files]") {
  const std::string path = write_temp("labels.csv", std::string(kHeader) +
                                                        "a.png,Cardiomegaly|Effusion,0,1,57,M,PA,2682,2749,0.143,0.143\n"
                                                        "b.png,No Finding,0,2,80,M,PA,2500,2048,0.171,0.171,\n");
  const auto labels = read_nih_labels(path);
  REQUIRE(labels.size() == 2);
  CHECK(labels.at("a.png") == std::set<std::string>{"Cardiomegaly", "Effusion"});
  CHECK(labels.at("b.png").empty());
  const std::string bad = write_temp("bad.csv", std::string(kHeader) + "a.png,No Finding,0,1,57,M,PA,1,1,1,1\n"
                                                                        "c.png,Cardiomegally,0,3,40,F,PA,1,1,1,1\n");
  CHECK_THROWS_WITH(read_nih_labels(bad), Contains(":3: 'Cardiomegally' is not one of the 14"));
  const std::string no_column = write_temp("nocol.csv", "Image Index,Labels\na.png,Mass\n");
  CHECK_THROWS_WITH(read_nih_labels(no_column), Contains(":1: no 'Finding Labels' column"));
}

TEST_CASE("predictions file: header, values and errors naming the line", "[metrics][files]") {
  const std::string path = write_temp("preds.csv", "Image Index,prob_Mass,prob_Nodule\na.png,0.25,0.5\nb.png,1e-3,0\n");
  const Predictions p = read_predictions(path);
  CHECK(p.classes == std::vector<std::string>{"Mass", "Nodule"});
  CHECK(p.images == std::vector<std::string>{"a.png", "b.png"});
  CHECK(p.scores[1][0] == 1e-3);
  CHECK_THROWS_WITH(read_predictions(write_temp("p1.csv", "Image,prob_Mass\na.png,0.1\n")),
                    Contains(":1: the first column must be 'Image Index'"));
  CHECK_THROWS_WITH(read_predictions(write_temp("p2.csv", "Image Index,Mass\na.png,0.1\n")),
                    Contains("must be prob_LABEL"));
  CHECK_THROWS_WITH(read_predictions(write_temp("p3.csv", "Image Index,prob_Mass\na.png,0.1\nb.png,nan\n")),
                    Contains(":3: 'nan' in column prob_Mass is not a finite number"));
  CHECK_THROWS_WITH(read_predictions(write_temp("p4.csv", "Image Index,prob_Mass\na.png,0.1,0.2\n")),
                    Contains(":2: 3 fields, the header has 2"));
}

TEST_CASE("joining predictions and labels", "[metrics][files]") {
  EvaluationInputs in;
  in.predictions_path = "preds.csv";
  in.labels_path = "labels.csv";
  in.predictions = {{"Mass", "Nodule"}, {"a.png", "b.png", "c.png"}, {{0.9, 0.1}, {0.2, 0.8}, {0.3, 0.3}}};
  in.labels = {{"a.png", {"Mass"}}, {"b.png", {}}, {"c.png", {"Nodule"}}, {"d.png", {}}};
  const ScoreTable t = make_score_table(in);
  CHECK(t.images() == 3);
  CHECK(t.positives(0) == 1);
  in.images = std::set<std::string>{"a.png", "c.png"};
  in.images_path = "test_list.txt";
  CHECK(make_score_table(in).images() == 2);
  in.images = std::set<std::string>{"z.png"};
  CHECK_THROWS_WITH(make_score_table(in), Contains("is listed in 'test_list.txt'"));
  in.images.reset();
  in.labels.erase("b.png");
  CHECK_THROWS_WITH(make_score_table(in), Contains("preds.csv:3: image 'b.png' has predictions but no row"));
  in.predictions.classes[1] = "Nodules";
  CHECK_THROWS_WITH(make_score_table(in), Contains("prob_Nodules is not one of the 14"));
}

TEST_CASE("reports: Markdown and JSON, thresholds read back", "[metrics][files]") {
  ScoreTable table({"Mass", "Hernia"}, 4);
  const double s[] = {0.9, 0.2, 0.7, 0.1};
  const int y[] = {1, 0, 1, 0};
  for (std::size_t i = 0; i < 4; ++i) {
    table.set(i, 0, s[i], y[i]);
    table.set(i, 1, s[i], false);
  }
  const Evaluation e = evaluate(table, {.bootstrap = {.resamples = 50, .seed = 1}, .thresholds = {}});
  const std::string md = to_markdown(e);
  CHECK_THAT(md, Contains("| Mass | 2 / 4 | 1.0000 |"));
  CHECK_THAT(md, Contains("| Hernia | 0 / 4 | undefined |"));
  CHECK_THAT(md, Contains("**Mean AUROC** (1 of 2 labels)"));
  const auto j = nlohmann::json::parse(to_json(e));
  CHECK(j["auroc"]["Mass"] == 1.0);
  CHECK(j["auroc"]["Hernia"].is_null());
  CHECK(j["mean_auroc"] == 1.0);
  CHECK(j["auroc_ci"]["Mass"].size() == 2);
  CHECK(j["f1"]["Mass"] == 1.0);
  const std::string path = write_temp("eval.json", "");
  write_json(e, path);
  const auto thresholds = read_thresholds(path);
  CHECK(thresholds.at("Mass") == 0.7);
  CHECK(thresholds.count("Hernia") == 0);
  CHECK(read_thresholds(write_temp("t.json", R"({"Mass": 0.5})")).at("Mass") == 0.5);
  CHECK_THROWS_WITH(read_thresholds(write_temp("t2.json", R"({"Mass": "high"})")), Contains("is not a number"));
}

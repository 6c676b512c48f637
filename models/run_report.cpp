#include "models/run_report.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>

#include "chex/data/labels.h"
#include "chex/data/nih_dataset.h"
#include "chex/error.h"
#include "chex/io/atomic_file.h"
#include "chex/metrics/evaluation_inputs.h"
#include "chex/metrics/f1.h"
#include "chex/metrics/nih_label_file.h"
#include "chex/report/html_report.h"
#include "models/cam_gallery.h"

namespace chex::models {
namespace fs = std::filesystem;
namespace {

std::string in_run(const std::string& run_dir, const std::string& name) { return (fs::path(run_dir) / name).string(); }

std::string label_file_of(const std::string& data) {
  for (const char* name : {"Data_Entry_2017_v2020.csv", "Data_Entry_2017.csv"})
    if (fs::exists(fs::path(data) / name)) return (fs::path(data) / name).string();
  CHEX_FAIL("no label file (Data_Entry_2017_v2020.csv or Data_Entry_2017.csv) in '", data,
            "'; give the run's data folder with --data");
}

// The thresholds maximising F1 on the validation predictions, per class of `classes`.
std::vector<std::optional<double>> validation_thresholds(const std::string& path, const std::vector<std::string>& classes,
                                                         const std::map<std::string, std::set<std::string>>& labels,
                                                         const std::string& labels_path) {
  metrics::EvaluationInputs val;
  val.predictions_path = path;
  val.predictions = metrics::read_predictions(path);
  val.labels_path = labels_path;
  val.labels = labels;
  const metrics::ScoreTable table = metrics::make_score_table(val);
  std::vector<std::optional<double>> thresholds(classes.size());
  for (std::size_t c = 0; c < classes.size(); ++c)
    for (std::size_t v = 0; v < table.classes(); ++v)
      if (table.class_names()[v] == classes[c])
        if (const auto choice = metrics::best_f1_threshold(table.scores(v), table.truth(v))) thresholds[c] = choice->threshold;
  return thresholds;
}

}  // namespace

void write_run_info(const std::string& run_dir, const RunInfo& info) {
  const nlohmann::json j = {{"data", info.data}, {"image_size", info.image_size}, {"seed", info.seed},
                            {"bootstrap", info.bootstrap}, {"readers", info.readers}};
  io::write_file_atomically(in_run(run_dir, "run_info.json"), [&](std::ostream& out) { out << j.dump(2) << "\n"; });
}

RunInfo read_run_info(const std::string& run_dir) {
  const std::string path = in_run(run_dir, "run_info.json");
  std::ifstream in(path);
  CHEX_CHECK(in, "cannot open '", path, "': ", std::strerror(errno),
             " (train_chexnet writes it at the end of a run; for another run give --data DIR)");
  try {
    const nlohmann::json j = nlohmann::json::parse(in);
    RunInfo info;
    info.data = j.at("data").get<std::string>();
    info.image_size = j.at("image_size").get<int>();
    info.seed = j.at("seed").get<uint64_t>();
    info.bootstrap = j.at("bootstrap").get<int>();
    info.readers = j.value("readers", std::vector<std::string>{});
    return info;
  } catch (const nlohmann::json::exception& e) {
    CHEX_FAIL(path, ": not a run_info.json train_chexnet wrote: ", e.what());
  }
}

std::vector<std::string> demo_reader_files(const std::string& data) {
  std::vector<std::string> files;
  const fs::path folder = fs::path(data) / "readers";
  std::error_code ec;
  if (!fs::is_directory(folder, ec)) return files;
  for (const auto& entry : fs::directory_iterator(folder)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("reader_", 0) == 0 && entry.path().extension() == ".csv") files.push_back(fs::absolute(entry.path()).string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

RunReport write_run_report(const RunReportOptions& o) {
  RunReport result;
  metrics::EvaluationInputs inputs;
  inputs.predictions_path = in_run(o.run_dir, "test_predictions.csv");
  CHEX_CHECK(fs::exists(inputs.predictions_path), "no '", inputs.predictions_path,
             "': is this a finished train_chexnet run folder?");
  inputs.predictions = metrics::read_predictions(inputs.predictions_path);
  inputs.labels_path = label_file_of(o.info.data);
  inputs.labels = metrics::read_nih_labels(inputs.labels_path);
  const metrics::ScoreTable table = metrics::make_score_table(inputs);

  metrics::EvaluationOptions eo;
  eo.bootstrap = {.resamples = o.info.bootstrap, .seed = o.info.seed};
  const std::string val_path = in_run(o.run_dir, "val_predictions.csv");
  std::string threshold_source = "thresholds chosen on the test predictions themselves (no val_predictions.csv; flatters the model)";
  if (fs::exists(val_path)) {
    eo.thresholds = validation_thresholds(val_path, table.class_names(), inputs.labels, inputs.labels_path);
    threshold_source = "thresholds maximising F1 on the validation predictions";
  }
  result.evaluation = o.evaluation ? *o.evaluation : metrics::evaluate(table, eo);

  report::ReportInputs page;
  page.title = "CheXNet run report";
  page.source = "Run " + fs::absolute(o.run_dir).string() + "; test split of " + o.info.data;
  page.table = &table;
  page.evaluation = &result.evaluation;
  if (const std::string log = in_run(o.run_dir, "log.jsonl"); fs::exists(log)) page.training = report::read_training_log(log);

  if (!o.info.readers.empty()) {
    metrics::ReaderStudyInputs study;
    for (const auto& file : o.info.readers) study.readers.push_back(metrics::read_reader_file(file));
    study.model = &inputs.predictions;
    study.thresholds.assign(inputs.predictions.classes.size(), std::nullopt);
    for (std::size_t c = 0; c < inputs.predictions.classes.size(); ++c)
      for (const auto& e : result.evaluation.classes)
        if (e.name == inputs.predictions.classes[c]) study.thresholds[c] = e.threshold;
    study.threshold_source = threshold_source;
    study.bootstrap = {.resamples = std::max(o.info.bootstrap, 0), .seed = o.info.seed};
    result.readers = metrics::run_reader_study(study);
    page.readers = &*result.readers;
  }

  if (!o.model) {
    result.gallery_note = "No CAM gallery: " + o.no_model_reason + ".";
  } else {
    std::unordered_map<std::string, std::string> images;
    try {
      images = data::discover_images(o.info.data);
    } catch (const Error& e) {
      result.gallery_note = std::string("No CAM gallery: the images are not at hand (") + e.what() + ").";
    }
    if (!images.empty()) {
      std::vector<std::string> names(table.images());
      for (std::size_t i = 0; i < names.size(); ++i) names[i] = inputs.predictions.images[i];
      int skipped = 0;
      page.gallery = cam_gallery(*o.model, table, names, images,
                                 {.per_kind = 2, .image_size = o.info.image_size, .thumbnail = 180, .device = o.device},
                                 &skipped);
      result.gallery_note = "Class activation maps (Zhou et al. 2016) of the best model on test images: per finding, "
                            "the two positives it scored highest (left) and the two negatives it scored highest (right: its "
                            "worst false positives), with its probability; the red box is the hottest region.";
      if (page.gallery.empty()) result.gallery_note = "No CAM gallery: none of the test images was found under " + o.info.data + ".";
      if (skipped) result.gallery_note += " " + std::to_string(skipped) + " images could not be read.";
    }
  }
  page.gallery_note = result.gallery_note;
  result.html_path = in_run(o.run_dir, "report.html");
  report::write_html_report(page, result.html_path);
  return result;
}

}  // namespace chex::models

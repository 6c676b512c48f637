#pragma once
// The report of a train_chexnet run folder (what `chex report RUN_DIR` and train_chexnet at its end
// write): RUN_DIR/report.html from test_predictions.csv (and val_predictions.csv for the thresholds),
// the NIH labels of the run's data folder, log.jsonl, reader files where given, and the CAM gallery
// from best.safetensors and the images where they are at hand.
#include <optional>
#include <string>
#include <vector>

#include "chex/device.h"
#include "chex/metrics/evaluation.h"
#include "chex/metrics/reader_study.h"
#include "models/densenet.h"

namespace chex::models {

// What train_chexnet records in RUN_DIR/run_info.json for the report.
struct RunInfo {
  std::string data;                  // the NIH-layout folder trained on (absolute)
  int image_size = 224;
  uint64_t seed = 0;
  int bootstrap = 1000;
  std::vector<std::string> readers;  // reader files (absolute)
};
void write_run_info(const std::string& run_dir, const RunInfo& info);
// Errors name the file; a missing file says which train_chexnet writes it.
RunInfo read_run_info(const std::string& run_dir);

struct RunReportOptions {
  std::string run_dir;
  RunInfo info;
  // The run's best model, for the CAM gallery (nullptr: no gallery), on `device`; left in eval mode.
  DenseNet* model = nullptr;
  std::string no_model_reason = "the weights are not at hand";
  Device device = Device::cpu();
  // The test evaluation when the caller has it already (train_chexnet, from the same predictions,
  // thresholds and bootstrap seed): not computed a second time. Null: computed from the files.
  const metrics::Evaluation* evaluation = nullptr;
};

struct RunReport {
  std::string html_path;
  metrics::Evaluation evaluation;
  std::optional<metrics::ReaderStudy> readers;
  std::string gallery_note;
};

RunReport write_run_report(const RunReportOptions& options);

// The reader files of a demo folder: <data>/readers/reader_*.csv in name order (none: empty).
std::vector<std::string> demo_reader_files(const std::string& data);

}  // namespace chex::models

#pragma once
// The HTML report of an evaluation (what `chex report`, `chex eval --html` and train_chexnet write):
// one self-contained file - inline CSS, SVG plots and base64 PNG images, no scripts, nothing fetched -
// with the per-class table against the CheXNet paper, ROC and precision-recall curves with the
// operating points, a reliability plot, the training curves, the reader study and a CAM gallery.
#include <optional>
#include <string>
#include <vector>

#include "chex/metrics/evaluation.h"
#include "chex/metrics/reader_study.h"
#include "chex/metrics/score_table.h"

namespace chex::report {

// One epoch of train_chexnet's log.jsonl ("event": "epoch").
struct TrainingEpoch {
  int epoch = 0;
  double train_loss = 0, val_loss = 0;
  std::optional<double> val_mean_auroc;
  double lr = 0, next_lr = 0;  // next_lr < lr: the lr was divided after this epoch
};

// The epochs of a log.jsonl; the last record of an epoch number wins (a resumed run repeats none,
// but a crashed epoch's rerun would). Errors name the file and line.
std::vector<TrainingEpoch> read_training_log(const std::string& path);

struct GalleryImage {
  std::string caption;
  std::string png;  // the encoded PNG file
};

struct GalleryRow {
  std::string title;  // e.g. "Effusion: most confident true positives"
  std::vector<GalleryImage> images;
};

struct ReportInputs {
  std::string title = "CheXNet evaluation";
  std::string source;  // what was evaluated, said under the title (e.g. the predictions file)
  const metrics::ScoreTable* table = nullptr;         // required: the curves' scores and truth
  const metrics::Evaluation* evaluation = nullptr;    // required: the numbers and thresholds
  std::optional<std::vector<TrainingEpoch>> training; // nullopt: no training log at hand
  const metrics::ReaderStudy* readers = nullptr;
  std::vector<GalleryRow> gallery;
  std::string gallery_note;  // why there is no gallery, or what it shows
};

std::string render_html_report(const ReportInputs& inputs);
// Written atomically (a temporary beside `path`, then a rename).
void write_html_report(const ReportInputs& inputs, const std::string& path);

// The CheXNet paper's per-class test AUROC (Rajpurkar et al. 2017, Table 2) by label, and its mean.
std::optional<double> paper_auroc(const std::string& label);
inline constexpr double kPaperMeanAuroc = 0.841;

}  // namespace chex::report

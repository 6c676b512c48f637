// chex report: RUN_DIR/report.html for a train_chexnet run folder (models/run_report does the work).
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "args.h"
#include "command.h"
#include "common.h"
#include "models/run_report.h"

namespace chex::cli {
namespace {

constexpr const char* kUsage = R"(usage: chex report RUN_DIR [--data DIR] [--readers R1.csv R2.csv ...] [options]

Writes RUN_DIR/report.html for a train_chexnet run (train_chexnet writes it itself at the end of a
run): one self-contained page (inline SVG and images, no scripts, nothing fetched) with the
per-finding AUROC (bootstrap interval) and F1 against the CheXNet paper's values, ROC curves with the
operating point at the validation-chosen threshold, precision-recall curves, a reliability plot,
the training and validation loss and validation AUROC per epoch (log.jsonl, lr drops marked), the
reader study where reader files are given, and CAM overlays of each finding's most confident true
positives and worst false positives when best.safetensors and the images are at hand.

It reads RUN_DIR/test_predictions.csv, val_predictions.csv (thresholds), log.jsonl, best.safetensors
and run_info.json (the data folder, image size, seed, bootstrap count and reader files of the run).

options:
  --data DIR          the NIH-layout folder the run used (default: from RUN_DIR/run_info.json)
  --readers FILE...   reader CSVs ('Image Index', 'Finding Labels'): adds the reader study
                      (default: the run's own, from run_info.json)
  --bootstrap N       bootstrap resamples (default: the run's, else 1000)
  --no-gallery        leave out the CAM gallery (it runs the model on 56 images)
  --device D          cpu (default) or cuda, for the gallery's CAMs
  -h, --help          this text
)";

}  // namespace

int run_report(const std::vector<std::string>& arguments) {
  std::vector<std::string> argv = arguments;
  const std::vector<std::string> readers = take_list_option(argv, "readers");
  const Args args(argv, {{"data"}, {"bootstrap"}, {"no-gallery", false}, {"device"}, {"help", false, 'h'}}, "report");
  if (args.help(kUsage)) return kExitOk;
  if (args.positional().size() != 1) throw UsageError("give one run folder (RUN_DIR)");
  namespace fs = std::filesystem;
  models::RunReportOptions o;
  o.run_dir = args.positional()[0];
  if (!fs::is_directory(o.run_dir)) fail("'", o.run_dir, "' is not a folder (a train_chexnet --out folder expected)");
  if (const auto data = args.value("data")) {
    o.info.data = *data;
    if (fs::exists(fs::path(o.run_dir) / "run_info.json")) {
      const models::RunInfo recorded = models::read_run_info(o.run_dir);
      o.info.image_size = recorded.image_size;
      o.info.seed = recorded.seed;
      o.info.bootstrap = recorded.bootstrap;
      o.info.readers = recorded.readers;
    }
  } else {
    o.info = models::read_run_info(o.run_dir);
  }
  if (!readers.empty()) o.info.readers = readers;
  o.info.bootstrap = static_cast<int>(args.integer("bootstrap", o.info.bootstrap, 0, 10'000'000));
  try {
    o.device = Device::parse(args.value("device").value_or("cpu"));
  } catch (const Error& e) {
    throw UsageError(e.what());
  }
  std::unique_ptr<models::DenseNet> model;
  const std::string weights = (fs::path(o.run_dir) / "best.safetensors").string();
  if (args.has("no-gallery")) {
    o.no_model_reason = "turned off (--no-gallery)";
  } else if (!fs::exists(weights)) {
    o.no_model_reason = "the weights '" + weights + "' are missing";
  } else {
    require_device(o.device);
    model = load_densenet_14(weights, o.device);
    o.model = model.get();
  }
  const models::RunReport report = models::write_run_report(o);
  std::printf("wrote %s (mean AUROC %.4f on %zu test images%s)\n", report.html_path.c_str(),
              report.evaluation.mean_auroc.value_or(std::nan("")), report.evaluation.images,
              report.readers ? "; with the reader study" : "");
  return kExitOk;
}

}  // namespace chex::cli

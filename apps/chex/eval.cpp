// chex eval: AUROC and F1 with bootstrap confidence intervals for a predictions file against the
// NIH label file. The metrics live in chex/metrics; this file is the command line around them.
#include <cstdio>
#include <iostream>

#include "args.h"
#include "chex/metrics/evaluation_inputs.h"
#include "chex/metrics/nih_label_file.h"
#include "chex/metrics/curves.h"
#include "chex/metrics/report.h"
#include "chex/io/atomic_file.h"
#include "chex/report/html_report.h"
#include "command.h"

namespace chex::cli {
namespace {

constexpr const char* kUsage =
    "usage: chex eval --preds PREDS.csv --labels Data_Entry_2017_v2020.csv [options]\n"
    "\n"
    "Evaluates the images present in a predictions file (the CSV of `chex predict`: 'Image Index'\n"
    "then prob_LABEL columns): per-label AUROC (exact, ties counted half) with bootstrap 95%\n"
    "confidence intervals, their mean, and F1 at a threshold per label. A Markdown table on stdout.\n"
    "A label without positives (or negatives) among the images is undefined, left out of the mean.\n"
    "\n"
    "options:\n"
    "  --preds FILE        predictions CSV (required)\n"
    "  --labels FILE       NIH label file, Data_Entry_2017.csv or _v2020.csv (required)\n"
    "  --images LIST       evaluate only the images named in LIST (e.g. test_list.txt)\n"
    "  --bootstrap N       bootstrap resamples for the confidence intervals (default 10000; 0: none)\n"
    "  --seed S            bootstrap seed (default 0); the same seed gives the same intervals\n"
    "  --thresholds FILE   F1 thresholds: JSON {label: threshold}, or the --json output of an eval of\n"
    "                      validation predictions (its \"thresholds\")\n"
    "  --val-preds FILE    choose the F1 thresholds on these validation predictions (max F1)\n"
    "                      (neither: chosen on the evaluated predictions themselves, which flatters F1)\n"
    "  --json FILE         also write the results as JSON (auroc, mean_auroc, auroc_ci, f1, thresholds, ...)\n"
    "  --html FILE         also write the HTML report (chex report's page without training curves or\n"
    "                      CAMs): table against the paper, ROC and PR curves, calibration, readers\n"
    "  --curves FILE       also write the ROC and precision-recall points as CSV:\n"
    "                      label,curve,threshold,x,y (curve roc: x = 1 - specificity, y = sensitivity;\n"
    "                      pr: x = recall, y = precision)\n"
    "  --readers R1.csv R2.csv ...\n"
    "                      the CheXNet paper's reader study: each reader's F1 against the majority\n"
    "                      vote of the other readers (a strict majority: a tie among an even number\n"
    "                      of others counts as absent), the model's F1 against the same majorities\n"
    "                      at the F1 thresholds above (--val-preds or --thresholds; neither: chosen\n"
    "                      on the evaluated predictions, which flatters the model), their averages\n"
    "                      and the model-minus-readers difference with a paired bootstrap interval\n"
    "                      (--bootstrap resamples of the images). Reader files: CSV with 'Image\n"
    "                      Index' and 'Finding Labels' (NIH names joined by '|', 'No Finding').\n"
    "                      The study covers the images every reader and the predictions share\n"
    "  -h, --help          this help\n";

// Thresholds per class of `table`, from a file or chosen on validation predictions.
std::vector<std::optional<double>> thresholds_for(const metrics::ScoreTable& table, const Args& args,
                                                  const std::map<std::string, std::set<std::string>>& labels,
                                                  const std::string& labels_path) {
  std::vector<std::optional<double>> thresholds(table.classes());
  if (const auto file = args.value("thresholds")) {
    const auto given = metrics::read_thresholds(*file);
    for (std::size_t c = 0; c < table.classes(); ++c)
      if (const auto it = given.find(table.class_names()[c]); it != given.end()) thresholds[c] = it->second;
    return thresholds;
  }
  const auto val_path = args.value("val-preds");
  if (!val_path) return {};
  metrics::EvaluationInputs val;
  val.predictions_path = *val_path;
  val.predictions = metrics::read_predictions(*val_path);
  val.labels_path = labels_path;
  val.labels = labels;
  const metrics::ScoreTable val_table = metrics::make_score_table(val);
  const metrics::Evaluation chosen = metrics::evaluate(val_table, {.bootstrap = {.resamples = 0}, .thresholds = {}});
  for (std::size_t c = 0; c < table.classes(); ++c)
    for (const auto& v : chosen.classes)
      if (v.name == table.class_names()[c]) thresholds[c] = v.threshold;
  return thresholds;
}

void write_curves_csv(const metrics::ScoreTable& table, const std::string& path) {
  io::write_file_atomically(path, [&](std::ostream& out) {
    out.precision(17);
    out << "label,curve,threshold,x,y\n";
    for (std::size_t c = 0; c < table.classes(); ++c) {
      const auto write = [&](const char* kind, const std::vector<metrics::CurvePoint>& points) {
        for (const auto& p : points) out << table.class_names()[c] << ',' << kind << ',' << p.threshold << ',' << p.x << ',' << p.y << '\n';
      };
      write("roc", metrics::roc_curve(table.scores(c), table.truth(c)));
      write("pr", metrics::precision_recall_curve(table.scores(c), table.truth(c)));
    }
  });
}

// The reader study on the evaluated images, the model binarised at the evaluation's thresholds.
metrics::ReaderStudy reader_study(const std::vector<std::string>& files, const metrics::EvaluationInputs& inputs,
                                  const metrics::Evaluation& evaluation,
                                  const metrics::BootstrapOptions& bootstrap, const std::string& threshold_source) {
  metrics::ReaderStudyInputs study;
  for (const auto& file : files) study.readers.push_back(metrics::read_reader_file(file));
  study.model = &inputs.predictions;
  study.thresholds.assign(inputs.predictions.classes.size(), std::nullopt);
  for (std::size_t c = 0; c < inputs.predictions.classes.size(); ++c)
    for (const auto& e : evaluation.classes)
      if (e.name == inputs.predictions.classes[c]) study.thresholds[c] = e.threshold;
  study.threshold_source = threshold_source;
  study.images = inputs.images;
  study.bootstrap = bootstrap;
  return metrics::run_reader_study(study);
}

}  // namespace

int run_eval(const std::vector<std::string>& arguments) {
  std::vector<std::string> argv = arguments;
  const std::vector<std::string> reader_files = take_list_option(argv, "readers");
  const Args args(argv,
                  {{"preds"}, {"labels"}, {"images"}, {"bootstrap"}, {"seed"}, {"thresholds"}, {"val-preds"},
                   {"json"}, {"html"}, {"curves"}, {"help", false, 'h'}},
                  "eval");
  if (args.help(kUsage)) return kExitOk;
  if (!args.positional().empty()) throw UsageError("unexpected argument '" + args.positional()[0] + "'");
  if (args.has("thresholds") && args.has("val-preds")) throw UsageError("give --thresholds or --val-preds, not both");

  metrics::EvaluationInputs inputs;
  inputs.predictions_path = args.required("preds");
  inputs.labels_path = args.required("labels");
  const int resamples = static_cast<int>(args.integer("bootstrap", 10000, 0, 10'000'000));
  const uint64_t seed = static_cast<uint64_t>(args.integer("seed", 0, 0, INT64_MAX));
  inputs.predictions = metrics::read_predictions(inputs.predictions_path);
  inputs.labels = metrics::read_nih_labels(inputs.labels_path);
  if (const auto list = args.value("images")) {
    inputs.images = metrics::read_image_list(*list);
    inputs.images_path = *list;
  }
  const metrics::ScoreTable table = metrics::make_score_table(inputs);

  metrics::EvaluationOptions options;
  options.bootstrap = {.resamples = resamples, .seed = seed};
  options.thresholds = thresholds_for(table, args, inputs.labels, inputs.labels_path);
  if (resamples > 0 && table.images() > 2000)
    std::fprintf(stderr, "chex eval: %d bootstrap resamples of %zu images...\n", resamples, table.images());
  const metrics::Evaluation evaluation = metrics::evaluate(table, options);

  std::optional<metrics::ReaderStudy> study;
  if (!reader_files.empty()) {
    const std::string source = args.has("val-preds")    ? "thresholds maximising F1 on the validation predictions (--val-preds)"
                               : args.has("thresholds") ? "the thresholds of " + *args.value("thresholds")
                                                        : "thresholds chosen on the evaluated predictions themselves "
                                                          "(no --val-preds or --thresholds; flatters the model)";
    study = reader_study(reader_files, inputs, evaluation, options.bootstrap, source);
  }

  std::cout << metrics::to_markdown(evaluation) << std::flush;
  if (study) std::cout << "\n" << metrics::reader_study_markdown(*study) << std::flush;
  for (const auto& notice : evaluation.notices) std::fprintf(stderr, "chex eval: note: %s\n", notice.c_str());
  const metrics::ReaderStudy* study_or_null = study ? &*study : nullptr;
  if (const auto json = args.value("json")) metrics::write_json(evaluation, *json, study_or_null);
  if (const auto curves = args.value("curves")) write_curves_csv(table, *curves);
  if (const auto html = args.value("html")) {
    report::ReportInputs page;
    page.title = "CheXNet evaluation";
    page.source = "Predictions " + inputs.predictions_path + " against " + inputs.labels_path +
                  (inputs.images ? " (images of " + inputs.images_path + ")" : "");
    page.table = &table;
    page.evaluation = &evaluation;
    page.readers = study_or_null;
    page.gallery_note = "No CAM gallery: chex eval has predictions only (chex report RUN_DIR draws it from a run's weights and images).";
    report::write_html_report(page, *html);
  }
  return kExitOk;
}

}  // namespace chex::cli

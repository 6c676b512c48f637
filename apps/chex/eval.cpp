// chex eval: AUROC and F1 with bootstrap confidence intervals for a predictions file against the
// NIH label file. The metrics live in chex/metrics; this file is the command line around them.
#include <cstdio>
#include <iostream>

#include "args.h"
#include "chex/metrics/evaluation_inputs.h"
#include "chex/metrics/nih_label_file.h"
#include "chex/metrics/report.h"
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

}  // namespace

int run_eval(const std::vector<std::string>& arguments) {
  const Args args(arguments,
                  {{"preds"}, {"labels"}, {"images"}, {"bootstrap"}, {"seed"}, {"thresholds"}, {"val-preds"},
                   {"json"}, {"help", false, 'h'}},
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

  std::cout << metrics::to_markdown(evaluation) << std::flush;
  for (const auto& notice : evaluation.notices) std::fprintf(stderr, "chex eval: note: %s\n", notice.c_str());
  if (const auto json = args.value("json")) metrics::write_json(evaluation, *json);
  return kExitOk;
}

}  // namespace chex::cli

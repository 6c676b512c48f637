#include "chex/metrics/evaluation.h"

#include "chex/error.h"
#include "chex/metrics/auroc.h"
#include "chex/metrics/f1.h"

namespace chex::metrics {

Evaluation evaluate(const ScoreTable& table, const EvaluationOptions& options) {
  CHEX_CHECK(options.thresholds.empty() || options.thresholds.size() == table.classes(), "evaluate: ",
             options.thresholds.size(), " thresholds for ", table.classes(), " classes");
  Evaluation report;
  report.images = table.images();
  report.bootstrap = options.bootstrap;
  report.thresholds_from_evaluated_set = options.thresholds.empty();

  std::vector<std::optional<double>> thresholds = options.thresholds;
  if (thresholds.empty()) thresholds.resize(table.classes());
  double sum = 0;
  int defined = 0;
  for (std::size_t c = 0; c < table.classes(); ++c) {
    ClassEvaluation& e = report.classes.emplace_back();
    e.name = table.class_names()[c];
    e.positives = table.positives(c);
    e.negatives = table.images() - e.positives;
    e.auroc = auroc(table.scores(c), table.truth(c));
    if (e.auroc) {
      sum += *e.auroc;
      ++defined;
    } else {
      report.notices.push_back(detail::concat(e.name, ": ", e.positives == 0 ? "no positives" : "no negatives",
                                              " among the ", table.images(),
                                              " images, so its AUROC is undefined and left out of the mean"));
    }
    if (report.thresholds_from_evaluated_set) {
      if (const auto choice = best_f1_threshold(table.scores(c), table.truth(c))) thresholds[c] = choice->threshold;
    }
    e.threshold = thresholds[c];
    if (e.threshold) e.f1 = f1_at(table.scores(c), table.truth(c), *e.threshold);
  }
  if (defined > 0) report.mean_auroc = sum / defined;
  if (report.thresholds_from_evaluated_set)
    report.notices.push_back(
        "F1 thresholds were chosen on the evaluated predictions themselves, which flatters F1; pass thresholds "
        "chosen on validation predictions for an honest figure");

  if (options.bootstrap.resamples > 0 && table.images() > 0) {
    const BootstrapResult cis = bootstrap(table, thresholds, options.bootstrap);
    for (std::size_t c = 0; c < table.classes(); ++c) {
      if (report.classes[c].auroc) report.classes[c].auroc_ci = cis.auroc[c];
      if (report.classes[c].f1) report.classes[c].f1_ci = cis.f1[c];
    }
    if (report.mean_auroc) report.mean_auroc_ci = cis.mean_auroc;
  }
  return report;
}

}  // namespace chex::metrics

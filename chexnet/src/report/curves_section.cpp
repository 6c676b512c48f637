// Per-class ROC curves (AUROC, its interval and the operating point at the chosen threshold) and
// precision-recall curves, and the pooled reliability plot.
#include <sstream>

#include "chex/metrics/curves.h"
#include "chex/report/svg.h"
#include "sections.h"

namespace chex::report::detail {
namespace {

constexpr int kSize = 290;

// The curve point reached at `threshold` (the last one whose threshold is at least it).
const metrics::CurvePoint* operating_point(const std::vector<metrics::CurvePoint>& curve, double threshold) {
  const metrics::CurvePoint* found = nullptr;
  for (const auto& p : curve)
    if (p.threshold >= threshold) found = &p;
  return found;
}

Points xy(const std::vector<metrics::CurvePoint>& curve) {
  Points points;
  for (const auto& p : curve) points.emplace_back(p.x, p.y);
  return points;
}

std::string undefined_plot(const std::string& title, const std::string& why) {
  SvgPlot plot(kSize, kSize, {0, 1, "", 5}, {0, 1, "", 5}, title + "\n" + why);
  return "<figure class=\"plot empty\">" + plot.str() + "</figure>";
}

}  // namespace

std::string curves_section(const ReportInputs& in) {
  const metrics::ScoreTable& t = *in.table;
  std::ostringstream roc, pr;
  for (std::size_t c = 0; c < t.classes(); ++c) {
    const metrics::ClassEvaluation& e = in.evaluation->classes[c];
    const std::string name = t.class_names()[c], data = "data-class=\"" + escape(name) + "\"";
    const auto curve = metrics::roc_curve(t.scores(c), t.truth(c));
    if (curve.empty()) {
      roc << undefined_plot(name, "undefined: no positives or no negatives");
    } else {
      std::string title = name + "\nAUROC " + format_number(e.auroc.value_or(0), 3);
      if (e.auroc_ci) title += " (" + format_number(e.auroc_ci->lower, 3) + "–" + format_number(e.auroc_ci->upper, 3) + ")";
      SvgPlot plot(kSize, kSize, {0, 1, "1 − specificity", 5}, {0, 1, "sensitivity", 5}, title);
      plot.line({{0, 0}, {1, 1}}, kGrey, 1, true);
      plot.line(xy(curve), kBlue, 2, false, "class=\"roc\" " + data);
      if (e.threshold)
        if (const auto* p = operating_point(curve, *e.threshold))
          plot.marker(p->x, p->y, kVermillion,
                      "threshold " + format_number(*e.threshold, 3) + ": sensitivity " + format_number(p->y, 3) +
                          ", specificity " + format_number(1 - p->x, 3),
                      "class=\"operating-point\" " + data);
      roc << "<figure class=\"plot\">" << plot.str() << "</figure>\n";
    }
    const auto precision_recall = metrics::precision_recall_curve(t.scores(c), t.truth(c));
    if (precision_recall.empty()) {
      pr << undefined_plot(name, "undefined: no positives");
    } else {
      const double prevalence = static_cast<double>(t.positives(c)) / static_cast<double>(t.images());
      SvgPlot plot(kSize, kSize, {0, 1, "recall", 5}, {0, 1, "precision", 5},
                   name + "\nF1 " + (e.f1 ? format_number(*e.f1, 3) : "–") + " at the chosen threshold");
      plot.line({{0, prevalence}, {1, prevalence}}, kGrey, 1, true);
      plot.line(xy(precision_recall), kGreen, 2, false, "class=\"pr\" " + data);
      if (e.threshold)
        if (const auto* p = operating_point(precision_recall, *e.threshold))
          plot.marker(p->x, p->y, kVermillion, "threshold " + format_number(*e.threshold, 3),
                      "class=\"operating-point\" " + data);
      pr << "<figure class=\"plot\">" << plot.str() << "</figure>\n";
    }
  }
  return "<section id=\"roc\"><h2>ROC curves</h2><p class=\"note\">Blue: the ROC curve; red dot: the operating "
         "point at the chosen threshold; dashed: chance.</p><div class=\"grid\">\n" +
         roc.str() +
         "</div></section>\n<section id=\"pr\"><h2>Precision-recall curves</h2><p class=\"note\">Dashed: the "
         "prevalence (a random ranking's precision).</p><div class=\"grid\">\n" +
         pr.str() + "</div></section>\n";
}

std::string calibration_section(const ReportInputs& in) {
  const metrics::ScoreTable& t = *in.table;
  std::vector<double> scores;
  std::vector<uint8_t> truth;
  for (std::size_t c = 0; c < t.classes(); ++c) {
    scores.insert(scores.end(), t.scores(c).begin(), t.scores(c).end());
    truth.insert(truth.end(), t.truth(c).begin(), t.truth(c).end());
  }
  const auto bins = metrics::reliability(scores, truth, 10);
  SvgPlot plot(420, 360, {0, 1, "predicted probability", 5}, {0, 1, "fraction positive", 5},
               "Reliability, all findings pooled");
  plot.line({{0, 0}, {1, 1}}, kGrey, 1, true);
  Points points;
  for (const auto& b : bins) points.emplace_back(b.mean_score, b.fraction_positive);
  plot.line(points, kOrange, 2, false, "class=\"calibration\"");
  for (const auto& b : bins)
    plot.marker(b.mean_score, b.fraction_positive, kOrange,
                std::to_string(b.count) + " scores, mean " + format_number(b.mean_score, 3) + ", " +
                    format_number(b.fraction_positive, 3) + " positive");
  return "<section id=\"calibration\"><h2>Calibration</h2><p class=\"note\">Every probability of every finding, in "
         "ten equal-width bins: the mean predicted probability against the fraction that were positive. Points "
         "below the diagonal: the model states higher probabilities than the frequencies it meets (train_chexnet's "
         "class-weighted loss does this for rare findings).</p>"
         "<figure class=\"plot\">" +
         plot.str() + legend_html({{"model", kOrange}, {"perfectly calibrated", kGrey, true}}) + "</figure></section>\n";
}

}  // namespace chex::report::detail

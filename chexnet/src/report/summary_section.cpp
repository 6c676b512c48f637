// The report's headline (mean AUROC against the paper's 0.841) and the per-class table.
#include <cmath>
#include <map>
#include <sstream>

#include "chex/report/svg.h"
#include "sections.h"

namespace chex::report {

std::optional<double> paper_auroc(const std::string& label) {
  // Rajpurkar et al. 2017, "CheXNet", Table 2 (CheXNet column); their mean is 0.841.
  static const std::map<std::string, double> kPaper = {
      {"Atelectasis", 0.8094},   {"Cardiomegaly", 0.9248},  {"Effusion", 0.8638},           {"Infiltration", 0.7345},
      {"Mass", 0.8676},          {"Nodule", 0.7802},        {"Pneumonia", 0.7680},          {"Pneumothorax", 0.8887},
      {"Consolidation", 0.7901}, {"Edema", 0.8878},         {"Emphysema", 0.9371},          {"Fibrosis", 0.8047},
      {"Pleural_Thickening", 0.8062}, {"Hernia", 0.9164}};
  const auto it = kPaper.find(label);
  return it == kPaper.end() ? std::nullopt : std::optional<double>(it->second);
}

namespace detail {
namespace {

std::string number(const std::optional<double>& v, int digits) { return v ? format_number(*v, digits) : "–"; }
std::string interval(const std::optional<metrics::Interval>& ci, int digits) {
  return ci ? format_number(ci->lower, digits) + " – " + format_number(ci->upper, digits) : "";
}

}  // namespace

std::string summary_section(const ReportInputs& in) {
  const metrics::Evaluation& e = *in.evaluation;
  std::ostringstream out;
  out << "<section id=\"summary\"><h2>Summary</h2>\n<p class=\"headline\">Mean AUROC <strong>"
      << number(e.mean_auroc, 4) << "</strong>";
  if (e.mean_auroc_ci) out << " (" << interval(e.mean_auroc_ci, 4) << ")";
  out << " on " << e.images << " images; the CheXNet paper reports " << format_number(kPaperMeanAuroc, 3)
      << " on its NIH test split.</p>\n";
  out << "<p class=\"note\">";
  if (e.bootstrap.resamples > 0)
    out << format_number(100 * e.bootstrap.confidence, 0) << "% intervals from " << e.bootstrap.resamples
        << " bootstrap resamples of the images (seed " << e.bootstrap.seed << "). ";
  out << (e.thresholds_from_evaluated_set
              ? "F1 thresholds were chosen on these predictions themselves (no validation predictions given), which flatters F1."
              : "F1 is at thresholds chosen on the validation predictions (maximum F1 there).")
      << "</p>\n";
  out << "<table class=\"numbers\"><thead><tr><th>Finding</th><th>Positives</th><th>AUROC</th><th>AUROC CI</th>"
         "<th>Paper</th><th>Δ paper</th><th>Threshold</th><th>F1</th><th>F1 CI</th></tr></thead><tbody>\n";
  for (const metrics::ClassEvaluation& c : e.classes) {
    const std::optional<double> paper = paper_auroc(c.name);
    const double delta = (c.auroc && paper) ? *c.auroc - *paper : std::nan("");
    out << "<tr><td>" << escape(c.name) << "</td><td>" << c.positives << " / " << c.positives + c.negatives
        << "</td><td>" << (c.auroc ? format_number(*c.auroc, 4) : "undefined") << "</td><td>"
        << interval(c.auroc_ci, 4) << "</td><td>" << number(paper, 4) << "</td><td class=\""
        << (delta < 0 ? "worse" : "better") << "\">" << (delta > 0 ? "+" : "")
        << format_number(delta, 4) << "</td><td>" << number(c.threshold, 3) << "</td><td>" << number(c.f1, 3)
        << "</td><td>" << interval(c.f1_ci, 3) << "</td></tr>\n";
  }
  out << "<tr class=\"mean\"><td>Mean</td><td></td><td>" << number(e.mean_auroc, 4) << "</td><td>"
      << interval(e.mean_auroc_ci, 4) << "</td><td>" << format_number(kPaperMeanAuroc, 3)
      << "</td><td></td><td></td><td></td><td></td></tr>\n</tbody></table>\n";
  if (!e.notices.empty()) {
    out << "<ul class=\"notices\">";
    for (const auto& n : e.notices) out << "<li>" << escape(n) << "</li>";
    out << "</ul>\n";
  }
  out << "</section>\n";
  return out.str();
}

}  // namespace detail
}  // namespace chex::report

// The reader study (the CheXNet paper's comparison with radiologists) as an HTML table.
#include <sstream>

#include "chex/report/svg.h"
#include "sections.h"

namespace chex::report::detail {
namespace {

std::string number(const std::optional<double>& v) { return v ? format_number(*v, 3) : "–"; }
std::string with_interval(const std::optional<double>& v, const std::optional<metrics::Interval>& ci) {
  if (!v) return "–";
  std::string text = format_number(*v, 3);
  if (ci) text += " <span class=\"ci\">(" + format_number(ci->lower, 3) + " – " + format_number(ci->upper, 3) + ")</span>";
  return text;
}

}  // namespace

std::string readers_section(const ReportInputs& in) {
  std::ostringstream out;
  out << "<section id=\"readers\"><h2>Model against readers</h2>\n";
  if (!in.readers) {
    out << "<p class=\"note\">No reader files given (chex eval --readers R1.csv R2.csv ..., or train_chexnet "
           "--readers): no reader comparison.</p></section>\n";
    return out.str();
  }
  const metrics::ReaderStudy& s = *in.readers;
  out << "<p class=\"note\">The CheXNet paper's study: F1 of each of " << s.readers.size()
      << " readers against the majority vote of the other readers (a tie among them counts as absent), and of the "
         "model against the same majorities, averaged; the model is binarised at "
      << escape(s.threshold_source) << ". " << s.images << " images.";
  if (s.bootstrap.resamples > 0)
    out << " Intervals: " << format_number(100 * s.bootstrap.confidence, 0) << "% paired bootstrap over the images, "
        << s.bootstrap.resamples << " resamples.";
  out << " The paper: pneumonia F1 0.435 (0.387 – 0.481) for CheXNet against 0.387 for the radiologists' average.</p>\n";
  out << "<table class=\"numbers readers\"><thead><tr><th>Finding</th>";
  for (const auto& r : s.readers) out << "<th>" << escape(r) << "</th>";
  out << "<th>Readers' mean</th><th>Model</th><th>Model − readers</th></tr></thead><tbody>\n";
  for (const metrics::ReaderStudyClass& c : s.classes) {
    out << "<tr><td>" << escape(c.name) << "</td>";
    for (const auto& f1 : c.reader_f1) out << "<td>" << number(f1) << "</td>";
    const bool significant = c.difference_ci && (c.difference_ci->lower > 0 || c.difference_ci->upper < 0);
    out << "<td>" << with_interval(c.readers_mean, c.readers_ci) << "</td><td>" << with_interval(c.model_mean, c.model_ci)
        << "</td><td class=\"" << (c.difference && *c.difference < 0 ? "worse" : "better")
        << (significant ? " significant" : "") << "\">" << (c.difference && *c.difference > 0 ? "+" : "")
        << with_interval(c.difference, c.difference_ci) << "</td></tr>\n";
  }
  out << "</tbody></table>\n";
  if (!s.notices.empty()) {
    out << "<ul class=\"notices\">";
    for (const auto& n : s.notices) out << "<li>" << escape(n) << "</li>";
    out << "</ul>\n";
  }
  out << "</section>\n";
  return out.str();
}

}  // namespace chex::report::detail

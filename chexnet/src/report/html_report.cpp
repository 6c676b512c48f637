// The report page: the sections in order, with the page's only styling inline.
#include "chex/report/html_report.h"

#include "chex/error.h"
#include "chex/io/atomic_file.h"
#include "chex/report/svg.h"
#include "sections.h"

namespace chex::report {
namespace {

constexpr const char* kStyle = R"(
body { font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; margin: 24px auto; max-width: 1240px; color: #222; background: #fff; }
h1 { font-size: 26px; margin-bottom: 4px; } h2 { font-size: 20px; border-bottom: 1px solid #ccc; padding-bottom: 4px; margin-top: 32px; }
h3 { font-size: 15px; margin: 14px 0 6px; }
.source, .note { color: #555; font-size: 13px; }
.headline { font-size: 17px; }
nav a { margin-right: 14px; font-size: 14px; }
table.numbers { border-collapse: collapse; font-size: 13px; }
table.numbers th, table.numbers td { padding: 3px 10px; border-bottom: 1px solid #e4e4e4; text-align: right; }
table.numbers th:first-child, table.numbers td:first-child { text-align: left; }
table.numbers thead th { background: #f0f3f7; }
tr.mean td { font-weight: bold; border-top: 2px solid #999; }
td.worse { color: #b0400b; } td.better { color: #1b6e3a; } td.significant { font-weight: bold; }
.ci { color: #777; font-size: 12px; }
.grid { display: flex; flex-wrap: wrap; gap: 6px; }
figure { margin: 0; }
figure.plot { background: #fff; display: inline-block; vertical-align: top; }
figure.empty svg { opacity: 0.55; }
figcaption { font-size: 12px; color: #555; text-align: center; max-width: 200px; }
figcaption.legend { max-width: none; }
figcaption.legend svg { vertical-align: middle; }
figcaption.legend span { margin: 0 8px; white-space: nowrap; }
svg .grid { stroke: #e6e6e6; stroke-width: 1; }
svg .tick { font-size: 10px; fill: #555; }
svg .axis-label { font-size: 11px; fill: #333; }
svg .plot-title { font-size: 13px; font-weight: bold; fill: #222; }
svg .plot-subtitle { font-size: 11px; fill: #444; }
.gallery-row { display: inline-block; vertical-align: top; width: 49%; }
.gallery { display: flex; flex-wrap: wrap; gap: 8px; }
.gallery img { width: 180px; height: auto; display: block; border: 1px solid #ccc; }
ul.notices { font-size: 13px; color: #555; }
)";

}  // namespace

std::string render_html_report(const ReportInputs& in) {
  CHEX_CHECK(in.table && in.evaluation, "the HTML report needs the score table and the evaluation");
  CHEX_CHECK(in.table->classes() == in.evaluation->classes.size(), "the HTML report: ", in.table->classes(),
             " classes in the table but ", in.evaluation->classes.size(), " in the evaluation");
  std::string html = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>" +
                     escape(in.title) + "</title>\n<style>" + kStyle + "</style>\n</head>\n<body>\n<h1>" +
                     escape(in.title) + "</h1>\n";
  if (!in.source.empty()) html += "<p class=\"source\">" + escape(in.source) + "</p>\n";
  html += "<nav><a href=\"#summary\">Summary</a><a href=\"#roc\">ROC</a><a href=\"#pr\">Precision-recall</a>"
          "<a href=\"#calibration\">Calibration</a><a href=\"#training\">Training</a><a href=\"#readers\">Readers</a>"
          "<a href=\"#gallery\">Gallery</a></nav>\n";
  html += detail::summary_section(in);
  html += detail::readers_section(in);
  html += detail::curves_section(in);
  html += detail::calibration_section(in);
  html += detail::training_section(in);
  html += detail::gallery_section(in);
  html += "</body>\n</html>\n";
  return html;
}

void write_html_report(const ReportInputs& inputs, const std::string& path) {
  const std::string html = render_html_report(inputs);
  io::write_file_atomically(path, [&](std::ostream& out) { out << html; });
}

}  // namespace chex::report

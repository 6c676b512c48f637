#include "chex/metrics/report.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "chex/error.h"
#include "chex/io/atomic_file.h"

namespace chex::metrics {
namespace {

std::string fixed(double v, int digits) {
  char text[32];
  std::snprintf(text, sizeof text, "%.*f", digits, v);
  return text;
}

std::string interval_text(const std::optional<Interval>& ci, int digits) {
  return ci ? fixed(ci->lower, digits) + " – " + fixed(ci->upper, digits) : "";
}

nlohmann::json optional_number(const std::optional<double>& v) { return v ? nlohmann::json(*v) : nlohmann::json(); }
nlohmann::json optional_interval(const std::optional<Interval>& ci) {
  return ci ? nlohmann::json::array({ci->lower, ci->upper}) : nlohmann::json();
}

}  // namespace

std::string to_markdown(const Evaluation& e) {
  std::ostringstream out;
  out << "Evaluated " << e.images << " images";
  if (e.bootstrap.resamples > 0)
    out << "; " << fixed(100 * e.bootstrap.confidence, 0) << "% confidence intervals from " << e.bootstrap.resamples
        << " bootstrap resamples (seed " << e.bootstrap.seed << ")";
  out << ".\n\n";
  out << "| Label | Positives | AUROC | AUROC CI | Threshold | F1 | F1 CI |\n";
  out << "|---|---:|---:|:---:|---:|---:|:---:|\n";
  int defined = 0;
  for (const ClassEvaluation& c : e.classes) {
    defined += c.auroc.has_value();
    out << "| " << c.name << " | " << c.positives << " / " << c.positives + c.negatives << " | "
        << (c.auroc ? fixed(*c.auroc, 4) : "undefined") << " | " << interval_text(c.auroc_ci, 4) << " | "
        << (c.threshold ? fixed(*c.threshold, 4) : "") << " | " << (c.f1 ? fixed(*c.f1, 3) : "") << " | "
        << interval_text(c.f1_ci, 3) << " |\n";
  }
  out << "| **Mean AUROC** (" << defined << " of " << e.classes.size() << " labels) | | **"
      << (e.mean_auroc ? fixed(*e.mean_auroc, 4) : "undefined") << "** | " << interval_text(e.mean_auroc_ci, 4)
      << " | | | |\n";
  if (!e.notices.empty()) {
    out << "\nNotes:\n";
    for (const auto& n : e.notices) out << "- " << n << "\n";
  }
  return out.str();
}

std::string to_json(const Evaluation& e, const ReaderStudy* study) {
  nlohmann::json j;
  j["images"] = e.images;
  j["mean_auroc"] = optional_number(e.mean_auroc);
  j["mean_auroc_ci"] = optional_interval(e.mean_auroc_ci);
  for (const char* key : {"auroc", "auroc_ci", "f1", "f1_ci", "thresholds", "positives"}) j[key] = nlohmann::json::object();
  for (const ClassEvaluation& c : e.classes) {
    j["auroc"][c.name] = optional_number(c.auroc);
    j["auroc_ci"][c.name] = optional_interval(c.auroc_ci);
    j["f1"][c.name] = optional_number(c.f1);
    j["f1_ci"][c.name] = optional_interval(c.f1_ci);
    j["thresholds"][c.name] = optional_number(c.threshold);
    j["positives"][c.name] = c.positives;
  }
  j["thresholds_chosen_on_evaluated_set"] = e.thresholds_from_evaluated_set;
  j["bootstrap"] = {{"resamples", e.bootstrap.resamples}, {"seed", e.bootstrap.seed},
                    {"confidence", e.bootstrap.confidence}};
  j["notices"] = e.notices;
  if (study) j["reader_study"] = nlohmann::json::parse(reader_study_json(*study));
  return j.dump(2) + "\n";
}

void write_json(const Evaluation& evaluation, const std::string& path, const ReaderStudy* study) {
  const std::string text = to_json(evaluation, study);
  io::write_file_atomically(path, [&](std::ostream& out) { out << text; });
}

std::map<std::string, double> read_thresholds(const std::string& path) {
  std::ifstream in(path);
  CHEX_CHECK(in, "cannot open the thresholds file '", path, "': ", std::strerror(errno));
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    CHEX_FAIL(path, ": not valid JSON: ", e.what());
  }
  if (j.is_object() && j.contains("thresholds")) j = j["thresholds"];
  CHEX_CHECK(j.is_object(), path, ": expected a JSON object {label: threshold} or an evaluation with \"thresholds\"");
  std::map<std::string, double> thresholds;
  for (const auto& [label, value] : j.items()) {
    if (value.is_null()) continue;
    CHEX_CHECK(value.is_number(), path, ": the threshold of '", label, "' is not a number");
    thresholds[label] = value.get<double>();
  }
  return thresholds;
}

}  // namespace chex::metrics

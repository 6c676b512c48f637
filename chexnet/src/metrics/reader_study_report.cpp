// The reader study as a Markdown table and as JSON.
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>

#include "chex/metrics/reader_study.h"

namespace chex::metrics {
namespace {

std::string fixed(const std::optional<double>& v, int digits = 3) {
  if (!v) return "–";
  char text[32];
  std::snprintf(text, sizeof text, "%.*f", digits, *v);
  return text;
}

std::string with_interval(const std::optional<double>& v, const std::optional<Interval>& ci) {
  std::string text = fixed(v);
  if (v && ci) text += " (" + fixed(ci->lower) + " – " + fixed(ci->upper) + ")";
  return text;
}

nlohmann::json number_or_null(const std::optional<double>& v) { return v ? nlohmann::json(*v) : nlohmann::json(); }
nlohmann::json interval_or_null(const std::optional<Interval>& ci) {
  return ci ? nlohmann::json::array({ci->lower, ci->upper}) : nlohmann::json();
}

}  // namespace

std::string reader_study_markdown(const ReaderStudy& s) {
  std::ostringstream out;
  out << "Reader study: " << s.readers.size() << " readers on " << s.images
      << " images. F1 of each reader against the majority vote of the other readers (a tie counts as absent), "
         "and of the model against the same majorities, averaged; the model is binarised at "
      << s.threshold_source << ".";
  if (s.bootstrap.resamples > 0)
    out << " Intervals: " << static_cast<int>(100 * s.bootstrap.confidence + 0.5) << "% paired bootstrap, "
        << s.bootstrap.resamples << " resamples of the images (seed " << s.bootstrap.seed << ").";
  out << "\n\n| Finding |";
  for (const auto& r : s.readers) out << " " << r << " |";
  out << " Readers' mean | Model | Model − readers |\n|---|";
  for (std::size_t r = 0; r < s.readers.size(); ++r) out << "---:|";
  out << "---:|---:|---:|\n";
  for (const ReaderStudyClass& c : s.classes) {
    out << "| " << c.name << " |";
    for (const auto& f1 : c.reader_f1) out << " " << fixed(f1) << " |";
    out << " " << with_interval(c.readers_mean, c.readers_ci) << " | " << with_interval(c.model_mean, c.model_ci)
        << " | " << with_interval(c.difference, c.difference_ci) << " |\n";
  }
  if (!s.notices.empty()) {
    out << "\nNotes:\n";
    for (const auto& n : s.notices) out << "- " << n << "\n";
  }
  return out.str();
}

std::string reader_study_json(const ReaderStudy& s) {
  nlohmann::json j;
  j["readers"] = s.readers;
  j["images"] = s.images;
  j["threshold_source"] = s.threshold_source;
  j["tie_rule"] = "a finding is in a reader's reference when a strict majority of the other readers marked it";
  j["bootstrap"] = {{"resamples", s.bootstrap.resamples}, {"seed", s.bootstrap.seed}, {"confidence", s.bootstrap.confidence}};
  j["classes"] = nlohmann::json::object();
  for (const ReaderStudyClass& c : s.classes) {
    nlohmann::json row;
    row["threshold"] = number_or_null(c.threshold);
    row["reader_f1"] = nlohmann::json::array();
    for (const auto& v : c.reader_f1) row["reader_f1"].push_back(number_or_null(v));
    row["model_f1"] = nlohmann::json::array();
    for (const auto& v : c.model_f1) row["model_f1"].push_back(number_or_null(v));
    row["readers_mean"] = number_or_null(c.readers_mean);
    row["model_mean"] = number_or_null(c.model_mean);
    row["difference"] = number_or_null(c.difference);
    row["readers_ci"] = interval_or_null(c.readers_ci);
    row["model_ci"] = interval_or_null(c.model_ci);
    row["difference_ci"] = interval_or_null(c.difference_ci);
    j["classes"][c.name] = std::move(row);
  }
  j["notices"] = s.notices;
  return j.dump(2) + "\n";
}

}  // namespace chex::metrics

#include "chex/metrics/prediction_file.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>

#include "chex/error.h"
#include "data/csv_fields.h"

namespace chex::metrics {
namespace {

// One line's fields (data/csv_fields.h, the CSV reader of the label files too), without its '\r'.
std::vector<std::string> fields_of(std::string line, const std::string& path, int number) {
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return data::detail::split_csv_fields(line, path, number);
}

}  // namespace

Predictions read_predictions(const std::string& path) {
  std::ifstream in(path);
  CHEX_CHECK(in, "cannot open the predictions file '", path, "': ", std::strerror(errno));
  std::string line;
  CHEX_CHECK(std::getline(in, line), path, ": the predictions file is empty (expected the header 'Image Index,prob_...')");
  const auto header = fields_of(line, path, 1);
  CHEX_CHECK(header[0] == "Image Index", path, ":1: the first column must be 'Image Index', not '", header[0], "'");
  Predictions p;
  for (std::size_t c = 1; c < header.size(); ++c) {
    CHEX_CHECK(header[c].rfind("prob_", 0) == 0 && header[c].size() > 5, path, ":1: column ", c + 1, " is '",
               header[c], "'; every column after 'Image Index' must be prob_LABEL (is --preds the CSV chex predict ",
               "wrote?)");
    p.classes.push_back(header[c].substr(5));
  }
  CHEX_CHECK(!p.classes.empty(), path, ":1: no prob_ columns");
  std::set<std::string> seen;
  for (int number = 2; std::getline(in, line); ++number) {
    if (line.empty() || line == "\r") continue;
    const auto fields = fields_of(line, path, number);
    CHEX_CHECK(fields.size() == header.size(), path, ":", number, ": ", fields.size(), " fields, the header has ",
               header.size(), " (a cut-short or hand-edited file? write it again with chex predict)");
    CHEX_CHECK(seen.insert(fields[0]).second, path, ":", number, ": image '", fields[0], "' is listed twice");
    std::vector<double> row;
    for (std::size_t c = 1; c < fields.size(); ++c) {
      char* end = nullptr;
      const double v = std::strtod(fields[c].c_str(), &end);
      CHEX_CHECK(!fields[c].empty() && *end == '\0' && std::isfinite(v), path, ":", number, ": '", fields[c],
                 "' in column prob_", p.classes[c - 1], " is not a finite number");
      row.push_back(v);
    }
    p.images.push_back(fields[0]);
    p.scores.push_back(std::move(row));
  }
  return p;
}

}  // namespace chex::metrics

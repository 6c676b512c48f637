// AUROC against scikit-learn's roc_auc_score on the same doubles: random, tied, tiny and large sets.
// The references are generated at test time by tests/reference/make_metrics_references.py.
#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "chex/metrics/auroc.h"

TEST_CASE("AUROC matches scikit-learn's roc_auc_score to 1e-9", "[metrics][sklearn]") {
  std::ifstream in(CHEX_METRICS_REF_DIR "/sklearn_auroc.json");
  REQUIRE(in);
  const auto cases = nlohmann::json::parse(in);
  REQUIRE(cases.size() >= 10);
  double worst = 0;
  for (const auto& c : cases) {
    const auto scores = c["scores"].get<std::vector<double>>();
    const auto labels = c["labels"].get<std::vector<int>>();
    std::vector<uint8_t> truth(labels.begin(), labels.end());
    const auto value = chex::metrics::auroc(scores, truth);
    INFO(c["name"].get<std::string>());
    REQUIRE(value.has_value());
    const double reference = c["auroc"].get<double>();
    CHECK(std::abs(*value - reference) <= 1e-9);
    worst = std::max(worst, std::abs(*value - reference));
  }
  WARN("largest |chex - sklearn| over " << cases.size() << " cases: " << worst);
}

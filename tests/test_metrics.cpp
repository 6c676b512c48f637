// Metrics: AUROC, F1 and thresholds on hand-worked cases, undefined labels, and the bootstrap's
// determinism and sanity. (scikit-learn agreement: tests/metrics/test_sklearn_auroc.cpp.)
#include <catch2/catch.hpp>

#include <cmath>
#include <omp.h>

#include "chex/error.h"
#include "chex/metrics/auroc.h"
#include "chex/metrics/bootstrap.h"
#include "chex/metrics/evaluation.h"
#include "chex/metrics/f1.h"
#include "chex/random.h"

using namespace chex::metrics;
using Catch::Matchers::Contains;

namespace {
std::vector<uint8_t> bits(std::initializer_list<int> v) { return {v.begin(), v.end()}; }

// n images, two classes: "signal" (scores informative) and "noise" (scores random).
ScoreTable synthetic_table(std::size_t n, uint64_t seed) {
  ScoreTable table({"signal", "noise"}, n);
  chex::Generator g(seed);
  for (std::size_t i = 0; i < n; ++i) {
    const bool pos = g.uniform() < 0.3f;
    table.set(i, 0, g.normal() + (pos ? 1.5 : 0.0), pos);
    table.set(i, 1, g.uniform(), g.uniform() < 0.4f);
  }
  return table;
}
}  // namespace

TEST_CASE("AUROC: hand-worked cases", "[metrics]") {
  // Positives 0.8, 0.4; negatives 0.1, 0.4, 0.9. Pairs won: (0.8>0.1, 0.8>0.4) = 2, (0.4>0.1) = 1,
  // (0.4=0.4) = 0.5: 3.5 of 6.
  const std::vector<double> s = {0.8, 0.4, 0.1, 0.4, 0.9};
  CHECK(*auroc(s, bits({1, 1, 0, 0, 0})) == Approx(3.5 / 6).epsilon(1e-15));
  CHECK(*auroc(std::vector<double>{1, 2, 3, 4}, bits({0, 0, 1, 1})) == 1.0);
  CHECK(*auroc(std::vector<double>{1, 2, 3, 4}, bits({1, 1, 0, 0})) == 0.0);
  CHECK(*auroc(std::vector<double>{0.5, 0.5, 0.5}, bits({1, 0, 0})) == 0.5);
  // Only the order matters: a monotone transform leaves it unchanged.
  std::vector<double> t;
  for (double x : s) t.push_back(std::exp(3 * x) - 7);
  CHECK(*auroc(t, bits({1, 1, 0, 0, 0})) == *auroc(s, bits({1, 1, 0, 0, 0})));
}

TEST_CASE("AUROC: no positives or no negatives is undefined, not 0.5", "[metrics]") {
  CHECK_FALSE(auroc(std::vector<double>{0.1, 0.2}, bits({0, 0})).has_value());
  CHECK_FALSE(auroc(std::vector<double>{0.1, 0.2}, bits({1, 1})).has_value());
  CHECK_FALSE(auroc(std::vector<double>{}, bits({})).has_value());
  CHECK_THROWS_WITH(auroc(std::vector<double>{0.1, NAN}, bits({0, 1})), Contains("not finite"));
  CHECK_THROWS_WITH(auroc(std::vector<double>{0.1}, bits({0, 1})), Contains("1 scores but 2 labels"));
}

TEST_CASE("F1 at a threshold and the threshold that maximises it", "[metrics]") {
  const std::vector<double> s = {0.9, 0.8, 0.7, 0.6, 0.3, 0.2};
  const auto y = bits({1, 0, 1, 1, 0, 0});
  // At 0.65: predicted 0.9, 0.8, 0.7 -> TP 2, FP 1, FN 1 -> F1 = 4 / 6.
  CHECK(*f1_at(s, y, 0.65) == Approx(4.0 / 6));
  // Threshold 0.6 catches all three positives with one false positive: F1 = 6 / 7, the best.
  const auto best = best_f1_threshold(s, y);
  REQUIRE(best);
  CHECK(best->threshold == 0.6);
  CHECK(best->f1 == Approx(6.0 / 7));
  CHECK(*f1_at(s, y, best->threshold) == Approx(best->f1));
  // Nothing to score: no positives and nothing predicted.
  CHECK_FALSE(f1_at(s, bits({0, 0, 0, 0, 0, 0}), 0.95).has_value());
  CHECK(*f1_at(s, bits({0, 0, 0, 0, 0, 0}), 0.5) == 0.0);
  CHECK_FALSE(best_f1_threshold(s, bits({0, 0, 0, 0, 0, 0})).has_value());
  // Tied scores enter together: the threshold never splits a tie.
  const auto tied = best_f1_threshold(std::vector<double>{0.5, 0.5, 0.1}, bits({1, 0, 0}));
  CHECK(tied->threshold == 0.5);
  CHECK(tied->f1 == Approx(2.0 / 3));
}

TEST_CASE("quantile interpolates linearly between order statistics", "[metrics]") {
  std::vector<double> v = {4, 1, 3, 2};
  CHECK(quantile(v, 0.0) == 1);
  CHECK(quantile(v, 1.0) == 4);
  CHECK(quantile(v, 0.5) == 2.5);
  CHECK(quantile(v, 0.25) == Approx(1.75));
}

TEST_CASE("bootstrap: deterministic for a seed whatever the thread count", "[metrics][bootstrap]") {
  const ScoreTable table = synthetic_table(300, 7);
  const std::vector<std::optional<double>> thresholds = {0.5, 0.5};
  const BootstrapOptions options{.resamples = 500, .seed = 42};
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const BootstrapResult one = bootstrap(table, thresholds, options);
  omp_set_num_threads(3);
  const BootstrapResult three = bootstrap(table, thresholds, options);
  omp_set_num_threads(threads);
  for (std::size_t c = 0; c < 2; ++c) {
    CHECK(one.auroc[c]->lower == three.auroc[c]->lower);
    CHECK(one.auroc[c]->upper == three.auroc[c]->upper);
    CHECK(one.f1[c]->lower == three.f1[c]->lower);
    CHECK(one.f1[c]->upper == three.f1[c]->upper);
  }
  CHECK(one.mean_auroc->lower == three.mean_auroc->lower);
  // Another seed draws other resamples.
  const BootstrapResult other = bootstrap(table, thresholds, {.resamples = 500, .seed = 43});
  CHECK(other.auroc[0]->lower != one.auroc[0]->lower);
}

TEST_CASE("bootstrap: the interval holds the point estimate and narrows as n grows", "[metrics][bootstrap]") {
  double previous_width = 1;
  for (std::size_t n : {100, 400, 1600}) {
    const ScoreTable table = synthetic_table(n, 11);
    const auto point = auroc(table.scores(0), table.truth(0));
    const auto f1_point = f1_at(table.scores(0), table.truth(0), 0.7);
    const BootstrapResult r = bootstrap(table, {0.7, std::nullopt}, {.resamples = 1000, .seed = 1});
    INFO("n = " << n);
    CHECK(r.auroc[0]->lower <= *point);
    CHECK(*point <= r.auroc[0]->upper);
    CHECK(r.f1[0]->lower <= *f1_point);
    CHECK(*f1_point <= r.f1[0]->upper);
    CHECK_FALSE(r.f1[1].has_value());  // no threshold, no F1
    const double width = r.auroc[0]->upper - r.auroc[0]->lower;
    CHECK(width < previous_width);
    previous_width = width;
    CHECK(r.auroc[0]->resamples == 1000);
  }
  // sqrt(n) scaling: from n = 100 to 1600 the width should fall roughly fourfold.
  CHECK(previous_width < 0.12);
}

TEST_CASE("evaluate: undefined labels are reported and left out of the mean", "[metrics]") {
  ScoreTable table({"A", "Rare", "B"}, 6);
  const double sa[] = {0.9, 0.8, 0.1, 0.2, 0.7, 0.3}, sb[] = {0.1, 0.9, 0.8, 0.2, 0.3, 0.4};
  const int ya[] = {1, 1, 0, 0, 1, 0}, yb[] = {0, 1, 0, 0, 1, 0};
  for (std::size_t i = 0; i < 6; ++i) {
    table.set(i, 0, sa[i], ya[i]);
    table.set(i, 1, 0.5, false);
    table.set(i, 2, sb[i], yb[i]);
  }
  const Evaluation e = evaluate(table, {.bootstrap = {.resamples = 200, .seed = 3}, .thresholds = {}});
  REQUIRE(e.classes.size() == 3);
  CHECK(*e.classes[0].auroc == 1.0);
  CHECK_FALSE(e.classes[1].auroc.has_value());
  CHECK_FALSE(e.classes[1].auroc_ci.has_value());
  CHECK(e.classes[1].positives == 0);
  // B: positives 0.9, 0.3; negatives 0.1, 0.8, 0.2, 0.4 -> wins 4 + 2 = 6 of 8.
  CHECK(*e.classes[2].auroc == 6.0 / 8);
  CHECK(*e.mean_auroc == Approx((1.0 + 6.0 / 8) / 2));
  REQUIRE(e.mean_auroc_ci);
  CHECK(e.mean_auroc_ci->lower <= *e.mean_auroc);
  REQUIRE(e.notices.size() >= 1);
  CHECK_THAT(e.notices[0], Contains("Rare: no positives among the 6 images"));
  CHECK(e.thresholds_from_evaluated_set);
  CHECK(*e.classes[0].f1 == 1.0);
}

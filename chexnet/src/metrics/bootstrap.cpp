#include "chex/metrics/bootstrap.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "chex/error.h"
#include "chex/random.h"
#include "ranked_class.h"

namespace chex::metrics {
namespace {

constexpr double kUndefined = std::numeric_limits<double>::quiet_NaN();

// Weighted F1 at a fixed decision per image: 2TP / (2TP + FP + FN); NaN where undefined.
double weighted_f1(const std::vector<uint8_t>& predicted, std::span<const uint8_t> truth,
                   const std::vector<uint32_t>& weights) {
  uint64_t tp = 0, fp = 0, fn = 0;
  for (std::size_t i = 0; i < weights.size(); ++i) {
    const uint64_t w = weights[i];
    if (predicted[i]) (truth[i] ? tp : fp) += w;
    else if (truth[i]) fn += w;
  }
  if (tp + fp + fn == 0) return kUndefined;
  return 2.0 * static_cast<double>(tp) / static_cast<double>(2 * tp + fp + fn);
}

}  // namespace

// An independent stream per resample, so that resample b is the same whichever thread draws it.
uint64_t resample_seed(uint64_t seed, uint64_t resample) {
  uint64_t z = seed ^ (0x9e3779b97f4a7c15ull * (resample + 1));
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

std::vector<uint32_t>& draw_resample(uint64_t seed, uint64_t resample, std::vector<uint32_t>& weights) {
  Generator generator(resample_seed(seed, resample));
  const std::size_t n = weights.size();
  std::fill(weights.begin(), weights.end(), 0u);
  for (std::size_t k = 0; k < n; ++k) ++weights[generator.below(n)];
  return weights;
}

std::optional<Interval> percentile_interval(std::vector<double> values, double confidence) {
  std::erase_if(values, [](double v) { return std::isnan(v); });
  if (values.empty()) return std::nullopt;
  const double tail = (1.0 - confidence) / 2.0;
  Interval interval;
  interval.resamples = static_cast<int>(values.size());
  interval.lower = quantile(values, tail);
  interval.upper = quantile(values, 1.0 - tail);
  return interval;
}

double quantile(std::vector<double>& values, double q) {
  CHEX_CHECK(!values.empty(), "quantile of an empty set");
  CHEX_CHECK(q >= 0.0 && q <= 1.0, "quantile: q = ", q, " is outside [0, 1]");
  std::sort(values.begin(), values.end());
  const double position = q * static_cast<double>(values.size() - 1);
  const std::size_t below = static_cast<std::size_t>(std::floor(position));
  const std::size_t above = std::min(below + 1, values.size() - 1);
  const double fraction = position - static_cast<double>(below);
  return values[below] + fraction * (values[above] - values[below]);
}

BootstrapResult bootstrap(const ScoreTable& table, const std::vector<std::optional<double>>& thresholds,
                          const BootstrapOptions& options) {
  CHEX_CHECK(options.resamples > 0, "bootstrap: the number of resamples must be positive, got ", options.resamples);
  CHEX_CHECK(options.confidence > 0.0 && options.confidence < 1.0, "bootstrap: confidence ", options.confidence,
             " is not in (0, 1)");
  CHEX_CHECK(thresholds.empty() || thresholds.size() == table.classes(), "bootstrap: ", thresholds.size(),
             " thresholds for ", table.classes(), " classes");
  const std::size_t n = table.images(), classes = table.classes();
  CHEX_CHECK(n > 0, "bootstrap: no images");
  CHEX_CHECK(n < (std::size_t{1} << 32), "bootstrap: too many images (", n, ")");

  std::vector<detail::RankedClass> ranked;
  std::vector<bool> in_mean(classes);
  std::vector<std::vector<uint8_t>> predicted(classes);
  for (std::size_t c = 0; c < classes; ++c) {
    ranked.emplace_back(table.scores(c), table.truth(c));
    in_mean[c] = ranked.back().auroc().has_value();
    if (!thresholds.empty() && thresholds[c]) {
      const auto scores = table.scores(c);
      predicted[c].resize(n);
      for (std::size_t i = 0; i < n; ++i) predicted[c][i] = scores[i] >= *thresholds[c];
    }
  }
  const bool any_in_mean = std::find(in_mean.begin(), in_mean.end(), true) != in_mean.end();

  // Statistic s of resample b at [s * B + b]; NaN where undefined in that resample.
  const std::size_t resamples = static_cast<std::size_t>(options.resamples);
  std::vector<double> aurocs(classes * resamples), f1s(classes * resamples), means(resamples);

#pragma omp parallel
  {
    std::vector<uint32_t> weights(n);
#pragma omp for schedule(static)
    for (std::size_t b = 0; b < resamples; ++b) {
      draw_resample(options.seed, b, weights);
      double sum = 0;
      bool mean_defined = any_in_mean;
      int in_sum = 0;
      for (std::size_t c = 0; c < classes; ++c) {
        const auto value = ranked[c].auroc(weights);
        aurocs[c * resamples + b] = value.value_or(kUndefined);
        if (in_mean[c]) {
          if (value) {
            sum += *value;
            ++in_sum;
          } else {
            mean_defined = false;
          }
        }
        f1s[c * resamples + b] =
            predicted[c].empty() ? kUndefined : weighted_f1(predicted[c], table.truth(c), weights);
      }
      means[b] = mean_defined ? sum / in_sum : kUndefined;
    }
  }

  BootstrapResult result;
  for (std::size_t c = 0; c < classes; ++c) {
    const auto slice = [&](const std::vector<double>& all) {
      return std::vector<double>(all.begin() + static_cast<std::ptrdiff_t>(c * resamples),
                                 all.begin() + static_cast<std::ptrdiff_t>((c + 1) * resamples));
    };
    result.auroc.push_back(percentile_interval(slice(aurocs), options.confidence));
    result.f1.push_back(percentile_interval(slice(f1s), options.confidence));
  }
  result.mean_auroc = percentile_interval(std::move(means), options.confidence);
  return result;
}

}  // namespace chex::metrics

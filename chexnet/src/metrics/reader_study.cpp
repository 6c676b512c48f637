// The reader study's statistics. Each (scorer, reference) pair - reader i against the majority of
// the others, the model against that same majority - is reduced per image to one outcome (true or
// false positive, false negative, or true negative), so that a bootstrap resample only re-counts
// outcomes with the resample's weights.
#include <algorithm>
#include <cmath>
#include <limits>

#include "chex/data/labels.h"
#include "chex/error.h"
#include "chex/metrics/reader_study.h"

namespace chex::metrics {
namespace {

constexpr double kUndefined = std::numeric_limits<double>::quiet_NaN();
enum Outcome : uint8_t { kTrueNegative, kTruePositive, kFalsePositive, kFalseNegative };

Outcome outcome(bool called, bool present) {
  if (called) return present ? kTruePositive : kFalsePositive;
  return present ? kFalseNegative : kTrueNegative;
}

// F1 = 2TP / (2TP + FP + FN) of outcomes counted with weights (all 1 when empty); NaN when there
// is nothing to score (no positive called or present).
double f1_of(const std::vector<uint8_t>& outcomes, const std::vector<uint32_t>& weights) {
  uint64_t count[4] = {};
  for (std::size_t i = 0; i < outcomes.size(); ++i) count[outcomes[i]] += weights.empty() ? 1 : weights[i];
  const uint64_t tp = count[kTruePositive], errors = count[kFalsePositive] + count[kFalseNegative];
  return tp + errors == 0 ? kUndefined : 2.0 * static_cast<double>(tp) / static_cast<double>(2 * tp + errors);
}

// The mean of the defined (non-NaN) values; NaN when none is.
double mean_defined(const std::vector<double>& values) {
  double sum = 0;
  int n = 0;
  for (double v : values)
    if (!std::isnan(v)) sum += v, ++n;
  return n ? sum / n : kUndefined;
}

std::optional<double> defined(double v) { return std::isnan(v) ? std::nullopt : std::optional<double>(v); }

// The outcomes of one class: readers first (pairs 0..k-1), then the model against each reader's
// reference (pairs k..2k-1; absent when the model has no threshold for the class).
struct ClassOutcomes {
  std::vector<std::vector<uint8_t>> readers, model;
};

struct Means {
  double readers, model;
};
Means means_of(const ClassOutcomes& o, const std::vector<uint32_t>& weights) {
  std::vector<double> r, m;
  for (const auto& pair : o.readers) r.push_back(f1_of(pair, weights));
  for (const auto& pair : o.model) m.push_back(f1_of(pair, weights));
  return {mean_defined(r), o.model.empty() ? kUndefined : mean_defined(m)};
}

}  // namespace

ReaderStudy run_reader_study(const ReaderStudyInputs& in) {
  const std::size_t k = in.readers.size();
  CHEX_CHECK(k >= 2, "the reader study needs at least two readers (each is scored against the others), got ", k);
  CHEX_CHECK(in.model != nullptr, "the reader study needs the model's predictions");
  const Predictions& model = *in.model;
  CHEX_CHECK(in.thresholds.size() == model.classes.size(), "reader study: ", in.thresholds.size(),
             " thresholds for ", model.classes.size(), " classes");

  // The images every reader and the model cover, in the predictions' order.
  std::vector<std::size_t> rows;
  for (std::size_t i = 0; i < model.images.size(); ++i) {
    const std::string& image = model.images[i];
    if (in.images && !in.images->contains(image)) continue;
    if (std::all_of(in.readers.begin(), in.readers.end(), [&](const ReaderMarks& r) { return r.findings.contains(image); }))
      rows.push_back(i);
  }
  CHEX_CHECK(!rows.empty(), "no image is covered by every reader file and the predictions",
             in.images ? " (within the evaluated images)" : "", "; do the reader files name the same images?");

  ReaderStudy study;
  for (const ReaderMarks& r : in.readers) study.readers.push_back(r.name);
  // Reader marks on other images (e.g. a demo's readers cover every split, the predictions the test
  // split) are simply not part of the study; say how many, so that a mismatch does not go unseen.
  if (const std::size_t outside = in.readers.front().findings.size() - std::min(rows.size(), in.readers.front().findings.size()))
    study.notices.push_back(std::to_string(outside) + " images of " + in.readers.front().name +
                            " are not among the evaluated predictions (or not marked by every reader): left out");
  study.images = rows.size();
  study.threshold_source = in.threshold_source;
  study.bootstrap = in.bootstrap;
  const std::size_t n = rows.size();

  std::vector<ClassOutcomes> outcomes;
  for (const std::string_view label : data::kLabelNames) {
    const std::string name(label);
    const auto column = std::find(model.classes.begin(), model.classes.end(), name);
    const std::optional<double> threshold =
        column == model.classes.end() ? std::nullopt : in.thresholds[static_cast<std::size_t>(column - model.classes.begin())];
    ClassOutcomes o;
    o.readers.assign(k, std::vector<uint8_t>(n));
    if (threshold) o.model.assign(k, std::vector<uint8_t>(n));
    for (std::size_t j = 0; j < n; ++j) {
      const std::string& image = model.images[rows[j]];
      std::vector<bool> marked(k);
      int total = 0;
      for (std::size_t r = 0; r < k; ++r) total += (marked[r] = in.readers[r].findings.at(image).contains(name));
      const bool model_calls = threshold && model.scores[rows[j]][static_cast<std::size_t>(column - model.classes.begin())] >= *threshold;
      for (std::size_t r = 0; r < k; ++r) {
        const int others = static_cast<int>(k) - 1, others_marked = total - marked[r];
        const bool reference = 2 * others_marked > others;  // a strict majority; a tie is absent
        o.readers[r][j] = outcome(marked[r], reference);
        if (threshold) o.model[r][j] = outcome(model_calls, reference);
      }
    }
    ReaderStudyClass c;
    c.name = name;
    c.threshold = threshold;
    for (const auto& pair : o.readers) c.reader_f1.push_back(defined(f1_of(pair, {})));
    for (const auto& pair : o.model) c.model_f1.push_back(defined(f1_of(pair, {})));
    const Means full = means_of(o, {});
    c.readers_mean = defined(full.readers);
    c.model_mean = defined(full.model);
    c.difference = defined(full.model - full.readers);
    if (!threshold)
      study.notices.push_back(name + ": the model has no threshold (" +
                              (column == model.classes.end() ? "no prob_ column" : "no validation positives") +
                              "), so it is not scored on this finding");
    study.classes.push_back(std::move(c));
    outcomes.push_back(std::move(o));
  }

  if (in.bootstrap.resamples > 0) {
    const std::size_t classes = outcomes.size(), resamples = static_cast<std::size_t>(in.bootstrap.resamples);
    // Statistic of class c in resample b at [c * B + b].
    std::vector<double> readers(classes * resamples), models(classes * resamples), differences(classes * resamples);
#pragma omp parallel
    {
      std::vector<uint32_t> weights(n);
#pragma omp for schedule(static)
      for (std::size_t b = 0; b < resamples; ++b) {
        draw_resample(in.bootstrap.seed, b, weights);
        for (std::size_t c = 0; c < classes; ++c) {
          const Means m = means_of(outcomes[c], weights);
          readers[c * resamples + b] = m.readers;
          models[c * resamples + b] = m.model;
          differences[c * resamples + b] = m.model - m.readers;
        }
      }
    }
    for (std::size_t c = 0; c < classes; ++c) {
      const auto slice = [&](const std::vector<double>& all) {
        return std::vector<double>(all.begin() + static_cast<std::ptrdiff_t>(c * resamples),
                                   all.begin() + static_cast<std::ptrdiff_t>((c + 1) * resamples));
      };
      study.classes[c].readers_ci = percentile_interval(slice(readers), in.bootstrap.confidence);
      study.classes[c].model_ci = percentile_interval(slice(models), in.bootstrap.confidence);
      study.classes[c].difference_ci = percentile_interval(slice(differences), in.bootstrap.confidence);
    }
  }
  return study;
}

}  // namespace chex::metrics

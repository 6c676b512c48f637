#include "chex/metrics/score_table.h"

#include <algorithm>
#include <cmath>

#include "chex/error.h"

namespace chex::metrics {

ScoreTable::ScoreTable(std::vector<std::string> classes, std::size_t images)
    : classes_(std::move(classes)),
      images_(images),
      scores_(classes_.size() * images, 0.0),
      truth_(classes_.size() * images, 0) {}

void ScoreTable::set(std::size_t image, std::size_t cls, double score, bool positive) {
  CHEX_CHECK(image < images_ && cls < classes_.size(), "ScoreTable::set: image ", image, " class ", cls,
             " is outside the ", images_, " x ", classes_.size(), " table");
  CHEX_CHECK(std::isfinite(score), "ScoreTable::set: the score of image ", image, " for ", classes_[cls],
             " is not finite (", score, ")");
  scores_[cls * images_ + image] = score;
  truth_[cls * images_ + image] = positive ? 1 : 0;
}

std::span<const double> ScoreTable::scores(std::size_t cls) const {
  CHEX_CHECK(cls < classes_.size(), "ScoreTable: no class ", cls);
  return {scores_.data() + cls * images_, images_};
}

std::span<const uint8_t> ScoreTable::truth(std::size_t cls) const {
  CHEX_CHECK(cls < classes_.size(), "ScoreTable: no class ", cls);
  return {truth_.data() + cls * images_, images_};
}

std::size_t ScoreTable::positives(std::size_t cls) const {
  const auto t = truth(cls);
  return static_cast<std::size_t>(std::count(t.begin(), t.end(), uint8_t{1}));
}

}  // namespace chex::metrics

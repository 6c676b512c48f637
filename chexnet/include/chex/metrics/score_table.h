#pragma once
// Predictions and ground truth for a set of images and classes: what every metric reads.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace chex::metrics {

// Stored class by class (column-major) because every metric walks one class over all images.
class ScoreTable {
 public:
  ScoreTable(std::vector<std::string> classes, std::size_t images);

  std::size_t images() const { return images_; }
  std::size_t classes() const { return classes_.size(); }
  const std::vector<std::string>& class_names() const { return classes_; }

  // Score (a probability, or any monotone score) and truth (0 or 1) of one image for one class.
  void set(std::size_t image, std::size_t cls, double score, bool positive);

  std::span<const double> scores(std::size_t cls) const;
  std::span<const uint8_t> truth(std::size_t cls) const;
  std::size_t positives(std::size_t cls) const;

 private:
  std::vector<std::string> classes_;
  std::size_t images_;
  std::vector<double> scores_;
  std::vector<uint8_t> truth_;
};

}  // namespace chex::metrics

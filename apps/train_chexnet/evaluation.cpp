#include "evaluation.h"

#include <cmath>
#include <limits>
#include <sstream>

#include "chex/autograd.h"
#include "chex/data/labels.h"
#include "chex/error.h"
#include "chex/metrics/auroc.h"
#include "files.h"

namespace chex::train {

metrics::ScoreTable SplitPredictions::table() const {
  std::vector<std::string> classes(data::kLabelNames.begin(), data::kLabelNames.end());
  metrics::ScoreTable t(classes, images.size());
  for (size_t i = 0; i < images.size(); ++i)
    for (size_t c = 0; c < classes.size(); ++c)
      t.set(i, c, probabilities[i * data::kNumLabels + c], truth[i * data::kNumLabels + c] != 0);
  return t;
}

SplitPredictions predict_split(nn::Module& model, data::DataLoader& loader, const Loss& loss, Device device) {
  model.eval();
  NoGradGuard no_grad;
  SplitPredictions out;
  double loss_sum = 0;
  loader.start_epoch(0);
  while (std::optional<data::Batch> batch = loader.next()) {
    const Tensor logits = model(batch->images.to(device));
    const auto n = static_cast<double>(batch->names.size());
    loss_sum += static_cast<double>(loss(logits, batch->labels.to(device)).to(Device::cpu()).item()) * n;
    const std::vector<float> z = logits.to(Device::cpu()).to_vector(), y = batch->labels.to_vector();
    for (float v : z) out.probabilities.push_back(1.f / (1.f + std::exp(-v)));
    for (float v : y) out.truth.push_back(v > 0.5f ? 1 : 0);
    out.images.insert(out.images.end(), batch->names.begin(), batch->names.end());
  }
  out.mean_loss = out.images.empty() ? std::numeric_limits<double>::quiet_NaN()
                                     : loss_sum / static_cast<double>(out.images.size());
  return out;
}

double mean_auroc(const SplitPredictions& predictions) {
  const metrics::ScoreTable t = predictions.table();
  double sum = 0;
  int defined = 0;
  for (size_t c = 0; c < t.classes(); ++c)
    if (const std::optional<double> a = metrics::auroc(t.scores(c), t.truth(c))) {
      sum += *a;
      ++defined;
    }
  return defined ? sum / defined : std::numeric_limits<double>::quiet_NaN();
}

void write_predictions_csv(const std::string& path, const SplitPredictions& predictions) {
  std::ostringstream csv;
  csv.precision(9);  // float32 round-trips
  csv << "Image Index";
  for (std::string_view label : data::kLabelNames) csv << ",prob_" << label;
  csv << "\n";
  for (size_t i = 0; i < predictions.images.size(); ++i) {
    // NIH names never need quoting; a name that would is refused rather than written ambiguously.
    CHEX_CHECK(predictions.images[i].find_first_of(",\"\r\n") == std::string::npos, "image name '",
               predictions.images[i], "' cannot be written to a CSV unquoted");
    csv << predictions.images[i];
    for (int c = 0; c < data::kNumLabels; ++c) csv << "," << predictions.probabilities[i * data::kNumLabels + c];
    csv << "\n";
  }
  write_text_atomically(path, csv.str());
}

}  // namespace chex::train

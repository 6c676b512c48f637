#pragma once
// Running the model over a split without training: the loss and probabilities of every image, the
// predictions CSV in `chex predict`'s format, and the metrics report.
#include <string>
#include <vector>

#include "chex/data/loader.h"
#include "chex/metrics/evaluation.h"
#include "chex/metrics/score_table.h"
#include "chex/nn/module.h"
#include "loss.h"

namespace chex::train {

struct SplitPredictions {
  std::vector<std::string> images;
  std::vector<float> probabilities;  // [image][14]
  std::vector<uint8_t> truth;        // [image][14]
  double mean_loss = 0;              // the training loss, averaged over images
  metrics::ScoreTable table() const;
};

// Evaluation mode, no gradients; the model is left in evaluation mode.
SplitPredictions predict_split(nn::Module& model, data::DataLoader& loader, const Loss& loss, Device device);

// Mean AUROC over the labels that have both positives and negatives (none: NaN).
double mean_auroc(const SplitPredictions& predictions);

// "Image Index,prob_Atelectasis,...,prob_Hernia", one row per image, written atomically.
void write_predictions_csv(const std::string& path, const SplitPredictions& predictions);

}  // namespace chex::train

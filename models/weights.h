#pragma once
// Loading model weights from safetensors files by torchvision's state_dict names, strictly: every
// missing, unexpected or wrongly shaped tensor is named in one error and nothing runs.
#include <string>
#include <vector>

#include "chex/nn/module.h"

namespace chex::models {

struct WeightLoadOptions {
  bool strict = true;
  // An ImageNet checkpoint (classifier with 1000 outputs) loaded into a model with another number
  // of classes keeps the features and re-initialises the classifier (reported in the result).
  bool allow_classifier_reinit = true;
};

struct WeightLoadReport {
  size_t loaded = 0;                       // tensors copied
  std::vector<std::string> renamed;        // "module." prefixes stripped, legacy "norm.1" names mapped
  bool classifier_reinitialised = false;
  std::string summary() const;             // one line for the user
};

WeightLoadReport load_weights(nn::Module& model, const std::string& path, const WeightLoadOptions& options = {});
void save_weights(const nn::Module& model, const std::string& path);

}  // namespace chex::models

#pragma once
// Loading model weights from safetensors files by torchvision's state_dict names, strictly: every
// missing, unexpected or wrongly shaped tensor is named in one error and nothing runs.
#include <map>
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
  std::string path;
  size_t loaded = 0;                       // tensors copied
  std::vector<std::string> renamed;        // "module." prefixes stripped, legacy "norm.1" names mapped ("old -> new")
  bool classifier_reinitialised = false;
  // num_batches_tracked counters absent from the file (checkpoints older than PyTorch 0.4.1 have
  // none, and PyTorch loads them too): left as they were. chex never reads them.
  std::vector<std::string> defaulted;
  std::vector<std::string> missing;        // non-strict loads only: left as they were
  std::vector<std::string> unexpected;     // non-strict loads only: ignored
  std::map<std::string, size_t> stored_dtypes;  // dtype as stored in the file -> number of tensors
  std::string summary() const;             // one line for the user
};

// Reads `path` (safetensors) into `model`'s parameters and buffers, converting F16/BF16/I64 to
// float32. Names are torchvision's; a "module." prefix (DataParallel) is stripped and the legacy
// DenseNet names "norm.1"/"relu.1"/"conv.1"/"norm.2"/"relu.2"/"conv.2" map to "norm1"/…/"conv2".
// Throws chex::Error naming the file and listing every problem; the model is unchanged then.
WeightLoadReport load_weights(nn::Module& model, const std::string& path, const WeightLoadOptions& options = {});
// Writes the model's state_dict as float32 safetensors, atomically (temporary file, then rename).
void save_weights(const nn::Module& model, const std::string& path);

// The name a checkpoint entry has in torchvision's current DenseNet: without "module." prefixes
// and with legacy dense-layer names mapped ("…denselayer1.norm.1.weight" -> "…denselayer1.norm1.weight").
std::string canonical_weight_name(const std::string& name);

}  // namespace chex::models

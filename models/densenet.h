#pragma once
// DenseNet (Huang et al. 2017) with torchvision's exact structure and parameter names, and the
// CheXNet head. Dense blocks are memory-efficient (Pleiss et al. 2017): see ../shared/DESIGN.md.
//
//   features.conv0 / norm0 / relu0 / pool0
//   features.denseblock{1..4}.denselayer{1..n}.{norm1, relu1, conv1, norm2, relu2, conv2}
//   features.transition{1..3}.{norm, relu, conv, pool}
//   features.norm5
//   classifier (Linear: num_features -> num_classes)
#include <array>
#include <memory>
#include <string>
#include <vector>

#include "chex/nn/layers.h"
#include "chex/nn/module.h"
#include "chex/random.h"

namespace chex::models {

struct DenseNetConfig {
  int64_t growth_rate = 32;
  std::vector<int64_t> block_config{6, 12, 24, 16};
  int64_t num_init_features = 64;
  int64_t bn_size = 4;           // bottleneck width = bn_size * growth_rate
  int64_t num_classes = 14;
  bool memory_efficient = true;  // shared concatenation buffer, BN+ReLU recomputed in backward

  static DenseNetConfig densenet121(int64_t num_classes = 14);
  static DenseNetConfig densenet169(int64_t num_classes = 14);
  static DenseNetConfig densenet201(int64_t num_classes = 14);
  int64_t num_features() const;  // channels after the last block (1024 for DenseNet-121)
};

// Initialised as torchvision's DenseNet: kaiming_normal_ convolutions, batch norms weight 1 and
// bias 0, the classifier's bias 0 (its weight keeps nn.Linear's default).
class DenseNet : public nn::Module {
 public:
  explicit DenseNet(const DenseNetConfig& config, Generator& gen = default_generator());

  // Logits [N, num_classes] for images [N, 3, H, W] (224x224 in CheXNet). Sigmoid is applied by
  // the loss in training and by predict at inference.
  Tensor forward(const Tensor& images) override;
  // The final feature maps after norm5 + ReLU, [N, num_features, H/32, W/32], and the logits from
  // them, in one pass (class activation maps need both).
  struct Outputs {
    Tensor features;
    Tensor logits;
  };
  Outputs forward_with_features(const Tensor& images);

  const DenseNetConfig& config() const { return config_; }
  // The head's linear layer: class activation maps are its weights applied at every position.
  const nn::Linear& classifier() const { return *classifier_; }

 private:
  DenseNetConfig config_;
  std::shared_ptr<nn::Conv2d> conv0_;
  std::shared_ptr<nn::BatchNorm2d> norm0_, norm5_;
  std::vector<std::shared_ptr<nn::Module>> body_;  // dense blocks and transitions, in order
  std::shared_ptr<nn::Linear> classifier_;
};

// The 14 ChestX-ray14 labels in CheXNet's output order.
inline constexpr std::array<const char*, 14> kChestXray14Labels = {
    "Atelectasis", "Cardiomegaly", "Effusion",      "Infiltration", "Mass",     "Nodule",   "Pneumonia",
    "Pneumothorax", "Consolidation", "Edema",       "Emphysema",    "Fibrosis", "Pleural_Thickening", "Hernia"};

}  // namespace chex::models

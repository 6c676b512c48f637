#pragma once
// CheXNet's test-time inputs, exactly as the PyTorch pipelines that published models were evaluated
// with build them from a PIL image:
//   none:    Resize((224, 224)) + ToTensor + Normalize(ImageNet)                  -> 1 view
//   tencrop: Resize(256) + TenCrop(224) + ToTensor + Normalize(ImageNet) per crop -> 10 views
//            (arnoweng/CheXNet; the views' probabilities are averaged)
#include <string>
#include <vector>

#include "chex/data/image.h"

namespace chex::models {

enum class TestTimeAugmentation { None, TenCrop };

// "none" or "tencrop"; throws chex::Error naming the accepted values otherwise.
TestTimeAugmentation parse_test_time_augmentation(const std::string& text);
int views_per_image(TestTimeAugmentation tta);

inline constexpr int kChexNetInputSize = 224;
inline constexpr int kChexNetTenCropResize = 256;

// views_per_image(tta) * 3 * 224 * 224 floats, view after view, each channel-major (CHW).
std::vector<float> chexnet_views(const data::Image& image, TestTimeAugmentation tta);
// Resize((size, size)) + ToTensor + Normalize(ImageNet): 3 * size * size floats (CHW). For models
// trained at another size than 224 (train_chexnet --image-size, the demo's 96).
std::vector<float> chexnet_view(const data::Image& image, int size);

}  // namespace chex::models

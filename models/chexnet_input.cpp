#include "models/chexnet_input.h"

#include "chex/data/resize.h"
#include "chex/data/transforms.h"
#include "chex/error.h"

namespace chex::models {

TestTimeAugmentation parse_test_time_augmentation(const std::string& text) {
  if (text == "none") return TestTimeAugmentation::None;
  if (text == "tencrop") return TestTimeAugmentation::TenCrop;
  CHEX_FAIL("unknown test-time augmentation '", text, "' (use none or tencrop)");
}

int views_per_image(TestTimeAugmentation tta) { return tta == TestTimeAugmentation::TenCrop ? 10 : 1; }

std::vector<float> chexnet_views(const data::Image& image, TestTimeAugmentation tta) {
  constexpr size_t kView = size_t{3} * kChexNetInputSize * kChexNetInputSize;
  std::vector<float> out(kView * views_per_image(tta));
  if (tta == TestTimeAugmentation::None) {
    out = chexnet_view(image, kChexNetInputSize);
  } else {
    const auto crops = data::ten_crop(data::resize_shorter_side(image, kChexNetTenCropResize), kChexNetInputSize);
    for (size_t i = 0; i < crops.size(); ++i)
      data::write_normalized_chw(crops[i], data::kImageNetNormalization, out.data() + i * kView);
  }
  return out;
}

std::vector<float> chexnet_view(const data::Image& image, int size) {
  std::vector<float> out(size_t{3} * size * size);
  data::write_normalized_chw(data::resize_bilinear(image, size, size), data::kImageNetNormalization, out.data());
  return out;
}

}  // namespace chex::models

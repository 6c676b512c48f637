// chex's image pipeline against PIL + torchvision: the references are generated at test time by
// tests/reference/make_image_references.py into the build tree, from real NIH radiographs (when
// ../shared/data is present) and from synthetic files in every pixel format.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>

#include "chex/data/image.h"
#include "chex/data/resize.h"
#include "chex/data/transforms.h"
#include "chex/io/safetensors.h"

using namespace chex;
namespace fs = std::filesystem;

namespace {

struct Reference {
  std::string file, source, kind;
  std::map<std::string, Tensor> t;
};

std::vector<Reference> references() {
  std::vector<Reference> out;
  for (const auto& entry : fs::directory_iterator(CHEX_IMAGE_REF_DIR)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("image_", 0) != 0 || entry.path().extension() != ".safetensors") continue;
    io::SafetensorsFile f = io::load_safetensors(entry.path().string());
    Reference r{name, f.metadata.at("source"), f.metadata.at("kind"), {}};
    for (auto& [key, tensor] : f.tensors) r.t[key] = tensor;
    out.push_back(std::move(r));
  }
  std::sort(out.begin(), out.end(), [](const Reference& a, const Reference& b) { return a.file < b.file; });
  INFO("references in " << CHEX_IMAGE_REF_DIR << " (made by tests/reference/make_image_references.py)");
  REQUIRE(!out.empty());
  return out;
}

data::Image image_from(const Tensor& hwc) {
  REQUIRE(hwc.dim() == 3);
  REQUIRE(hwc.size(2) == 3);
  data::Image img = data::make_image(static_cast<int>(hwc.size(1)), static_cast<int>(hwc.size(0)));
  const std::vector<float> v = hwc.to_vector();
  for (size_t i = 0; i < v.size(); ++i) img.pixels[i] = static_cast<uint8_t>(v[i]);
  return img;
}

struct PixelDiff {
  size_t differing = 0;
  int max = 0;
};

PixelDiff compare(const data::Image& ours, const data::Image& ref) {
  REQUIRE(ours.width == ref.width);
  REQUIRE(ours.height == ref.height);
  PixelDiff d;
  for (size_t i = 0; i < ours.pixels.size(); ++i) {
    const int e = std::abs(int{ours.pixels[i]} - int{ref.pixels[i]});
    d.differing += e != 0;
    d.max = std::max(d.max, e);
  }
  return d;
}

float max_abs_difference(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  const std::vector<float> x = a.to_vector(), y = b.to_vector();
  float m = 0;
  for (size_t i = 0; i < x.size(); ++i) m = std::max(m, std::abs(x[i] - y[i]));
  return m;
}

// Fails beyond one grey level and, where `exact`, on any difference; says how many and by how much.
void check_pixels(const std::string& what, const data::Image& ours, const data::Image& ref, bool exact) {
  const PixelDiff d = compare(ours, ref);
  INFO(what << ": " << d.differing << " of " << ours.pixels.size() << " values differ from PIL/torchvision, by at most "
            << d.max << " grey level" << (d.max == 1 ? "" : "s"));
  CHECK(d.max <= 1);
  if (exact) CHECK(d.differing == 0);
  if (d.differing != 0) WARN(what << ": " << d.differing << " values differ by up to " << d.max);
}

constexpr float kNormalizedTolerance = 1e-6f;

}  // namespace

TEST_CASE("images: NIH radiographs are among the references (or say that they are absent)", "[image][torch]") {
  size_t nih = 0;
  for (const Reference& r : references()) nih += r.kind.rfind("nih", 0) == 0;
  if (nih == 0) {
    WARN("../shared/data/nih-sample is absent: the NIH radiograph comparisons did NOT run (synthetic files only)");
    return;
  }
  CHECK(nih >= 4);
}

TEST_CASE("images: decoding equals PIL's Image.open().convert('RGB')", "[image][torch]") {
  for (const Reference& r : references()) {
    INFO(r.file << " (" << r.kind << "): " << r.source);
    data::ImageSource source;
    const data::Image ours = data::load_image(r.source, {}, &source);
    const data::Image ref = image_from(r.t.at("decoded"));
    // PNG through stb (lossless), JPEG through libjpeg-turbo with PIL's settings: both exact.
    check_pixels("decoded " + r.kind, ours, ref, /*exact=*/true);
    if (r.kind == "grey16") CHECK(source.bits_per_sample == 16);
  }
}

TEST_CASE("images: Resize((224, 224)) of PIL's decoded image equals torchvision's, value for value", "[image][torch]") {
  for (const Reference& r : references()) {
    INFO(r.file << " (" << r.kind << ")");
    const data::Image decoded = image_from(r.t.at("decoded"));
    check_pixels("resize 224x224 " + r.kind, data::resize_bilinear(decoded, 224, 224), image_from(r.t.at("resized")),
                 /*exact=*/true);
    check_pixels("resize shorter side 256 " + r.kind, data::resize_shorter_side(decoded, 256),
                 image_from(r.t.at("resized256")), /*exact=*/true);
  }
}

TEST_CASE("images: the whole pipeline (decode, resize, normalise) matches torchvision's", "[image][torch]") {
  for (const Reference& r : references()) {
    INFO(r.file << " (" << r.kind << "): " << r.source);
    const data::Image resized = data::resize_bilinear(data::load_image(r.source), 224, 224);
    check_pixels("pipeline 224x224 " + r.kind, resized, image_from(r.t.at("resized")), /*exact=*/true);
    // Normalisation alone, from torchvision's own 8-bit values: the same float32 arithmetic.
    const Tensor normalized = data::to_normalized_tensor(image_from(r.t.at("resized")));
    const float error = max_abs_difference(normalized, r.t.at("normalized"));
    INFO("ToTensor + Normalize: max |ours - torchvision| = " << error << " (tolerance " << kNormalizedTolerance << ")");
    CHECK(error <= kNormalizedTolerance);
    CHECK(max_abs_difference(data::to_normalized_tensor(resized), r.t.at("normalized")) <= kNormalizedTolerance);
  }
}

TEST_CASE("images: Resize(256) + TenCrop(224) crops match torchvision's, in its order", "[image][torch]") {
  size_t checked = 0;
  for (const Reference& r : references()) {
    if (!r.t.contains("tencrop")) continue;
    INFO(r.file << " (" << r.kind << ")");
    const auto crops = data::ten_crop(image_from(r.t.at("resized256")), 224);
    const Tensor& ref = r.t.at("tencrop");
    REQUIRE(ref.shape() == Shape{10, 3, 224, 224});
    for (int i = 0; i < 10; ++i) {
      INFO("crop " << i);
      const float error = max_abs_difference(data::to_normalized_tensor(crops[i]), ref.narrow(0, i, 1).reshape({3, 224, 224}));
      CHECK(error <= kNormalizedTolerance);
    }
    ++checked;
  }
  CHECK(checked >= 2);
}

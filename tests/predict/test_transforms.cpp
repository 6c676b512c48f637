// Resizing, crops and normalisation: properties and torchvision's rounding rules (the pixel-exact
// comparison with Pillow is in test_image_reference.cpp).
#include <catch2/catch.hpp>

#include "chex/data/resize.h"
#include "chex/data/transforms.h"
#include "chex/error.h"

using namespace chex;

namespace {

// Pixel (x, y) holds (x, y, x + y) mod 256: crops and flips are recognisable from their values.
data::Image coordinates(int width, int height) {
  data::Image img = data::make_image(width, height);
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      uint8_t* p = img.row(y) + x * 3;
      p[0] = static_cast<uint8_t>(x), p[1] = static_cast<uint8_t>(y), p[2] = static_cast<uint8_t>(x + y);
    }
  return img;
}

}  // namespace

TEST_CASE("resize: same size is the identity, and a constant image stays constant at any size", "[image]") {
  const data::Image img = coordinates(37, 23);
  CHECK(data::resize_bilinear(img, 37, 23).pixels == img.pixels);
  data::Image flat = data::make_image(1024, 1024);
  std::fill(flat.pixels.begin(), flat.pixels.end(), uint8_t{173});
  for (auto [w, h] : {std::pair{224, 224}, std::pair{256, 311}, std::pair{3000, 7}, std::pair{1, 1}}) {
    const data::Image out = data::resize_bilinear(flat, w, h);
    CHECK(out.width == w);
    CHECK(out.height == h);
    CHECK(std::all_of(out.pixels.begin(), out.pixels.end(), [](uint8_t v) { return v == 173; }));
  }
  CHECK_THROWS_AS(data::resize_bilinear(img, 0, 5), Error);
}

TEST_CASE("resize: a horizontal ramp stays a ramp, halving averages neighbours", "[image]") {
  data::Image ramp = data::make_image(8, 2);
  for (int y = 0; y < 2; ++y)
    for (int x = 0; x < 8; ++x) std::fill_n(ramp.row(y) + x * 3, 3, static_cast<uint8_t>(x * 10));
  const data::Image half = data::resize_bilinear(ramp, 4, 2);
  // Reduction by 2: the triangle spans 2 pixels each side of the centre (x = 1, 3, 5, 7 of the input),
  // weights 1/8, 3/8, 3/8, 1/8 inside the image, renormalised at the borders.
  // Output 1: inputs 1..4 -> (10 + 3*20 + 3*30 + 40) / 8 = 25.
  CHECK(half.at(1, 0, 0) == 25);
  CHECK(half.at(2, 1, 2) == 45);
  // Output 0: inputs 0..2 with weights 3/7, 3/7, 1/7 -> (0 + 30 + 20) / 7 = 7.14 -> 7.
  CHECK(half.at(0, 0, 0) == 7);
}

TEST_CASE("resize: torchvision's Resize(int) truncates the longer side", "[image]") {
  CHECK(data::shorter_side_size(1024, 1024, 256) == std::pair{256, 256});
  CHECK(data::shorter_side_size(2048, 2500, 256) == std::pair{256, 312});  // 312.5 -> 312
  CHECK(data::shorter_side_size(2500, 2048, 256) == std::pair{312, 256});
  CHECK(data::shorter_side_size(3, 1000, 256) == std::pair{256, 85333});
  CHECK(data::shorter_side_size(299, 300, 256) == std::pair{256, 256});  // 256.856 -> 256
}

TEST_CASE("crops: five and ten crops at torchvision's offsets, centre rounded half to even", "[image]") {
  const data::Image img = coordinates(259, 261);  // (259-224)/2 = 17.5 -> 18, (261-224)/2 = 18.5 -> 18
  const auto c = data::five_crop(img, 224);
  CHECK(c[0].at(0, 0, 0) == 0);
  CHECK(c[0].at(0, 0, 1) == 0);
  CHECK(c[1].at(0, 0, 0) == 35);   // top right: left = 259 - 224
  CHECK(c[2].at(0, 0, 1) == 37);   // bottom left: top = 261 - 224
  CHECK(c[3].at(0, 0, 0) == 35);
  CHECK(c[3].at(0, 0, 1) == 37);
  CHECK(c[4].at(0, 0, 0) == 18);   // centre
  CHECK(c[4].at(0, 0, 1) == 18);
  CHECK(data::center_crop(coordinates(257, 256), 224).at(0, 0, 0) == 16);  // 16.5 -> 16
  CHECK(data::center_crop(coordinates(256, 256), 224).at(0, 0, 0) == 16);

  const auto t = data::ten_crop(img, 224);
  for (int i = 0; i < 5; ++i) CHECK(t[i].pixels == c[i].pixels);
  // The last five are crops of the mirrored image: its top-left crop is the original's top-right, mirrored.
  CHECK(t[5].pixels == data::hflip(c[1]).pixels);
  CHECK(t[6].pixels == data::hflip(c[0]).pixels);
  CHECK(t[9].at(0, 0, 0) == 258 - 18);  // column 18 of the mirrored image is the original's column 258 - 18
  CHECK_THROWS_WITH(data::five_crop(coordinates(200, 300), 224), Catch::Contains("does not fit"));
  CHECK_THROWS_WITH(data::crop(img, 250, 0, 10, 10), Catch::Contains("does not lie inside"));
}

TEST_CASE("normalise: (v / 255 - mean) / std per channel into CHW", "[image]") {
  data::Image img = data::make_image(2, 1);
  img.pixels = {0, 128, 255, 10, 20, 30};
  const Tensor t = data::to_normalized_tensor(img);
  REQUIRE(t.shape() == Shape{3, 1, 2});
  const std::vector<float> v = t.to_vector();
  CHECK(v[0] == (0.f / 255.f - 0.485f) / 0.229f);
  CHECK(v[1] == (10.f / 255.f - 0.485f) / 0.229f);
  CHECK(v[2] == (128.f / 255.f - 0.456f) / 0.224f);
  CHECK(v[5] == (30.f / 255.f - 0.406f) / 0.225f);
}

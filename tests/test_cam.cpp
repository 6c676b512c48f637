// CAM library pieces on the CPU: Grad-CAM through autograd against its closed form for DenseNet's
// linear head, bilinear upsampling against PyTorch's values, boxes from hand-made heatmaps, the
// localization scores, the .npy encoding and the NIH box file. The CAM formula itself (on every
// device) is in tests/device/test_device_cam.cpp.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "chex/autograd.h"
#include "chex/data/box_file.h"
#include "chex/error.h"
#include "chex/io/npy.h"
#include "chex/nn/layers.h"
#include "chex/ops.h"
#include "models/cam.h"
#include "models/cam_overlay.h"

using namespace chex;
using Catch::Matchers::Contains;

TEST_CASE("Grad-CAM through autograd is ReLU(CAM) / (h*w) for a global-average-pool + linear head", "[cam]") {
  Generator gen(7);
  const int64_t n = 2, k = 6, h = 3, w = 4, classes = 5;
  nn::Linear classifier(k, classes, true, gen);
  // Signed features (the real ones are post-ReLU, but the identity holds for any) so that ReLU bites.
  const Tensor features = Tensor::randn({n, k, h, w}, gen);
  const models::GradCam g = models::grad_cam(features, classifier);
  REQUIRE(g.maps.shape() == Shape{n, classes, h, w});
  REQUIRE(g.weights.shape() == Shape{n, classes, k});
  const std::vector<float> alpha = g.weights.to_vector(), weight = classifier.weight().to_vector();
  // d logit_c / d f_k(y, x) = w_{c,k} / (h*w) at every position, so its spatial mean is w_{c,k} / (h*w).
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < classes; ++c)
      for (int64_t j = 0; j < k; ++j)
        CHECK(alpha[(i * classes + c) * k + j] ==
              Approx(weight[c * k + j] / static_cast<float>(h * w)).epsilon(1e-5).margin(1e-8));
  const std::vector<float> cam = models::class_activation_maps(features, classifier.weight()).to_vector();
  const std::vector<float> grad = g.maps.to_vector();
  int negative = 0;
  for (size_t p = 0; p < cam.size(); ++p) {
    negative += cam[p] < 0;
    CHECK(grad[p] == Approx(std::max(cam[p], 0.f) / static_cast<float>(h * w)).epsilon(1e-5).margin(1e-7));
  }
  CHECK(negative > 0);  // the ReLU was exercised
  // Autograd was left as it was found.
  CHECK(GradMode::enabled());
  CHECK_FALSE(features.requires_grad());
  // Inside a caller's NoGradGuard (as compute_cams runs the body) the head is still differentiated.
  NoGradGuard no_grad;
  CHECK(models::grad_cam(features, classifier).maps.to_vector() == grad);
  CHECK_FALSE(GradMode::enabled());
}

TEST_CASE("bilinear upsampling matches torch.nn.functional.interpolate(align_corners=False)", "[cam]") {
  // Values printed by PyTorch 1.13: F.interpolate(x, size=..., mode='bilinear', align_corners=False).
  const models::Heatmap square{2, 2, {1, 2, 3, 4}};
  const std::vector<float> square_want = {1, 1.25, 1.75, 2, 1.5, 1.75, 2.25, 2.5,
                                          2.5, 2.75, 3.25, 3.5, 3, 3.25, 3.75, 4};
  const models::Heatmap up = models::upsample_bilinear(square, 4, 4);
  REQUIRE(up.values.size() == square_want.size());
  for (size_t i = 0; i < square_want.size(); ++i) CHECK(up.values[i] == Approx(square_want[i]).margin(1e-6));

  // A 3 x 2 map (width x height) to 7 x 5: scale factors that are not integers, signed values.
  const models::Heatmap small{3, 2, {0.5f, -1.0f, 2.0f, 3.0f, 0.25f, -2.5f}};
  const std::vector<float> want = {
      0.5f,  0.285714269f, -0.357142895f, -1.f,          0.285714388f,  1.57142854f,  2.f,
      0.75f, 0.517857194f, -0.178571463f, -0.87499994f,  0.164285734f,  1.20357144f,  1.54999995f,
      1.75f, 1.44642854f,  0.535714209f,  -0.375f,       -0.321428567f, -0.267857134f, -0.25f,
      2.75f, 2.375f,       1.25f,         0.125000015f,  -0.807142973f, -1.73928583f, -2.05000019f,
      3.f,   2.60714293f,  1.42857134f,   0.24999997f,   -0.928571522f, -2.10714293f, -2.5f};
  const models::Heatmap big = models::upsample_bilinear(small, 7, 5);
  REQUIRE(big.width == 7);
  REQUIRE(big.height == 5);
  for (size_t i = 0; i < want.size(); ++i) {
    INFO("pixel " << i % 7 << ", " << i / 7);
    CHECK(big.values[i] == Approx(want[i]).margin(1e-6));
  }
  CHECK_THROWS_WITH(models::upsample_bilinear(small, 0, 5), Contains("upsample_bilinear"));
}

TEST_CASE("boxes are the thresholded connected regions, ranked by heat, in pixel coordinates", "[cam]") {
  // A 10 x 6 map (non-square): a hot 2 x 2 blob and a warm, wider 3 x 3 blob on a zero background
  // (their heat sums 4 * 1.0 and 9 * 0.6: the warm one ranks first), joined only diagonally to a
  // corner pixel at 0.55.
  models::Heatmap map{10, 6, std::vector<float>(60, 0.f)};
  const auto set = [&](int x, int y, float v) { map.values[static_cast<size_t>(y) * 10 + x] = v; };
  for (int y = 1; y <= 2; ++y)
    for (int x = 1; x <= 2; ++x) set(x, y, 1.0f);
  for (int y = 2; y <= 4; ++y)
    for (int x = 5; x <= 7; ++x) set(x, y, 0.6f);
  set(8, 5, 0.55f);  // 8-connected to (7, 4)
  const std::vector<models::HeatBox> boxes = models::heat_boxes(map, 0.5);
  REQUIRE(boxes.size() == 2);
  CHECK(boxes[0].box.x == 5);
  CHECK(boxes[0].box.y == 2);
  CHECK(boxes[0].box.w == 4);
  CHECK(boxes[0].box.h == 4);
  CHECK(boxes[0].pixels == 10);
  CHECK(boxes[0].heat == Approx(9 * 0.6 + 0.55));
  CHECK(boxes[1].box.x == 1);
  CHECK(boxes[1].box.y == 1);
  CHECK(boxes[1].box.w == 2);
  CHECK(boxes[1].box.h == 2);
  CHECK(boxes[1].heat == Approx(4.0));
  // A higher threshold keeps only the hot blob.
  const std::vector<models::HeatBox> hot = models::heat_boxes(map, 0.7);
  REQUIRE(hot.size() == 1);
  CHECK(hot[0].box.x == 1);
  // The threshold is on the map scaled to its range: an offset changes nothing.
  for (float& v : map.values) v -= 3.f;
  CHECK(models::heat_boxes(map, 0.5).size() == 2);
  // Upsampled to an original size of 25 x 15, the regions are found in that image's pixels.
  const models::Heatmap original = models::upsample_bilinear(map, 25, 15);
  const models::Box top = models::heat_boxes(original, 0.9).front().box;
  CHECK(top.x >= 2);
  CHECK(top.x + top.w <= 8);
  CHECK(top.y + top.h <= 8);
  // A constant map has no hotter place.
  const std::vector<models::HeatBox> flat = models::heat_boxes(models::Heatmap{4, 3, std::vector<float>(12, 2.f)}, 0.5);
  REQUIRE(flat.size() == 1);
  CHECK(flat[0].box.w == 4);
  CHECK(flat[0].box.h == 3);
  CHECK_THROWS_WITH(models::heat_boxes(map, 0.0), Contains("threshold"));
}

TEST_CASE("IoU, IoBB and the pointing game follow Wang et al.'s definitions", "[cam]") {
  const models::Box truth{10, 10, 20, 10};     // area 200
  const models::Box predicted{20, 15, 20, 10};  // area 200, overlap 10 x 5 = 50
  CHECK(models::intersection_over_union(predicted, truth) == Approx(50.0 / 350.0));
  CHECK(models::intersection_over_predicted(predicted, truth) == Approx(0.25));
  CHECK(models::intersection_over_predicted({12, 12, 2, 2}, truth) == Approx(1.0));  // inside: IoBB 1, IoU small
  CHECK(models::intersection_over_union({12, 12, 2, 2}, truth) == Approx(4.0 / 200.0));
  CHECK(models::intersection_over_union({0, 0, 5, 5}, truth) == 0.0);
  CHECK(models::inside({10, 10}, truth));
  CHECK_FALSE(models::inside({9, 10}, truth));  // pixel centre at 9.5
  CHECK(models::inside({29, 19}, truth));

  models::Heatmap map{40, 30, std::vector<float>(1200, 0.f)};
  map.values[12 * 40 + 15] = 5.f;
  const models::Pixel peak = models::heatmap_argmax(map);
  CHECK(peak.x == 15);
  CHECK(peak.y == 12);

  models::LocalizationCounts counts;
  counts.add(truth, predicted, peak, 40, 30);           // IoU 0.14, IoBB 0.25, pointed
  counts.add(truth, {0, 0, 5, 5}, {0, 0}, 40, 30);      // nothing
  counts.add({30, 20, 20, 20}, {30, 20, 10, 10}, {35, 25}, 40, 30);  // truth clipped to 10 x 10 in the image
  CHECK(counts.boxes == 3);
  CHECK(counts.iou_hits[0] == 2);   // >= 0.1: 0.143 and 0.25 (100 / 400)
  CHECK(counts.iou_hits[1] == 1);   // >= 0.25
  CHECK(counts.iobb_hits[1] == 2);  // >= 0.2: 0.25 and 1
  CHECK(counts.iobb_hits[6] == 1);  // >= 0.7
  CHECK(counts.pointing_hits == 2);
  CHECK(counts.random_point_sum == Approx(200.0 / 1200 + 200.0 / 1200 + 100.0 / 1200));
}

TEST_CASE("heatmaps are written as NumPy .npy version 1.0", "[cam][npy]") {
  const std::vector<float> values = {1.5f, -2.f, 0.f, 3.25f, 7.f, 8.f};
  const std::string bytes = io::encode_npy(values, {2, 3});
  REQUIRE(bytes.size() % 64 == 24);  // a 64-byte-aligned header, then 6 floats
  CHECK(bytes.compare(0, 8, std::string("\x93NUMPY\x01\x00", 8)) == 0);
  const size_t header_len = static_cast<uint8_t>(bytes[8]) | static_cast<size_t>(static_cast<uint8_t>(bytes[9])) << 8;
  CHECK((10 + header_len) % 64 == 0);
  const std::string header = bytes.substr(10, header_len);
  CHECK(header.starts_with("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"));
  CHECK(header.back() == '\n');
  std::vector<float> back(6);
  std::memcpy(back.data(), bytes.data() + 10 + header_len, 24);
  CHECK(back == values);
  CHECK_THAT(io::encode_npy(values, {6}).substr(10), Contains("'shape': (6,), }"));
  CHECK_THROWS_WITH(io::encode_npy(values, {4, 2}), Contains("6 values for 8"));
}

TEST_CASE("the NIH box file: Infiltrate is Infiltration, errors name the file and the line", "[cam][box_file]") {
  const std::string text =
      "Image Index,Finding Label,Bbox [x,y,w,h],,,\n"
      "00013118_008.png,Atelectasis,225.084745762712,547.019216763771,86.7796610169491,79.1864406779661\n"
      "00014716_007.png,Infiltrate,1.5,2,30,40,,\n";
  const std::vector<data::BoxRecord> boxes = data::parse_box_csv(text, "BBox_List_2017.csv");
  REQUIRE(boxes.size() == 2);
  CHECK(boxes[0].image == "00013118_008.png");
  CHECK(boxes[0].label == 0);
  CHECK(boxes[0].x == Approx(225.084745762712));
  CHECK(boxes[0].h == Approx(79.1864406779661));
  CHECK(boxes[1].label == 3);  // Infiltration
  CHECK(boxes[1].line == 3);
  CHECK_THROWS_WITH(data::parse_box_csv("Image Index,Finding Label,Bbox [x,y,w,h],,,\nx.png,Tumour,1,2,3,4\n", "b.csv"),
                    Contains("b.csv:2: unknown finding 'Tumour'"));
  CHECK_THROWS_WITH(data::parse_box_csv("Image Index,Finding Label,Bbox [x,y,w,h],,,\nx.png,Mass,1,two,3,4\n", "b.csv"),
                    Contains("b.csv:2: bad y 'two'"));
  CHECK_THROWS_WITH(data::parse_box_csv("a,b\n", "b.csv"), Contains("b.csv:1: expected the header"));
}

TEST_CASE("the overlay keeps the radiograph's size and colours by heat", "[cam][overlay]") {
  CHECK(models::viridis(0.f) == models::Rgb{0x44, 0x01, 0x54});
  CHECK(models::viridis(1.f) == models::Rgb{0xfd, 0xe7, 0x25});
  CHECK(models::viridis(0.5f) == models::Rgb{0x21, 0x91, 0x8c});
  data::Image xray = data::make_image(300, 200);
  for (auto& p : xray.pixels) p = 128;
  models::Heatmap heat{300, 200, std::vector<float>(300 * 200, 0.f)};
  heat.values[150 * 300 + 250] = 1.f;  // the hottest pixel, far from the caption and the box
  const models::Box box{10, 100, 50, 40};
  const data::Image overlay = models::render_cam_overlay(xray, heat, "Mass 42.0%", &box);
  REQUIRE(overlay.width == 300);
  REQUIRE(overlay.height == 200);
  // The hottest pixel takes viridis's yellow at 60%; a cold one stays grey; the box is red.
  CHECK(overlay.at(250, 150, 0) == static_cast<uint8_t>(std::lround(0.4 * 128 + 0.6 * 0xfd)));
  CHECK(overlay.at(200, 50, 0) == 128);
  CHECK(overlay.at(10, 120, 0) == 255);
  CHECK(overlay.at(10, 120, 1) == 64);
  // The caption is white on black at the top left.
  bool white = false, black = false;
  for (int y = 0; y < 12; ++y)
    for (int x = 0; x < 60; ++x) {
      white |= overlay.at(x, y, 0) == 255 && overlay.at(x, y, 1) == 255;
      black |= overlay.at(x, y, 0) == 0 && overlay.at(x, y, 2) == 0;
    }
  CHECK(white);
  CHECK(black);
}

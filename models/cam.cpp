#include "models/cam.h"

#include <algorithm>
#include <cmath>

#include "chex/autograd.h"
#include "chex/error.h"
#include "chex/ops.h"

namespace chex::models {

CamMethod parse_cam_method(const std::string& text) {
  if (text == "cam") return CamMethod::Cam;
  if (text == "gradcam") return CamMethod::GradCam;
  CHEX_FAIL("unknown CAM method '", text, "': use cam or gradcam");
}

Tensor class_activation_maps(const Tensor& features, const Tensor& classifier_weight) {
  CHEX_CHECK(features.defined() && features.dim() == 4 && classifier_weight.defined() && classifier_weight.dim() == 2 &&
                 classifier_weight.size(1) == features.size(1),
             "class_activation_maps: expected features [N, K, h, w] and weights [C, K], got ",
             features.defined() ? shape_str(features.shape()) : "undefined", " and ",
             classifier_weight.defined() ? shape_str(classifier_weight.shape()) : "undefined");
  // A 1x1 convolution is Σ_k w_{c,k} f_k at every position: GEMM on the CPU, cuDNN on CUDA.
  const Tensor kernel =
      classifier_weight.contiguous().reshape({classifier_weight.size(0), classifier_weight.size(1), 1, 1});
  return ops::conv2d(features, kernel.to(features.device()));
}

GradCam grad_cam(const Tensor& features, const nn::Linear& classifier) {
  CHEX_CHECK(features.defined() && features.dim() == 4, "grad_cam: expected features [N, K, h, w], got ",
             features.defined() ? shape_str(features.shape()) : "undefined");
  const int64_t n = features.size(0), k = features.size(1), h = features.size(2), w = features.size(3);
  const int64_t classes = classifier.weight().size(0);
  const Device device = features.device();
  const Tensor weight = classifier.weight().detach();
  const Tensor bias = classifier.bias().defined() ? classifier.bias().detach() : Tensor();
  EnableGradGuard grad_on;
  std::vector<float> alpha(static_cast<size_t>(n * classes * k));
  for (int64_t c = 0; c < classes; ++c) {
    // The images are independent, so one backward of Σ_n y_{n,c} gives every image's dy_c/df.
    const Tensor leaf = features.detach().clone();
    leaf.set_requires_grad(true);
    const Tensor logits = ops::linear(ops::global_avg_pool(leaf), weight, bias);
    std::vector<float> one_hot(static_cast<size_t>(n * classes), 0.f);
    for (int64_t i = 0; i < n; ++i) one_hot[static_cast<size_t>(i * classes + c)] = 1.f;
    ops::sum(ops::mul(logits, Tensor::from_vector(one_hot, {n, classes}).to(device))).backward();
    const std::vector<float> grad = leaf.grad().to(Device::cpu()).to_vector();
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < k; ++j) {
        double total = 0;
        const float* g = grad.data() + (i * k + j) * h * w;
        for (int64_t p = 0; p < h * w; ++p) total += g[p];
        alpha[static_cast<size_t>((i * classes + c) * k + j)] = static_cast<float>(total / static_cast<double>(h * w));
      }
  }
  GradCam out;
  out.weights = Tensor::from_vector(alpha, {n, classes, k}).to(device);
  // Σ_k alpha_{n,c,k} f_{n,k}: per image a 1x1 convolution with that image's weights.
  std::vector<Tensor> maps;
  for (int64_t i = 0; i < n; ++i)
    maps.push_back(ops::relu(class_activation_maps(features.detach().narrow(0, i, 1),
                                                   out.weights.narrow(0, i, 1).reshape({classes, k}))));
  NoGradGuard no_grad;
  out.maps = maps.size() == 1 ? maps[0] : Tensor();
  if (!out.maps.defined()) {
    // Stack the per-image maps along the batch dimension through a CPU copy (small: C x h x w each).
    std::vector<float> all;
    for (const Tensor& m : maps) {
      const std::vector<float> v = m.to(Device::cpu()).to_vector();
      all.insert(all.end(), v.begin(), v.end());
    }
    out.maps = Tensor::from_vector(all, {n, classes, h, w}).to(device);
  }
  return out;
}

CamOutputs compute_cams(DenseNet& model, const Tensor& images, CamMethod method) {
  DenseNet::Outputs forward;
  {
    NoGradGuard no_grad;
    forward = model.forward_with_features(images);
  }
  CamOutputs out;
  out.logits = forward.logits;
  if (method == CamMethod::Cam) {
    NoGradGuard no_grad;
    out.maps = class_activation_maps(forward.features, model.classifier().weight().detach());
  } else {
    out.maps = grad_cam(forward.features, model.classifier()).maps;
  }
  return out;
}

Heatmap upsample_bilinear(const Heatmap& source, int width, int height) {
  CHEX_CHECK(source.width > 0 && source.height > 0 &&
                 source.values.size() == static_cast<size_t>(source.width) * source.height && width > 0 && height > 0,
             "upsample_bilinear: a ", source.width, " x ", source.height, " map (", source.values.size(),
             " values) to ", width, " x ", height);
  // Per output coordinate: the two source indices and the weight of the second (PyTorch's
  // area_pixel_compute_source_index, with the scale as input size / output size).
  struct Tap {
    int i0, i1;
    float t;
  };
  const auto taps = [](int src, int dst) {
    std::vector<Tap> out(static_cast<size_t>(dst));
    const float scale = static_cast<float>(src) / static_cast<float>(dst);
    for (int x = 0; x < dst; ++x) {
      const float s = std::max(0.f, scale * (static_cast<float>(x) + 0.5f) - 0.5f);
      const int i0 = std::min(static_cast<int>(s), src - 1);
      out[static_cast<size_t>(x)] = {i0, std::min(i0 + 1, src - 1), s - static_cast<float>(i0)};
    }
    return out;
  };
  const std::vector<Tap> tx = taps(source.width, width), ty = taps(source.height, height);
  Heatmap out{width, height, std::vector<float>(static_cast<size_t>(width) * height)};
  for (int y = 0; y < height; ++y) {
    const Tap& v = ty[static_cast<size_t>(y)];
    for (int x = 0; x < width; ++x) {
      const Tap& u = tx[static_cast<size_t>(x)];
      const float top = (1.f - u.t) * source.at(u.i0, v.i0) + u.t * source.at(u.i1, v.i0);
      const float bottom = (1.f - u.t) * source.at(u.i0, v.i1) + u.t * source.at(u.i1, v.i1);
      out.values[static_cast<size_t>(y) * width + x] = (1.f - v.t) * top + v.t * bottom;
    }
  }
  return out;
}

Heatmap class_heatmap(const Tensor& maps, int64_t image, int64_t cls, int width, int height) {
  CHEX_CHECK(maps.defined() && maps.dim() == 4 && maps.device().is_cpu() && image >= 0 && image < maps.size(0) &&
                 cls >= 0 && cls < maps.size(1),
             "class_heatmap: map ", cls, " of image ", image, " in ", maps.defined() ? maps.str() : "undefined");
  const Tensor one = maps.narrow(0, image, 1).narrow(1, cls, 1).contiguous();
  const Heatmap small{static_cast<int>(maps.size(3)), static_cast<int>(maps.size(2)),
                      std::vector<float>(one.data(), one.data() + one.numel())};
  return upsample_bilinear(small, width, height);
}

std::vector<HeatBox> heat_boxes(const Heatmap& heatmap, double threshold) {
  CHEX_CHECK(threshold > 0 && threshold <= 1, "the box threshold must be in (0, 1], not ", threshold);
  const int w = heatmap.width, h = heatmap.height;
  CHEX_CHECK(w > 0 && h > 0 && heatmap.values.size() == static_cast<size_t>(w) * h, "heat_boxes: a ", w, " x ", h,
             " heatmap with ", heatmap.values.size(), " values");
  const auto [lo_it, hi_it] = std::minmax_element(heatmap.values.begin(), heatmap.values.end());
  const double lo = *lo_it, range = static_cast<double>(*hi_it) - lo;
  if (!(range > 0))
    return {HeatBox{{0, 0, static_cast<double>(w), static_cast<double>(h)}, 1.0 * w * h, int64_t{w} * h}};
  const auto scaled = [&](size_t i) { return (heatmap.values[i] - lo) / range; };
  std::vector<int> label(heatmap.values.size(), -1);  // -1 unvisited, -2 below the threshold
  std::vector<HeatBox> boxes;
  std::vector<size_t> stack;
  for (size_t start = 0; start < label.size(); ++start) {
    if (label[start] != -1) continue;
    if (scaled(start) < threshold) {
      label[start] = -2;
      continue;
    }
    // Flood fill over the 8 neighbours.
    const int id = static_cast<int>(boxes.size());
    int x0 = w, y0 = h, x1 = -1, y1 = -1;
    HeatBox box;
    label[start] = id;
    stack.assign(1, start);
    while (!stack.empty()) {
      const size_t i = stack.back();
      stack.pop_back();
      const int x = static_cast<int>(i % static_cast<size_t>(w)), y = static_cast<int>(i / static_cast<size_t>(w));
      x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y), y1 = std::max(y1, y);
      box.heat += scaled(i);
      ++box.pixels;
      for (int dy = -1; dy <= 1; ++dy)
        for (int dx = -1; dx <= 1; ++dx) {
          const int nx = x + dx, ny = y + dy;
          if (nx < 0 || ny < 0 || nx >= w || ny >= h) continue;
          const size_t j = static_cast<size_t>(ny) * w + nx;
          if (label[j] != -1) continue;
          if (scaled(j) < threshold) {
            label[j] = -2;
            continue;
          }
          label[j] = id;
          stack.push_back(j);
        }
    }
    box.box = {static_cast<double>(x0), static_cast<double>(y0), static_cast<double>(x1 - x0 + 1),
               static_cast<double>(y1 - y0 + 1)};
    boxes.push_back(box);
  }
  // Components were found in row order of their first pixel, which breaks ties.
  std::stable_sort(boxes.begin(), boxes.end(), [](const HeatBox& a, const HeatBox& b) { return a.heat > b.heat; });
  return boxes;
}

namespace {
double overlap_area(const Box& a, const Box& b) {
  const double w = std::min(a.x + a.w, b.x + b.w) - std::max(a.x, b.x);
  const double h = std::min(a.y + a.h, b.y + b.h) - std::max(a.y, b.y);
  return w > 0 && h > 0 ? w * h : 0.0;
}
}  // namespace

double intersection_over_union(const Box& a, const Box& b) {
  const double both = overlap_area(a, b), either = a.area() + b.area() - both;
  return either > 0 ? both / either : 0.0;
}

double intersection_over_predicted(const Box& predicted, const Box& truth) {
  return predicted.area() > 0 ? overlap_area(predicted, truth) / predicted.area() : 0.0;
}

Pixel heatmap_argmax(const Heatmap& heatmap) {
  CHEX_CHECK(!heatmap.values.empty(), "heatmap_argmax: an empty heatmap");
  const auto at = std::max_element(heatmap.values.begin(), heatmap.values.end()) - heatmap.values.begin();
  return {static_cast<int>(at % heatmap.width), static_cast<int>(at / heatmap.width)};
}

bool inside(const Pixel& p, const Box& box) {
  const double cx = p.x + 0.5, cy = p.y + 0.5;
  return cx >= box.x && cx <= box.x + box.w && cy >= box.y && cy <= box.y + box.h;
}

void LocalizationCounts::add(const Box& truth, const Box& predicted, const Pixel& peak, int image_width,
                             int image_height) {
  ++boxes;
  const double iou = intersection_over_union(predicted, truth), iobb = intersection_over_predicted(predicted, truth);
  for (size_t i = 0; i < std::size(kIouThresholds); ++i) iou_hits[i] += iou >= kIouThresholds[i];
  for (size_t i = 0; i < std::size(kIobbThresholds); ++i) iobb_hits[i] += iobb >= kIobbThresholds[i];
  pointing_hits += inside(peak, truth);
  const Box image{0, 0, static_cast<double>(image_width), static_cast<double>(image_height)};
  random_point_sum += overlap_area(truth, image) / image.area();
}

void LocalizationCounts::merge(const LocalizationCounts& other) {
  boxes += other.boxes;
  for (size_t i = 0; i < std::size(kIouThresholds); ++i) iou_hits[i] += other.iou_hits[i];
  for (size_t i = 0; i < std::size(kIobbThresholds); ++i) iobb_hits[i] += other.iobb_hits[i];
  pointing_hits += other.pointing_hits;
  random_point_sum += other.random_point_sum;
}

}  // namespace chex::models

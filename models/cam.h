#pragma once
// Class activation maps (Zhou et al. 2016) and Grad-CAM (Selvaraju et al. 2017) for DenseNet, the
// heatmaps' upsampling and boxes, and the localization scores of Wang et al. 2017 (ChestX-ray8).
//
// DenseNet's head is global average pooling then a linear layer, so the logit of class c is
//   y_c = b_c + mean over positions of M_c,   M_c = Σ_k w_{c,k} f_k
// where f_k are the final feature maps (after norm5 + ReLU): M_c is the CAM, a 1x1 convolution of
// the features with the classifier's weights, computed from the same forward pass as the logits.
#include <cstdint>
#include <iterator>
#include <string>
#include <vector>

#include "chex/tensor.h"
#include "models/densenet.h"

namespace chex::models {

enum class CamMethod { Cam, GradCam };
// "cam" or "gradcam"; throws chex::Error naming the accepted values otherwise.
CamMethod parse_cam_method(const std::string& text);

// M_c for every class: features [N, K, h, w], classifier weight [C, K] -> [N, C, h, w], on the
// features' device.
Tensor class_activation_maps(const Tensor& features, const Tensor& classifier_weight);

// Grad-CAM of every class through the engine's autograd: the features are taken as a leaf, the head
// (global average pooling, classifier) is run on them and each class's logit is backpropagated:
//   alpha_{c,k} = mean over positions of dy_c/df_k,   map_c = ReLU(Σ_k alpha_{c,k} f_k).
struct GradCam {
  Tensor maps;     // [N, C, h, w]
  Tensor weights;  // alpha [N, C, K]
};
GradCam grad_cam(const Tensor& features, const nn::Linear& classifier);

// One forward pass of `model` (in eval mode) on images [N, 3, H, W]: the logits [N, C] and the
// maps [N, C, h, w] of `method`, on the images' device.
struct CamOutputs {
  Tensor logits;
  Tensor maps;
};
CamOutputs compute_cams(DenseNet& model, const Tensor& images, CamMethod method);

// A heatmap on the CPU, row-major: values[y * width + x].
struct Heatmap {
  int width = 0;
  int height = 0;
  std::vector<float> values;
  float at(int x, int y) const { return values[static_cast<size_t>(y) * width + x]; }
};

// The map of class `cls` of image `image` in maps [N, C, h, w] (on the CPU), upsampled to
// width x height as upsample_bilinear does.
Heatmap class_heatmap(const Tensor& maps, int64_t image, int64_t cls, int width, int height);

// Bilinear resampling with half-pixel centres, as torch.nn.functional.interpolate(mode='bilinear',
// align_corners=False) and cv2.resize do: output pixel x samples the source at
// (x + 0.5) * src_width / width - 0.5 (clamped at 0), and likewise in y.
Heatmap upsample_bilinear(const Heatmap& source, int width, int height);

// A box in image pixels, (x, y) the top-left corner, as in NIH's BBox_List_2017.csv.
struct Box {
  double x = 0, y = 0, w = 0, h = 0;
  double area() const { return w * h; }
};

// A connected region of a heatmap above its threshold.
struct HeatBox {
  Box box;            // the region's bounding box, whole pixels
  double heat = 0;    // Σ over the region of the heatmap scaled to 0..1 (what the boxes are ranked by)
  int64_t pixels = 0;
};

// The regions where the heatmap, scaled to 0..1 (its minimum to its maximum), is at least
// `threshold` (a fraction of the maximum, in (0, 1]): 8-connected components, hottest first (ties:
// top to bottom, left to right). A constant heatmap has no hotter place, so it gives one box, the whole map.
// chex cam and localize run it on the map upsampled to the original image, so that boxes are whole
// pixels of that image rather than scaled-up pixels of the 224 input.
std::vector<HeatBox> heat_boxes(const Heatmap& heatmap, double threshold);

// Localization scores (Wang et al. 2017): IoU = area(A ∩ B) / area(A ∪ B), and IoBB =
// area(pred ∩ truth) / area(pred), the fraction of the predicted box inside the true one.
double intersection_over_union(const Box& a, const Box& b);
double intersection_over_predicted(const Box& predicted, const Box& truth);
// The pixel with the largest value (the first in row order among equals).
struct Pixel {
  int x = 0, y = 0;
};
Pixel heatmap_argmax(const Heatmap& heatmap);
// Whether the pixel's centre lies inside the box.
bool inside(const Pixel& p, const Box& box);

// The thresholds of Wang et al.'s table.
inline constexpr double kIouThresholds[] = {0.1, 0.25, 0.5, 0.75};
inline constexpr double kIobbThresholds[] = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7};

// Counts for one class (or all): how many true boxes were scored, and how many of them were hit.
struct LocalizationCounts {
  int64_t boxes = 0;
  int64_t iou_hits[std::size(kIouThresholds)] = {};
  int64_t iobb_hits[std::size(kIobbThresholds)] = {};
  int64_t pointing_hits = 0;
  double random_point_sum = 0;  // Σ area(truth ∩ image) / area(image): a uniformly random point's expected hits

  // Scores one true box against a heatmap of an image of that size and its top predicted box.
  void add(const Box& truth, const Box& predicted, const Pixel& peak, int image_width, int image_height);
  void merge(const LocalizationCounts& other);
};

}  // namespace chex::models

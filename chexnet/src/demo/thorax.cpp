#include "thorax.h"

#include <algorithm>
#include <cmath>

namespace chex::demo::detail {

float soft_step(float value, float edge) {
  const float t = std::clamp(0.5f + value / (2.0f * edge), 0.0f, 1.0f);
  return t * t * (3.0f - 2.0f * t);
}

Thorax::Thorax(const Anatomy& anatomy, float edge) : a_(anatomy), edge_(edge) {}

float Thorax::cage_half_width(float y) const {
  // Rounded apices above the widest level, a slight taper towards the costophrenic angles.
  const float widest = 0.8f * a_.height;
  if (y >= widest) return 1.0f - 0.03f * (y - widest) / (a_.height - widest);
  const float t = (widest - y) / (widest + 0.12f);
  return t >= 1.0f ? 0.0f : std::sqrt(1.0f - t * t);
}

float Thorax::mediastinum_half_width(float y) const { return 0.16f + 0.06f * std::clamp(y / a_.height, 0.0f, 1.0f); }

float Thorax::diaphragm(float x) const {
  const float ax = std::abs(x);
  const float peak = a_.height - a_.dome_rise - (x < 0 ? a_.right_dome_lift : a_.left_dome_lift);
  const float dome_x = 0.45f;
  if (ax >= dome_x) {
    // Down to the costophrenic angle, deepest at the lateral chest wall (and level beyond it, so
    // that a dome's height changes nothing outside the rib cage).
    const float t = std::min(1.0f, (ax - dome_x) / (1.0f - dome_x));
    return peak + (a_.height + 0.03f - peak) * t * t;
  }
  const float t = (dome_x - ax) / dome_x;
  return peak + 0.10f * t * t;
}

float Thorax::heart(float x, float y, float half_width) const {
  const float dx = (x - a_.heart_center_x) / half_width, dy = (y - heart_center_y()) / 0.40f;
  const float d = std::sqrt(dx * dx + dy * dy);
  return soft_step((1.0f - d) * half_width, edge_);
}

float Thorax::lung(float x, float y, float heart_half_width) const {
  const float ax = std::abs(x);
  const float lateral = soft_step(cage_half_width(y) - 0.035f - ax, edge_);
  const float medial = soft_step(ax - mediastinum_half_width(y), edge_);
  const float above_diaphragm = soft_step(diaphragm(x) - y, edge_);
  return lateral * medial * above_diaphragm * (1.0f - heart(x, y, heart_half_width));
}

float Thorax::body_half_width(float y) const {
  // Neck, then the shoulders widening to the chest wall.
  const float neck = 0.42f, shoulders_start = -0.60f, shoulders_end = -0.12f;
  if (y <= shoulders_start) return neck;
  if (y >= shoulders_end) return a_.body_width;
  const float t = (y - shoulders_start) / (shoulders_end - shoulders_start);
  return neck + (a_.body_width - neck) * std::sqrt(t * (2.0f - t));
}

float Thorax::apex(float x) const {
  // Inverse of cage_half_width above its widest level, at the lung's lateral edge.
  const float w = std::min(std::abs(x) + 0.035f, 1.0f);
  const float widest = 0.8f * a_.height;
  return widest - std::sqrt(1.0f - w * w) * (widest + 0.12f);
}

Anatomy with_volume_changes(const Anatomy& anatomy, const std::vector<Finding>& findings) {
  Anatomy a = anatomy;
  for (const Finding& f : findings) {
    if (f.kind == FindingKind::Atelectasis) (f.side < 0 ? a.right_dome_lift : a.left_dome_lift) += f.size;
    if (f.kind == FindingKind::Emphysema) {
      // Hyperexpanded: flattened domes pushed down, and darker (more air, fewer vessels).
      a.right_dome_lift *= 0.3f;
      a.left_dome_lift *= 0.3f;
      a.dome_rise *= 0.3f;
      a.lung_air += f.size;
    }
  }
  return a;
}

float Thorax::body(float x, float y) const { return soft_step(body_half_width(y) - std::abs(x), 2.0f * edge_); }

}  // namespace chex::demo::detail

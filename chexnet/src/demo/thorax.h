#pragma once
// The thorax's geometry in the patient frame (see chex/demo/phantom.h): soft masks of the lungs,
// heart and body, and the curves of the diaphragm and rib cage. Shared by the drawing and by the
// placement of findings, so that a nodule placed "in a lung" is drawn in one.
#include "chex/demo/phantom.h"

namespace chex::demo::detail {

// 0 below a - e, 1 above a + e, smooth in between.
float soft_step(float value, float edge);

// The anatomy as findings reshape it: atelectasis raises its hemidiaphragm (volume loss),
// emphysema flattens and lowers both and darkens the lungs (hyperexpansion).
Anatomy with_volume_changes(const Anatomy& anatomy, const std::vector<Finding>& findings);

class Thorax {
 public:
  Thorax(const Anatomy& anatomy, float edge);

  float height() const { return a_.height; }
  // Inner half-width of the rib cage at height y (0 above the apices).
  float cage_half_width(float y) const;
  // Height of the top of the lung at x (the apex's curve), the inverse of cage_half_width above it.
  float apex(float x) const;
  float mediastinum_half_width(float y) const;
  // Height of the top of the diaphragm at x (the right dome, x < 0, sits higher).
  float diaphragm(float x) const;
  // The heart with a given half-width (the anatomy's, or an enlarged one): 1 inside.
  float heart(float x, float y, float half_width) const;
  float heart_center_y() const { return 0.80f * a_.height; }
  // Either lung field, lying outside the mediastinum and the heart of the given half-width.
  float lung(float x, float y, float heart_half_width) const;
  // The body's soft tissue outline (neck, shoulders, chest wall, abdomen).
  float body(float x, float y) const;
  float body_half_width(float y) const;
  // Where the hilum of the lung on `side` is: vessels fan out from it, a collapsing lung shrinks to it.
  float hilum_x(int side) const { return side * 0.27f; }
  float hilum_y() const { return 0.48f * a_.height; }

 private:
  Anatomy a_;
  float edge_;
};

}  // namespace chex::demo::detail

// Drawing a synthetic radiograph: attenuation summed over anatomical layers and findings in the
// patient frame, then exposure, detector blur and quantum noise, then 8 bits.
#include <algorithm>
#include <cmath>
#include <numbers>
#include <utility>

#include "chex/demo/phantom.h"
#include "chex/error.h"
#include "thorax.h"

namespace chex::demo {

std::string_view label_name(FindingKind kind) {
  switch (kind) {
    case FindingKind::Atelectasis: return "Atelectasis";
    case FindingKind::Cardiomegaly: return "Cardiomegaly";
    case FindingKind::Effusion: return "Effusion";
    case FindingKind::Infiltration: return "Infiltration";
    case FindingKind::Mass: return "Mass";
    case FindingKind::Nodule: return "Nodule";
    case FindingKind::Pneumothorax: return "Pneumothorax";
    case FindingKind::Consolidation: return "Consolidation";
    case FindingKind::Pneumonia: return "Pneumonia";
    case FindingKind::Edema: return "Edema";
    case FindingKind::Emphysema: return "Emphysema";
    case FindingKind::Fibrosis: return "Fibrosis";
    case FindingKind::Pleural_Thickening: return "Pleural_Thickening";
    case FindingKind::Hernia: return "Hernia";
  }
  CHEX_FAIL("unknown finding kind ", static_cast<int>(kind));
}

std::string_view box_label_name(FindingKind kind) {
  return kind == FindingKind::Infiltration ? std::string_view("Infiltrate") : label_name(kind);
}

namespace {

using detail::soft_step;
using detail::Thorax;

constexpr float kPi = std::numbers::pi_v<float>;

// Maps between image pixels and the patient frame (isotropic, in thorax half-widths).
class Frame {
 public:
  Frame(const View& view, float thorax_height, int size)
      : view_(view), half_height_(thorax_height / 2), size_(static_cast<float>(size)),
        cos_(std::cos(view.tilt)), sin_(std::sin(view.tilt)) {}

  // Patient coordinates of the point at pixel coordinates (px, py).
  std::pair<float, float> to_patient(float px, float py) const {
    const float du = px / size_ - view_.center_x, dv = py / size_ - view_.center_y;
    const float ru = cos_ * du + sin_ * dv, rv = -sin_ * du + cos_ * dv;
    return {ru / view_.scale, rv / view_.scale + half_height_};
  }
  std::pair<float, float> to_pixel(float x, float y) const {
    const float ru = x * view_.scale, rv = (y - half_height_) * view_.scale;
    return {(view_.center_x + cos_ * ru - sin_ * rv) * size_, (view_.center_y + sin_ * ru + cos_ * rv) * size_};
  }
  float pixels_per_unit() const { return view_.scale * size_; }

 private:
  View view_;
  float half_height_, size_, cos_, sin_;
};

float segment_distance(float px, float py, float ax, float ay, float bx, float by) {
  const float vx = bx - ax, vy = by - ay;
  const float length2 = vx * vx + vy * vy;
  const float t = length2 > 0 ? std::clamp(((px - ax) * vx + (py - ay) * vy) / length2, 0.0f, 1.0f) : 0.0f;
  const float dx = px - ax - t * vx, dy = py - ay - t * vy;
  return std::sqrt(dx * dx + dy * dy);
}

struct Segment {
  float ax, ay, bx, by, width, strength;
};

// Branching trees from a hilum: the vessel markings of the lungs, or the air bronchograms inside a
// consolidation. Angles are from the lateral direction of the side, positive downwards.
void grow_tree(std::vector<Segment>& out, float x, float y, float angle, float length, float width, float strength,
               int depth, int side, Generator& g) {
  const float ex = x + side * std::cos(angle) * length, ey = y + std::sin(angle) * length;
  out.push_back({x, y, ex, ey, width, strength});
  if (depth == 0) return;
  for (const float turn : {-1.0f, 1.0f}) {
    const float spread = (0.26f + 0.35f * g.uniform()) * turn;
    grow_tree(out, ex, ey, angle + spread, length * (0.68f + 0.12f * g.uniform()), width * 0.7f, strength * 0.85f,
              depth - 1, side, g);
  }
}

// Rasterises segments into an image-sized layer (max, not sum, so junctions do not glow).
std::vector<float> rasterise(const std::vector<Segment>& segments, const Frame& frame, int size) {
  std::vector<float> layer(static_cast<std::size_t>(size) * size, 0.0f);
  const float ppu = frame.pixels_per_unit();
  for (const Segment& s : segments) {
    const auto [ax, ay] = frame.to_pixel(s.ax, s.ay);
    const auto [bx, by] = frame.to_pixel(s.bx, s.by);
    const float w = std::max(0.6f, s.width * ppu);
    const int x0 = std::max(0, static_cast<int>(std::floor(std::min(ax, bx) - w - 1)));
    const int x1 = std::min(size - 1, static_cast<int>(std::ceil(std::max(ax, bx) + w + 1)));
    const int y0 = std::max(0, static_cast<int>(std::floor(std::min(ay, by) - w - 1)));
    const int y1 = std::min(size - 1, static_cast<int>(std::ceil(std::max(ay, by) + w + 1)));
    for (int py = y0; py <= y1; ++py)
      for (int px = x0; px <= x1; ++px) {
        const float d = segment_distance(px + 0.5f, py + 0.5f, ax, ay, bx, by);
        float& v = layer[static_cast<std::size_t>(py) * size + px];
        v = std::max(v, s.strength * soft_step(w - d, 0.7f));
      }
  }
  return layer;
}

std::vector<Segment> vessel_segments(const Anatomy& anatomy, const Thorax& thorax) {
  Generator g(anatomy.texture_seed);
  std::vector<Segment> segments;
  for (const int side : {-1, 1}) {
    for (int j = 0; j < 7; ++j) {
      const float angle = (-80.0f + 26.0f * static_cast<float>(j) + 8.0f * (g.uniform() - 0.5f)) * kPi / 180.0f;
      grow_tree(segments, thorax.hilum_x(side), thorax.hilum_y(), angle, 0.16f + 0.05f * g.uniform(), 0.017f, 0.09f,
                4, side, g);
    }
  }
  return segments;
}

// A finding's effect on one pixel: attenuation added, and how much the finding is there (0..1; its
// box is where this exceeds one half).
struct Effect {
  float delta = 0;
  float presence = 0;
};

// A lesion made of round lobes (a nodule has one).
struct Lobe {
  float x, y, r;
};

// Per-finding shape details drawn once from the finding's seed.
struct Shape {
  std::vector<Lobe> lobes;      // nodule, mass; bumps of a consolidation; patches of an infiltration;
                                // the wedge's corners (atelectasis)
  std::vector<Segment> lines;   // air bronchograms; reticulation (fibrosis)
  std::vector<float> line_layer;
  int lobe = 1;                 // pneumonia: -1 the lobe above the fissure, +1 the one below
  float phase[2] = {0, 0};      // undulation of a margin
  std::vector<float> kerley;    // edema: lengths of the septal lines, from the lowest up
};

// Dark branches running out from the hilar side of a region: air bronchograms.
void add_bronchograms(Shape& shape, const Finding& f, float cx, float cy, float extent, const Thorax& thorax,
                      Generator& g) {
  const float angle = std::atan2(cy - thorax.hilum_y(), std::abs(cx - thorax.hilum_x(f.side))) + 0.3f * (g.uniform() - 0.5f);
  grow_tree(shape.lines, cx - f.side * 0.5f * extent, cy - 0.3f * extent * std::sin(angle), angle, 0.45f * extent,
            0.012f, 1.0f, 2, f.side, g);
}

Shape make_shape(const Finding& f, const Thorax& thorax, const Frame& frame, int size) {
  Shape shape;
  Generator g(f.seed);
  switch (f.kind) {
    case FindingKind::Nodule: shape.lobes.push_back({f.x, f.y, f.size}); break;
    case FindingKind::Mass: {
      shape.lobes.push_back({f.x, f.y, f.size});
      const float start = g.uniform() * 2 * kPi;
      for (int k = 0; k < 4; ++k) {
        const float a = start + static_cast<float>(k) * kPi / 2 + 0.6f * (g.uniform() - 0.5f);
        const float r = f.size * (0.50f + 0.2f * g.uniform());
        shape.lobes.push_back({f.x + std::cos(a) * f.size * 0.55f, f.y + std::sin(a) * f.size * 0.55f, r});
      }
      break;
    }
    case FindingKind::Consolidation: {
      for (int k = 0; k < 6; ++k) {
        const float a = g.uniform() * 2 * kPi, d = g.uniform() * 0.6f * f.size;
        shape.lobes.push_back({f.x + std::cos(a) * d, f.y + std::sin(a) * d, f.size * (0.35f + 0.2f * g.uniform())});
      }
      add_bronchograms(shape, f, f.x, f.y, f.size, thorax, g);
      shape.line_layer = rasterise(shape.lines, frame, size);
      break;
    }
    case FindingKind::Pneumonia: {
      shape.lobe = g.uniform() < 0.5f ? -1 : 1;
      shape.phase[0] = g.uniform() * 2 * kPi, shape.phase[1] = g.uniform() * 2 * kPi;
      const float cy = f.y + shape.lobe * 0.5f * f.size;
      add_bronchograms(shape, f, f.side * 0.55f, cy, f.size, thorax, g);
      shape.line_layer = rasterise(shape.lines, frame, size);
      break;
    }
    case FindingKind::Atelectasis: {
      // A lower lobe collapsed against the mediastinum: a wedge from the hilum down to the dome.
      const float hx = thorax.hilum_x(f.side), hy = thorax.hilum_y();
      const float medial = f.side * 0.12f, lateral = f.side * (0.58f + 0.14f * g.uniform());
      shape.lobes = {{hx, hy - 0.04f, 0}, {medial, thorax.diaphragm(medial) + 0.02f, 0},
                     {lateral, thorax.diaphragm(lateral) + 0.02f, 0}};
      break;
    }
    case FindingKind::Fibrosis: {
      // Reticulation: a jittered mesh of thin lines, kept only where the basal region is.
      const float spacing = 0.055f;
      const int columns = 38, rows = static_cast<int>(thorax.height() / spacing) + 2;
      std::vector<std::pair<float, float>> nodes;
      for (int r = 0; r < rows; ++r)
        for (int c = 0; c < columns; ++c)
          nodes.emplace_back(-1.04f + c * spacing + 0.8f * spacing * (g.uniform() - 0.5f),
                             r * spacing + 0.8f * spacing * (g.uniform() - 0.5f));
      for (int r = 0; r < rows; ++r)
        for (int c = 0; c < columns; ++c) {
          const auto [x, y] = nodes[static_cast<std::size_t>(r * columns + c)];
          if (c + 1 < columns && g.uniform() < 0.7f) {
            const auto [x2, y2] = nodes[static_cast<std::size_t>(r * columns + c + 1)];
            shape.lines.push_back({x, y, x2, y2, 0.007f, 1.0f});
          }
          if (r + 1 < rows && g.uniform() < 0.7f) {
            const auto [x2, y2] = nodes[static_cast<std::size_t>((r + 1) * columns + c)];
            shape.lines.push_back({x, y, x2, y2, 0.007f, 1.0f});
          }
        }
      shape.line_layer = rasterise(shape.lines, frame, size);
      break;
    }
    case FindingKind::Edema:
      for (int k = 0; k < 8; ++k) shape.kerley.push_back(0.05f + 0.07f * g.uniform());
      break;
    case FindingKind::Pleural_Thickening:
      shape.phase[0] = g.uniform() * 2 * kPi;
      break;
    case FindingKind::Infiltration:
      for (int k = 0; k < 24; ++k) {
        const float a = g.uniform() * 2 * kPi, d = std::sqrt(g.uniform()) * f.size;
        shape.lobes.push_back({f.x + std::cos(a) * d, f.y + 1.2f * std::sin(a) * d, 0.02f + 0.02f * g.uniform()});
      }
      break;
    default: break;
  }
  return shape;
}

float lobes_max(const std::vector<Lobe>& lobes, float x, float y, float edge) {
  float v = 0;
  for (const Lobe& l : lobes) {
    const float d = std::hypot(x - l.x, y - l.y);
    v = std::max(v, soft_step(l.r - d, edge));
  }
  return v;
}

float gaussian_bumps(const std::vector<Lobe>& lobes, float x, float y) {
  float v = 0;
  for (const Lobe& l : lobes) {
    const float d2 = (x - l.x) * (x - l.x) + (y - l.y) * (y - l.y);
    v += std::exp(-d2 / (2 * l.r * l.r));
  }
  return v;
}

bool fills_airspace(FindingKind kind) {
  switch (kind) {
    case FindingKind::Atelectasis:
    case FindingKind::Effusion:
    case FindingKind::Infiltration:
    case FindingKind::Pneumonia:
    case FindingKind::Consolidation:
    case FindingKind::Edema:
    case FindingKind::Fibrosis:
    case FindingKind::Pleural_Thickening: return true;
    default: return false;
  }
}

// Inside the triangle of the first three lobes' centres, with soft edges.
float triangle(const std::vector<Lobe>& corners, float x, float y, float edge) {
  float inside = 1e9f;
  const float area = (corners[1].x - corners[0].x) * (corners[2].y - corners[0].y) -
                     (corners[2].x - corners[0].x) * (corners[1].y - corners[0].y);
  const float orientation = area > 0 ? 1.0f : -1.0f;
  for (int k = 0; k < 3; ++k) {
    const Lobe& a = corners[static_cast<std::size_t>(k)];
    const Lobe& b = corners[static_cast<std::size_t>((k + 1) % 3)];
    const float length = std::hypot(b.x - a.x, b.y - a.y);
    inside = std::min(inside, orientation * ((b.x - a.x) * (y - a.y) - (b.y - a.y) * (x - a.x)) / length);
  }
  return soft_step(inside, edge);
}

// The lung on one side only.
float lung_side(const Thorax& t, float x, float y, float heart_half_width, int side) {
  return (x * static_cast<float>(side) > 0) ? t.lung(x, y, heart_half_width) : 0.0f;
}

// The air in the stomach's fundus, under the left dome.
float gastric_bubble(const Thorax& t, float x, float y) {
  const float bx = (x - 0.55f) / 0.12f, by = (y - t.diaphragm(0.55f) - 0.08f) / 0.06f;
  return soft_step(1.0f - std::sqrt(bx * bx + by * by), 0.2f);
}

// Everything the anatomy contributes at (x, y), except the lung markings.
float anatomy_attenuation(const Anatomy& a, const Thorax& t, float x, float y, float heart_hw, float lung, float edge) {
  const float ax = std::abs(x), h = a.height;
  const float body = t.body(x, y);
  if (body <= 0) return 0;
  const float thickness = std::sqrt(std::max(0.0f, 1.0f - (x / t.body_half_width(y)) * (x / t.body_half_width(y))));
  float att = body * (0.34f + 0.20f * thickness);
  const float above_diaphragm = soft_step(t.diaphragm(x) - y, edge);
  const float mediastinum = soft_step(t.mediastinum_half_width(y) + 0.02f - ax, edge) * above_diaphragm;

  // Spine with its vertebral end plates (faint through the mediastinum), the mediastinum, aortic
  // knob, heart, and the trachea's air column.
  att += soft_step(0.10f - ax, edge) * (0.05f + 0.015f * std::cos(2 * kPi * y / 0.135f));
  att += 0.09f * std::max(mediastinum, t.heart(x, y, heart_hw) * above_diaphragm);
  att += 0.05f * soft_step(0.10f - std::hypot(x - 0.19f, y - 0.40f * h), edge);
  att -= 0.10f * soft_step(0.05f - std::abs(x - 0.01f), edge) * soft_step(0.40f * h - y, 3 * edge);

  // Lungs: mid zones darkest.
  att -= lung * a.lung_air * (0.88f + 0.12f * std::sin(kPi * std::clamp(y / h, 0.0f, 1.0f)));

  // Ribs fade over the mediastinum and under the diaphragm, where thicker tissue hides them.
  const float rib_contrast = (0.35f + 0.65f * above_diaphragm) * (1.0f - 0.6f * mediastinum);
  // Posterior ribs: rising from the spine, then arching down along the lateral wall; bright rims.
  const float cage = t.cage_half_width(std::max(y, -0.1f));
  const float posterior_span = soft_step(cage + 0.06f - ax, edge) * soft_step(ax - 0.09f, edge) * rib_contrast;
  if (posterior_span > 0) {
    for (int i = 0; i < 12; ++i) {
      const float y0 = -0.22f + (static_cast<float>(i) + a.rib_phase) * 0.15f;
      const float centre = y0 + 0.04f - 0.10f * ax + 0.50f * ax * ax;
      const float half = 0.022f + 0.008f * ax, d = std::abs(y - centre);
      if (d > half + 2 * edge) continue;
      const float inside = soft_step(half - d, edge);
      att += posterior_span * inside * (0.045f + 0.045f * (d / half) * (d / half));
    }
  }
  // Anterior ribs: fainter, running down and inwards from the lateral wall to the costal cartilages.
  const float anterior_span = soft_step(cage + 0.04f - ax, edge) * soft_step(ax - 0.38f, 3 * edge) * rib_contrast;
  if (anterior_span > 0) {
    for (int i = 0; i < 7; ++i) {
      const float y0 = 0.0f + (static_cast<float>(i) + a.rib_phase) * 0.2f;
      const float centre = y0 + 0.30f * (1.0f - ax) * (1.0f - ax) + 0.08f * (1.0f - ax);
      att += 0.035f * anterior_span * soft_step(0.032f - std::abs(y - centre), edge);
    }
  }
  // Clavicles: from the sternal notch out and up to the shoulders, gently curved.
  const float side = x < 0 ? -1.0f : 1.0f;
  const float clavicle = std::min(segment_distance(x, y, side * 0.08f, -0.02f, side * 0.50f, -0.13f),
                                  segment_distance(x, y, side * 0.50f, -0.13f, side * 0.98f, -0.14f));
  att += 0.10f * soft_step(0.036f - clavicle, edge);

  // Breast shadows over the lower zones; the liver under the right dome; the gastric bubble under the left.
  if (a.female) {
    const float dx = (ax - 0.55f) / 0.45f, dy = (y - 1.0f * h) / 0.32f;
    att += 0.07f * soft_step(1.0f - std::sqrt(dx * dx + dy * dy), 0.25f) * soft_step(y - 0.85f * h, 0.1f);
  }
  if (x < 0) att += 0.03f * (1.0f - above_diaphragm);
  att -= 0.16f * gastric_bubble(t, x, y);
  return std::max(att, 0.0f);
}

// What a moved diaphragm changes: the band between its old and new place across the body (lung
// given up or gained, ribs, mediastinum and liver), and the gastric bubble that follows the left dome.
float diaphragm_moved(const Thorax& before, const Thorax& after, float x, float y, float edge) {
  const float band = std::abs(soft_step(before.diaphragm(x) - y, edge) - soft_step(after.diaphragm(x) - y, edge));
  const float bubble = std::abs(gastric_bubble(before, x, y) - gastric_bubble(after, x, y));
  return std::max(band * after.body(x, y), bubble);
}

// What finding f does at patient point (x, y): how much it changes the attenuation there (delta)
// and whether it visibly covers the point (presence, for its box). May thin the lung markings.
struct PixelContext {
  float x, y;
  std::size_t at;   // the pixel's index, for the shapes' rasterised lines
  float lung;       // the aerated lung here
  float heart_hw;   // the heart's half width as drawn
  float edge;       // the soft edge's width
};
Effect finding_effect(const Finding& f, const Shape& s, const PixelContext& c, const Anatomy& drawn,
                      const Thorax& thorax, const Thorax& before, float& vessel) {
  const float x = c.x, y = c.y, lung = c.lung, heart_hw = c.heart_hw, edge = c.edge;
  const std::size_t at = c.at;
  Effect e;
  switch (f.kind) {
    case FindingKind::Cardiomegaly:
      e.presence = thorax.heart(x, y, heart_hw) * soft_step(thorax.diaphragm(x) + 0.03f - y, edge);
      break;
    case FindingKind::Nodule: {
      const float d = std::hypot(x - f.x, y - f.y) / f.size;
      e.presence = soft_step(f.size * (1.0f - d), edge);
      e.delta = 0.30f * e.presence * (0.75f + 0.25f * std::sqrt(std::max(0.0f, 1.0f - d * d)));
      break;
    }
    case FindingKind::Mass:
      e.presence = lobes_max(s.lobes, x, y, edge);
      e.delta = 0.34f * e.presence;
      break;
    case FindingKind::Consolidation: {
      const float region = soft_step(gaussian_bumps(s.lobes, x, y) - 0.6f, 0.08f);
      const float here = region * lung_side(thorax, x, y, heart_hw, f.side);
      const float bronchus = s.line_layer[at];
      e.presence = here;
      e.delta = here * (drawn.lung_air * 0.9f + 0.05f - 0.14f * bronchus);
      break;
    }
    case FindingKind::Infiltration: {
      const float patches = std::min(1.0f, gaussian_bumps(s.lobes, x, y));
      const float in_lung = lung_side(thorax, x, y, heart_hw, f.side);
      e.presence = soft_step(patches - 0.35f, 0.1f) * in_lung;
      e.delta = 0.20f * patches * in_lung;
      break;
    }
    case FindingKind::Effusion: {
      // Fluid layering at the base with a meniscus climbing the lateral chest wall.
      const float lateral = std::clamp((std::abs(x) - 0.2f) / 0.8f, 0.0f, 1.0f);
      const float top = thorax.height() - f.size - 0.30f * lateral * std::sqrt(lateral);
      const float region = soft_step(x * static_cast<float>(f.side) - 0.04f, edge) *
                           soft_step(thorax.cage_half_width(y) + 0.01f - std::abs(x), edge) *
                           soft_step(y - top, 1.5f * edge) * soft_step(thorax.height() + 0.05f - y, edge);
      e.presence = region * lung;
      e.delta = region * lung * (drawn.lung_air + 0.07f);
      break;
    }
    case FindingKind::Atelectasis: {
      // The airless wedge, and the lung given up to the raised hemidiaphragm.
      // Behind the heart the wedge adds to its density (the left lower lobe's "sail").
      const float wedge = triangle(s.lobes, x, y, edge);
      const float aerated = lung_side(thorax, x, y, heart_hw, f.side);
      const float behind_heart = lung_side(thorax, x, y, 0.01f, f.side) - aerated;
      const float lost = static_cast<float>(x * f.side > 0) * diaphragm_moved(before, thorax, x, y, edge);
      e.presence = std::max(wedge * (aerated + behind_heart), lost);
      e.delta = wedge * (0.95f * drawn.lung_air * aerated + 0.06f * behind_heart);
      break;
    }
    case FindingKind::Pneumonia: {
      // A lobe filled with exudate: sharp against the fissure, fluffy at its other margin.
      const float fluff = 0.05f * std::sin(17.0f * x + s.phase[0]) + 0.03f * std::sin(31.0f * x + s.phase[1]);
      const float beyond = s.lobe * (y - f.y);  // distance into the lobe from the fissure
      const float region = soft_step(beyond, edge) * soft_step(f.size + fluff - beyond, 0.05f);
      const float here = region * lung_side(thorax, x, y, heart_hw, f.side);
      e.presence = here;
      e.delta = here * (drawn.lung_air * 0.95f + 0.05f - 0.14f * s.line_layer[at]);
      break;
    }
    case FindingKind::Edema: {
      // Bat-wing haze about both hila, sparing the periphery; Kerley B lines at the lateral bases.
      const float ax = std::abs(x);
      const float d = std::hypot((ax - 0.22f) / (0.9f * f.size), (y - thorax.hilum_y()) / (1.15f * f.size));
      const float haze = soft_step(0.7f - d, 0.3f) * lung;
      const float from_wall = thorax.cage_half_width(y) - 0.035f - ax;
      float septa = 0;
      for (std::size_t line = 0; line < s.kerley.size(); ++line) {
        const float line_y = thorax.diaphragm(x) - 0.05f - 0.045f * static_cast<float>(line);
        septa = std::max(septa, soft_step(0.008f - std::abs(y - line_y), edge * 0.6f) *
                                    soft_step(s.kerley[line] - from_wall, edge));
      }
      septa *= lung;
      e.presence = std::max(std::min(1.0f, 2.0f * haze), septa);
      e.delta = 0.24f * haze + 0.10f * septa;
      break;
    }
    case FindingKind::Emphysema: {
      // Darker, longer lungs over flattened domes (with_volume_changes), and fewer vessels.
      e.presence = std::max({lung, before.lung(x, y, heart_hw), diaphragm_moved(before, thorax, x, y, edge)});
      vessel *= 0.4f;
      break;
    }
    case FindingKind::Fibrosis: {
      // Reticular lines, basal and peripheral, on both sides.
      const float basal = soft_step(y - thorax.height() * (1.0f - f.size), 0.12f);
      const float peripheral = 0.35f + 0.65f * soft_step(std::abs(x) - 0.5f, 0.15f);
      const float region = basal * peripheral * lung;
      e.presence = std::min(1.0f, 2.0f * region);
      e.delta = region * (0.06f + 0.22f * s.line_layer[at]);
      break;
    }
    case FindingKind::Pleural_Thickening: {
      // A smooth dense rim inside the chest wall from the apex down, tapering at its lower end.
      const float ax = std::abs(x);
      const float from_wall = std::min(thorax.cage_half_width(y) - 0.035f - ax, y - thorax.apex(x));
      const float thickness = f.size * soft_step(f.y - y, 0.08f) * (1.0f + 0.15f * std::sin(11.0f * y + s.phase[0]));
      const float rim = soft_step(thickness - from_wall, edge) * soft_step(thickness - 0.01f, edge) *
                        lung_side(thorax, x, y, heart_hw, f.side);
      e.presence = rim;
      e.delta = rim * (drawn.lung_air + 0.06f);
      break;
    }
    case FindingKind::Hernia: {
      // Hiatal hernia: a rounded retrocardiac sac, gas above a sharp air-fluid level, fluid below.
      const float dx = (x - f.x) / (1.2f * f.size), dy = (y - f.y) / f.size;
      const float d = std::sqrt(dx * dx + dy * dy);
      const float sac = soft_step((1.0f - d) * f.size, edge);
      const float wall = soft_step(0.02f - std::abs(1.0f - d) * f.size, edge);
      const float fluid = soft_step(y - (f.y - 0.2f * f.size), 0.6f * edge);
      e.presence = sac;
      e.delta = sac * (0.18f * fluid - 0.22f * (1.0f - fluid)) + 0.05f * wall;
      break;
    }
    case FindingKind::Pneumothorax: {
      // The lung shrinks towards its hilum; air without vessel markings fills the gap, edged by
      // the thin white visceral pleural line.
      const float hx = thorax.hilum_x(f.side), hy = thorax.hilum_y();
      const float collapsed =
          lung_side(thorax, hx + (x - hx) / f.size, hy + (y - hy) / f.size, heart_hw, f.side);
      const float side_lung = lung_side(thorax, x, y, heart_hw, f.side);
      const float gap = side_lung * (1.0f - collapsed);
      e.presence = gap;
      e.delta = -0.10f * gap + 0.16f * 4.0f * collapsed * (1.0f - collapsed) * side_lung;
      vessel *= 1.0f - gap;
      break;
    }
  }
  return e;
}

// The film: exposure (gain, offset, gamma), the detector's blur, then quantum noise (stronger where
// more photons arrive), to 8 bits.
std::vector<uint8_t> expose(std::vector<float> image, const View& view, int size) {
  const std::size_t n = static_cast<std::size_t>(size) * size;
  for (float& v : image) v = std::pow(std::clamp(view.gain * v + view.offset + 0.04f, 0.0f, 1.0f), view.gamma);
  std::vector<float> blurred(n);
  for (int py = 0; py < size; ++py)
    for (int px = 0; px < size; ++px) {
      float sum = 0;
      for (int dy = -1; dy <= 1; ++dy)
        for (int dx = -1; dx <= 1; ++dx) {
          const int qx = std::clamp(px + dx, 0, size - 1), qy = std::clamp(py + dy, 0, size - 1);
          sum += image[static_cast<std::size_t>(qy) * size + qx] * static_cast<float>((2 - std::abs(dx)) * (2 - std::abs(dy)));
        }
      blurred[static_cast<std::size_t>(py) * size + px] = sum / 16.0f;
    }
  Generator noise(view.noise_seed);
  std::vector<uint8_t> pixels(n);
  for (std::size_t i = 0; i < n; ++i) {
    const float v = blurred[i] + view.noise * (0.5f + 0.5f * std::sqrt(blurred[i])) * noise.normal();
    pixels[i] = static_cast<uint8_t>(std::lround(std::clamp(v, 0.0f, 1.0f) * 255.0f));
  }
  return pixels;
}

}  // namespace

Radiograph draw_radiograph(const Anatomy& anatomy, const View& view, const std::vector<Finding>& findings, int size) {
  CHEX_CHECK(size >= 32 && size <= 4096, "draw_radiograph: size ", size, " is outside [32, 4096]");
  CHEX_CHECK(view.scale > 0.05f && view.scale < 1.0f, "draw_radiograph: view scale ", view.scale, " is not plausible");
  const Frame frame(view, anatomy.height, size);
  const float pixel = 1.0f / frame.pixels_per_unit();
  const float edge = std::max(0.012f, 1.2f * pixel);
  // The patient as the findings reshaped them (volume loss, hyperexpansion), and as they were: the
  // difference is what those findings visibly change.
  const Anatomy drawn = detail::with_volume_changes(anatomy, findings);
  const Thorax thorax(drawn, edge), before(anatomy, edge);

  float heart_hw = anatomy.heart_half_width;
  for (const Finding& f : findings)
    if (f.kind == FindingKind::Cardiomegaly) heart_hw = f.size;

  const std::vector<float> markings = rasterise(vessel_segments(drawn, thorax), frame, size);
  std::vector<Shape> shapes;
  for (const Finding& f : findings) shapes.push_back(make_shape(f, thorax, frame, size));

  const std::size_t n = static_cast<std::size_t>(size) * size;
  std::vector<float> image(n);
  struct Extent {
    int x0 = 1 << 30, y0 = 1 << 30, x1 = -1, y1 = -1;
  };
  std::vector<Extent> extents(findings.size());

  std::vector<Effect> effects(findings.size());
  for (int py = 0; py < size; ++py)
    for (int px = 0; px < size; ++px) {
      const auto [x, y] = frame.to_patient(px + 0.5f, py + 0.5f);
      const float lung = thorax.lung(x, y, heart_hw);
      const std::size_t at = static_cast<std::size_t>(py) * size + px;
      float vessel = markings[at];
      for (std::size_t k = 0; k < findings.size(); ++k)
        effects[k] = finding_effect(findings[k], shapes[k], {x, y, at, lung, heart_hw, edge}, drawn, thorax, before,
                                    vessel);
      float att = anatomy_attenuation(drawn, thorax, x, y, heart_hw, lung, edge) + lung * vessel;
      // Findings that fill the lung's air overlap without adding up past airless (water) density.
      float fill = 0;
      for (std::size_t k = 0; k < findings.size(); ++k) {
        if (fills_airspace(findings[k].kind)) fill += effects[k].delta;
        else att += effects[k].delta;
        if (effects[k].presence > 0.5f) {
          Extent& e = extents[k];
          e.x0 = std::min(e.x0, px), e.x1 = std::max(e.x1, px);
          e.y0 = std::min(e.y0, py), e.y1 = std::max(e.y1, py);
        }
      }
      image[static_cast<std::size_t>(py) * size + px] = att + std::min(fill, drawn.lung_air * lung + 0.1f);
    }

  Radiograph out;
  out.size = size;
  out.pixels = expose(std::move(image), view, size);
  for (const Extent& e : extents) {
    if (e.x1 < 0) out.boxes.push_back({});
    else out.boxes.push_back({double(e.x0), double(e.y0), double(e.x1 - e.x0 + 1), double(e.y1 - e.y0 + 1)});
  }
  return out;
}

}  // namespace chex::demo

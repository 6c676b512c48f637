// Drawing a synthetic radiograph: attenuation summed over anatomical layers and findings in the
// patient frame, then exposure, detector blur and quantum noise, then 8 bits.
#include <algorithm>
#include <cmath>
#include <numbers>

#include "chex/demo/phantom.h"
#include "chex/error.h"
#include "thorax.h"

namespace chex::demo {

std::string_view label_name(FindingKind kind) {
  switch (kind) {
    case FindingKind::Cardiomegaly: return "Cardiomegaly";
    case FindingKind::Effusion: return "Effusion";
    case FindingKind::Infiltration: return "Infiltration";
    case FindingKind::Mass: return "Mass";
    case FindingKind::Nodule: return "Nodule";
    case FindingKind::Pneumothorax: return "Pneumothorax";
    case FindingKind::Consolidation: return "Consolidation";
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
  std::vector<Lobe> lobes;      // nodule, mass; bumps of a consolidation; patches of an infiltration
  std::vector<Segment> lines;   // air bronchograms
  std::vector<float> line_layer;
};

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
      // Air bronchograms: dark branches running out from the hilar side of the region.
      const float angle = std::atan2(f.y - thorax.hilum_y(), std::abs(f.x - thorax.hilum_x(f.side))) +
                          0.3f * (g.uniform() - 0.5f);
      grow_tree(shape.lines, f.x - f.side * 0.5f * f.size, f.y - 0.3f * f.size * std::sin(angle), angle,
                0.45f * f.size, 0.012f, 1.0f, 2, f.side, g);
      shape.line_layer = rasterise(shape.lines, frame, size);
      break;
    }
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

// The lung on one side only.
float lung_side(const Thorax& t, float x, float y, float heart_half_width, int side) {
  return (x * static_cast<float>(side) > 0) ? t.lung(x, y, heart_half_width) : 0.0f;
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
  const float bx = (x - 0.55f) / 0.12f, by = (y - t.diaphragm(0.55f) - 0.08f) / 0.06f;
  att -= 0.16f * soft_step(1.0f - std::sqrt(bx * bx + by * by), 0.2f);
  return std::max(att, 0.0f);
}

}  // namespace

Radiograph draw_radiograph(const Anatomy& anatomy, const View& view, const std::vector<Finding>& findings, int size) {
  CHEX_CHECK(size >= 32 && size <= 4096, "draw_radiograph: size ", size, " is outside [32, 4096]");
  CHEX_CHECK(view.scale > 0.05f && view.scale < 1.0f, "draw_radiograph: view scale ", view.scale, " is not plausible");
  const Frame frame(view, anatomy.height, size);
  const float pixel = 1.0f / frame.pixels_per_unit();
  const float edge = std::max(0.012f, 1.2f * pixel);
  const Thorax thorax(anatomy, edge);

  float heart_hw = anatomy.heart_half_width;
  for (const Finding& f : findings)
    if (f.kind == FindingKind::Cardiomegaly) heart_hw = f.size;

  const std::vector<float> markings = rasterise(vessel_segments(anatomy, thorax), frame, size);
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
      float vessel = markings[static_cast<std::size_t>(py) * size + px];
      std::fill(effects.begin(), effects.end(), Effect{});
      for (std::size_t k = 0; k < findings.size(); ++k) {
        const Finding& f = findings[k];
        const Shape& s = shapes[k];
        Effect& e = effects[k];
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
            const float bronchus = s.line_layer[static_cast<std::size_t>(py) * size + px];
            e.presence = here;
            e.delta = here * (anatomy.lung_air * 0.9f + 0.05f - 0.14f * bronchus);
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
            e.delta = region * (anatomy.lung_air * lung + 0.07f);
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
      }
      float att = anatomy_attenuation(anatomy, thorax, x, y, heart_hw, lung, edge) + lung * vessel;
      for (std::size_t k = 0; k < findings.size(); ++k) {
        att += effects[k].delta;
        if (effects[k].presence > 0.5f) {
          Extent& e = extents[k];
          e.x0 = std::min(e.x0, px), e.x1 = std::max(e.x1, px);
          e.y0 = std::min(e.y0, py), e.y1 = std::max(e.y1, py);
        }
      }
      image[static_cast<std::size_t>(py) * size + px] = att;
    }

  // Exposure, then the detector's blur, then quantum noise (stronger where more photons arrive).
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
  Radiograph out;
  out.size = size;
  out.pixels.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    const float v = blurred[i] + view.noise * (0.5f + 0.5f * std::sqrt(blurred[i])) * noise.normal();
    out.pixels[i] = static_cast<uint8_t>(std::lround(std::clamp(v, 0.0f, 1.0f) * 255.0f));
  }
  for (const Extent& e : extents) {
    if (e.x1 < 0) out.boxes.push_back({});
    else out.boxes.push_back({double(e.x0), double(e.y0), double(e.x1 - e.x0 + 1), double(e.y1 - e.y0 + 1)});
  }
  return out;
}

}  // namespace chex::demo

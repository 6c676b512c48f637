// Random patients, exposures and findings for the demo dataset: plausible variation, and findings
// conspicuous enough to learn quickly (DESIGN.md: nodules of at least 5-6% of the image width with
// clear contrast were learned in minutes; subtle small ones never were).
#include <algorithm>
#include <cmath>
#include <initializer_list>

#include "chex/demo/phantom.h"
#include "chex/error.h"
#include "thorax.h"

namespace chex::demo {
namespace {

float between(Generator& g, float lo, float hi) { return lo + (hi - lo) * g.uniform(); }
int random_side(Generator& g) { return g.uniform() < 0.5f ? -1 : 1; }

// Radius a lesion occupies, for keeping lesions apart.
float footprint(const Finding& f) {
  switch (f.kind) {
    case FindingKind::Nodule: return f.size;
    case FindingKind::Mass: return 1.3f * f.size;
    case FindingKind::Consolidation:
    case FindingKind::Infiltration: return f.size;
    default: return 0;
  }
}

// A point well inside the lung on `side`: the lung mask is full at the centre and at `margin` in the
// four directions, and it keeps clear of the lesions already placed.
bool good_site(const detail::Thorax& t, const Anatomy& a, float x, float y, float margin, float radius,
               const std::vector<Finding>& placed) {
  for (const auto& [dx, dy] : {std::pair{0.f, 0.f}, {margin, 0.f}, {-margin, 0.f}, {0.f, margin}, {0.f, -margin}})
    if (t.lung(x + dx, y + dy, a.heart_half_width) < 0.9f) return false;
  for (const Finding& p : placed) {
    const float r = footprint(p);
    if (r > 0 && std::hypot(x - p.x, y - p.y) < r + radius + 0.06f) return false;
  }
  return true;
}

}  // namespace

Anatomy random_anatomy(Generator& g) {
  Anatomy a;
  a.height = between(g, 1.45f, 1.65f);
  a.body_width = between(g, 1.22f, 1.45f);
  a.heart_half_width = between(g, 0.38f, 0.46f);
  a.heart_center_x = between(g, 0.12f, 0.18f);
  a.dome_rise = between(g, 0.17f, 0.26f);
  a.right_dome_lift = between(g, 0.03f, 0.09f);
  a.rib_phase = g.uniform();
  a.lung_air = between(g, 0.36f, 0.44f);
  a.female = g.uniform() < 0.5f;
  a.texture_seed = g.next_u64();
  return a;
}

View random_view(Generator& g) {
  View v;
  v.center_x = 0.5f + between(g, -0.025f, 0.025f);
  v.center_y = 0.5f + between(g, -0.03f, 0.03f);
  v.scale = between(g, 0.34f, 0.40f);
  v.tilt = between(g, -0.05f, 0.05f);
  v.gain = between(g, 0.85f, 1.15f);
  v.offset = between(g, -0.06f, 0.06f);
  v.gamma = between(g, 0.8f, 1.25f);
  v.noise = between(g, 0.012f, 0.03f);
  v.noise_seed = g.next_u64();
  return v;
}

namespace {

// The range each kind's size is drawn from (see Finding::size): the faint end still learnable.
struct SizeRange {
  float lo, hi;
  bool larger_is_plainer = true;
};

SizeRange size_range(FindingKind kind) {
  switch (kind) {
    case FindingKind::Atelectasis: return {0.12f, 0.18f};        // hemidiaphragm lift
    case FindingKind::Cardiomegaly: return {0.60f, 0.70f};       // cardiothoracic ratio about 0.6-0.7
    case FindingKind::Effusion: return {0.40f, 0.58f};           // depth of the fluid
    case FindingKind::Infiltration: return {0.28f, 0.36f};
    case FindingKind::Mass: return {0.15f, 0.21f};
    case FindingKind::Nodule: return {0.075f, 0.10f};
    case FindingKind::Pneumonia: return {0.34f, 0.46f};          // depth from the fissure
    case FindingKind::Pneumothorax: return {0.55f, 0.70f, false};  // collapsed lung's linear scale
    case FindingKind::Consolidation: return {0.26f, 0.34f};
    case FindingKind::Edema: return {0.50f, 0.62f};              // reach of the haze from the hila
    case FindingKind::Emphysema: return {0.10f, 0.15f};          // extra lung air
    case FindingKind::Fibrosis: return {0.55f, 0.75f};           // how far up from the bases
    case FindingKind::Pleural_Thickening: return {0.07f, 0.10f}; // rim thickness
    case FindingKind::Hernia: return {0.17f, 0.23f};             // radius
  }
  CHEX_FAIL("unknown finding kind ", static_cast<int>(kind));
}

}  // namespace

float conspicuity(const Finding& f) {
  const SizeRange r = size_range(f.kind);
  const float t = std::clamp((f.size - r.lo) / (r.hi - r.lo), 0.0f, 1.0f);
  return r.larger_is_plainer ? t : 1.0f - t;
}

Finding random_finding(FindingKind kind, const Anatomy& anatomy, const std::vector<Finding>& placed, Generator& g) {
  const detail::Thorax thorax(anatomy, 0.012f);
  Finding f;
  f.kind = kind;
  f.seed = g.next_u64();
  f.side = random_side(g);
  const SizeRange range = size_range(kind);
  f.size = between(g, range.lo, range.hi);
  const auto used_side = [&](std::initializer_list<FindingKind> kinds) {
    for (const Finding& p : placed)
      for (const FindingKind k : kinds)
        if (p.kind == k) return p.side;
    return 0;
  };
  switch (kind) {
    case FindingKind::Cardiomegaly:
    case FindingKind::Edema:
    case FindingKind::Emphysema:
    case FindingKind::Fibrosis: return f;
    case FindingKind::Effusion:
    case FindingKind::Pneumothorax: {
      // One of each per hemithorax at most: a pneumothorax and an effusion go to opposite sides.
      if (const int s = used_side({FindingKind::Effusion, FindingKind::Pneumothorax})) f.side = -s;
      return f;
    }
    case FindingKind::Atelectasis:
      // Often beside an effusion (compressive), never on the side of a pneumothorax.
      if (const int s = used_side({FindingKind::Effusion})) f.side = s;
      if (const int s = used_side({FindingKind::Pneumothorax})) f.side = -s;
      return f;
    case FindingKind::Pneumonia:
      // The fissure: the horizontal one (upper lobe above, lower below) at about the hilum's level.
      f.y = between(g, 0.42f, 0.52f) * anatomy.height;
      if (const int s = used_side({FindingKind::Pneumothorax})) f.side = -s;
      return f;
    case FindingKind::Pleural_Thickening:
      // From the apex down the lateral wall to between mid and lower zones.
      f.y = between(g, 0.55f, 0.85f) * anatomy.height;
      return f;
    case FindingKind::Hernia: {
      // Hiatal: behind the heart, just left of the midline, sitting on the diaphragm.
      f.x = between(g, 0.02f, 0.12f);
      f.y = thorax.diaphragm(f.x) - 0.7f * f.size;
      return f;
    }
    case FindingKind::Nodule:
    case FindingKind::Mass:
    case FindingKind::Consolidation:
    case FindingKind::Infiltration: break;
  }
  // Lesions: rejection-sample a site inside a lung field.
  const float margin = kind == FindingKind::Mass ? 1.1f * f.size : kind == FindingKind::Nodule ? f.size : 0.08f;
  for (int attempt = 0; attempt < 400; ++attempt) {
    f.side = random_side(g);
    f.x = static_cast<float>(f.side) * between(g, 0.2f, 0.9f);
    f.y = between(g, 0.1f, 1.0f) * anatomy.height;
    if (good_site(thorax, anatomy, f.x, f.y, margin, footprint(f), placed)) return f;
  }
  // Crowded: accept a site inside a lung even if it touches another lesion.
  for (int attempt = 0; attempt < 400; ++attempt) {
    f.side = random_side(g);
    f.x = static_cast<float>(f.side) * between(g, 0.2f, 0.9f);
    f.y = between(g, 0.1f, 1.0f) * anatomy.height;
    if (good_site(thorax, anatomy, f.x, f.y, 0.5f * margin, 0, {})) return f;
  }
  CHEX_FAIL("random_finding: found no site for a ", label_name(kind), " in this anatomy");
}

}  // namespace chex::demo

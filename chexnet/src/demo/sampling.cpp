// Random patients, exposures and findings for the demo dataset: plausible variation, and findings
// conspicuous enough to learn quickly (DESIGN.md: nodules of at least 5-6% of the image width with
// clear contrast were learned in minutes; subtle small ones never were).
#include <cmath>

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

Finding random_finding(FindingKind kind, const Anatomy& anatomy, const std::vector<Finding>& placed, Generator& g) {
  const detail::Thorax thorax(anatomy, 0.012f);
  Finding f;
  f.kind = kind;
  f.seed = g.next_u64();
  f.side = random_side(g);
  switch (kind) {
    case FindingKind::Cardiomegaly:
      f.size = between(g, 0.60f, 0.70f);  // cardiothoracic ratio about 0.6-0.7
      return f;
    case FindingKind::Effusion:
    case FindingKind::Pneumothorax: {
      // One of each per hemithorax at most: a pneumothorax and an effusion go to opposite sides.
      for (const Finding& p : placed)
        if (p.kind == FindingKind::Effusion || p.kind == FindingKind::Pneumothorax) f.side = -p.side;
      f.size = kind == FindingKind::Effusion ? between(g, 0.40f, 0.58f)   // depth of the fluid
                                             : between(g, 0.55f, 0.70f);  // collapsed lung's linear scale
      return f;
    }
    case FindingKind::Nodule: f.size = between(g, 0.075f, 0.10f); break;
    case FindingKind::Mass: f.size = between(g, 0.15f, 0.21f); break;
    case FindingKind::Consolidation: f.size = between(g, 0.26f, 0.34f); break;
    case FindingKind::Infiltration: f.size = between(g, 0.28f, 0.36f); break;
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

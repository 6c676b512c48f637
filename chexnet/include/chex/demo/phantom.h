#pragma once
// Synthetic chest radiographs ("phantoms") for the demo dataset: a PA thorax — soft tissue, lung
// fields with vessel markings, heart, mediastinum and trachea, spine, ribs, clavicles, diaphragm and
// gastric bubble — varied by patient and by exposure, with findings drawn at known places.
//
// Geometry lives in a patient frame measured in thorax half-widths: x from -1 (image left, the
// patient's right) to +1 across the rib cage, y from the lung apices (0) down to the costophrenic
// angles (Anatomy::height). A View maps that frame onto the image (scale, shift, tilt).
#include <array>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "chex/random.h"

namespace chex::demo {

// The 14 ChestX-ray14 findings, in NIH's order.
enum class FindingKind {
  Atelectasis, Cardiomegaly, Effusion, Infiltration, Mass, Nodule, Pneumonia,
  Pneumothorax, Consolidation, Edema, Emphysema, Fibrosis, Pleural_Thickening, Hernia
};
inline constexpr int kFindingKinds = 14;
inline constexpr std::array<FindingKind, kFindingKinds> kAllFindings = {
    FindingKind::Atelectasis,   FindingKind::Cardiomegaly, FindingKind::Effusion,  FindingKind::Infiltration,
    FindingKind::Mass,          FindingKind::Nodule,       FindingKind::Pneumonia, FindingKind::Pneumothorax,
    FindingKind::Consolidation, FindingKind::Edema,        FindingKind::Emphysema, FindingKind::Fibrosis,
    FindingKind::Pleural_Thickening, FindingKind::Hernia};

// The label file's spelling (one of the 14 ChestX-ray14 labels).
std::string_view label_name(FindingKind kind);
// The box file's spelling: NIH's BBox_List_2017.csv says "Infiltrate" for Infiltration (it has boxes
// for 8 findings only; the others keep their label name).
std::string_view box_label_name(FindingKind kind);

// One patient's body: stays the same across that patient's radiographs.
struct Anatomy {
  float height = 1.55f;           // apex to costophrenic angle, in thorax half-widths
  float body_width = 1.22f;       // soft-tissue half-width (build), in thorax half-widths
  float heart_half_width = 0.44f; // so the cardiothoracic ratio is about this (normal < 0.5)
  float heart_center_x = 0.14f;   // the heart sits towards the patient's left (image right)
  float dome_rise = 0.22f;        // how far the diaphragm domes rise above the angles
  float right_dome_lift = 0.06f;  // the right dome (liver side) sits higher
  float left_dome_lift = 0.0f;    // raised only by volume loss (atelectasis) in the left lung
  float rib_phase = 0.0f;         // where the first rib sits, as a fraction of the rib spacing
  float lung_air = 0.40f;         // how dark the lungs are against soft tissue
  bool female = false;            // breast shadows over the lower zones
  uint64_t texture_seed = 1;      // vessel markings
};

// One exposure of a patient: position, size on the detector, tilt, contrast and noise.
struct View {
  float center_x = 0.5f;       // thorax centre, as a fraction of the image width
  float center_y = 0.50f;      // thorax centre, as a fraction of the image height
  float scale = 0.38f;         // thorax half-width as a fraction of the image width
  float tilt = 0.0f;           // radians
  float gain = 1.0f;           // exposure: contrast and brightness
  float offset = 0.0f;
  float gamma = 1.0f;
  float noise = 0.02f;         // quantum noise (standard deviation, on a 0..1 scale)
  uint64_t noise_seed = 1;
};

// A finding drawn on a radiograph. Where a field does not apply to the kind it is ignored.
struct Finding {
  FindingKind kind = FindingKind::Nodule;
  int side = 1;             // -1: image left (patient's right), +1: image right
  float x = 0, y = 0;       // centre in the patient frame (lesions, hernia); fissure level (pneumonia);
                            // lowest point of the rim (pleural thickening)
  float size = 0.1f;        // radius (nodule, mass, hernia), extent (consolidation, infiltration, effusion
                            // depth, pneumonia depth, edema, fibrosis), pneumothorax collapse fraction,
                            // heart half-width (cardiomegaly), diaphragm lift (atelectasis), extra
                            // lucency (emphysema), rim thickness (pleural thickening)
  uint64_t seed = 1;        // shape details (lobulation, bronchograms, patches, lobe, reticulation)
};

// A box in image pixels, (x, y) the top-left corner, as in BBox_List_2017.csv.
struct Box {
  double x = 0, y = 0, w = 0, h = 0;
};

struct Radiograph {
  int size = 0;                  // square, size x size
  std::vector<uint8_t> pixels;   // 8-bit grey, row-major
  std::vector<Box> boxes;        // one per finding, in the order given
};

// Draws one radiograph. Each finding's box is the bounding box of the pixels it visibly changes.
Radiograph draw_radiograph(const Anatomy& anatomy, const View& view, const std::vector<Finding>& findings,
                           int size);

// Random but plausible variation.
Anatomy random_anatomy(Generator& generator);
View random_view(Generator& generator);
// A finding of this kind placed in this anatomy (nodules and masses inside a lung field, away from
// the heart and from lesions already placed). Conspicuous by design: large enough and contrasted
// enough that a CNN learns it in minutes on a CPU.
Finding random_finding(FindingKind kind, const Anatomy& anatomy, const std::vector<Finding>& placed,
                       Generator& generator);
// How conspicuous a finding is among those of its kind, 0 (the faintest random_finding draws) to 1
// (the plainest): a small nodule is 0, a large one 1. The simulated readers miss faint ones more.
float conspicuity(const Finding& finding);

}  // namespace chex::demo

#pragma once
// The HTML report's CAM gallery: per finding, the CAM overlays of the model's most confident true
// positives and its worst false positives (the negatives it scored highest), as small PNG files.
#include <string>
#include <unordered_map>
#include <vector>

#include "chex/device.h"
#include "chex/metrics/score_table.h"
#include "chex/report/html_report.h"
#include "models/densenet.h"

namespace chex::models {

struct GalleryOptions {
  int per_kind = 2;        // images per finding of each kind (true positives, false positives)
  int image_size = 224;    // the network's input, as the model was trained
  int thumbnail = 200;     // width of the overlays in the page, pixels
  Device device = Device::cpu();
};

// `images` maps the table's image names (table_images, in the table's row order) to files; names
// it lacks are passed over. Unreadable images are passed over too (counted in `skipped`).
std::vector<report::GalleryRow> cam_gallery(DenseNet& model, const metrics::ScoreTable& table,
                                            const std::vector<std::string>& table_images,
                                            const std::unordered_map<std::string, std::string>& images,
                                            const GalleryOptions& options, int* skipped = nullptr);

}  // namespace chex::models

#include "models/cam_gallery.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "chex/data/image.h"
#include "chex/data/resize.h"
#include "chex/error.h"
#include "chex/io/png.h"
#include "models/cam.h"
#include "models/cam_overlay.h"
#include "models/chexnet_input.h"

namespace chex::models {
namespace {

// The rows of class c with truth `positive`, highest score first, at most `count` of them that
// have a file.
std::vector<std::size_t> top_scored(const metrics::ScoreTable& table, std::size_t c, bool positive, int count,
                                    const std::vector<std::string>& names,
                                    const std::unordered_map<std::string, std::string>& images) {
  std::vector<std::size_t> rows;
  for (std::size_t i = 0; i < table.images(); ++i)
    if ((table.truth(c)[i] != 0) == positive && images.contains(names[i])) rows.push_back(i);
  std::stable_sort(rows.begin(), rows.end(), [&](std::size_t a, std::size_t b) { return table.scores(c)[a] > table.scores(c)[b]; });
  if (rows.size() > static_cast<std::size_t>(count)) rows.resize(static_cast<std::size_t>(count));
  return rows;
}

}  // namespace

std::vector<report::GalleryRow> cam_gallery(DenseNet& model, const metrics::ScoreTable& table,
                                            const std::vector<std::string>& names,
                                            const std::unordered_map<std::string, std::string>& images,
                                            const GalleryOptions& o, int* skipped) {
  model.eval();
  std::vector<report::GalleryRow> rows;
  int unreadable = 0;
  for (std::size_t c = 0; c < table.classes(); ++c) {
    const std::string label = table.class_names()[c];
    // Both rows of a finding or neither, so that the page pairs them side by side.
    std::vector<report::GalleryRow> pair;
    for (const bool positive : {true, false}) {
      report::GalleryRow row;
      row.title = label + (positive ? ": most confident true positives" : ": worst false positives");
      for (const std::size_t i : top_scored(table, c, positive, o.per_kind, names, images)) {
        data::Image image;
        try {
          image = data::load_image(images.at(names[i]));
        } catch (const Error& e) {
          std::fprintf(stderr, "report: gallery: skipped %s\n", e.what());
          ++unreadable;
          continue;
        }
        // The overlay is drawn at the thumbnail's size: the page shows it small anyway.
        const int height = std::max(1, static_cast<int>(std::lround(double(image.height) * o.thumbnail / image.width)));
        const data::Image small = data::resize_bilinear(image, o.thumbnail, height);
        const std::vector<float> view = chexnet_view(image, o.image_size);
        const CamOutputs cams = compute_cams(model, Tensor::from_vector(view, {1, 3, o.image_size, o.image_size}).to(o.device),
                                             CamMethod::Cam);
        const Tensor maps = cams.maps.to(Device::cpu());
        const float logit = cams.logits.to(Device::cpu()).to_vector()[c];
        const Heatmap heat = class_heatmap(maps, 0, static_cast<int64_t>(c), small.width, small.height);
        char caption[128];
        std::snprintf(caption, sizeof caption, "%.0f%%", 100.0 / (1.0 + std::exp(-double(logit))));
        const auto boxes = heat_boxes(heat, 0.5);
        const data::Image overlay = render_cam_overlay(small, heat, caption, &boxes.front().box);
        row.images.push_back({names[i] + "  " + caption,
                              io::encode_png(overlay.width, overlay.height, data::Image::kChannels, overlay.pixels, names[i])});
      }
      pair.push_back(std::move(row));
    }
    if (!pair[0].images.empty() || !pair[1].images.empty()) rows.insert(rows.end(), pair.begin(), pair.end());
  }
  if (skipped) *skipped = unreadable;
  return rows;
}

}  // namespace chex::models

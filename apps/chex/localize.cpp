// chex localize: how well CheXNet's class activation maps find NIH's hand-drawn boxes.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "args.h"
#include "chex/data/box_file.h"
#include "chex/data/image.h"
#include "chex/data/labels.h"
#include "chex/data/nih_dataset.h"
#include "chex/io/atomic_file.h"
#include "chex/parallel.h"
#include "command.h"
#include "common.h"
#include "models/cam.h"
#include "models/chexnet_input.h"
#include "progress.h"

namespace chex::cli {
namespace {

namespace fs = std::filesystem;

constexpr const char* kHelp = R"(usage: chex localize --weights FILE.safetensors --data DIR --bbox BBox_List_2017.csv
                     [--json FILE] [--method cam|gradcam] [--threshold F]
                     [--device cpu|cuda] [--batch-size N] [--threads N] [--precision P]
                     [--deterministic on|off]

Scores CheXNet's class activation maps against NIH's hand-drawn boxes (BBox_List_2017.csv, whose
'Infiltrate' is the label file's 'Infiltration'), as Wang et al. 2017 (ChestX-ray8) do. For every
box whose image is in DIR (DIR/images/ or DIR/images_*/images/), the map of the box's class is
upsampled to the image's size and its predicted box taken (as chex cam: the hottest connected
region at or above --threshold of the map's range). Then
  IoU   area(predicted ∩ true) / area(predicted ∪ true), accuracy at IoU >= 0.1, 0.25, 0.5, 0.75
  IoBB  area(predicted ∩ true) / area(predicted), accuracy at IoBB >= 0.1, 0.2, ..., 0.7
  pointing game  the fraction of boxes that contain the map's maximum
  random point   what a uniformly random point would score at the pointing game: the mean of
                 area(true box) / area(image), the baseline the pointing game should beat
per class and overall, as a Markdown table on stdout (and JSON with --json). Boxes whose image is
absent are counted and left out.

options:
  --weights FILE    safetensors weights of a 14-class DenseNet (as chex cam)
  --data DIR        the NIH folder holding the images
  --bbox FILE       the box file (NIH's header 'Image Index,Finding Label,Bbox [x,y,w,h],,,')
  --json FILE       also write the scores as JSON (atomically)
  --method M        cam (default) or gradcam
  --threshold F     fraction of the map's range for the predicted box (default 0.5)
)" CHEX_CAM_OPTIONS_HELP R"(
exit status:
  0  every box with an image present was scored
  1  error: weights, box file or folder unusable, no box with its image present, ...
  2  usage error
  3  the scores were written, but some images could not be read and their boxes were skipped
)";

double rate(int64_t hits, int64_t boxes) { return boxes ? static_cast<double>(hits) / boxes : 0.0; }

// 0.1, 0.25: the thresholds as Wang et al. write them.
std::string threshold_name(double t) {
  std::ostringstream s;
  s << t;
  return s.str();
}

nlohmann::json to_json(const models::LocalizationCounts& c) {
  nlohmann::json j;
  j["boxes"] = c.boxes;
  for (size_t i = 0; i < std::size(models::kIouThresholds); ++i)
    j["iou_accuracy"][threshold_name(models::kIouThresholds[i])] = rate(c.iou_hits[i], c.boxes);
  for (size_t i = 0; i < std::size(models::kIobbThresholds); ++i)
    j["iobb_accuracy"][threshold_name(models::kIobbThresholds[i])] = rate(c.iobb_hits[i], c.boxes);
  j["pointing_game"] = rate(c.pointing_hits, c.boxes);
  j["pointing_hits"] = c.pointing_hits;
  j["random_point"] = c.boxes ? c.random_point_sum / static_cast<double>(c.boxes) : 0.0;
  return j;
}

std::string markdown_row(const std::string& name, const models::LocalizationCounts& c) {
  std::ostringstream row;
  row.setf(std::ios::fixed);
  row.precision(3);
  row << "| " << name << " | " << c.boxes << " |";
  for (size_t i = 0; i < std::size(models::kIouThresholds); ++i) row << ' ' << rate(c.iou_hits[i], c.boxes) << " |";
  for (size_t i = 0; i < std::size(models::kIobbThresholds); ++i) row << ' ' << rate(c.iobb_hits[i], c.boxes) << " |";
  row << ' ' << rate(c.pointing_hits, c.boxes) << " | "
      << (c.boxes ? c.random_point_sum / static_cast<double>(c.boxes) : 0.0) << " |\n";
  return row.str();
}

}  // namespace

int run_localize(const std::vector<std::string>& argv) {
  const Args args(argv, with_cam_options({{"weights"}, {"data"}, {"bbox"}, {"json"}}), "localize");
  if (args.help(kHelp)) return kExitOk;
  if (!args.positional().empty()) throw UsageError("unexpected argument '" + args.positional()[0] + "'");
  const std::string weights = args.required("weights");
  const std::string data_dir = args.required("data");
  const std::string bbox = args.required("bbox");
  const auto json_path = args.value("json");
  const CamOptions o = parse_cam_options(args);
  require_device(o.device);
  if (o.threads > 0) set_num_threads(o.threads);

  std::error_code ec;
  // Found out now rather than after every image has been through the model.
  const fs::path json_dir = json_path ? fs::path(*json_path).parent_path() : fs::path();
  if (!json_dir.empty() && !fs::is_directory(json_dir, ec))
    fail("the folder of --json '", *json_path, "' does not exist; create it first");
  const auto images = data::discover_images(data_dir);
  const std::vector<data::BoxRecord> boxes = data::read_box_file(bbox);
  // Boxes by image, in the box file's order of first appearance.
  std::vector<std::string> order;
  std::map<std::string, std::vector<const data::BoxRecord*>> by_image;
  int64_t absent = 0;
  for (const data::BoxRecord& b : boxes) {
    if (!images.contains(b.image)) {
      ++absent;
      continue;
    }
    auto& list = by_image[b.image];
    if (list.empty()) order.push_back(b.image);
    list.push_back(&b);
  }
  if (order.empty())
    fail("none of the ", boxes.size(), " boxes of '", bbox, "' has its image in '", data_dir,
         "' (looked in images/ and images_*/images/)");
  if (absent) std::fprintf(stderr, "chex: note: %lld of %zu boxes left out: their images are not in '%s'\n",
                           static_cast<long long>(absent), boxes.size(), data_dir.c_str());

  const std::unique_ptr<models::DenseNet> model = load_densenet_14(weights, o.device);

  std::vector<models::LocalizationCounts> per_class(data::kNumLabels);
  size_t done = 0, skipped = 0;
  int64_t skipped_boxes = 0;
  Progress progress("images", order.size(), stdout);
  std::vector<std::string> paths;
  for (const std::string& name : order) paths.push_back(images.at(name));
  for (size_t begin = 0; begin < order.size(); begin += o.batch_size) {
    const size_t end = std::min(begin + o.batch_size, order.size());
    const RadiographBatch batch = load_radiographs(paths, begin, end, o.image_size);
    skipped += batch.skipped;
    for (size_t i = begin, j = 0; i < end; ++i)  // the boxes of the images that did not decode
      if (j < batch.indices.size() && batch.indices[j] == i) ++j;
      else skipped_boxes += static_cast<int64_t>(by_image[order[i]].size());
    if (!batch.images.empty()) {
      const PrecisionScope scope(o.precision);
      const Tensor maps = models::compute_cams(*model, batch.input(o.device), o.method).maps.to(Device::cpu());
      for (size_t i = 0; i < batch.images.size(); ++i) {
        const data::Image& image = batch.images[i];
        for (const data::BoxRecord* truth : by_image[order[batch.indices[i]]]) {
          const models::Heatmap heat =
              models::class_heatmap(maps, static_cast<int64_t>(i), truth->label, image.width, image.height);
          const models::Box predicted = models::heat_boxes(heat, o.threshold).front().box;
          per_class[static_cast<size_t>(truth->label)].add({truth->x, truth->y, truth->w, truth->h}, predicted,
                                                           models::heatmap_argmax(heat), image.width, image.height);
        }
      }
      done += batch.images.size();
    }
    progress.update(done + skipped);
  }
  if (done == 0) fail("none of the ", order.size(), " images with boxes could be read");
  progress.finish(done, skipped ? std::to_string(skipped) + " skipped" : std::string());

  models::LocalizationCounts overall;
  for (const auto& c : per_class) overall.merge(c);
  std::string table = "| Finding | Boxes |";
  for (const double t : models::kIouThresholds) table += " IoU≥" + threshold_name(t) + " |";
  for (const double t : models::kIobbThresholds) table += " IoBB≥" + threshold_name(t) + " |";
  table += " Pointing game | Random point |\n|---|---:|";
  const size_t columns = std::size(models::kIouThresholds) + std::size(models::kIobbThresholds) + 2;
  for (size_t i = 0; i < columns; ++i) table += "---:|";
  table += "\n";
  nlohmann::json j;
  for (size_t c = 0; c < per_class.size(); ++c) {
    if (per_class[c].boxes == 0) continue;
    const std::string label(data::kLabelNames[c]);
    table += markdown_row(label, per_class[c]);
    j["classes"][label] = to_json(per_class[c]);
  }
  table += markdown_row("**All**", overall);
  j["overall"] = to_json(overall);
  j["images"] = done;
  j["boxes_without_image"] = absent;
  j["boxes_of_unreadable_images"] = skipped_boxes;
  j["threshold"] = o.threshold;
  j["method"] = o.method == models::CamMethod::Cam ? "cam" : "gradcam";
  std::printf("\nLocalization of %lld boxes on %zu images (predicted box: the hottest region at >= %.2f of the "
              "map's range):\n\n%s\nPointing game %.3f against %.3f for a uniformly random point.\n",
              static_cast<long long>(overall.boxes), done, o.threshold, table.c_str(),
              rate(overall.pointing_hits, overall.boxes),
              overall.random_point_sum / static_cast<double>(overall.boxes));
  if (json_path) io::write_file_atomically(*json_path, [&](std::ostream& os) { os << j.dump(2) << '\n'; });
  return skipped ? kExitPartial : kExitOk;
}

}  // namespace chex::cli

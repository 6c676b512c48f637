// chex cam: class activation maps of CheXNet, as overlays (PNG) and raw heatmaps (.npy), with boxes.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <numeric>
#include <sstream>

#include "args.h"
#include "chex/data/image.h"
#include "chex/data/labels.h"
#include "chex/io/atomic_file.h"
#include "chex/io/npy.h"
#include "chex/io/png.h"
#include "chex/parallel.h"
#include "command.h"
#include "common.h"
#include "models/cam.h"
#include "models/cam_overlay.h"
#include "models/chexnet_input.h"
#include "progress.h"

namespace chex::cli {
namespace {

namespace fs = std::filesystem;

constexpr const char* kHelp = R"(usage: chex cam --weights FILE.safetensors (--images DIR | FILE...) --out DIR
                [--class NAME|all|top3] [--method cam|gradcam] [--threshold F]
                [--device cpu|cuda] [--batch-size N] [--threads N] [--precision P]
                [--deterministic on|off]

Where CheXNet looks: class activation maps (Zhou et al. 2016) M_c = sum_k w_ck f_k of the final
feature maps f (after the last batch norm and ReLU; 1024 x 7 x 7 for DenseNet-121 at 224) and the
classifier's weights w, from the same forward pass as the probabilities. For each image and class:
  OUT/<image stem>_<Class>.png  the radiograph at its original size, in grey, with the heatmap over
                                it in a viridis colour map (opacity growing with the heat), the
                                class and its probability written on it, and the predicted box
                                outlined in red
  OUT/<image stem>_<Class>.npy  the raw heatmap, float32 [height, width] at the original image's
                                size (numpy.load reads it): M_c itself, not normalised, upsampled
                                bilinearly (half-pixel centres, as F.interpolate with
                                align_corners=False), so its mean plus the class's bias is the logit
                                (with --method gradcam: the Grad-CAM map, upsampled the same way)
and OUT/cam_boxes.csv: image,class,probability,rank,x,y,w,h,heat with every box of every map,
rank 1 the predicted box; x, y (top-left corner), w, h in original-image pixels as in NIH's
BBox_List_2017.csv.

options:
  --weights FILE    safetensors weights of a DenseNet with 14 classes in torchvision's names
                    (DenseNet-121 for CheXNet; any depth train_chexnet makes, e.g. --arch tiny)
  --images DIR      every .png, .jpg, .jpeg and .dcm file directly in DIR, in name order
  FILE...           images named one by one (may be combined with --images)
  --out DIR         the folder to write into (created if absent); each file appears complete
                    (written to a temporary name, then renamed)
  --class C         top3 (default): the three most probable findings of each image; all: the 14;
                    or one of Atelectasis, Cardiomegaly, Effusion, Infiltration, Mass, Nodule,
                    Pneumonia, Pneumothorax, Consolidation, Edema, Emphysema, Fibrosis,
                    Pleural_Thickening, Hernia
  --method M        cam (default) or gradcam: Grad-CAM (Selvaraju et al. 2017), ReLU(sum_k a_ck f_k)
                    with a_ck the spatial mean of d logit_c / d f_k through the engine's autograd;
                    for DenseNet's linear head it is ReLU(CAM) / (h * w)
  --threshold F     boxes: the connected regions (8-neighbour) where the heatmap, scaled to 0..1,
                    is at least F (default 0.5), ranked by their summed scaled heat
)" CHEX_CAM_OPTIONS_HELP R"(
Images are read and resized exactly as chex predict reads them (Resize((N, N)), ImageNet
normalisation). Progress goes to stdout; images that cannot be read are named on stderr and skipped.

exit status:
  0  every image was mapped
  1  error: weights missing or not a 14-class DenseNet, no images, no usable GPU, none readable, ...
  2  usage error: unknown option, missing or invalid value, unknown class
  3  the outputs were written, but some images could not be read and were skipped (named on stderr)
)";

std::string all_labels() {
  std::string names;
  for (const std::string_view l : data::kLabelNames) names += (names.empty() ? "" : ", ") + std::string(l);
  return names;
}

// Which classes each image's maps are made for.
struct ClassChoice {
  enum Kind { Top3, All, One } kind = Top3;
  int label = 0;
};

ClassChoice parse_class(const std::string& text) {
  if (text == "top3") return {ClassChoice::Top3, 0};
  if (text == "all") return {ClassChoice::All, 0};
  if (const auto index = data::label_index(text)) return {ClassChoice::One, *index};
  throw UsageError("unknown --class '" + text + "': use top3, all, or one of " + all_labels());
}

std::vector<int> chosen_classes(const ClassChoice& choice, const std::vector<float>& probs) {
  if (choice.kind == ClassChoice::One) return {choice.label};
  std::vector<int> order(probs.size());
  std::iota(order.begin(), order.end(), 0);
  if (choice.kind == ClassChoice::All) return order;
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return probs[a] > probs[b]; });
  order.resize(3);
  return order;
}

}  // namespace

int run_cam(const std::vector<std::string>& argv) {
  const Args args(argv, with_cam_options({{"weights"}, {"images"}, {"out"}, {"class"}}), "cam");
  if (args.help(kHelp)) return kExitOk;
  const std::string weights = args.required("weights");
  const std::string out = args.required("out");
  const ClassChoice choice = parse_class(args.value("class").value_or("top3"));
  const CamOptions o = parse_cam_options(args);
  const std::vector<std::string> files = collect_images(args);
  // Outputs are named by the image's stem: two images with one stem would overwrite each other.
  std::map<std::string, std::string> stems;
  for (const std::string& f : files) {
    const auto [it, inserted] = stems.emplace(fs::path(f).stem().string(), f);
    if (!inserted && it->second != f)
      fail("'", it->second, "' and '", f, "' have the same name; their maps would overwrite each other");
  }

  require_device(o.device);
  if (o.threads > 0) set_num_threads(o.threads);
  const std::unique_ptr<models::DenseNet> model = load_densenet_14(weights, o.device);
  std::error_code ec;  // the folder is made once the weights are known to be good
  fs::create_directories(out, ec);
  std::error_code ignored;
  if (!fs::is_directory(out, ignored))
    fail("cannot create the output folder '", out, "': ", ec.message(), "; give --out a folder you can write");

  std::ostringstream boxes_csv;
  boxes_csv.precision(9);
  boxes_csv << "image,class,probability,rank,x,y,w,h,heat\n";
  size_t mapped = 0, skipped = 0;
  Progress progress("mapped", files.size(), stdout);
  for (size_t begin = 0; begin < files.size(); begin += o.batch_size) {
    const RadiographBatch batch = load_radiographs(files, begin, std::min(begin + o.batch_size, files.size()), o.image_size);
    skipped += batch.skipped;
    if (!batch.images.empty()) {
      const PrecisionScope scope(o.precision);
      const models::CamOutputs cams = models::compute_cams(*model, batch.input(o.device), o.method);
      const std::vector<float> logits = cams.logits.to(Device::cpu()).to_vector();
      const Tensor maps = cams.maps.to(Device::cpu());
      const int64_t classes = maps.size(1);
      for (size_t i = 0; i < batch.images.size(); ++i) {
        const data::Image& image = batch.images[i];
        const fs::path path(files[batch.indices[i]]);
        std::vector<float> probs(static_cast<size_t>(classes));
        for (size_t c = 0; c < probs.size(); ++c) probs[c] = 1.f / (1.f + std::exp(-logits[i * probs.size() + c]));
        for (const int c : chosen_classes(choice, probs)) {
          const models::Heatmap heat =
              models::class_heatmap(maps, static_cast<int64_t>(i), c, image.width, image.height);
          const std::vector<models::HeatBox> boxes = models::heat_boxes(heat, o.threshold);
          const std::string label(data::kLabelNames[static_cast<size_t>(c)]);
          char caption[96];
          std::snprintf(caption, sizeof caption, "%s %.1f%%", label.c_str(), 100.0 * probs[static_cast<size_t>(c)]);
          const data::Image overlay = models::render_cam_overlay(image, heat, caption, &boxes.front().box);
          const std::string base = (fs::path(out) / (path.stem().string() + "_" + label)).string();
          io::write_png_atomically(base + ".png", overlay.width, overlay.height, data::Image::kChannels,
                                   overlay.pixels);
          io::write_npy_atomically(base + ".npy", heat.values, {heat.height, heat.width});
          for (size_t r = 0; r < boxes.size(); ++r) {
            const models::Box& b = boxes[r].box;
            boxes_csv << csv_field(path.filename().string()) << ',' << label << ',' << probs[static_cast<size_t>(c)]
                      << ',' << r + 1 << ',' << b.x << ',' << b.y << ',' << b.w << ',' << b.h << ',' << boxes[r].heat
                      << '\n';
          }
        }
      }
      mapped += batch.images.size();
    }
    progress.update(mapped + skipped);
  }
  if (mapped == 0) fail("none of the ", files.size(), " images could be read; nothing written");
  const std::string boxes_path = (fs::path(out) / "cam_boxes.csv").string();
  io::write_file_atomically(boxes_path, [&](std::ostream& os) { os << boxes_csv.str(); });
  progress.finish(mapped, (skipped ? std::to_string(skipped) + " skipped; " : std::string()) + "wrote " + out);
  return skipped ? kExitPartial : kExitOk;
}

}  // namespace chex::cli

// chex predict: CheXNet probabilities for chest X-ray images, one CSV row per image.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <future>
#include <sstream>

#include "args.h"
#include "chex/autograd.h"
#include "chex/graph.h"
#include "chex/data/image.h"
#include "chex/io/atomic_file.h"
#include "chex/parallel.h"
#include "command.h"
#include "common.h"
#include "models/chexnet_input.h"
#include "models/densenet.h"
#include "models/graphed_forward.h"
#include "progress.h"

namespace chex::cli {
namespace {

namespace fs = std::filesystem;

constexpr const char* kHelp = R"(usage: chex predict --weights FILE.safetensors (--images DIR | FILE...) --out preds.csv
                    [--image-size N] [--device cpu|cuda] [--batch-size N] [--threads N]
                    [--tta none|tencrop] [--precision fp32|bf16|tf32]
                    [--deterministic on|off]

Runs CheXNet (DenseNet-121, 14 outputs; or any DenseNet the weights describe) on chest X-ray images and writes the probability of each
finding, one CSV row per image:
  Image Index,prob_Atelectasis,...,prob_Hernia
with the image's file name alone in the first column.

options:
  --weights FILE    safetensors weights of a DenseNet with 14 classes in torchvision's names: its
                    depth and widths are read from the file (DenseNet-121 for CheXNet; any --arch
                    train_chexnet makes). PyTorch .pth/.pth.tar checkpoints: convert with
                    apps/convert_checkpoint.py
  --image-size N    the network's input, Resize((N, N)): the size the model was trained at
                    (default 224; train_chexnet --demo trains at 96). The weights do not record
                    it: another size runs, but predicts worse. --tta tencrop needs 224
  --images DIR      every .png, .jpg, .jpeg and .dcm file directly in DIR, in name order
  FILE...           images named one by one (may be combined with --images)
  --out FILE        the CSV to write; it appears only when complete (written to a temporary
                    name, then renamed)
  --device D        cpu (default) or cuda (cuda:N for another GPU)
  --batch-size N    images per forward pass (default 8)
  --threads N       CPU threads (default: CHEX_NUM_THREADS, or every core)
  --tta MODE        none (default): Resize((224, 224));
                    tencrop: Resize(256) + TenCrop(224), the ten crops' probabilities averaged,
                    as arnoweng/CheXNet evaluates
)" CHEX_PRECISION_HELP R"(  -h, --help        this text

Images (PNG or JPEG; grey, grey + alpha, RGB or RGBA; 8 or 16 bits) are read as PIL's
Image.open(f).convert('RGB') reads them, resized exactly as torchvision's Resize does on PIL
images, and normalised with ImageNet's mean and standard deviation. Progress goes to stdout;
images that cannot be read are named on stderr and skipped. DICOM files (.dcm; greyscale, one
frame) are windowed to 8-bit grey first: Rescale Slope/Intercept, then the file's VOI LUT or
Window Center/Width (else its own min-max), MONOCHROME1 inverted.

exit status:
  0  every image was predicted
  1  error, no CSV written: weights missing or not a 14-class DenseNet, no images, a folder
     that does not exist, no usable GPU for --device cuda, none of the images readable, ...
  2  usage error: unknown option, missing or invalid value
  3  the CSV was written, but some images could not be read and were skipped (named on stderr)
)";

// One batch of preprocessed images, made off the main thread while the model runs on the last.
struct Batch {
  std::vector<std::string> paths;  // the images that decoded
  std::vector<float> views;        // their views, back to back
  std::vector<std::string> skipped;  // messages for those that did not
  std::vector<std::string> notes;
};

Batch prepare(const std::vector<std::string>& files, size_t begin, size_t end, models::TestTimeAugmentation tta,
              int size) {
  Batch b;
  for (size_t i = begin; i < end; ++i) {
    try {
      data::ImageSource source;
      const data::Image image = data::load_image(files[i], {}, &source);
      // tencrop is defined at 224 only (run_predict refuses it at another size).
      const std::vector<float> views =
          tta == models::TestTimeAugmentation::None ? models::chexnet_view(image, size) : models::chexnet_views(image, tta);
      b.views.insert(b.views.end(), views.begin(), views.end());
      b.paths.push_back(files[i]);
      if (source.format == data::ImageFormat::PNG && source.bits_per_sample == 16 && source.channels == 1)
        b.notes.push_back("'" + files[i] + "' is 16-bit grey: read as PIL reads it, values above 255 clip to white");
    } catch (const Error& e) {
      b.skipped.push_back(e.what());
    }
  }
  return b;
}

// Mean over each image's views of the sigmoid of the logits [images * views, classes].
std::vector<float> probabilities(const Tensor& logits, size_t images, int views) {
  const std::vector<float> z = logits.to(Device::cpu()).to_vector();
  const size_t classes = z.size() / (images * views);
  std::vector<float> p(images * classes, 0.f);
  for (size_t i = 0; i < images; ++i)
    for (int v = 0; v < views; ++v)
      for (size_t c = 0; c < classes; ++c)
        p[i * classes + c] += 1.f / (1.f + std::exp(-z[(i * views + v) * classes + c])) / views;
  return p;
}

std::string csv_header() {
  std::string header = "Image Index";
  for (const char* label : models::kChestXray14Labels) header += std::string(",prob_") + label;
  return header + "\n";
}

}  // namespace

int run_predict(const std::vector<std::string>& argv) {
  const Args args(argv,
                  {{"weights"}, {"images"}, {"out"}, {"device"}, {"batch-size"}, {"threads"}, {"tta"},
                   {"image-size"}, {"precision"}, {"deterministic"}, {"help", false, 'h'}},
                  "predict");
  if (args.help(kHelp)) return kExitOk;
  const std::string weights = args.required("weights");
  const std::string out = args.required("out");
  const auto batch_size = static_cast<size_t>(args.integer("batch-size", 8, 1, 4096));
  const int threads = static_cast<int>(args.integer("threads", 0, 1, 1024));
  const int size = static_cast<int>(args.integer("image-size", models::kChexNetInputSize, 32, 4096));
  models::TestTimeAugmentation tta = models::TestTimeAugmentation::None;
  Device device = Device::cpu();
  try {
    tta = models::parse_test_time_augmentation(args.value("tta").value_or("none"));
    device = Device::parse(args.value("device").value_or("cpu"));
  } catch (const Error& e) {
    throw UsageError(e.what(), e.details());
  }
  if (tta == models::TestTimeAugmentation::TenCrop && size != models::kChexNetInputSize)
    throw UsageError("--tta tencrop is Resize(256) + TenCrop(224), defined for 224-px models only; with --image-size " +
                     std::to_string(size) + " use --tta none");
  const std::vector<std::string> files = collect_images(args);
  const Precision precision = inference_precision(args, device);

  require_device(device);
  if (threads > 0) set_num_threads(threads);
  // Found out now rather than after every image has been through the model.
  std::error_code ec;
  const fs::path out_dir = fs::path(out).parent_path();
  if (!out_dir.empty() && !fs::is_directory(out_dir, ec))
    fail("the folder of --out '", out, "' does not exist; create it first");
  const std::unique_ptr<models::DenseNet> model = load_densenet_14(weights, device);

  const int views = models::views_per_image(tta);
  // On a GPU, each full batch's forward is recorded once as a CUDA graph and replayed (the last,
  // smaller batch runs eagerly); on the CPU, the forward as it is.
  const bool graphs = DeviceGraph::supported(device);
  models::GraphedForward graphed([&](const Tensor& x) { return model->forward(x); }, device);
  std::ostringstream rows;
  rows.precision(9);  // float32 round-trips
  size_t predicted = 0, skipped = 0;
  Progress progress("predicted", files.size(), stdout);
  auto next = std::async(std::launch::async, prepare, std::cref(files), 0, std::min(batch_size, files.size()), tta, size);
  for (size_t begin = 0; begin < files.size(); begin += batch_size) {
    Batch batch = next.get();
    const size_t following = begin + batch_size;
    if (following < files.size())
      next = std::async(std::launch::async, prepare, std::cref(files), following,
                        std::min(following + batch_size, files.size()), tta, size);
    for (const std::string& message : batch.skipped) std::fprintf(stderr, "chex: warning: skipped %s\n", message.c_str());
    for (const std::string& note : batch.notes) std::fprintf(stderr, "chex: note: %s\n", note.c_str());
    skipped += batch.skipped.size();
    if (!batch.paths.empty()) {
      const auto n = static_cast<int64_t>(batch.paths.size());
      const Tensor images = Tensor::from_vector(batch.views, {n * views, 3, size, size});
      Tensor logits;
      {
        NoGradGuard no_grad;
        const PrecisionScope scope(precision);
        logits = graphs ? graphed(images) : model->forward(images.to(device));
      }
      const std::vector<float> p = probabilities(logits, batch.paths.size(), views);
      const size_t classes = models::kChestXray14Labels.size();
      for (size_t i = 0; i < batch.paths.size(); ++i) {
        rows << csv_field(fs::path(batch.paths[i]).filename().string());
        for (size_t c = 0; c < classes; ++c) rows << ',' << p[i * classes + c];
        rows << '\n';
      }
      predicted += batch.paths.size();
    }
    progress.update(predicted + skipped);
  }
  if (predicted == 0) fail("none of the ", files.size(), " images could be read; no CSV written");
  io::write_file_atomically(out, [&](std::ostream& os) { os << csv_header() << rows.str(); });
  progress.finish(predicted, (skipped ? std::to_string(skipped) + " skipped; " : std::string()) + "wrote " + out);
  return skipped ? kExitPartial : kExitOk;
}

}  // namespace chex::cli

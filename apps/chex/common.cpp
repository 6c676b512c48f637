#include "common.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <regex>

#include "chex/data/labels.h"
#include "chex/determinism.h"
#include "chex/io/safetensors.h"
#include "command.h"
#include "models/chexnet_input.h"
#include "models/weights.h"

namespace chex::cli {

namespace fs = std::filesystem;

bool is_image_name(const std::string& path) {
  std::string ext = fs::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".dcm";
}

std::vector<std::string> collect_images(const Args& args) {
  std::vector<std::string> files;
  if (const auto dir = args.value("images")) {
    std::error_code ec;
    if (!fs::is_directory(*dir, ec))
      fail("the image folder '", *dir, "' ", fs::exists(*dir, ec) ? "is not a folder" : "does not exist");
    std::vector<std::string> found;
    for (const auto& entry : fs::directory_iterator(*dir))
      if (is_image_name(entry.path().string()) && !entry.is_directory()) found.push_back(entry.path().string());
    if (found.empty()) fail("no PNG, JPEG or DICOM images (.png, .jpg, .jpeg, .dcm) in '", *dir, "'");
    std::sort(found.begin(), found.end());
    files.insert(files.end(), found.begin(), found.end());
  }
  files.insert(files.end(), args.positional().begin(), args.positional().end());
  if (files.empty()) throw UsageError("no images: give --images DIR or image files");
  return files;
}

namespace {
[[noreturn]] void fail_imagenet(const std::string& weights) {
  fail("'", weights, "' is an ImageNet checkpoint: its classifier has 1000 ImageNet classes, not CheXNet's 14, and "
       "its predictions would mean nothing; fine-tune it on ChestX-ray14 first (train_chexnet --pretrained)");
}

void require_weights_file(const std::string& weights) {
  std::error_code ec;
  if (!fs::is_regular_file(weights, ec))
    fail("the weights file '", weights, "' ", fs::exists(weights, ec) ? "is not a regular file" : "does not exist",
         "; give --weights a .safetensors file: the best.safetensors of a train_chexnet run, or a PyTorch "
         "checkpoint converted with apps/convert_checkpoint.py");
}
}  // namespace

models::DenseNetConfig densenet_config_of(const std::string& weights) {
  require_weights_file(weights);
  const io::SafetensorsFile file = io::load_safetensors(weights);
  std::map<std::string, Shape> shapes;
  int64_t blocks = 0;
  std::map<int64_t, int64_t> layers;  // block -> dense layers
  const std::regex layer_name(R"(features\.denseblock(\d+)\.denselayer(\d+)\..*)");
  for (const auto& [name, tensor] : file.tensors) {
    const std::string canonical = models::canonical_weight_name(name);
    shapes[canonical] = tensor.shape();
    std::smatch m;
    if (std::regex_match(canonical, m, layer_name)) {
      const int64_t b = std::stoll(m[1]), l = std::stoll(m[2]);
      blocks = std::max(blocks, b);
      layers[b] = std::max(layers[b], l);
    }
  }
  const auto shape = [&](const std::string& name) -> const Shape& {
    const auto it = shapes.find(name);
    if (it == shapes.end() || it->second.empty())
      fail("'", weights, "' is not a DenseNet's weights: it has no tensor '", name,
           "' (torchvision's names expected); a PyTorch checkpoint with other names converts with "
           "apps/convert_checkpoint.py");
    return it->second;
  };
  models::DenseNetConfig config;
  config.num_init_features = shape("features.conv0.weight")[0];
  config.growth_rate = shape("features.denseblock1.denselayer1.conv2.weight")[0];
  config.bn_size = shape("features.denseblock1.denselayer1.conv1.weight")[0] / config.growth_rate;
  config.num_classes = shape("classifier.weight")[0];
  config.block_config.clear();
  for (int64_t b = 1; b <= blocks; ++b) {
    if (!layers.contains(b)) fail("'", weights, "' is not a DenseNet's weights: it has no dense block ", b);
    config.block_config.push_back(layers[b]);
  }
  return config;
}

std::unique_ptr<models::DenseNet> load_chexnet(const std::string& weights, const models::DenseNetConfig& config,
                                               Device device) {
  require_weights_file(weights);
  auto model = std::make_unique<models::DenseNet>(config);
  const models::WeightLoadReport report = models::load_weights(*model, weights);
  if (report.classifier_reinitialised) fail_imagenet(weights);
  std::printf("%s\n", report.summary().c_str());
  model->eval();
  model->to(device);
  return model;
}

std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\r\n") == std::string::npos) return text;
  std::string quoted = "\"";
  for (char c : text) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  return quoted + "\"";
}

std::vector<OptionSpec> with_cam_options(std::vector<OptionSpec> own) {
  for (const char* name :
       {"method", "threshold", "image-size", "device", "batch-size", "threads", "precision", "deterministic"})
    own.push_back({name});
  own.push_back({"help", false, 'h'});
  return own;
}

CamOptions parse_cam_options(const Args& args) {
  CamOptions o;
  if (const auto text = args.value("threshold")) {
    char* end = nullptr;
    o.threshold = std::strtod(text->c_str(), &end);
    if (text->empty() || end != text->c_str() + text->size() || !(o.threshold > 0 && o.threshold <= 1))
      throw UsageError("--threshold must be a number in (0, 1], not '" + *text + "'");
  }
  o.image_size = static_cast<int>(args.integer("image-size", 224, 32, 4096));
  o.batch_size = static_cast<size_t>(args.integer("batch-size", 8, 1, 4096));
  o.threads = static_cast<int>(args.integer("threads", 0, 1, 1024));
  try {
    o.method = models::parse_cam_method(args.value("method").value_or("cam"));
    o.device = Device::parse(args.value("device").value_or("cpu"));
  } catch (const Error& e) {
    throw UsageError(e.what(), e.details());
  }
  o.precision = inference_precision(args, o.device);
  return o;
}

Precision inference_precision(const Args& args, Device device) {
  const std::optional<std::string> text = args.value("precision");
  Precision asked = Precision::fp32;
  try {
    if (text) asked = parse_precision(*text);
    set_deterministic(parse_on_off("--deterministic", args.value("deterministic").value_or("on")));
  } catch (const Error& e) {
    throw UsageError(e.what());
  }
  const PrecisionPlan plan = plan_precision(asked, device, /*training=*/false);
  if (!plan.note.empty()) std::fprintf(stderr, "chex: note: %s\n", plan.note.c_str());
  // Without --precision, CUDA keeps its default: TF32 convolutions, fp32 matmuls.
  if (device.is_cuda() && text) set_cuda_tf32_for(plan.precision);
  return plan.precision;
}

std::unique_ptr<models::DenseNet> load_densenet_14(const std::string& weights, Device device) {
  const models::DenseNetConfig config = densenet_config_of(weights);
  // The classes are read before loading here, so an ImageNet file gets its own message now.
  if (config.num_classes == 1000) fail_imagenet(weights);
  if (config.num_classes != data::kNumLabels)
    fail("'", weights, "' has ", config.num_classes, " classes, not CheXNet's ", data::kNumLabels,
         ": give --weights a model trained on ChestX-ray14's 14 findings (train_chexnet makes one)");
  return load_chexnet(weights, config, device);
}

Tensor RadiographBatch::input(Device device) const {
  const auto n = static_cast<int64_t>(images.size());
  return Tensor::from_vector(views, {n, 3, size, size}).to(device);
}

RadiographBatch load_radiographs(const std::vector<std::string>& files, size_t begin, size_t end, int size) {
  RadiographBatch b;
  b.size = size;
  for (size_t i = begin; i < end; ++i) {
    try {
      data::ImageSource source;
      data::Image image = data::load_image(files[i], {}, &source);
      if (source.format == data::ImageFormat::PNG && source.bits_per_sample == 16 && source.channels == 1)
        std::fprintf(stderr, "chex: note: '%s' is 16-bit grey: read as PIL reads it, values above 255 clip to white\n",
                     files[i].c_str());
      const std::vector<float> v = models::chexnet_view(image, size);
      b.views.insert(b.views.end(), v.begin(), v.end());
      b.images.push_back(std::move(image));
      b.indices.push_back(i);
    } catch (const Error& e) {
      std::fprintf(stderr, "chex: warning: skipped %s\n", e.what());
      ++b.skipped;
    }
  }
  return b;
}

}  // namespace chex::cli

#pragma once
// What several chex subcommands share: the images named on the command line, loading a CheXNet
// model from a weights file, CSV quoting, the CAM box threshold.
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "args.h"
#include "chex/data/image.h"
#include "chex/device.h"
#include "chex/precision.h"
#include "models/cam.h"
#include "models/densenet.h"

namespace chex::cli {

// .png, .jpg, .jpeg or .dcm (any case).
bool is_image_name(const std::string& path);
// The images of --images DIR (in name order) followed by the positional arguments. Throws
// UsageError when there are none, and a user error for a missing or empty folder.
std::vector<std::string> collect_images(const Args& args);

// The DenseNet a weights file holds (depth, growth rate, widths, classes), read from its tensor
// names and shapes, so that any DenseNet trained by train_chexnet (densenet121, ..., tiny) can be
// used. Errors name the file.
models::DenseNetConfig densenet_config_of(const std::string& weights);

// Checks that `weights` is a file, builds `config`, loads it strictly (refusing an ImageNet
// checkpoint: its classifier is not CheXNet's), prints the load summary, and returns the model in
// eval mode on `device`.
std::unique_ptr<models::DenseNet> load_chexnet(const std::string& weights, const models::DenseNetConfig& config,
                                               Device device);

// A CSV field, quoted when it holds a comma, a quote or a line break (RFC 4180).
std::string csv_field(const std::string& text);

// The options chex cam and chex localize share: --method, --threshold (for boxes: in (0, 1],
// default 0.5), --image-size, --batch-size, --threads, --device. Throws UsageError on a bad value.
struct CamOptions {
  models::CamMethod method = models::CamMethod::Cam;
  double threshold = 0.5;
  int image_size = 224;  // the network's input, square: the size the model was trained at
  size_t batch_size = 8;
  int threads = 0;  // 0: the default
  Device device = Device::cpu();
  Precision precision = Precision::fp32;  // as planned for the device (inference_precision)
};
CamOptions parse_cam_options(const Args& args);
// A command's own options followed by the ones parse_cam_options reads (and --help), so that the
// accepted list and the parser cannot drift apart.
std::vector<OptionSpec> with_cam_options(std::vector<OptionSpec> own);
// Their lines of --help (a string literal, for the commands' usage texts).
#define CHEX_CAM_OPTIONS_HELP                                                                         \
  "  --image-size N    the network's input, Resize((N, N)): the size the model was trained at\n"      \
  "                    (default 224; train_chexnet --demo trains at 96)\n"                            \
  "  --device D        cpu (default) or cuda (cuda:N for another GPU)\n"                              \
  "  --batch-size N    images per forward pass (default 8)\n"                                         \
  "  --threads N       CPU threads (default: CHEX_NUM_THREADS, or every core)\n"                      \
  CHEX_PRECISION_HELP                                                                                 \
  "  -h, --help        this text\n"
// --precision and --deterministic for the inference commands: parsed (UsageError on a bad value),
// the precision planned for `device` (plan_precision: a note on stderr when it does not hold as
// asked there, an error when it cannot run), TF32 set for a CUDA device when --precision is given
// (else its default: TF32 convolutions), determinism set. Returns what the forwards then run in,
// for a PrecisionScope around them.
Precision inference_precision(const Args& args, Device device);
#define CHEX_PRECISION_HELP                                                                           \
  "  --precision P     fp32, tf32 or bf16. Default: fp32 on the CPU; on CUDA, TF32 tensor cores for\n" \
  "                    the convolutions and fp32 matmuls (PyTorch's default). fp32: no TF32 at all;\n" \
  "                    tf32: TF32 for the matmuls too; bf16: convolutions in bf16 with fp32 sums, on\n" \
  "                    CPUs with AVX512_BF16 or AMX (fp32 elsewhere, with a note)\n"                  \
  "  --deterministic on|off  on (default): cuDNN algorithms that give the same bits on every run;\n"  \
  "                    off: the fastest measured once per shape, non-deterministic ones included.\n" \
  "                    The CPU is deterministic either way\n"

// A 14-class DenseNet of any depth and width (densenet_config_of) loaded with load_chexnet: what
// predict, cam and localize run, so that a model train_chexnet made at any --arch works in all three.
std::unique_ptr<models::DenseNet> load_densenet_14(const std::string& weights, Device device);

// Radiographs read and preprocessed for CheXNet (Resize((size, size)), 224 by default), kept for drawing on.
struct RadiographBatch {
  std::vector<size_t> indices;       // of the files that decoded
  std::vector<data::Image> images;   // as decoded
  std::vector<float> views;          // their network inputs, back to back
  size_t skipped = 0;                // files that did not decode (named on stderr)
  int size = 0;                      // of the views
  Tensor input(Device device) const; // [images, 3, size, size]
};
RadiographBatch load_radiographs(const std::vector<std::string>& files, size_t begin, size_t end, int size);

}  // namespace chex::cli

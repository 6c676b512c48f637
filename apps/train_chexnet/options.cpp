#include "options.h"

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <sstream>

#include "chex/determinism.h"
#include "chex/error.h"
#include "chex/metrics/reader_study.h"

namespace chex::train {
namespace {

constexpr const char* kHelp = R"(usage: train_chexnet --data DIR [options]
       train_chexnet --demo [--data DIR] [options]

Trains CheXNet (DenseNet-121, 14 ChestX-ray14 labels) with the paper's recipe, keeps the model with
the lowest validation loss, and evaluates it on the test split at the end.

Data
  --data DIR            NIH ChestX-ray14 folder: images/ (or images_*/images/), Data_Entry_2017*.csv,
                        optionally train_val_list.txt and test_list.txt; images are .png, .jpg or
                        .dcm (DICOM, windowed to 8-bit grey as chex predict --help says)
  --demo                the built-in synthetic demo: makes the demo set in --data (default
                        demo-data), with four simulated readers in readers/, if it is absent,
                        and uses demo-sized defaults (--image-size 96, --epochs 4, --lr 1e-3,
                        --patience 1) unless given
  --demo-images N       images in a demo set made by --demo (default 2000)
  --split random|official  random: patient-disjoint 70/10/20 drawn with --seed (default);
                        official: test_list.txt is the test set, validation 10% of the rest
  --cache DIR           store every image resized once in DIR (memory-mapped); later epochs never decode
  --strict              an unreadable image is an error (default: skipped with a warning, counted)
  --workers N           loader threads (default 2; 0 loads on the training thread)
  --image-size N        input size in pixels, square (default 224)

Training
  --arch NAME           densenet121 (default), densenet169, densenet201, or tiny (a 4-layer
                        DenseNet for tests)
  --pretrained FILE     start from these weights (safetensors, torchvision names); an ImageNet
                        checkpoint's 1000-class classifier is re-initialised
  --loss weighted|plain weighted: the paper's per-class w+ = |N|/(|P|+|N|), w- = |P|/(|P|+|N|) from
                        the training split (default); plain: unweighted. Both sum the 14 classes
                        and average over the batch
  --lr X                Adam's learning rate (default 1e-3; betas 0.9, 0.999)
  --batch-size N        images per step (default 16)
  --epochs N            at most N epochs (default 100)
  --max-steps N         stop after N steps in all (default: no limit)
  --patience N          divide the lr by 10 when the validation loss has not improved for N
                        epochs (default 1)
  --max-plateaus N      stop at the N-th plateau (default 3)
  --device cpu|cuda     where to train (default cpu)
  --precision P         fp32, tf32 or bf16 (weights, optimizer state and checkpoints stay fp32 in
                        all three). Default: on CUDA, TF32 tensor cores for the convolutions and
                        fp32 matmuls (PyTorch's default); fp32 refuses TF32 everywhere; tf32 allows
                        it for the matmuls too. The CPU has no TF32. bf16: mixed precision, the
                        convolutions (forward and backward) with bf16 operands and fp32
                        accumulation, everything else fp32; no loss scaling is needed (bf16 has
                        fp32's exponent range). A run resumes only in the precision it began in
  --deterministic on|off  on (default): cuDNN convolution algorithms chosen by its heuristics among
                        deterministic ones, so that a run repeats bit for bit on the same GPU (the
                        tests and --resume rely on it); off: each shape's fastest algorithm,
                        measured once (cudnnFind), non-deterministic ones included. The CPU is
                        deterministic either way. CHEX_LOG=conv prints each choice once
  --cuda-graph on|off   on a GPU, record the training step once as a CUDA graph (after two eager
                        warm-up steps) and replay it: one launch a step instead of ~1,500, the
                        same results as eager steps; an epoch's last, smaller batch runs eagerly
                        (default on; off: every step eager; the CPU and mpirun runs are eager)
  --threads N           CPU threads (default: all cores, or $CHEX_NUM_THREADS)
  --seed N              seeds the split, the initial weights, the order and the flips (default 1)

Several GPUs or machines (data-parallel; under mpirun, see the README)
  mpirun -np N train_chexnet ... trains one model on N ranks: --batch-size stays the global batch
                        (it must divide by N), each rank takes its share; --device cuda uses
                        cuda:<the rank's local rank>. Rank 0 alone writes --out and prints.
  --sync-bn             batch norm with the statistics of the whole global batch (collectives in
                        every BN layer); default: each rank normalises its own share
  --collective-timeout S  a rank waiting longer than S seconds for the others ends the job with an
                        error (default 60)
  --bucket-mb X         gradients all-reduced together, started as the backward finishes them
                        (default 25, as PyTorch's bucket_cap_mb)

Output and checkpoints (in --out DIR, default train_out)
  --out DIR             log.jsonl (every step and epoch), checkpoint.safetensors + checkpoint.json
                        (the whole training state), best.safetensors (the best model's weights),
                        test_predictions.csv, test_report.{md,json} and
                        report.html (curves, paper comparison, readers, CAM gallery)
  --checkpoint-every N  also write the checkpoint every N steps (default: at epoch ends only)
  --resume              continue exactly from OUT/checkpoint.safetensors (same options needed)
  --bootstrap N         bootstrap resamples for the final report's confidence intervals (default 1000)
  --readers FILE...     reader CSVs ('Image Index', 'Finding Labels', NIH names): the report adds the
                        CheXNet paper's reader study on the test images they cover (with --demo:
                        DATA/readers/reader_*.csv when present, as chex make-demo --readers writes)
  --no-report           do not write OUT/report.html (the HTML report; chex report OUT makes it later)
  --log-interval S      seconds between progress lines when stdout is not a terminal (default 10)
  --verbose             on an error, also print the failed check and its source line (for a bug
                        report); CHEX_DEBUG=1 in the environment does the same
  -h, --help            this text

For tests: --crash-after-step N (SIGKILL itself after step N), --interrupt-after-step N (SIGINT) and
--nan-input-at-step N (a NaN pixel in step N's batch, which makes the loss NaN); under mpirun the
crash is the last rank's alone, and --hang-after-step N makes the last rank stop answering;
--bn-groups G normalises G equal slices of each batch on their own (what G ranks without --sync-bn do).

Ctrl-C stops after writing a checkpoint (a second Ctrl-C stops at once); --resume continues.
A NaN or infinite loss stops training and keeps the last good checkpoint.

exit status: 0 done, 1 error, 3 stopped by a NaN or infinite loss, 130 stopped by Ctrl-C
)";

template <typename T>
T number(const std::string& option, const std::string& text) {
  T value{};
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  CHEX_CHECK(ec == std::errc() && ptr == end, option, " needs a number, not '", text, "'");
  return value;
}

}  // namespace

Options parse_options(const std::vector<std::string>& args) {
  Options o;
  std::set<std::string> given;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    auto value = [&]() -> std::string {
      CHEX_CHECK(i + 1 < args.size(), arg, " needs a value (see --help)");
      return args[++i];
    };
    given.insert(arg);
    if (arg == "-h" || arg == "--help") {
      std::fputs(kHelp, stdout);
      std::exit(0);
    } else if (arg == "--data") o.data = value();
    else if (arg == "--demo") o.demo = true;
    else if (arg == "--demo-images") o.demo_images = number<int>(arg, value());
    else if (arg == "--out") o.out = value();
    else if (arg == "--device") o.device = value();
    else if (arg == "--precision") o.precision = value();
    else if (arg == "--deterministic") o.deterministic = parse_on_off(arg, value());
    else if (arg == "--cuda-graph") o.cuda_graph = parse_on_off(arg, value());
    else if (arg == "--threads") o.threads = number<int>(arg, value());
    else if (arg == "--workers") o.workers = number<int>(arg, value());
    else if (arg == "--seed") o.seed = number<uint64_t>(arg, value());
    else if (arg == "--batch-size") o.batch_size = number<int64_t>(arg, value());
    else if (arg == "--epochs") o.epochs = number<int64_t>(arg, value());
    else if (arg == "--max-steps") o.max_steps = number<int64_t>(arg, value());
    else if (arg == "--image-size") o.image_size = number<int>(arg, value());
    else if (arg == "--lr") o.lr = number<double>(arg, value());
    else if (arg == "--loss") o.loss = value();
    else if (arg == "--arch") o.arch = value();
    else if (arg == "--pretrained") o.pretrained = value();
    else if (arg == "--split") o.split = value();
    else if (arg == "--cache") o.cache = value();
    else if (arg == "--strict") o.strict = true;
    else if (arg == "--verbose") continue;  // main() reads it: it applies to the errors of parsing too
    else if (arg == "--patience") o.patience = number<int>(arg, value());
    else if (arg == "--max-plateaus") o.max_plateaus = number<int>(arg, value());
    else if (arg == "--checkpoint-every") o.checkpoint_every = number<int64_t>(arg, value());
    else if (arg == "--resume") o.resume = true;
    else if (arg == "--bootstrap") o.bootstrap = number<int>(arg, value());
    else if (arg == "--readers") {
      CHEX_CHECK(i + 1 < args.size() && args[i + 1].rfind("-", 0) != 0, "--readers needs at least one file (see --help)");
      while (i + 1 < args.size() && args[i + 1].rfind("-", 0) != 0) o.readers.push_back(args[++i]);
    } else if (arg == "--no-report") o.report = false;
    else if (arg == "--log-interval") o.log_interval = number<double>(arg, value());
    else if (arg == "--crash-after-step") o.crash_after_step = number<int64_t>(arg, value());
    else if (arg == "--interrupt-after-step") o.interrupt_after_step = number<int64_t>(arg, value());
    else if (arg == "--nan-input-at-step") o.nan_input_at_step = number<int64_t>(arg, value());
    else if (arg == "--sync-bn") o.sync_bn = true;
    else if (arg == "--collective-timeout") o.collective_timeout = number<double>(arg, value());
    else if (arg == "--bucket-mb") o.bucket_mb = number<double>(arg, value());
    else if (arg == "--bn-groups") o.bn_groups = number<int>(arg, value());
    else if (arg == "--hang-after-step") o.hang_after_step = number<int64_t>(arg, value());
    else CHEX_FAIL("unknown option '", arg, "' (see --help)");
  }
  if (o.demo) {
    // Sized so that the CPU demo trains in a few minutes and still learns the findings.
    if (!given.count("--data")) o.data = "demo-data";
    if (!given.count("--image-size")) o.image_size = 96;
    // Measured on 2 cores with the 14-finding phantom: validation mean AUROC 0.82, 0.85, 0.92,
    // 0.93 over 4 epochs, test 0.934 (docs/performance.md), in about 4.5 minutes.
    if (!given.count("--epochs")) o.epochs = 4;
  }
  CHEX_CHECK(!o.data.empty(), "--data DIR is required (or --demo for the synthetic demo; see --help)");
  CHEX_CHECK(o.loss == "weighted" || o.loss == "plain", "--loss must be weighted or plain, not '", o.loss, "'");
  CHEX_CHECK(o.batch_size >= 2, "--batch-size must be at least 2 (batch norm needs two images)");
  CHEX_CHECK(o.epochs >= 1, "--epochs must be at least 1");
  CHEX_CHECK(o.max_steps >= 0 && o.checkpoint_every >= 0, "--max-steps and --checkpoint-every cannot be negative");
  CHEX_CHECK(o.image_size >= 32 && o.image_size <= 4096, "--image-size must be between 32 and 4096");
  CHEX_CHECK(o.lr > 0, "--lr must be positive");
  CHEX_CHECK(o.workers >= 0 && o.threads >= 0, "--workers and --threads cannot be negative");
  CHEX_CHECK(o.patience >= 1 && o.max_plateaus >= 1, "--patience and --max-plateaus must be at least 1");
  CHEX_CHECK(o.demo_images >= 28, "--demo-images must be at least 28 (two of each finding)");
  CHEX_CHECK(o.bootstrap >= 0, "--bootstrap cannot be negative");
  // Found out now rather than after the data folder has been read.
  CHEX_CHECK(o.pretrained.empty() || std::filesystem::is_regular_file(o.pretrained),
             "--pretrained: there is no file '", o.pretrained,
             "'; give ImageNet weights as safetensors (README, Weights: convert_checkpoint.py makes them)");
  // Read now, so that a bad reader file stops the run before training rather than after it.
  for (const auto& file : o.readers) metrics::read_reader_file(file);
  CHEX_CHECK(o.collective_timeout > 0, "--collective-timeout must be positive");
  CHEX_CHECK(o.bucket_mb > 0, "--bucket-mb must be positive");
  CHEX_CHECK(o.bn_groups >= 1 && o.batch_size % o.bn_groups == 0, "--bn-groups must divide --batch-size");
  CHEX_CHECK(!(o.sync_bn && o.bn_groups > 1), "--sync-bn and --bn-groups exclude each other");
  return o;
}

std::string fingerprint(const Options& o) {
  std::ostringstream out;
  out.precision(17);
  out << "arch=" << o.arch << " image_size=" << o.image_size << " batch_size=" << o.batch_size << " seed=" << o.seed
      << " loss=" << o.loss << " split=" << o.split << " lr=" << o.lr << " pretrained=" << (o.pretrained.empty() ? "no" : "yes");
  // Only when set, so that the checkpoints of earlier versions still resume.
  if (o.sync_bn) out << " sync_bn=yes";
  if (o.bn_groups > 1) out << " bn_groups=" << o.bn_groups;
  // bf16 changes the arithmetic: a resume in another precision would not repeat the run.
  if (o.precision == "bf16") out << " precision=bf16";
  return out.str();
}

}  // namespace chex::train

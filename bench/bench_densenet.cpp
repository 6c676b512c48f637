// bench_densenet: DenseNet-121 training steps (forward, weighted BCE, backward, Adam) or inference
// on synthetic images, timed per step; reports the median step time, images/s, GFLOP/s, the CPU
// allocator's peak (the device's: on a GPU, the CUDA pool's bytes held by tensors) and the
// process's peak RSS. Prints a readable line, then one JSON line. On a GPU each timed step ends
// with a synchronisation of the device, so a step's time is the device's, not the host's enqueueing.
// bench/densenet_torch_peer.py measures PyTorch on the same step for comparison.
// --precision fp32,bf16 times several precisions in one run, their steps interleaved (one of each
// per round, so that load from elsewhere falls on all alike), and prints their ratio.
// --gpu-busy (CUDA) traces the device's activity with CUPTI during the timed steps: the fraction of
// each step's wall time the GPU was busy, kernels per step, the largest idle gap.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "bench/activity_intervals.h"
#include "bench/gpu_activity.h"
#include "chex/allocator.h"
#include "chex/autograd.h"
#include "chex/determinism.h"
#include "chex/error.h"
#include "chex/graph.h"
#include "chex/ops.h"
#include "chex/optim/adam.h"
#include "chex/parallel.h"
#include "chex/precision.h"
#include "chex/random.h"
#include "graphed_step.h"
#include "models/densenet.h"
#include "models/graphed_forward.h"

namespace {

using namespace chex;

struct Options {
  bool train = true;
  int64_t batch = 16;
  int64_t size = 224;
  int steps = 5;
  int warmup = 1;
  int threads = 0;  // 0: the engine's default
  std::string device = "cpu";
  bool memory_efficient = true;
  bool cuda_graph = true;
  std::vector<Precision> precisions{Precision::fp32};
  bool precision_given = false;  // without --precision, CUDA keeps its default (TF32 convolutions)
  bool deterministic = true;
  bool gpu_busy = false;
};

void print_help() {
  std::printf(
      "usage: bench_densenet [--mode train|infer] [--batch N] [--size S] [--steps N] [--warmup N]\n"
      "                      [--threads N] [--device cpu|cuda] [--no-memory-efficient] [--cuda-graph on|off]\n"
      "                      [--precision fp32|tf32|bf16[,...]] [--deterministic on|off] [--gpu-busy]\n"
      "\n"
      "Times DenseNet-121 (14 classes) on synthetic images, on the CPU or a GPU (each step timed to the\n"
      "end of its device work): a training step is forward, weighted BCE,\n"
      "backward and an Adam step; inference is a forward in eval mode without autograd. GFLOP/s counts\n"
      "2.833 GMAC per image for a forward at 224x224, scaled by (S/224)^2, and a training step as three\n"
      "forwards. Defaults: train, batch 16, 224x224, 5 timed steps after 1 warm-up, fp32.\n"
      "--precision with several values (e.g. fp32,bf16) times each on the same model and images, one\n"
      "step of each per round, and prints the speed-up of each over the first. bf16 is mixed precision\n"
      "(bf16 convolutions, fp32 elsewhere) in both modes; tf32 is a GPU mode (the CPU computes fp32).\n"
      "Without --precision, CUDA uses TF32 for the convolutions and fp32 matmuls (PyTorch's default);\n"
      "fp32 refuses TF32.\n"
      "--deterministic on (default): cuDNN's deterministic algorithms by its heuristics; off: the fastest\n"
      "measured once per shape (cudnnFind), non-deterministic ones included.\n"
      "--cuda-graph on (the default) records the step on a GPU as train_chexnet does (two eager warm-up\n"
      "steps, then a recording) and times its replays; at least 3 warm-up steps are run then.\n"
      "--gpu-busy (CUDA only) traces the GPU with NVIDIA's CUPTI (libcupti, opened at run time) during\n"
      "the timed steps: the time some kernel, copy or memset ran (overlaps counted once) over the steps'\n"
      "wall time, kernels per step and the largest idle gap (JSON: gpu_busy_fraction, kernels_per_step,\n"
      "largest_gap_us; null when not measured, e.g. without libcupti). Tracing adds a little time to\n"
      "the timed steps: compare step times from runs without it.\n"
      "CHEX_DEBUG=1 in the environment adds an error's failed check and source line.\n");
}

int64_t parse_int(const char* flag, const char* text, int64_t min) {
  char* end = nullptr;
  const long long v = std::strtoll(text, &end, 10);
  if (!end || *end != '\0' || v < min) {
    std::fprintf(stderr, "bench_densenet: error: %s needs an integer >= %lld, got '%s'\n", flag,
                 static_cast<long long>(min), text);
    std::exit(2);
  }
  return v;
}

// "on" or "off" for `flag` (chex::parse_on_off); anything else is a usage error, as parse_int's.
bool parse_on_off_or_exit(const char* flag, const char* text) {
  try {
    return parse_on_off(flag, text);
  } catch (const Error& e) {
    std::fprintf(stderr, "bench_densenet: error: %s\n", e.what());
    std::exit(2);
  }
}

Options parse_options(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "bench_densenet: error: %s needs a value (see --help)\n", arg.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--help" || arg == "-h") {
      print_help();
      std::exit(0);
    } else if (arg == "--mode") {
      const std::string mode = value();
      if (mode != "train" && mode != "infer") {
        std::fprintf(stderr, "bench_densenet: error: --mode is train or infer, got '%s'\n", mode.c_str());
        std::exit(2);
      }
      o.train = mode == "train";
    } else if (arg == "--batch") {
      o.batch = parse_int("--batch", value(), 1);
    } else if (arg == "--size") {
      o.size = parse_int("--size", value(), 32);
    } else if (arg == "--steps") {
      o.steps = static_cast<int>(parse_int("--steps", value(), 1));
    } else if (arg == "--warmup") {
      o.warmup = static_cast<int>(parse_int("--warmup", value(), 0));
    } else if (arg == "--threads") {
      o.threads = static_cast<int>(parse_int("--threads", value(), 1));
    } else if (arg == "--device") {
      o.device = value();
    } else if (arg == "--precision") {
      o.precisions.clear();
      o.precision_given = true;
      std::string list = value();
      for (size_t start = 0; start <= list.size();) {
        const size_t comma = std::min(list.find(',', start), list.size());
        o.precisions.push_back(parse_precision(list.substr(start, comma - start)));
        start = comma + 1;
      }
    } else if (arg == "--deterministic") {
      o.deterministic = parse_on_off_or_exit("--deterministic", value());
    } else if (arg == "--gpu-busy") {
      o.gpu_busy = true;
    } else if (arg == "--no-memory-efficient") {
      o.memory_efficient = false;
    } else if (arg == "--cuda-graph") {
      o.cuda_graph = parse_on_off_or_exit("--cuda-graph", value());
    } else {
      std::fprintf(stderr, "bench_densenet: error: unknown argument '%s' (see --help)\n", arg.c_str());
      std::exit(2);
    }
  }
  return o;
}

size_t peak_rss_bytes() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<size_t>(usage.ru_maxrss) * 1024;  // Linux reports KiB
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// What --gpu-busy found for one precision's timed steps, as the result line and the JSON show it.
struct BusyReport {
  std::string text;  // appended to the result line
  std::string json;  // the three JSON fields
};

// measured is null without --gpu-busy (why_not empty) or when it could not measure (why_not says why).
BusyReport busy_report(const bench::StepsActivity* measured, const std::string& why_not) {
  if (!measured)
    return {why_not.empty() ? "" : "; GPU busy: not measured (" + why_not + ")",
            "\"gpu_busy_fraction\": null, \"kernels_per_step\": null, \"largest_gap_us\": null"};
  char text[160], json[160];
  const double gap_us = static_cast<double>(measured->largest_gap_ns) / 1e3;
  std::snprintf(text, sizeof text, "; GPU busy %.1f%% of the step (%.0f kernels/step, largest idle gap %.1f us)",
                100.0 * measured->busy_fraction, measured->kernels_per_step, gap_us);
  std::snprintf(json, sizeof json, "\"gpu_busy_fraction\": %.5f, \"kernels_per_step\": %.1f, \"largest_gap_us\": %.3f",
                measured->busy_fraction, measured->kernels_per_step, gap_us);
  return {text, json};
}

int run(Options o) {
  const Device device = Device::parse(o.device);
  if (o.gpu_busy && !device.is_cuda())
    throw Error("--gpu-busy measures a GPU's activity: it needs --device cuda (got --device " + o.device + ")");
  // Tracing starts before the first CUDA call, so that the kernels of graphs recorded later are seen.
  std::unique_ptr<bench::GpuActivityRecorder> recorder;
  std::string busy_unavailable;
  if (o.gpu_busy) {
    try {
      recorder = std::make_unique<bench::GpuActivityRecorder>();
    } catch (const bench::GpuActivityUnavailable& e) {
      busy_unavailable = e.what();
    }
  }
  require_device(device);
  if (o.threads > 0) set_num_threads(o.threads);

  // What each precision computes in here (say so when it is not what was asked); TF32 is set before
  // the first CUDA operation.
  std::vector<Precision> effective;
  for (Precision asked : o.precisions) {
    const PrecisionPlan plan = plan_precision(asked, device, o.train);
    if (!plan.note.empty()) std::printf("note: %s\n", plan.note.c_str());
    effective.push_back(plan.precision);
  }
  if (device.is_cuda() && o.precision_given) {
    const bool tf32 = std::find(effective.begin(), effective.end(), Precision::tf32) != effective.end();
    if (tf32 && std::any_of(effective.begin(), effective.end(), [](Precision p) { return p != Precision::tf32; }))
      throw Error("tf32 is process-wide on CUDA: time it in a run of its own (--precision tf32)");
    // fp32 among the choices refuses TF32 for all of them; bf16 alone keeps the default.
    const bool fp32 = std::find(effective.begin(), effective.end(), Precision::fp32) != effective.end();
    set_cuda_tf32_for(tf32 ? Precision::tf32 : fp32 ? Precision::fp32 : Precision::bf16);
  }

  set_deterministic(o.deterministic);
  std::printf("%s\n", convolution_mode(device).c_str());

  manual_seed(2017);
  models::DenseNetConfig config = models::DenseNetConfig::densenet121(14);
  config.memory_efficient = o.memory_efficient;
  models::DenseNet model(config);
  model.to(device);
  Generator gen(1);
  const Tensor images = Tensor::randn({o.batch, 3, o.size, o.size}, gen).to(device);
  std::vector<float> labels(static_cast<size_t>(o.batch * 14));
  for (float& v : labels) v = gen.uniform() < 0.3f ? 1.f : 0.f;
  const Tensor targets = Tensor::from_vector(labels, {o.batch, 14}).to(device);
  const Tensor pos_weight = Tensor::full({14}, 0.7f, device), neg_weight = Tensor::full({14}, 0.3f, device);
  optim::Adam adam(model.parameters(), {.lr = 1e-4});
  model.train(o.train);

  // On a GPU with --cuda-graph on, the step recorded and replayed as train_chexnet runs it.
  const bool graphs = o.cuda_graph && DeviceGraph::supported(device);
  const train::LossFunction loss_function = [&](const Tensor& logits, const Tensor& truth) {
    return ops::bce_with_logits(logits, truth, pos_weight, neg_weight);
  };
  train::GraphedTrainStep graphed_step(model, loss_function, adam, device);
  models::GraphedForward graphed_forward([&](const Tensor& x) { return model(x); }, device);
  if (graphs) o.warmup = std::max(o.warmup, 3);

  // A step queues its work and starts copying its loss (or first output) to the host; it is read
  // after the step's timing, so the step itself never waits on a read (only on synchronize()).
  auto step = [&](Precision precision) -> HostCopy {
    const PrecisionScope scope(precision);
    if (graphs) {
      if (o.train) return graphed_step.step(images, targets);
      return graphed_forward(images).narrow(1, 0, 1).narrow(0, 0, 1).to_host_async();
    }
    if (o.train) {
      adam.zero_grad();
      Tensor loss = ops::bce_with_logits(model(images), targets, pos_weight, neg_weight);
      HostCopy value = loss.detach().to_host_async();
      loss.backward();
      adam.step();
      return value;
    }
    NoGradGuard no_grad;
    return model(images).narrow(1, 0, 1).narrow(0, 0, 1).to_host_async();
  };

  const size_t count = effective.size();
  std::vector<float> last(count, 0.f);
  for (int i = 0; i < o.warmup; ++i)
    for (size_t p = 0; p < count; ++p) last[p] = step(effective[p]).values()[0];
  synchronize(device);
  Allocator& allocator = allocator_for(device);
  allocator.reset_peak();
  std::vector<std::vector<double>> seconds(count);
  std::vector<std::vector<bench::Interval>> traced_windows(count);  // on CUPTI's clock, with --gpu-busy
  for (int i = 0; i < o.steps; ++i)
    for (size_t p = 0; p < count; ++p) {
      const uint64_t traced_start = recorder ? recorder->now() : 0;
      const auto start = std::chrono::steady_clock::now();
      const HostCopy value = step(effective[p]);
      synchronize(device);
      seconds[p].push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      if (recorder) traced_windows[p].push_back({traced_start, recorder->now()});
      last[p] = value.values()[0];
    }
  std::vector<bench::StepsActivity> busy;
  if (recorder) {
    try {
      const std::vector<bench::DeviceActivity> records = recorder->collect();
      for (size_t p = 0; p < count; ++p) busy.push_back(bench::activity_over_steps(records, traced_windows[p]));
    } catch (const bench::GpuActivityUnavailable& e) {
      busy_unavailable = e.what();
    }
    recorder.reset();
  }

  const AllocatorStats stats = allocator.stats();
  // A replayed graph's own memory is not the allocator's (it sees it only while recording).
  const uint64_t graph_bytes = DeviceGraph::memory_high_water(device);
  char graph_note[64] = "";
  if (graph_bytes)
    std::snprintf(graph_note, sizeof graph_note, " + CUDA graph %.2f GiB", static_cast<double>(graph_bytes) / (1 << 30));
  const CudaTf32 cuda_tf32_on = device.is_cuda() ? cuda_tf32() : CudaTf32{false, false};
  const size_t rss = peak_rss_bytes();
  const char* mode = o.train ? "train" : "infer";
  const double gib = 1024.0 * 1024.0 * 1024.0;
  std::vector<double> medians;
  for (size_t p = 0; p < count; ++p) {
    const double median_s = median(seconds[p]);
    medians.push_back(median_s);
    // The fastest step too: on a shared machine, noise only ever adds time, so for comparing two
    // builds the minimum over enough steps is the steadier figure.
    const double min_s = *std::min_element(seconds[p].begin(), seconds[p].end());
    const double images_per_s = static_cast<double>(o.batch) / median_s;
    const double scale = static_cast<double>(o.size * o.size) / (224.0 * 224.0);
    const double gflop_per_image = 2.0 * 2.833 * scale * (o.train ? 3.0 : 1.0);
    const double gflops = gflop_per_image * images_per_s;
    const std::string precision(precision_name(effective[p]));
    const BusyReport gpu_busy = busy_report(busy.empty() ? nullptr : &busy[p], busy_unavailable);
    std::printf(
        "densenet121 %s, batch %lld, %lldx%lld, %s, %s, %d threads, %s dense blocks%s: median %.3f s/step, %.1f "
        "images/s, %.1f GFLOP/s; allocator peak %.2f GiB%s, peak RSS %.2f GiB (last loss/output %.5f)%s\n",
        mode, static_cast<long long>(o.batch), static_cast<long long>(o.size), static_cast<long long>(o.size),
        device.str().c_str(), precision.c_str(), num_threads(), o.memory_efficient ? "memory-efficient" : "concatenating",
        graphs ? ", CUDA graph" : "", median_s, images_per_s, gflops, static_cast<double>(stats.peak_bytes) / gib,
        graph_note, static_cast<double>(rss) / gib,
        static_cast<double>(last[p]), gpu_busy.text.c_str());
    std::printf(
        "{\"bench\": \"densenet121\", \"mode\": \"%s\", \"batch\": %lld, \"size\": %lld, \"device\": \"%s\", "
        "\"precision\": \"%s\", \"threads\": %d, \"memory_efficient\": %s, \"steps\": %d, \"median_s\": %.6f, "
        "\"min_s\": %.6f, \"images_per_s\": %.3f, \"gflops\": %.2f, \"alloc_peak_bytes\": %zu, "
        "\"peak_rss_bytes\": %zu, \"deterministic\": %s, \"conv_tf32\": %s, \"matmul_tf32\": %s, "
        "\"cuda_graph\": %s, \"graph_memory_bytes\": %llu, \"device_peak_bytes\": %llu, %s}\n",
        mode, static_cast<long long>(o.batch), static_cast<long long>(o.size), device.str().c_str(), precision.c_str(),
        num_threads(), o.memory_efficient ? "true" : "false", o.steps, median_s, min_s, images_per_s, gflops,
        stats.peak_bytes, rss, o.deterministic ? "true" : "false", cuda_tf32_on.convolutions ? "true" : "false",
        cuda_tf32_on.matmuls ? "true" : "false", graphs ? "true" : "false", static_cast<unsigned long long>(graph_bytes),
        static_cast<unsigned long long>(stats.peak_bytes + graph_bytes), gpu_busy.json.c_str());
  }
  for (size_t p = 1; p < count; ++p) {
    const std::string base(precision_name(effective[0])), other(precision_name(effective[p]));
    std::printf("%s is %.2fx as fast as %s (median step %.3f s against %.3f s, interleaved)\n", other.c_str(),
                medians[0] / medians[p], base.c_str(), medians[p], medians[0]);
    std::printf("{\"bench\": \"densenet121_precision_ratio\", \"mode\": \"%s\", \"batch\": %lld, \"size\": %lld, "
                "\"device\": \"%s\", \"baseline\": \"%s\", \"precision\": \"%s\", \"speedup\": %.4f}\n",
                mode, static_cast<long long>(o.batch), static_cast<long long>(o.size), device.str().c_str(),
                base.c_str(), other.c_str(), medians[0] / medians[p]);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse_options(argc, argv));
  } catch (const std::exception& e) {
    chex::print_error("bench_densenet", e, false);  // CHEX_DEBUG=1 adds the details
    return 1;
  }
}

// chex_demo: the engine end to end on synthetic "radiographs", no data download needed.
//
// Each 32x32 image is noise over a smooth background, with up to two findings: a bright round
// "nodule" and a vertical "line". A small CNN (conv, batch norm, ReLU, pooling, linear — the
// pieces of DenseNet) learns to flag both with the CheXNet loss (class-weighted binary
// cross-entropy) and Adam, then reports accuracy on images it has not seen.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>

#include "chex/chex.h"

using namespace chex;

namespace {

struct Options {
  int steps = 300;
  int batch = 16;
  uint64_t seed = 1;
  int threads = 0;
};

void usage() {
  std::puts(
      "usage: chex_demo [--steps N] [--batch N] [--seed N] [--threads N]\n"
      "\n"
      "Trains a small CNN on synthetic 32x32 images with two findings (a round nodule, a line)\n"
      "using weighted binary cross-entropy and Adam, then reports held-out accuracy.\n"
      "  --steps N    training steps (default 300)\n"
      "  --batch N    images per step (default 16)\n"
      "  --seed N     random seed (default 1)\n"
      "  --threads N  CPU threads (default: all cores)");
}

constexpr int kSize = 32;
constexpr int kClasses = 2;

// A batch of synthetic images [N, 1, 32, 32] and their labels [N, 2].
std::pair<Tensor, Tensor> make_batch(int n, Generator& gen) {
  Tensor images = Tensor::empty({n, 1, kSize, kSize});
  Tensor labels = Tensor::zeros({n, kClasses});
  float* px = images.data();
  float* y = labels.data();
  for (int i = 0; i < n; ++i) {
    const bool nodule = gen.uniform() < 0.4f, line = gen.uniform() < 0.3f;
    const float cx = 6 + gen.uniform() * 20, cy = 6 + gen.uniform() * 20, radius = 2.5f + gen.uniform() * 2;
    const int column = 4 + static_cast<int>(gen.below(24));
    const float tilt = gen.uniform() * 0.6f - 0.3f;
    for (int r = 0; r < kSize; ++r)
      for (int c = 0; c < kSize; ++c) {
        float v = 0.3f * std::sin(0.1f * r) + 0.3f * gen.normal();
        if (nodule && (r - cy) * (r - cy) + (c - cx) * (c - cx) <= radius * radius) v += 1.2f;
        if (line && std::abs(c - column - tilt * (r - 16)) < 1.f) v += 1.2f;
        px[(i * kSize + r) * kSize + c] = v;
      }
    y[i * kClasses + 0] = nodule;
    y[i * kClasses + 1] = line;
  }
  return {images, labels};
}

std::shared_ptr<nn::Sequential> make_model() {
  auto model = std::make_shared<nn::Sequential>();
  model->add("conv0", std::make_shared<nn::Conv2d>(1, 16, 3, 1, 1, false));
  model->add("norm0", std::make_shared<nn::BatchNorm2d>(16));
  model->add("relu0", std::make_shared<nn::ReLU>());
  model->add("pool0", std::make_shared<nn::MaxPool2d>(3, 2, 1));
  model->add("conv1", std::make_shared<nn::Conv2d>(16, 32, 3, 1, 1, false));
  model->add("norm1", std::make_shared<nn::BatchNorm2d>(32));
  model->add("relu1", std::make_shared<nn::ReLU>());
  model->add("pool1", std::make_shared<nn::AvgPool2d>(2, 2));
  model->add("conv2", std::make_shared<nn::Conv2d>(32, 32, 3, 1, 1, false));
  model->add("norm2", std::make_shared<nn::BatchNorm2d>(32));
  model->add("relu2", std::make_shared<nn::ReLU>());
  model->add("gap", std::make_shared<nn::GlobalAvgPool>());
  model->add("classifier", std::make_shared<nn::Linear>(32, kClasses));
  return model;
}

int run(const Options& options) {
  if (options.threads > 0) set_num_threads(options.threads);
  manual_seed(options.seed);
  Generator data(options.seed + 1000);
  auto model = make_model();
  optim::Adam adam(model->parameters(), {.lr = 3e-3});
  // CheXNet's class weights, here from the generator's known positive rates (0.4 and 0.3).
  const Tensor pos_weight = Tensor::from_vector({0.6f, 0.7f}, {kClasses});
  const Tensor neg_weight = Tensor::from_vector({0.4f, 0.3f}, {kClasses});

  std::printf("chex demo: %d steps of batch %d on %d CPU threads, %zu parameters\n", options.steps, options.batch,
              num_threads(), model->parameters().size());
  const auto start = std::chrono::steady_clock::now();
  double smoothed = 0;
  for (int step = 1; step <= options.steps; ++step) {
    auto [images, labels] = make_batch(options.batch, data);
    Tensor loss = ops::bce_with_logits((*model)(images), labels, pos_weight, neg_weight);
    CHEX_CHECK(std::isfinite(loss.item()), "the loss became ", loss.item(), " at step ", step);
    adam.zero_grad();
    loss.backward();
    adam.step();
    smoothed = step == 1 ? loss.item() : 0.95 * smoothed + 0.05 * loss.item();
    if (step % 25 == 0 || step == options.steps) {
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      const double rate = step * options.batch / seconds;
      std::printf("step %4d/%d  loss %.4f  %.0f images/s  ETA %.0f s\n", step, options.steps, smoothed, rate,
                  (options.steps - step) * options.batch / rate);
      std::fflush(stdout);
    }
  }

  model->eval();
  NoGradGuard no_grad;
  auto [images, labels] = make_batch(512, data);
  const std::vector<float> logits = (*model)(images).to_vector(), truth = labels.to_vector();
  int correct[kClasses] = {0, 0};
  for (size_t i = 0; i < truth.size(); ++i) correct[i % kClasses] += (logits[i] > 0) == (truth[i] > 0.5f);
  const double nodule = correct[0] / 512.0, line = correct[1] / 512.0;
  std::printf("held-out accuracy on 512 new images: nodule %.1f%%, line %.1f%%\n", 100 * nodule, 100 * line);
  std::printf("{\"demo\": \"synthetic\", \"steps\": %d, \"final_loss\": %.5f, \"accuracy_nodule\": %.4f, "
              "\"accuracy_line\": %.4f}\n",
              options.steps, smoothed, nodule, line);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  prefer_passive_openmp_waiting(argv);
  Options options;
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string arg = argv[i];
      auto value = [&]() -> long {
        CHEX_CHECK(i + 1 < argc, arg, " needs a value");
        return std::stol(argv[++i]);
      };
      if (arg == "-h" || arg == "--help") {
        usage();
        return 0;
      } else if (arg == "--steps") {
        options.steps = static_cast<int>(value());
      } else if (arg == "--batch") {
        options.batch = static_cast<int>(value());
      } else if (arg == "--seed") {
        options.seed = static_cast<uint64_t>(value());
      } else if (arg == "--threads") {
        options.threads = static_cast<int>(value());
      } else {
        CHEX_FAIL("unknown option '", arg, "' (see --help)");
      }
    }
    CHEX_CHECK(options.steps > 0 && options.batch > 1, "--steps must be positive and --batch at least 2");
    return run(options);
  } catch (const std::exception& e) {
    chex::print_error("chex_demo", e, false);  // CHEX_DEBUG=1 adds the details
    return 1;
  }
}

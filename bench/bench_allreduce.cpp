// bench_allreduce: what data-parallel training spends on communication. Run under mpirun:
//
//   mpirun -np 2 bench_allreduce [--image-size 224] [--batch-size 16] [--steps 3] [--device cpu|cuda]
//
// Measures (1) DataParallel::synchronize_gradients alone on DenseNet-121's gradients (7.0 M floats,
// 28 MB), as seconds, algorithm bandwidth (bytes / time) and NCCL's "bus bandwidth" (algorithm
// bandwidth * 2 (N - 1) / N, the per-link traffic of a ring all-reduce), and (2) whole training
// steps (this rank's share of the global batch: forward, weighted BCE, backward, gradient
// all-reduce, Adam), the all-reduce's share of the step, and the step with the all-reduce started
// bucket by bucket during the backward instead of after it. Rank 0 prints a line and one JSON line.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

#include "chex/autograd.h"
#include "chex/distributed.h"
#include "chex/error.h"
#include "chex/ops.h"
#include "chex/optim/adam.h"
#include "chex/parallel.h"
#include "chex/random.h"
#include "models/densenet.h"

namespace {

using namespace chex;

struct Options {
  int64_t batch = 16;  // global
  int64_t size = 224;
  int steps = 3;
  int syncs = 10;
  std::string device = "cpu";
};

int64_t positive(const std::string& flag, const char* text) {
  char* end = nullptr;
  const long long v = std::strtoll(text, &end, 10);
  CHEX_CHECK(end && *end == '\0' && v > 0, flag, " needs a positive integer, not '", text, "'");
  return v;
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> const char* {
      CHEX_CHECK(i + 1 < argc, a, " needs a value");
      return argv[++i];
    };
    if (a == "-h" || a == "--help") {
      std::printf(
          "usage: mpirun -np N bench_allreduce [--batch-size N] [--image-size S] [--steps N] [--syncs N]\n"
          "                                    [--device cpu|cuda]\n\n"
          "The communication cost of data-parallel DenseNet-121 training: the gradient all-reduce alone\n"
          "(--syncs times; seconds, algorithm and bus bandwidth) and its share of whole training steps\n"
          "(--steps, after one warm-up; --batch-size is the global batch, default 16, at --image-size,\n"
          "default 224). --device cuda uses cuda:<local rank> and NCCL. Rank 0 prints a line and JSON.\n");
      std::exit(0);
    } else if (a == "--batch-size") o.batch = positive(a, value());
    else if (a == "--image-size") o.size = positive(a, value());
    else if (a == "--steps") o.steps = static_cast<int>(positive(a, value()));
    else if (a == "--syncs") o.syncs = static_cast<int>(positive(a, value()));
    else if (a == "--device") o.device = value();
    else CHEX_FAIL("unknown option '", a, "' (see --help)");
  }
  return o;
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

int run(const Options& o) {
  Device device = Device::parse(o.device);
  if (device.is_cuda() && distributed::launched_ranks() > 1) {
    const char* local = std::getenv("OMPI_COMM_WORLD_LOCAL_RANK");
    device = Device::cuda(local ? std::atoi(local) : 0);
  }
  auto comm = distributed::init(device);
  const int n = comm->size();
  CHEX_CHECK(o.batch % n == 0 && o.batch / n >= 2, "--batch-size ", o.batch, " must split into ", n,
             " shares of at least 2 images");
  manual_seed(1);
  models::DenseNet model(models::DenseNetConfig::densenet121(14));
  model.to(device);
  model.train();
  distributed::DataParallel ddp(model, comm);
  int64_t floats = 0;
  for (const Tensor& p : model.parameters()) floats += p.numel();
  const double bytes = static_cast<double>(floats) * sizeof(float);

  // (1) The all-reduce alone, on gradients of ones.
  for (const Tensor& p : model.parameters()) p.set_grad(Tensor::ones(p.shape(), device));
  ddp.synchronize_gradients();  // warm-up
  std::vector<double> sync_times;
  for (int i = 0; i < o.syncs; ++i) {
    comm->barrier();
    const auto t = std::chrono::steady_clock::now();
    ddp.synchronize_gradients();
    sync_times.push_back(seconds_since(t));
  }
  const double sync = median(sync_times);
  const double algbw = bytes / sync / 1e9, busbw = algbw * 2.0 * (n - 1) / n;

  // (2) Whole steps on this rank's share of the batch.
  const int64_t share = o.batch / n;
  Generator gen(static_cast<uint64_t>(7 + comm->rank()));
  const Tensor images = Tensor::randn({share, 3, o.size, o.size}, gen).to(device);
  const Tensor targets = Tensor::zeros({share, 14}, device);
  optim::Adam adam(model.parameters(), {.lr = 1e-4});
  // Alternately: the all-reduce after the backward (synchronize_gradients), and started bucket by
  // bucket during it (backward + finish_gradients).
  std::vector<double> step_times, comm_times, overlapped_times;
  for (int i = 0; i <= 2 * o.steps + 1; ++i) {
    const bool overlapped = i % 2 == 1;
    comm->barrier();
    const double comm_before = ddp.communication_seconds();
    const auto t = std::chrono::steady_clock::now();
    Tensor loss = ops::bce_with_logits(ddp.forward(images), targets);
    adam.zero_grad();
    if (overlapped) {
      ddp.backward(loss);
      ddp.finish_gradients();
    } else {
      loss.backward();
      ddp.synchronize_gradients();
    }
    adam.step();
    (void)loss.item();  // the step's end on a GPU
    if (i < 2) continue;  // warm-up
    (overlapped ? overlapped_times : step_times).push_back(seconds_since(t));
    if (!overlapped) comm_times.push_back(ddp.communication_seconds() - comm_before);
  }
  const double step = median(step_times), communication = median(comm_times), overlapped = median(overlapped_times);
  if (comm->rank() == 0) {
    std::printf("bench_allreduce: %d ranks (%s), %lld gradients (%.1f MB): all-reduce %.2f ms, algbw %.2f GB/s, busbw "
                "%.2f GB/s; training step (global batch %lld, %lld per rank, %lldx%lld) %.3f s, of which "
                "communication %.3f s (%.1f%%); with the all-reduce overlapping the backward %.3f s\n",
                n, comm->description().c_str(), static_cast<long long>(floats), bytes / 1e6, sync * 1e3, algbw, busbw,
                static_cast<long long>(o.batch), static_cast<long long>(share), static_cast<long long>(o.size),
                static_cast<long long>(o.size), step, communication, 100.0 * communication / step, overlapped);
    std::printf("{\"bench\":\"allreduce\",\"ranks\":%d,\"device\":\"%s\",\"threads\":%d,\"gradients\":%lld,\"bytes\":%.0f,"
                "\"allreduce_seconds\":%.6f,\"algbw_gbps\":%.4f,\"busbw_gbps\":%.4f,\"global_batch\":%lld,"
                "\"image_size\":%lld,\"step_seconds\":%.6f,\"communication_seconds\":%.6f,"
                "\"communication_fraction\":%.5f,\"overlapped_step_seconds\":%.6f}\n",
                n, device.str().c_str(), num_threads(), static_cast<long long>(floats), bytes, sync, algbw, busbw,
                static_cast<long long>(o.batch), static_cast<long long>(o.size), step, communication,
                communication / step, overlapped);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  chex::prefer_passive_openmp_waiting(argv);
  try {
    return run(parse(argc, argv));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_allreduce: error: %s\n", e.what());
    chex::distributed::abort_job_if_distributed(1);
    return 1;
  }
}

// Run under mpirun (tests/mpi/CMakeLists.txt): DataParallel on a tiny DenseNet against a reference
// each rank computes alone. Every rank builds the model from a different seed and its own input;
// after DataParallel's construction all hold rank 0's weights, and the averaged gradients, by
// synchronize_gradients() and by backward() + finish_gradients() (small buckets, so that most
// start during the backward), equal the mean of the ranks' gradients computed here one rank at a
// time. Prints one line per check; exit status 1 on a failure. `--device cuda` runs it on the GPU
// (NCCL's all-reduce and broadcast; one rank per GPU): under `mpirun -np 1` the check that the
// NCCL path gives what one process computes.
#include <cmath>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "chex/autograd.h"
#include "chex/distributed.h"
#include "chex/error.h"
#include "chex/ops.h"
#include "chex/random.h"
#include "models/densenet.h"
#include "support/tiny_densenet.h"

namespace {

using namespace chex;

models::DenseNetConfig tiny() { return testing::tiny_densenet_config({1, 2}, 3); }

Tensor input_of(int rank, Device device) {
  Generator gen(100 + static_cast<uint64_t>(rank));
  return Tensor::randn({3, 3, 32, 32}, gen).to(device);
}
Tensor target_of(int rank, Device device) {
  Generator gen(200 + static_cast<uint64_t>(rank));
  return Tensor::uniform({3, 3}, gen, 0.f, 1.f).to(device);
}

std::vector<float> flat_gradients(const nn::Module& model) {
  std::vector<float> out;
  for (const Tensor& p : model.parameters()) {
    const std::vector<float> g = p.grad().to_vector();
    out.insert(out.end(), g.begin(), g.end());
  }
  return out;
}

double relative_difference(const std::vector<float>& a, const std::vector<float>& b) {
  double diff = 0, norm = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
    norm += static_cast<double>(b[i]) * b[i];
  }
  return std::sqrt(diff / norm);
}

int run(Device device) {
  auto comm = distributed::init(device);
  const int rank = comm->rank(), size = comm->size();
  manual_seed(static_cast<uint64_t>(1 + rank));  // different weights on every rank before the broadcast
  models::DenseNet model(tiny());
  model.to(device);
  model.train();
  distributed::DataParallel ddp(model, comm, {.bucket_bytes = 2000});
  manual_seed(1);
  models::DenseNet reference(tiny());  // rank 0's weights
  reference.to(device);
  reference.train();
  bool ok = true;
  auto report = [&](const char* what, double difference, double tolerance) {
    const bool pass = difference <= tolerance;
    ok = ok && pass;
    if (rank == 0) std::printf("%s: %s (relative difference %.3g, tolerance %g)\n", pass ? "ok" : "FAILED", what, difference, tolerance);
  };
  std::vector<float> mine, theirs;
  for (const Tensor& p : model.parameters()) for (float v : p.to_vector()) mine.push_back(v);
  for (const Tensor& p : reference.parameters()) for (float v : p.to_vector()) theirs.push_back(v);
  report("every rank holds rank 0's weights after DataParallel's construction", relative_difference(mine, theirs), 0);

  // The reference: the mean over the ranks of each rank's gradient, computed here alone.
  std::vector<float> expected;
  for (int r = 0; r < size; ++r) {
    for (const Tensor& p : reference.parameters()) p.set_grad(Tensor());
    ops::bce_with_logits(reference(input_of(r, device)), target_of(r, device)).backward();
    const std::vector<float> g = flat_gradients(reference);
    if (expected.empty()) expected.assign(g.size(), 0.f);
    for (size_t i = 0; i < g.size(); ++i) expected[i] += g[i] / static_cast<float>(size);
  }

  for (const Tensor& p : model.parameters()) p.set_grad(Tensor());
  ops::bce_with_logits(ddp.forward(input_of(rank, device)), target_of(rank, device)).backward();
  ddp.synchronize_gradients();
  report("synchronize_gradients gives the mean of the ranks' gradients", relative_difference(flat_gradients(model), expected), 1e-6);

  for (const Tensor& p : model.parameters()) p.set_grad(Tensor());
  ddp.backward(ops::bce_with_logits(ddp.forward(input_of(rank, device)), target_of(rank, device)));
  ddp.finish_gradients();
  report("backward + finish_gradients (buckets started during the backward) give the same",
         relative_difference(flat_gradients(model), expected), 1e-6);
  if (rank == 0)
    std::printf("%d ranks on %s: %s\n", size, device.str().c_str(), ok ? "all checks passed" : "some checks failed");
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::string device = argc == 3 && std::string(argv[1]) == "--device" ? argv[2] : "cpu";
    if (argc != 1 && argc != 3) throw chex::Error("usage: chex_ddp_check [--device cpu|cuda]");
    return run(chex::Device::parse(device));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ddp_check: error: %s\n", e.what());
    chex::distributed::abort_job_if_distributed(1);
    return 1;
  }
}

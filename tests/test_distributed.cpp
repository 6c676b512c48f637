// The single-process parts of data-parallel training (chex/distributed.h): sync batch norm through
// a one-rank communicator computes what the fused batch norm computes (the moments summed over
// "all" ranks are this process's), ghost batch norm equals batch norm applied to each slice on its
// own, and the launcher's rank count. tests/mpi runs the real thing under mpirun.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <vector>

#include "chex/autograd.h"
#include "chex/distributed.h"
#include "chex/ops.h"
#include "chex/random.h"
#include "chex/tensor.h"
#include "support/gradcheck.h"

namespace {

using namespace chex;
using testing::max_scaled_error;

struct BnResult {
  std::vector<float> y, dx, dgamma, dbeta, running_mean, running_var;
};

// batch_norm2d on x with the given options, then the gradients of sum(y * w).
BnResult run_bn(const Tensor& x_in, const Tensor& w, ops::BatchNormOptions options) {
  const int64_t c = x_in.size(1);
  Tensor x = x_in.clone();
  x.set_requires_grad(true);
  Tensor gamma = Tensor::from_vector(std::vector<float>(static_cast<size_t>(c), 1.3f), {c});
  Tensor beta = Tensor::from_vector(std::vector<float>(static_cast<size_t>(c), 0.2f), {c});
  gamma.set_requires_grad(true);
  beta.set_requires_grad(true);
  Tensor rm = Tensor::zeros({c}), rv = Tensor::ones({c});
  const Tensor y = ops::batch_norm2d(x, gamma, beta, rm, rv, options);
  ops::sum(ops::mul(y, w)).backward();
  return {y.to_vector(), x.grad().to_vector(), gamma.grad().to_vector(), beta.grad().to_vector(), rm.to_vector(),
          rv.to_vector()};
}

void require_close(const BnResult& a, const BnResult& b, double tolerance) {
  CHECK(max_scaled_error(a.y, b.y) < tolerance);
  CHECK(max_scaled_error(a.dx, b.dx) < tolerance);
  CHECK(max_scaled_error(a.dgamma, b.dgamma) < tolerance);
  CHECK(max_scaled_error(a.dbeta, b.dbeta) < tolerance);
  CHECK(max_scaled_error(a.running_mean, b.running_mean) < tolerance);
  CHECK(max_scaled_error(a.running_var, b.running_var) < tolerance);
}

}  // namespace

TEST_CASE("sync batch norm on one rank equals the fused batch norm, forward and backward", "[distributed]") {
  Generator gen(11);
  const Tensor x = Tensor::randn({4, 3, 5, 5}, gen, 2.f, 1.5f);  // a mean far from 0, as after a conv
  const Tensor w = Tensor::randn({4, 3, 5, 5}, gen);
  auto comm = distributed::single_process();
  for (const bool relu : {false, true}) {
    const BnResult plain = run_bn(x, w, {.fuse_relu = relu});
    const BnResult synced = run_bn(x, w, {.fuse_relu = relu, .sync = comm.get()});
    require_close(synced, plain, 1e-5);
  }
}

TEST_CASE("ghost batch norm equals batch norm on each slice of the batch on its own", "[distributed]") {
  Generator gen(12);
  const Tensor x = Tensor::randn({6, 2, 3, 3}, gen, 0.5f, 2.f);
  const Tensor w = Tensor::randn({6, 2, 3, 3}, gen);
  const BnResult ghost = run_bn(x, w, {.fuse_relu = true, .groups = 3});
  BnResult slices;
  std::vector<float> dgamma(2, 0.f), dbeta(2, 0.f);
  for (int64_t g = 0; g < 3; ++g) {
    const BnResult r = run_bn(x.narrow(0, 2 * g, 2).contiguous(), w.narrow(0, 2 * g, 2).contiguous(), {.fuse_relu = true});
    slices.y.insert(slices.y.end(), r.y.begin(), r.y.end());
    slices.dx.insert(slices.dx.end(), r.dx.begin(), r.dx.end());
    for (size_t c = 0; c < 2; ++c) {
      dgamma[c] += r.dgamma[c];
      dbeta[c] += r.dbeta[c];
    }
    if (g == 0) {  // the running statistics move with the first slice, as rank 0's
      slices.running_mean = r.running_mean;
      slices.running_var = r.running_var;
    }
  }
  slices.dgamma = dgamma;
  slices.dbeta = dbeta;
  require_close(ghost, slices, 1e-5);
  // And it is not plain batch norm over the whole batch.
  CHECK(max_scaled_error(run_bn(x, w, {.fuse_relu = true}).y, ghost.y) > 1e-3);
}

TEST_CASE("the launcher's rank count comes from its environment, and one process needs no MPI", "[distributed]") {
  const char* saved = std::getenv("OMPI_COMM_WORLD_SIZE");
  if (!saved) {
    CHECK(distributed::launched_ranks() == 1);
    const auto comm = distributed::init(Device::cpu());
    CHECK(comm->size() == 1);
    CHECK(comm->rank() == 0);
    float v[2] = {1.f, 2.f};
    comm->all_reduce_sum(v, 2, Device::cpu());
    CHECK((v[0] == 1.f && v[1] == 2.f));
    CHECK(comm->all_gather("abc") == std::vector<std::string>{"abc"});
    setenv("OMPI_COMM_WORLD_SIZE", "3", 1);
    CHECK(distributed::launched_ranks() == 3);
    unsetenv("OMPI_COMM_WORLD_SIZE");
  }
  CHECK_THROWS_WITH(ops::batch_norm2d(Tensor::zeros({3, 1, 2, 2}), Tensor::ones({1}), Tensor::zeros({1}),
                                      Tensor::zeros({1}), Tensor::ones({1}), {.groups = 2}),
                    Catch::Contains("does not split into 2"));
}

TEST_CASE("backward reports each accumulation into a leaf, as often as leaf_accumulations predicts", "[distributed]") {
  Tensor a = Tensor::from_vector({1.f, 2.f}, {2}), b = Tensor::from_vector({3.f, 4.f}, {2});
  a.set_requires_grad(true);
  b.set_requires_grad(true);
  const Tensor loss = ops::sum(ops::add(ops::mul(a, b), ops::mul(a, a)));  // a used three times, b once
  int64_t predicted_a = 0, predicted_b = 0;
  for (const Tensor& leaf : leaf_accumulations(loss)) {
    predicted_a += leaf.impl() == a.impl();
    predicted_b += leaf.impl() == b.impl();
  }
  CHECK(predicted_a == 3);
  CHECK(predicted_b == 1);
  int64_t seen_a = 0, seen_b = 0;
  std::vector<float> a_grad_when_final;
  {
    GradientAccumulatedHookGuard hook([&](const Tensor& leaf) {
      if (leaf.impl() == a.impl() && ++seen_a == 3) a_grad_when_final = leaf.grad().to_vector();
      seen_b += leaf.impl() == b.impl();
    });
    loss.backward();
  }
  CHECK(seen_a == 3);
  CHECK(seen_b == 1);
  CHECK(a_grad_when_final == std::vector<float>{3.f + 2.f, 4.f + 4.f});  // b + 2a: complete at the last report
  // Outside the guard nothing is reported.
  a.set_grad(Tensor());
  ops::sum(ops::mul(a, a)).backward();
  CHECK(seen_a == 3);
}

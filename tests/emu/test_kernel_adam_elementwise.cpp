// Multi-tensor Adam/SGD (kernels/adam.cu) and the elementwise helpers (kernels/elementwise.cu)
// emulated against their CPU twins under the forward, reverse and random schedules.
//
// Tolerances (largest |a - b| / max(|b|, 1)): 0 where the kernel performs the twin's exact
// operations (fill, add, sub, mul, scale, sigmoid backward); 1e-6 where the twin, compiled for
// this machine (-march=native), may fuse a multiply and an add into one FMA while the emulated
// kernel does not (axpy, Adam, SGD) or vectorises exp (sigmoid); 1e-12 relative for the double
// sum, whose order of additions differs from the twin's.
#include <cmath>
#include <string>
#include <vector>

#include "kernel_test_support.h"
#include "kernels/elementwise.h"
#include "kernels/optimizer.h"
#include "models/densenet_shapes.h"

using namespace chex;

namespace {

// Sizes not multiples of the block (256) or of the vector width (4), one element, empty; and the
// element count of DenseNet-121's smallest feature map at batch 2 (block 4's 1024x7x7). The
// kernels depend on the size alone, so the larger maps are left out: emulated, they cost seconds.
std::vector<int64_t> elementwise_sizes() {
  const models::MapShape last = models::densenet_layer_shapes(2).global_pool_input;
  return {0, 1, 3, 4, 257, 1023, 4099, last.batch * last.channels * last.height * last.width};
}

// More elements than the launch has threads (4096 blocks of 256) when unaligned, and more vectors
// than threads when aligned: the grid-stride loops go round (with a scalar tail of 3).
constexpr int64_t kBeyondGrid = (int64_t{1} << 20) + 1027;
constexpr int64_t kBeyondGridVectors = (int64_t{1} << 22) + 4 * 1027 + 3;

// Runs `emulated(a, b, y)` on inputs starting `offset` floats into their allocations (offset 1
// breaks 16-byte alignment: the scalar path) against `twin(a, b, y)`.
template <typename Emulated, typename Twin>
void check_map(const std::string& what, int64_t n, int64_t offset, double tolerance, Generator& gen, Twin twin,
               Emulated emulated) {
  const std::vector<float> a = testing::random_vector(n + offset, gen);
  const std::vector<float> b = testing::random_vector(n + offset, gen);
  const std::vector<float> y0 = testing::random_vector(n + offset, gen);
  std::vector<float> reference = y0;
  twin(a.data() + offset, b.data() + offset, reference.data() + offset);
  testing::check_against_twin(
      what,
      [&] {
        std::vector<float> y = y0;
        emulated(a.data() + offset, b.data() + offset, y.data() + offset);
        return y;
      },
      reference, tolerance);
}

}  // namespace

TEST_CASE("elementwise kernels match the CPU twin", "[emu][elementwise]") {
  namespace cpu = kernels::cpu;
  namespace emu = kernels::emu;
  Generator gen(41);
  for (const int64_t n : elementwise_sizes()) {
    for (const int64_t offset : {0, 1}) {
      DYNAMIC_SECTION("n " << n << ", offset " << offset) {
        using P = const float*;
        check_map("fill", n, offset, 0.0, gen, [&](P, P, float* y) { cpu::fill({}, y, n, 2.5f); },
                  [&](P, P, float* y) { emu::fill({}, y, n, 2.5f); });
        check_map("add_scalar", n, offset, 0.0, gen, [&](P, P, float* y) { cpu::add_scalar({}, y, n, 1.f); },
                  [&](P, P, float* y) { emu::add_scalar({}, y, n, 1.f); });
        check_map("add", n, offset, 0.0, gen, [&](P a, P b, float* y) { cpu::add({}, a, b, y, n); },
                  [&](P a, P b, float* y) { emu::add({}, a, b, y, n); });
        check_map("sub", n, offset, 0.0, gen, [&](P a, P b, float* y) { cpu::sub({}, a, b, y, n); },
                  [&](P a, P b, float* y) { emu::sub({}, a, b, y, n); });
        check_map("mul", n, offset, 0.0, gen, [&](P a, P b, float* y) { cpu::mul({}, a, b, y, n); },
                  [&](P a, P b, float* y) { emu::mul({}, a, b, y, n); });
        check_map("scale", n, offset, 0.0, gen, [&](P a, P, float* y) { cpu::scale({}, a, -0.37f, y, n); },
                  [&](P a, P, float* y) { emu::scale({}, a, -0.37f, y, n); });
        check_map("axpy", n, offset, 1e-6, gen, [&](P a, P, float* y) { cpu::axpy({}, 0.73f, a, y, n); },
                  [&](P a, P, float* y) { emu::axpy({}, 0.73f, a, y, n); });
        check_map("sigmoid_forward", n, offset, 1e-6, gen, [&](P a, P, float* y) { cpu::sigmoid_forward({}, a, y, n); },
                  [&](P a, P, float* y) { emu::sigmoid_forward({}, a, y, n); });
        check_map("sigmoid_backward", n, offset, 0.0, gen,
                  [&](P a, P b, float* y) { cpu::sigmoid_backward({}, a, b, y, n); },
                  [&](P a, P b, float* y) { emu::sigmoid_backward({}, a, b, y, n); });
        // ReLU's backward through the same vector body and tail (a = the forward's output).
        check_map("relu_backward", n, offset, 0.0, gen,
                  [&](P a, P b, float* y) { cpu::relu_backward({}, a, b, y, n); },
                  [&](P a, P b, float* y) { emu::relu_backward({}, a, b, y, n); });
        // In place: y = y + b.
        check_map("add in place", n, offset, 0.0, gen,
                  [&](P, P b, float* y) { cpu::add({}, y, b, y, n); },
                  [&](P, P b, float* y) { emu::add({}, y, b, y, n); });
      }
    }
  }
}

TEST_CASE("elementwise grid-stride loops cover more elements than threads", "[emu][elementwise]") {
  Generator gen(43);
  check_map("add, unaligned", kBeyondGrid, 1, 0.0, gen,
            [&](const float* a, const float* b, float* y) { kernels::cpu::add({}, a, b, y, kBeyondGrid); },
            [&](const float* a, const float* b, float* y) { kernels::emu::add({}, a, b, y, kBeyondGrid); });
  check_map("relu_backward, aligned", kBeyondGridVectors, 0, 0.0, gen,
            [&](const float* a, const float* b, float* y) {
              kernels::cpu::relu_backward({}, a, b, y, kBeyondGridVectors);
            },
            [&](const float* a, const float* b, float* y) {
              kernels::emu::relu_backward({}, a, b, y, kBeyondGridVectors);
            });
}

TEST_CASE("the sum kernel is deterministic and matches the twin", "[emu][elementwise]") {
  Generator gen(42);
  std::vector<int64_t> sizes = elementwise_sizes();
  // Unaligned, more work than sum_workspace_size() blocks of 1024 elements: threads stride on.
  sizes.push_back(kBeyondGrid);
  for (const int64_t n : sizes) {
    for (const int64_t offset : {0, 1}) {
      DYNAMIC_SECTION("n " << n << ", offset " << offset) {
        std::vector<float> x = testing::random_vector(n + offset, gen);
        for (float& v : x) v += 0.25f;  // a nonzero mean: the sum does not cancel to noise
        const double reference = kernels::cpu::sum_in_double(x.data() + offset, n);
        std::vector<double> results;
        for (const auto& setting : testing::kernel_test_schedules()) {
          emu::ScopedSchedule schedule(setting.order, setting.seed);
          std::vector<double> workspace(kernels::emu::sum_workspace_size(), -1.0);
          double result = -1.0;
          kernels::emu::sum_in_double(x.data() + offset, n, workspace.data(), &result, nullptr);
          INFO("schedule " << emu::to_string(setting) << ": " << result << " vs twin " << reference);
          CHECK(std::fabs(result - reference) <= 1e-12 * std::max(1.0, std::fabs(reference)));
          results.push_back(result);
        }
        for (const double r : results) CHECK(r == results.front());  // bit for bit across schedules
      }
    }
  }
}

namespace {

// A parameter set of mixed sizes: one element, non-multiples of 4, empty, exactly one chunk,
// one more than a chunk, several chunks; the tensor at index 3 starts 1 float into its
// allocation (misaligned: the scalar path).
const std::vector<int64_t> kParamSizes{1, 3, 4, 5, 0, 127, kernels::kOptimizerChunk, kernels::kOptimizerChunk + 1,
                                       20001, 64};
constexpr size_t kMisaligned = 3;

struct OptimizerState {
  std::vector<std::vector<float>> param, grad, state1, state2;  // per tensor, with the shift
};

int64_t shift_of(size_t i) { return i == kMisaligned ? 1 : 0; }

OptimizerState random_state(Generator& gen, bool with_state) {
  OptimizerState s;
  for (size_t i = 0; i < kParamSizes.size(); ++i) {
    const int64_t n = kParamSizes[i] + shift_of(i);
    s.param.push_back(testing::random_vector(n, gen));
    s.grad.push_back(testing::random_vector(n, gen, 0.1f));
    std::vector<float> v2 = testing::random_vector(n, gen, 0.01f);
    for (float& v : v2) v = v * v;  // exp_avg_sq is never negative
    s.state1.push_back(with_state ? testing::random_vector(n, gen, 0.01f) : std::vector<float>(n, 0.f));
    s.state2.push_back(with_state ? v2 : std::vector<float>(n, 0.f));
  }
  return s;
}

std::vector<float> flatten(const OptimizerState& s) {
  std::vector<float> all;
  for (const auto* part : {&s.param, &s.state1, &s.state2})
    for (const auto& t : *part) all.insert(all.end(), t.begin(), t.end());
  return all;
}

}  // namespace

TEST_CASE("multi-tensor Adam matches the CPU twin over several steps", "[emu][adam]") {
  constexpr int kSteps = 4;
  for (const double weight_decay : {0.0, 0.01}) {
    DYNAMIC_SECTION("weight decay " << weight_decay) {
      Generator gen(51);
      const double lr = 1e-2, beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
      const kernels::AdamHyper hyper = kernels::adam_hyper(beta1, beta2, eps, weight_decay);
      const OptimizerState initial = random_state(gen, false);
      std::vector<std::vector<std::vector<float>>> grads(kSteps);  // per step, per tensor
      for (auto& step : grads)
        for (size_t i = 0; i < kParamSizes.size(); ++i)
          step.push_back(testing::random_vector(kParamSizes[i] + shift_of(i), gen, 0.1f));
      // Per-tensor step counts differ, as when a parameter missed steps: tensor 2 starts at 7.
      auto step_count = [](size_t i, int step) { return static_cast<int64_t>(step + 1 + (i == 2 ? 6 : 0)); };

      OptimizerState reference = initial;
      for (int step = 0; step < kSteps; ++step)
        for (size_t i = 0; i < kParamSizes.size(); ++i) {
          const int64_t k = shift_of(i);
          kernels::cpu::adam_update(reference.param[i].data() + k, grads[step][i].data() + k,
                                    reference.state1[i].data() + k, reference.state2[i].data() + k, kParamSizes[i],
                                    hyper, kernels::adam_step(lr, beta1, beta2, step_count(i, step)));
        }

      testing::check_against_twin(
          "adam_multi_tensor",
          [&] {
            OptimizerState s = initial;
            for (int step = 0; step < kSteps; ++step) {
              std::vector<kernels::AdamTensor> table;
              for (size_t i = 0; i < kParamSizes.size(); ++i) {
                const int64_t k = shift_of(i);
                table.push_back({s.param[i].data() + k, grads[step][i].data() + k, s.state1[i].data() + k,
                                 s.state2[i].data() + k, kParamSizes[i], 0,
                                 kernels::adam_step(lr, beta1, beta2, step_count(i, step))});
              }
              const int count = static_cast<int>(table.size());
              const int64_t chunks = kernels::plan_optimizer_chunks(table.data(), count);
              kernels::emu::adam_multi_tensor({}, {table.data(), count, chunks, hyper});  // one launch
            }
            return flatten(s);
          },
          flatten(reference), 1e-6);
    }
  }
}

TEST_CASE("multi-tensor SGD matches the CPU twin over several steps", "[emu][sgd]") {
  constexpr int kSteps = 3;
  struct Setting {
    double momentum, dampening, weight_decay;
    bool nesterov;
  };
  for (const Setting& o : {Setting{0.0, 0.0, 0.0, false}, Setting{0.9, 0.1, 1e-4, false}, Setting{0.9, 0.0, 0.01, true}}) {
    DYNAMIC_SECTION("momentum " << o.momentum << ", dampening " << o.dampening << ", weight decay " << o.weight_decay
                                << ", nesterov " << o.nesterov) {
      Generator gen(52);
      const kernels::SgdHyper hyper = kernels::sgd_hyper(0.05, o.momentum, o.dampening, o.weight_decay, o.nesterov);
      const bool momentum = o.momentum != 0.0;
      const OptimizerState initial = random_state(gen, false);
      std::vector<std::vector<std::vector<float>>> grads(kSteps);
      for (auto& step : grads)
        for (size_t i = 0; i < kParamSizes.size(); ++i)
          step.push_back(testing::random_vector(kParamSizes[i] + shift_of(i), gen, 0.1f));

      OptimizerState reference = initial;
      for (int step = 0; step < kSteps; ++step)
        for (size_t i = 0; i < kParamSizes.size(); ++i) {
          const int64_t k = shift_of(i);
          kernels::cpu::sgd_update(reference.param[i].data() + k, grads[step][i].data() + k,
                                   momentum ? reference.state1[i].data() + k : nullptr, kParamSizes[i], hyper,
                                   step == 0);
        }

      testing::check_against_twin(
          "sgd_multi_tensor",
          [&] {
            OptimizerState s = initial;
            for (int step = 0; step < kSteps; ++step) {
              std::vector<kernels::SgdTensor> table;
              for (size_t i = 0; i < kParamSizes.size(); ++i) {
                const int64_t k = shift_of(i);
                table.push_back({s.param[i].data() + k, grads[step][i].data() + k,
                                 momentum ? s.state1[i].data() + k : nullptr, kParamSizes[i], 0, step == 0 ? 1 : 0});
              }
              const int count = static_cast<int>(table.size());
              const int64_t chunks = kernels::plan_optimizer_chunks(table.data(), count);
              kernels::emu::sgd_multi_tensor({}, {table.data(), count, chunks, hyper});
            }
            return flatten(s);
          },
          flatten(reference), 1e-6);
    }
  }
}

// The training step recorded as a device graph (chex/graph.h, apps/train_chexnet/graphed_step.h).
//
// On every device: the body a recording holds breaks none of the recording rules (CaptureAudit:
// no host read, no host upload, no free of older memory, nothing left allocated), and steps run
// through GraphedTrainStep equal train_chexnet's plain step bit for bit, a partial batch in the
// middle included. On a GPU the same test replays a recorded graph, so "bit for bit" there is
// replay against eager execution on the same GPU; the CPU runs the same tensors eagerly.
// CaptureAudit itself is checked on the CPU: each broken rule is seen and counted.
#include <cstring>
#include <functional>
#include <memory>
#include <vector>

#include "chex/graph.h"
#include "chex/kernel_calls.h"
#include "chex/ops.h"
#include "chex/optim/adam.h"
#include "chex/precision.h"
#include "device/device_test.h"
#include "graphed_step.h"
#include "models/densenet.h"
#include "models/graphed_forward.h"
#include "train_step.h"

using namespace chex;

namespace {

struct Run {
  Generator gen{5};
  models::DenseNet model;
  optim::Adam optimizer;
  Tensor pos, neg;
  train::LossFunction loss;

  Run(Device device, bool memory_efficient)
      : model(testing::tiny_densenet_config({2, 3}, 3, memory_efficient), gen),
        optimizer((model.to(device), model.train(), model.parameters()), {.lr = 1e-3}),
        pos(Tensor::from_vector({0.7f, 0.9f, 0.6f}, {3}).to(device)),
        neg(Tensor::from_vector({0.3f, 0.1f, 0.4f}, {3}).to(device)) {
    // As train_chexnet's Loss: weighted BCE summed over the labels.
    loss = [this](const Tensor& logits, const Tensor& targets) {
      return ops::scale(ops::bce_with_logits(logits, targets, pos, neg), 3.f);
    };
  }
};

Tensor batch_images(int64_t n, uint64_t seed) { return testing::random_on(Device::cpu(), {n, 3, 32, 32}, seed); }
Tensor batch_targets(int64_t n, uint64_t seed) {
  std::vector<float> labels(static_cast<size_t>(n * 3));
  for (size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<float>((seed * 7 + i * 5) % 3 == 0);
  return Tensor::from_vector(labels, {n, 3});
}

bool bitwise_equal(const Tensor& a, const Tensor& b) {
  const std::vector<float> x = a.to_vector(), y = b.to_vector();
  return x.size() == y.size() && std::memcmp(x.data(), y.data(), x.size() * sizeof(float)) == 0;
}

// On the CPU, `cuda_path` hides the CPU's optional kernels (chex/kernel_calls.h), so that the ops
// take the path the CUDA backend takes (the unfused dense block, among others).
std::unique_ptr<KernelCallRecorder> cuda_path_on_cpu(Device device, bool cuda_path) {
  if (!cuda_path || !device.is_cpu()) return nullptr;
  return std::make_unique<KernelCallRecorder>(CpuPath::like_cuda);
}

void check_recorded_body_follows_the_rules(Device device, bool memory_efficient, bool cuda_path = false) {
  const auto path = cuda_path_on_cpu(device, cuda_path);
  Run run(device, memory_efficient);
  train::GraphedTrainStep step(run.model, run.loss, run.optimizer, device, /*warmup=*/2);
  const Tensor images = batch_images(2, 9), targets = batch_targets(2, 4);
  for (int i = 0; i < 2; ++i) step.step(images, targets, /*record=*/false).item();
  // As GraphedTrainStep::step() records: the optimizer staged outside, the body inside.
  const Tensor fixed_images = images.to(device), fixed_targets = targets.to(device);
  run.optimizer.stage_step();
  CaptureAudit audit(device);
  step.body(fixed_images, fixed_targets);
  const CaptureReport report = audit.finish();
  INFO(report.problems());
  CHECK(report.recordable());
  CHECK(report.allocations > 10);  // the audit saw the step's own memory come and go
}

void check_graphed_steps_equal_plain_steps(Device device, bool memory_efficient, bool cuda_path = false) {
  const auto path = cuda_path_on_cpu(device, cuda_path);
  Run graphed(device, memory_efficient), plain(device, memory_efficient);
  train::GraphedTrainStep step(graphed.model, graphed.loss, graphed.optimizer, device, /*warmup=*/2);
  // Six steps at batch 3, then a partial batch of 2 (eager, on the same tensors), then two more.
  const std::vector<int64_t> sizes = {3, 3, 3, 3, 3, 3, 2, 3, 3};
  for (size_t i = 0; i < sizes.size(); ++i) {
    const Tensor images = batch_images(sizes[i], 100 + i), targets = batch_targets(sizes[i], 200 + i);
    const uint64_t reads_before = host_read_count();
    const HostCopy graphed_copy = step.step(images, targets);
    CHECK(host_read_count() == reads_before);  // nothing in a step waits for the device
    const float graphed_loss = graphed_copy.item();
    const float plain_loss = train::train_step(plain.model, plain.loss, plain.optimizer, images.to(device),
                                               targets.to(device)).item();
    INFO("step " << i + 1);
    CHECK(std::memcmp(&graphed_loss, &plain_loss, sizeof(float)) == 0);
  }
  const auto a = graphed.model.named_parameters(), b = plain.model.named_parameters();
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    INFO(a[i].first);
    CHECK(bitwise_equal(a[i].second, b[i].second));
  }
  for (const auto& [name, exp_avg] : graphed.optimizer.state_dict().tensors) {
    INFO(name);
    CHECK(bitwise_equal(exp_avg, plain.optimizer.state_dict().tensors.at(name)));
  }
  if (DeviceGraph::supported(device)) {
    CHECK(step.recordings() == 1);  // the partial batch did not invalidate the recording
    CHECK(step.replays() == 6);     // steps 3-6, 8 and 9
  } else {
    CHECK(step.recordings() == 0);
  }
}

void check_graphed_inference_equals_eager(Device device) {
  Run run(device, true);
  run.model.eval();
  models::GraphedForward forward([&](const Tensor& x) { return run.model(x); }, device, /*warmup=*/1);
  for (int i = 0; i < 5; ++i) {
    const int64_t n = i == 3 ? 1 : 2;  // a smaller batch in between runs eagerly
    const Tensor images = batch_images(n, 300 + static_cast<uint64_t>(i));
    const Tensor graphed = forward(images).clone();
    NoGradGuard no_grad;
    const Tensor eager = run.model(images.to(device));
    INFO("call " << i + 1);
    CHECK(bitwise_equal(graphed, eager));
  }
  CHECK(forward.replays() == (DeviceGraph::supported(device) ? 3 : 0));  // calls 2, 3 and 5
  // What the recording holds: the forward into the fixed output, on fixed inputs.
  const Tensor input = batch_images(2, 9).to(device);
  Tensor output = Tensor::empty({2, 3}, device);
  NoGradGuard no_grad;
  CaptureAudit audit(device);
  output.copy_(run.model(input));
  const CaptureReport report = audit.finish();
  INFO(report.problems());
  CHECK(report.recordable());
}

}  // namespace

CHEX_DEVICE_TEST("inference through a device graph equals eager inference bit for bit", "[graphs]") {
  check_graphed_inference_equals_eager(device);
}

CHEX_DEVICE_TEST("the recorded training step breaks no device-graph recording rule", "[graphs]") {
  SECTION("memory-efficient blocks") { check_recorded_body_follows_the_rules(device, true); }
  SECTION("concatenating blocks") { check_recorded_body_follows_the_rules(device, false); }
  SECTION("memory-efficient blocks on the CUDA backend's path") { check_recorded_body_follows_the_rules(device, true, true); }
  SECTION("memory-efficient blocks in bf16") {
    const PrecisionScope bf16(Precision::bf16);
    check_recorded_body_follows_the_rules(device, true);
  }
}

CHEX_DEVICE_TEST("training steps through a device graph equal plain steps bit for bit", "[graphs]") {
  SECTION("memory-efficient blocks") { check_graphed_steps_equal_plain_steps(device, true); }
  SECTION("concatenating blocks") { check_graphed_steps_equal_plain_steps(device, false); }
  SECTION("memory-efficient blocks on the CUDA backend's path") { check_graphed_steps_equal_plain_steps(device, true, true); }
  SECTION("memory-efficient blocks in bf16") {
    const PrecisionScope bf16(Precision::bf16);
    check_graphed_steps_equal_plain_steps(device, true);
  }
}

TEST_CASE("CaptureAudit counts each broken recording rule (cpu)", "[graphs][on-cpu]") {
  const Device cpu = Device::cpu();
  SECTION("a host read") {
    const Tensor t = Tensor::ones({1}, cpu);
    CaptureAudit audit(cpu);
    CHECK(t.item() == 1.f);
    const CaptureReport r = audit.finish();
    CHECK(r.host_reads == 1);
    CHECK_FALSE(r.recordable());
    CHECK_THAT(r.problems(), Catch::Contains("1 host read"));
  }
  SECTION("a host upload: a whole optimizer step, its tables staged, instead of its launch") {
    Tensor w = Tensor::ones({3}, cpu);
    w.set_requires_grad(true);
    ops::sum(ops::mul(w, w)).backward();
    optim::Adam optimizer({w});
    CaptureAudit audit(cpu);
    optimizer.step();
    const CaptureReport r = audit.finish();
    CHECK(r.host_uploads == 1);
    CHECK_THAT(r.problems(), Catch::Contains("copy(ies) from host memory"));
  }
  SECTION("a free of memory allocated before") {
    Tensor t = Tensor::ones({4}, cpu);
    CaptureAudit audit(cpu);
    t = Tensor();
    const CaptureReport r = audit.finish();
    CHECK(r.outside_frees == 1);
    CHECK_FALSE(r.recordable());
  }
  SECTION("memory left allocated at the end") {
    Tensor kept;
    CaptureAudit audit(cpu);
    kept = Tensor::ones({8}, cpu);
    const CaptureReport r = audit.finish();
    CHECK(r.leaked_allocations == 1);
    CHECK(r.leaked_bytes >= 8 * sizeof(float));
    CHECK_THAT(r.problems(), Catch::Contains("still alive"));
  }
  SECTION("a region that follows the rules") {
    const Tensor a = Tensor::ones({4}, cpu);
    Tensor out = Tensor::zeros({4}, cpu);
    CaptureAudit audit(cpu);
    out.copy_(ops::add(a, a));  // a temporary, freed in the region; the result written in place
    const CaptureReport r = audit.finish();
    CHECK(r.recordable());
    CHECK(r.allocations == 1);
    CHECK(r.problems().empty());
  }
  SECTION("another device's work is not counted") {
    const Tensor t = Tensor::ones({4}, cpu);
    CaptureAudit audit(Device::cuda(0));
    Tensor kept = ops::add(t, t);
    CHECK(audit.finish().leaked_allocations == 0);
  }
  SECTION("one audit per thread") {
    CaptureAudit audit(cpu);
    CHECK_THROWS(CaptureAudit(cpu));
  }
  SECTION("recording needs a device that records") {
    CHECK_FALSE(DeviceGraph::supported(cpu));
    CHECK_THROWS_WITH(DeviceGraph::record(cpu, [] {}), Catch::Contains("need a CUDA device"));
  }
}

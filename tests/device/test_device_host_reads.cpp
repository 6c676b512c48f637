// A steady-state training step makes no host reads (chex::host_read_count(), chex/tensor.h): on a
// GPU any read waits for the device, so a step that reads stalls the queue it has just filled.
// The step is train_chexnet's own (apps/train_chexnet/train_step.h) on a tiny DenseNet with
// memory-efficient and concatenating blocks: forward, weighted BCE as train_chexnet's loss, backward,
// Adam. Two warm-up steps, then three that must not move the counter; the loss read after each
// (as the trainer logs it) is then the one read per step, and the batch-norm counters still count.
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "chex/ops.h"
#include "chex/optim/adam.h"
#include "device/device_test.h"
#include "models/densenet.h"
#include "train_step.h"

using namespace chex;

namespace {

void check_no_host_reads(Device device, bool memory_efficient) {
  Generator gen(5);
  models::DenseNet model(testing::tiny_densenet_config({2, 3}, 3, memory_efficient), gen);
  model.to(device);
  model.train();
  optim::Adam optimizer(model.parameters(), {.lr = 1e-3});
  const Tensor pos = Tensor::from_vector({0.7f, 0.9f, 0.6f}, {3}).to(device);
  const Tensor neg = Tensor::from_vector({0.3f, 0.1f, 0.4f}, {3}).to(device);
  // As train_chexnet's Loss: weighted BCE summed over the labels.
  const train::LossFunction loss = [&](const Tensor& logits, const Tensor& targets) {
    return ops::scale(ops::bce_with_logits(logits, targets, pos, neg), 3.f);
  };
  const Tensor images = testing::random_on(device, {2, 3, 32, 32}, 9);
  const Tensor targets = Tensor::from_vector({1, 0, 1, 0, 0, 1}, {2, 3}).to(device);

  for (int step = 1; step <= 5; ++step) {
    const uint64_t before = host_read_count();
    const HostCopy value = train::train_step(model, loss, optimizer, images, targets);
    const uint64_t reads = host_read_count() - before;
    if (step > 2) {
      INFO("step " << step << " made " << reads << " host reads");
      CHECK(reads == 0);
    }
    // The trainer reads the loss when it logs: that read counts, once.
    const uint64_t before_log = host_read_count();
    CHECK(std::isfinite(value.item()));
    CHECK(value.item() > 0.f);
    CHECK(host_read_count() - before_log == 1);
  }
  // The counters moved on the device, one per training forward, and read back as before.
  for (const auto& [name, t] : model.named_buffers())
    if (name.ends_with("num_batches_tracked")) CHECK(t.item() == 5.f);
}

}  // namespace

CHEX_DEVICE_TEST("a steady-state DenseNet training step makes no host reads", "[host-reads]") {
  SECTION("memory-efficient blocks") { check_no_host_reads(device, true); }
  SECTION("concatenating blocks") { check_no_host_reads(device, false); }
}

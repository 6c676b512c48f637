#pragma once
// The training step recorded once as a device graph and replayed (chex/graph.h), as train_chexnet
// runs it on a GPU with --cuda-graph on, and as the tests check it (tests/device: the recorded
// body breaks no recording rule, on the CPU too; on a GPU, replays equal eager steps bit for bit).
//
// The step's tensors that outlive it are made before the recording and updated in place by it:
// the batch is copied into fixed input tensors, the loss into a fixed scalar, gradients are zeroed
// in place (never dropped), and the optimizer's tables are staged before each replay. The first
// `warmup` steps at a batch shape run eagerly (cuDNN's algorithm choices, cuBLAS's handle); the
// next one records, and every later step at that shape replays. A batch of another shape (an
// epoch's last, partial one) runs eagerly, on the same tensors, and the recording stays valid.
//
// A recording is made again, not replayed stale, when anything it fixed has moved: the optimizer's
// launch (staged_launch_key()), or the address of a parameter, its gradient or a buffer.
#include <cstddef>
#include <string>
#include <vector>

#include "chex/autograd.h"
#include "chex/graph.h"
#include "chex/nn/module.h"
#include "chex/optim/optimizer.h"
#include "chex/tensor.h"
#include "chex/upload.h"
#include "train_step.h"

namespace chex::train {

class GraphedTrainStep {
 public:
  GraphedTrainStep(nn::Module& model, LossFunction loss, optim::Optimizer& optimizer, Device device, int warmup = 2)
      : model_(model),
        loss_(std::move(loss)),
        optimizer_(optimizer),
        device_(device),
        warmup_(warmup),
        images_upload_(device),
        labels_upload_(device) {}

  // One step on `images` and `labels` (any device; copied to the model's). The loss comes back
  // as a HostCopy, read when the caller logs it. `record` false runs every step eagerly through
  // the same tensors (the CPU's way, and the reference the replays are compared with).
  HostCopy step(const Tensor& host_images, const Tensor& host_labels, bool record = true) {
    // Copied on the device's copy stream, overlapping the step before (chex/upload.h).
    const Tensor images = on_device(images_upload_, host_images), labels = on_device(labels_upload_, host_labels);
    if (!images_.defined() || images_.shape() != images.shape() || labels_.shape() != labels.shape()) {
      if (images_.defined() && shape_steps_ >= warmup_) {
        body_eager(images, labels);
        return loss_value_.to_host_async();
      }
      // A new shape: the first, or one seen only in warm-up so far. Fixed inputs for it.
      images_ = Tensor::empty(images.shape(), device_);
      labels_ = Tensor::empty(labels.shape(), device_);
      if (!loss_value_.defined()) loss_value_ = Tensor::empty({}, device_);
      shape_steps_ = 0;
      graph_ = DeviceGraph();
    }
    images_.copy_(images);
    labels_.copy_(labels);
    if (!record || !DeviceGraph::supported(device_) || shape_steps_ < warmup_) {
      ++shape_steps_;
      body_eager(images_, labels_);
      return loss_value_.to_host_async();
    }
    optimizer_.stage_step();
    if (graph_.empty() || recorded_ != fixed_addresses()) {
      graph_ = DeviceGraph();  // the old one's memory goes back before the new one takes its own
      graph_ = DeviceGraph::record(device_, [this] { body(images_, labels_); });
      recorded_ = fixed_addresses();
      ++recordings_;
    }
    graph_.replay();
    ++shape_steps_;
    ++replays_;
    return loss_value_.to_host_async();
  }

  // How many times the step was recorded, and replayed (for tests and the log).
  int recordings() const { return recordings_; }
  int64_t replays() const { return replays_; }

  // The body a recording holds: forward, loss, backward and the optimizer's launch, on fixed
  // tensors. Public for the CPU audit test (tests/device), which runs it under CaptureAudit after
  // stage_step(), as step() records it.
  void body(const Tensor& images, const Tensor& labels) {
    const Tensor logits = model_(images);
    const Tensor loss = loss_(logits, labels);
    loss_value_.copy_(loss.detach());
    optimizer_.zero_grad(/*set_to_none=*/false);  // in place: the gradients keep their addresses
    loss.backward();
    optimizer_.launch_staged_step();
  }

 private:
  static Tensor on_device(AheadUploader& uploader, const Tensor& t) {
    return t.device().is_cpu() ? uploader.upload(t) : t;
  }

  void body_eager(const Tensor& images, const Tensor& labels) {
    const Tensor logits = model_(images);
    const Tensor loss = loss_(logits, labels);
    loss_value_.copy_(loss.detach());
    optimizer_.zero_grad(/*set_to_none=*/false);
    loss.backward();
    optimizer_.step();
  }

  // What a recording fixes besides its own memory: the optimizer's launch and the addresses of
  // every parameter, gradient and buffer it reads or writes.
  std::string fixed_addresses() const {
    std::string key = optimizer_.staged_launch_key();
    auto append = [&key](const void* p) { key.append(reinterpret_cast<const char*>(&p), sizeof p); };
    for (const Tensor& p : model_.parameters()) {
      append(p.raw_data());
      append(p.grad().defined() ? p.grad().raw_data() : nullptr);
    }
    for (const auto& [name, buffer] : model_.named_buffers()) append(buffer.raw_data());
    append(loss_value_.raw_data());
    append(images_.raw_data());
    append(labels_.raw_data());
    return key;
  }

  nn::Module& model_;
  LossFunction loss_;
  optim::Optimizer& optimizer_;
  Device device_;
  int warmup_;
  AheadUploader images_upload_, labels_upload_;
  Tensor images_, labels_, loss_value_;  // fixed: the recording reads and writes them in place
  int shape_steps_ = 0;                  // steps run at images_'s shape
  DeviceGraph graph_;
  std::string recorded_;
  int recordings_ = 0;
  int64_t replays_ = 0;
};

}  // namespace chex::train

#pragma once
// Inference recorded once as a device graph and replayed (chex/graph.h): a module's forward in
// eval mode, without autograd, at one input shape. The input is copied into a fixed tensor and
// the output copied out of one, so a replay reads and writes the same memory each time; the first
// `warmup` calls at a shape run eagerly (algorithm choices, library handles), the next records.
// Another shape (a last, smaller batch) runs eagerly; the CPU, which records nothing, runs every
// call eagerly through the same tensors.
#include <functional>

#include "chex/autograd.h"
#include "chex/graph.h"
#include "chex/tensor.h"

namespace chex::models {

class GraphedForward {
 public:
  using Forward = std::function<Tensor(const Tensor&)>;
  GraphedForward(Forward forward, Device device, int warmup = 1)
      : forward_(std::move(forward)), device_(device), warmup_(warmup) {}

  // The forward's output for `input` (any device; copied to this one). The returned tensor is the
  // fixed output: clone() it to keep it past the next call.
  Tensor operator()(const Tensor& input) {
    NoGradGuard no_grad;
    if (!input_.defined() || input_.shape() != input.shape()) {
      if (input_.defined() && calls_ >= warmup_) return forward_(input.to(device_));
      input_ = Tensor::empty(input.shape(), device_);
      output_ = Tensor();
      calls_ = 0;
      graph_ = DeviceGraph();
    }
    input_.copy_(input);
    if (!DeviceGraph::supported(device_) || calls_ < warmup_ || !output_.defined()) {
      ++calls_;
      const Tensor result = forward_(input_);
      if (!output_.defined()) output_ = Tensor::empty(result.shape(), device_);  // made before any recording
      output_.copy_(result);
      return output_;
    }
    if (graph_.empty()) graph_ = DeviceGraph::record(device_, [this] { output_.copy_(forward_(input_)); });
    graph_.replay();
    ++calls_;
    ++replays_;
    return output_;
  }

  int64_t replays() const { return replays_; }

 private:
  Forward forward_;
  Device device_;
  int warmup_;
  Tensor input_, output_;  // fixed: the recording reads and writes them in place
  int calls_ = 0;          // calls at input_'s shape
  int64_t replays_ = 0;
  DeviceGraph graph_;
};

}  // namespace chex::models

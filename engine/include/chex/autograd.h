#pragma once
// Define-by-run autograd. Every differentiable op that sees an input requiring gradients records a
// Node holding what its backward needs; Tensor::backward() walks the recorded graph from the
// output, newest node first, so each node's saved tensors are released as soon as it has run.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "chex/tensor.h"

namespace chex {

struct Edge {
  std::shared_ptr<Node> node;  // null when the input does not need a gradient
};

// A node of the backward graph. Each node has exactly one output (ops with several results are
// expressed as several views), and one edge per input of the op that made it.
class Node {
 public:
  Node(std::string name, std::vector<Edge> next, Shape output_shape, Device output_device);
  virtual ~Node() = default;
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // Gradient of the output in, gradients of the inputs out (one per edge; undefined where the
  // edge is null).
  virtual std::vector<Tensor> apply(const Tensor& grad_output) = 0;
  // Frees the tensors saved for backward.
  virtual void release() {}
  // The leaf whose grad() this node accumulates into, for the end of the graph at a leaf (one such
  // node per use of the leaf); null otherwise.
  virtual const Tensor* accumulates_into() const { return nullptr; }

  const std::string& name() const { return name_; }
  const std::vector<Edge>& next() const { return next_; }
  const Shape& output_shape() const { return output_shape_; }
  Device output_device() const { return output_device_; }
  uint64_t sequence() const { return sequence_; }

 private:
  std::string name_;
  std::vector<Edge> next_;
  Shape output_shape_;
  Device output_device_;
  uint64_t sequence_;  // creation order: backward runs newest first
};

// The backward of an op, written as a closure over what it saved. `needs[i]` says whether input i
// wants a gradient, so an op can skip work. Tensors captured by the closure must be detached (no
// grad_fn), so that the graph has no reference cycles.
using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_output, const std::vector<bool>& needs)>;

// Records `output` as the result of op `name` applied to `inputs`, if autograd is on and any input
// requires a gradient. Returns `output` (now with a grad_fn) either way.
Tensor record(const char* name, const Tensor& output, const std::vector<Tensor>& inputs, BackwardFn backward);

// True when an op with these inputs must record a node.
bool any_requires_grad(const std::vector<Tensor>& inputs);

// Called on backward()'s thread each time it has added a gradient into a leaf's grad() (once per use
// of the leaf in the graph): DataParallel starts a bucket's all-reduce once its gradients are final.
// Thread-local, set for a scope by the guard.
using GradientAccumulatedHook = std::function<void(const Tensor& leaf)>;
class GradientAccumulatedHookGuard {
 public:
  explicit GradientAccumulatedHookGuard(GradientAccumulatedHook hook);
  ~GradientAccumulatedHookGuard();
  GradientAccumulatedHookGuard(const GradientAccumulatedHookGuard&) = delete;
  GradientAccumulatedHookGuard& operator=(const GradientAccumulatedHookGuard&) = delete;

 private:
  GradientAccumulatedHook previous_;
};

// The leaves that backward() from `root` accumulates into, each as many times as it will.
std::vector<Tensor> leaf_accumulations(const Tensor& root);

// Gradient mode (thread-local): inside a NoGradGuard no graph is recorded.
struct GradMode {
  static bool enabled();
  static void set_enabled(bool enabled);
};

// Sets the gradient mode for a scope and restores the previous one on leaving it.
class GradModeGuard {
 public:
  explicit GradModeGuard(bool enabled) : previous_(GradMode::enabled()) { GradMode::set_enabled(enabled); }
  ~GradModeGuard() { GradMode::set_enabled(previous_); }
  GradModeGuard(const GradModeGuard&) = delete;
  GradModeGuard& operator=(const GradModeGuard&) = delete;

 private:
  bool previous_;
};

class NoGradGuard : public GradModeGuard {
 public:
  NoGradGuard() : GradModeGuard(false) {}
};

// Records graphs inside a caller's NoGradGuard (Grad-CAM differentiates the head of a model run
// without gradients), as PyTorch's torch.enable_grad.
class EnableGradGuard : public GradModeGuard {
 public:
  EnableGradGuard() : GradModeGuard(true) {}
};

}  // namespace chex

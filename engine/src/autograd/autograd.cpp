#include "chex/autograd.h"

#include <atomic>
#include <queue>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "chex/error.h"
#include "chex/ops.h"
#include "../ops/accumulate.h"

namespace chex {
namespace {

thread_local bool grad_enabled = true;
thread_local GradientAccumulatedHook accumulated_hook;
std::atomic<uint64_t> next_sequence{0};

}  // namespace

void accumulate_leaf_grad(const Tensor& leaf, const Tensor& grad) {
  Tensor current = leaf.grad();
  if (!current.defined()) {
    // The leaf keeps the incoming gradient when nothing else holds it (the usual case: a backward
    // closure's fresh output, which the engine hands over); otherwise a private copy, since it may
    // be shared with other parts of the graph, or the caller's.
    leaf.set_grad(grad.is_sole_owner() && !grad.grad_fn() ? grad.detach() : grad.detach().clone());
  } else {
    ops::detail::add_into(current, grad);
  }
}

namespace {

// A recorded op: its backward closure and which inputs want gradients.
class FunctionNode final : public Node {
 public:
  FunctionNode(const char* name, std::vector<Edge> next, const Tensor& output, BackwardFn fn, std::vector<bool> needs)
      : Node(name, std::move(next), output.shape(), output.device()), fn_(std::move(fn)), needs_(std::move(needs)) {}

  std::vector<Tensor> apply(const Tensor& grad_output) override {
    CHEX_CHECK(fn_, "backward through the graph a second time: the tensors saved by '", name(),
               "' were freed by the first backward (pass retain_graph=true to the first backward to keep them)");
    return fn_(grad_output, needs_);
  }
  void release() override { fn_ = nullptr; }

 private:
  BackwardFn fn_;
  std::vector<bool> needs_;
};

// The end of the graph at a leaf: adds the incoming gradient into leaf.grad().
class AccumulateGrad final : public Node {
 public:
  explicit AccumulateGrad(const Tensor& leaf) : Node("accumulate_grad", {}, leaf.shape(), leaf.device()), leaf_(leaf) {}

  std::vector<Tensor> apply(const Tensor& grad) override {
    accumulate_leaf_grad(leaf_, grad);
    if (accumulated_hook) accumulated_hook(leaf_);
    return {};
  }
  const Tensor* accumulates_into() const override { return &leaf_; }

 private:
  Tensor leaf_;
};

Edge edge_for(const Tensor& input) {
  if (!input.defined() || !input.requires_grad()) return Edge{};
  if (input.grad_fn()) return Edge{input.grad_fn()};
  return Edge{std::make_shared<AccumulateGrad>(input)};
}

struct NewestFirst {
  bool operator()(const std::shared_ptr<Node>& a, const std::shared_ptr<Node>& b) const {
    return a->sequence() < b->sequence();
  }
};

}  // namespace

Node::Node(std::string name, std::vector<Edge> next, Shape output_shape, Device output_device)
    : name_(std::move(name)),
      next_(std::move(next)),
      output_shape_(std::move(output_shape)),
      output_device_(output_device),
      sequence_(next_sequence.fetch_add(1)) {}

GradientAccumulatedHookGuard::GradientAccumulatedHookGuard(GradientAccumulatedHook hook)
    : previous_(std::exchange(accumulated_hook, std::move(hook))) {}
GradientAccumulatedHookGuard::~GradientAccumulatedHookGuard() { accumulated_hook = std::move(previous_); }

std::vector<Tensor> leaf_accumulations(const Tensor& root) {
  std::vector<Tensor> leaves;
  if (!root.grad_fn()) return leaves;
  std::unordered_set<Node*> seen{root.grad_fn().get()};
  std::vector<Node*> stack{root.grad_fn().get()};
  while (!stack.empty()) {
    Node* node = stack.back();
    stack.pop_back();
    if (const Tensor* leaf = node->accumulates_into()) leaves.push_back(*leaf);
    for (const Edge& edge : node->next())
      if (edge.node && seen.insert(edge.node.get()).second) stack.push_back(edge.node.get());
  }
  return leaves;
}

bool GradMode::enabled() { return grad_enabled; }
void GradMode::set_enabled(bool enabled) { grad_enabled = enabled; }

bool any_requires_grad(const std::vector<Tensor>& inputs) {
  if (!GradMode::enabled()) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

Tensor record(const char* name, const Tensor& output, const std::vector<Tensor>& inputs, BackwardFn backward) {
  if (!any_requires_grad(inputs)) return output;
  std::vector<Edge> edges;
  std::vector<bool> needs;
  edges.reserve(inputs.size());
  for (const Tensor& input : inputs) {
    edges.push_back(edge_for(input));
    needs.push_back(edges.back().node != nullptr);
  }
  TensorImpl* impl = output.impl();
  CHEX_CHECK(!impl->grad_fn && !impl->requires_grad, "internal: op '", name, "' returned a tensor that already has history");
  impl->grad_fn = std::make_shared<FunctionNode>(name, std::move(edges), output, std::move(backward), std::move(needs));
  impl->requires_grad = true;
  return output;
}

void Tensor::backward(const Tensor& gradient, bool retain_graph) const {
  CHEX_CHECK(requires_grad(), "backward() on a tensor that does not require gradients (", str(),
             "): no input of the computation was marked with set_requires_grad(), or it ran under NoGradGuard");
  Tensor seed = gradient;
  if (!seed.defined()) {
    CHEX_CHECK(numel() == 1, "backward() without a gradient needs a one-element output; got ", str(),
               grad_fn() ? " from '" + grad_fn()->name() + "'" : std::string());
    seed = Tensor::ones(shape(), device());
  }
  CHEX_CHECK(seed.shape() == shape(), "backward(): the gradient's shape ", shape_str(seed.shape()),
             " differs from the output's ", shape_str(shape()));
  NoGradGuard no_grad;  // backward itself is never recorded
  if (!grad_fn()) {
    accumulate_leaf_grad(*this, seed);
    return;
  }

  // How many edges lead into each node: a node runs once all its gradient contributions arrived.
  std::unordered_map<Node*, int> pending;
  {
    std::vector<Node*> stack{grad_fn().get()};
    pending[grad_fn().get()] = 0;
    while (!stack.empty()) {
      Node* node = stack.back();
      stack.pop_back();
      for (const Edge& edge : node->next()) {
        if (!edge.node) continue;
        if (pending[edge.node.get()]++ == 0) stack.push_back(edge.node.get());
      }
    }
  }

  std::unordered_map<Node*, Tensor> grads;
  grads[grad_fn().get()] = seed;
  std::priority_queue<std::shared_ptr<Node>, std::vector<std::shared_ptr<Node>>, NewestFirst> ready;
  ready.push(grad_fn());
  while (!ready.empty()) {
    std::shared_ptr<Node> node = ready.top();
    ready.pop();
    auto found = grads.find(node.get());
    Tensor grad_out = found != grads.end() ? std::move(found->second) : Tensor();
    if (found != grads.end()) grads.erase(found);
    if (!grad_out.defined()) grad_out = Tensor::zeros(node->output_shape(), node->output_device());

    std::vector<Tensor> grad_in;
    try {
      grad_in = node->apply(grad_out);
    } catch (const Error& e) {
      throw Error("in the backward of '" + node->name() + "': " + e.what(), e.details());
    }
    if (!retain_graph) node->release();
    const auto& next = node->next();
    CHEX_CHECK(grad_in.size() == next.size() || next.empty(), "internal: the backward of '", node->name(), "' returned ",
               grad_in.size(), " gradients for ", next.size(), " inputs");
    for (size_t i = 0; i < next.size(); ++i) {
      Node* target = next[i].node.get();
      if (!target) continue;
      const Tensor& g = grad_in[i];
      if (g.defined()) {
        CHEX_CHECK(g.shape() == target->output_shape(), "internal: the backward of '", node->name(),
                   "' produced a gradient of shape ", shape_str(g.shape()), " for input ", i, " of shape ",
                   shape_str(target->output_shape()));
        Tensor& slot = grads[target];
        slot = slot.defined() ? ops::add(slot, g) : g;
      }
      if (--pending[target] == 0) ready.push(next[i].node);
    }
  }
}

}  // namespace chex

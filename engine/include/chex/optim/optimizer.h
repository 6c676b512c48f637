#pragma once
// Optimizer: updates a fixed list of parameters in place from their gradients, keeping per-parameter
// state (step count and named tensors such as Adam's moments) that can be saved and restored so a
// resumed run continues exactly where it stopped.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "chex/tensor.h"

namespace chex::optim {

// An optimizer's resumable state. Parameters are identified by their index in the optimizer's
// parameter list (as PyTorch's state_dict does), so the model must be built the same way.
struct OptimizerState {
  std::string type;                       // "Adam", "SGD": another optimizer's state is refused
  double lr = 0.0;                        // restored too, so a schedule resumes where it was
  std::vector<int64_t> steps;             // per parameter: updates made (0 = none, no state yet)
  std::map<std::string, Tensor> tensors;  // "<index>.<name>", e.g. "0.exp_avg", "12.momentum_buffer"
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // One update of every parameter that has a gradient; parameters without one are left alone.
  void step() {
    stage_step();
    launch_staged_step();
  }
  // step() in its two halves, for a training step recorded as a device graph (chex/graph.h):
  // stage_step() is the host's part (step counts advanced, the update's tables built and copied
  // to the device, stream-ordered), run before each replay; launch_staged_step() enqueues the
  // update, reading the tables in place, and is what the graph records. A recording stays valid
  // while staged_launch_key() (the launch's arguments, byte for byte) is what it was then.
  virtual void stage_step() = 0;
  virtual void launch_staged_step() const = 0;
  virtual std::string staged_launch_key() const = 0;
  // Clears the parameters' gradients (set_to_none: drop them, PyTorch 2's default).
  void zero_grad(bool set_to_none = true);

  double lr() const { return lr_; }
  void set_lr(double lr);  // for learning-rate schedules; applies from the next step()

  const std::vector<Tensor>& parameters() const { return params_; }
  const std::string& type() const { return type_; }

  // The state tensors are detached handles to the live ones (as PyTorch's): serialise them before
  // the next step(), or clone() them. load_state_dict() copies, and checks everything first.
  OptimizerState state_dict() const;
  void load_state_dict(const OptimizerState& state);

 protected:
  Optimizer(std::string type, std::vector<Tensor> params, double lr);

  // The names of the state tensors a parameter has once stepped (Adam: exp_avg, exp_avg_sq).
  virtual std::vector<std::string> state_names() const = 0;

  struct ParameterState {
    int64_t step = 0;
    std::map<std::string, Tensor> tensors;
  };
  // Checks that the parameter can be updated in place and that its gradient matches it; returns
  // the gradient, contiguous.
  Tensor checked_gradient(size_t index) const;
  // The state tensor `name` of parameter `index`, created as zeros on first use.
  Tensor& state_tensor(size_t index, const std::string& name);

  std::vector<ParameterState> state_;  // one per parameter

 private:
  std::string type_;
  std::vector<Tensor> params_;
  double lr_;
};

}  // namespace chex::optim

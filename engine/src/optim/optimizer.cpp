#include "chex/optim/optimizer.h"

#include <cmath>
#include <set>

#include "chex/autograd.h"
#include "chex/error.h"

namespace chex::optim {

Optimizer::Optimizer(std::string type, std::vector<Tensor> params, double lr)
    : state_(params.size()), type_(std::move(type)), params_(std::move(params)), lr_(lr) {
  CHEX_CHECK(!params_.empty(), type_, ": the parameter list is empty");
  std::set<const TensorImpl*> seen;
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i];
    CHEX_CHECK(p.defined(), type_, ": parameter ", i, " is an undefined tensor");
    CHEX_CHECK(p.dtype() == DType::F32, type_, ": parameter ", i, " must be float32, got ", p.str());
    CHEX_CHECK(p.is_leaf(), type_, ": parameter ", i, " is not a leaf tensor");
    // Updated twice per step otherwise.
    CHEX_CHECK(seen.insert(p.impl()).second, type_, ": parameter ", i, " appears more than once in the list");
  }
  set_lr(lr);
}

void Optimizer::set_lr(double lr) {
  CHEX_CHECK(std::isfinite(lr) && lr >= 0.0, type_, ": the learning rate must be finite and non-negative, got ", lr);
  lr_ = lr;
}

void Optimizer::zero_grad(bool set_to_none) {
  for (const Tensor& p : params_) p.zero_grad(set_to_none);
}

Tensor Optimizer::checked_gradient(size_t index) const {
  const Tensor& p = params_[index];
  CHEX_CHECK(p.is_contiguous(), type_, ": parameter ", index, " must be contiguous to be updated in place, got ",
             p.str());
  const Tensor grad = p.grad();
  CHEX_CHECK(grad.shape() == p.shape() && grad.device() == p.device() && grad.dtype() == DType::F32, type_,
             ": the gradient of parameter ", index, " (", grad.str(), ") does not match it (", p.str(), ")");
  return grad.contiguous();
}

Tensor& Optimizer::state_tensor(size_t index, const std::string& name) {
  Tensor& t = state_[index].tensors[name];
  if (!t.defined()) t = Tensor::zeros(params_[index].shape(), params_[index].device());
  return t;
}

OptimizerState Optimizer::state_dict() const {
  OptimizerState out{.type = type_, .lr = lr_, .steps = {}, .tensors = {}};
  for (size_t i = 0; i < state_.size(); ++i) {
    out.steps.push_back(state_[i].step);
    for (const auto& [name, tensor] : state_[i].tensors) out.tensors.emplace(std::to_string(i) + "." + name, tensor.detach());
  }
  return out;
}

void Optimizer::load_state_dict(const OptimizerState& state) {
  CHEX_CHECK(state.type == type_, type_, ": cannot load the state of a ", state.type.empty() ? "?" : state.type,
             " optimizer");
  CHEX_CHECK(state.steps.size() == params_.size(), type_, ": the state is for ", state.steps.size(),
             " parameters, this optimizer has ", params_.size());
  CHEX_CHECK(std::isfinite(state.lr) && state.lr >= 0.0, type_, ": the saved learning rate ", state.lr, " is invalid");

  // Check everything before changing anything, and report every problem at once.
  std::string problems;
  std::set<std::string> expected;
  for (size_t i = 0; i < params_.size(); ++i) {
    if (state.steps[i] < 0) problems += "\n  parameter " + std::to_string(i) + ": negative step count";
    if (state.steps[i] <= 0) continue;
    for (const std::string& name : state_names()) {
      const std::string key = std::to_string(i) + "." + name;
      expected.insert(key);
      const auto found = state.tensors.find(key);
      if (found == state.tensors.end() || !found->second.defined())
        problems += "\n  missing: " + key;
      else if (found->second.shape() != params_[i].shape() || found->second.dtype() != DType::F32)
        problems += "\n  wrong shape: " + key + ": " + found->second.str() + " for parameter " + params_[i].str();
    }
  }
  for (const auto& [key, tensor] : state.tensors)
    if (!expected.contains(key)) problems += "\n  unexpected: " + key;
  if (!problems.empty()) CHEX_FAIL(type_, ": the optimizer state does not fit (nothing was loaded):", problems, "\n");

  NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    state_[i] = ParameterState{.step = state.steps[i], .tensors = {}};
    if (state.steps[i] == 0) continue;
    for (const std::string& name : state_names()) {
      Tensor copy = Tensor::empty(params_[i].shape(), params_[i].device());
      copy.copy_(state.tensors.at(std::to_string(i) + "." + name));
      state_[i].tensors.emplace(name, copy);
    }
  }
  lr_ = state.lr;
}

}  // namespace chex::optim

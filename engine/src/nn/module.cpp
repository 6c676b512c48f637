#include "chex/nn/module.h"

#include <cxxabi.h>

#include <cstdlib>
#include <set>
#include <typeinfo>

#include "chex/autograd.h"
#include "chex/error.h"

namespace chex::nn {
namespace {

std::string join(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : prefix + "." + name;
}

// Pre-order walk over (dotted prefix, module), the order in which PyTorch lists everything.
// M is Module or const Module.
template <typename M, typename Visit>
void walk(M& module, const std::string& prefix, const Visit& visit) {
  visit(prefix, module);
  for (const auto& [name, child] : module.named_children()) walk(static_cast<M&>(*child), join(prefix, name), visit);
}

// named_parameters / named_buffers: own entries of each module, pre-order, each tensor once.
NamedTensors collect_unique(const Module& root, bool recurse, NamedTensors (Module::*own)(bool) const) {
  NamedTensors out;
  std::set<const TensorImpl*> seen;
  auto visit = [&](const std::string& prefix, const Module& m) {
    for (const auto& [name, tensor] : (m.*own)(false))
      if (seen.insert(tensor.impl()).second) out.emplace_back(join(prefix, name), tensor);
  };
  if (recurse)
    walk(root, "", visit);
  else
    visit("", root);
  return out;
}

}  // namespace

Tensor Module::forward(const Tensor&) {
  CHEX_FAIL("module ", type_name(), " has no forward(Tensor); call its children or override forward()");
}

std::string Module::type_name() const {
  const char* mangled = typeid(*this).name();
  int status = 0;
  char* demangled = abi::__cxa_demangle(mangled, nullptr, nullptr, &status);
  std::string name = status == 0 && demangled ? demangled : mangled;
  std::free(demangled);
  return name;
}

// --- Registration --------------------------------------------------------------------------------

void Module::check_new_name(const std::string& name) const {
  CHEX_CHECK(!name.empty(), type_name(), ": an entry name must not be empty");
  CHEX_CHECK(name.find('.') == std::string::npos, type_name(), ": entry name '", name,
             "' contains '.', which separates the levels of a state-dict name");
  auto taken = [&](const auto& entries) {
    for (const auto& entry : entries)
      if (entry.first == name) return true;
    return false;
  };
  CHEX_CHECK(!taken(parameters_) && !taken(buffers_) && !taken(children_), type_name(), ": the name '", name,
             "' is already registered in this module");
}

Tensor Module::register_parameter(const std::string& name, const Tensor& tensor) {
  check_new_name(name);
  CHEX_CHECK(tensor.defined(), type_name(), ": parameter '", name, "' is an undefined tensor");
  CHEX_CHECK(tensor.is_leaf(), type_name(), ": parameter '", name,
             "' must be a leaf tensor (the result of an op is not trainable; detach() it first)");
  tensor.set_requires_grad(true);
  parameters_.emplace_back(name, tensor);
  return tensor;
}

Tensor Module::register_buffer(const std::string& name, const Tensor& tensor) {
  check_new_name(name);
  CHEX_CHECK(tensor.defined(), type_name(), ": buffer '", name, "' is an undefined tensor");
  buffers_.emplace_back(name, tensor);
  return tensor;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> module) {
  check_new_name(name);
  CHEX_CHECK(module != nullptr, type_name(), ": submodule '", name, "' is null");
  CHEX_CHECK(module.get() != this, type_name(), ": a module cannot be its own child ('", name, "')");
  children_.emplace_back(name, std::move(module));
}

// --- Introspection -------------------------------------------------------------------------------

NamedTensors Module::named_parameters(bool recurse) const {
  if (!recurse) return parameters_;
  return collect_unique(*this, true, &Module::named_parameters);
}

NamedTensors Module::named_buffers(bool recurse) const {
  if (!recurse) return buffers_;
  return collect_unique(*this, true, &Module::named_buffers);
}

std::vector<Tensor> Module::parameters(bool recurse) const {
  std::vector<Tensor> out;
  for (auto& entry : named_parameters(recurse)) out.push_back(std::move(entry.second));
  return out;
}

std::vector<std::pair<std::string, Module*>> Module::named_modules() {
  std::vector<std::pair<std::string, Module*>> out;
  walk(*this, "", [&](const std::string& prefix, Module& m) { out.emplace_back(prefix, &m); });
  return out;
}

std::shared_ptr<Module> Module::child(const std::string& name) const {
  for (const auto& [child_name, module] : children_)
    if (child_name == name) return module;
  CHEX_FAIL(type_name(), " has no submodule named '", name, "'");
}

// --- State ---------------------------------------------------------------------------------------

void Module::collect_state(const std::string& prefix, NamedTensors& out) const {
  for (const auto& [name, tensor] : parameters_) out.emplace_back(join(prefix, name), tensor.detach());
  for (const auto& [name, tensor] : buffers_) out.emplace_back(join(prefix, name), tensor.detach());
  for (const auto& [name, module] : children_) module->collect_state(join(prefix, name), out);
}

NamedTensors Module::state_dict() const {
  NamedTensors out;
  collect_state("", out);
  return out;
}

LoadStateDictResult Module::load_state_dict(const std::map<std::string, Tensor>& state, bool strict) {
  const NamedTensors own = state_dict();
  LoadStateDictResult result;
  std::vector<std::string> wrong_shapes;
  std::set<std::string> own_names;
  for (const auto& [name, target] : own) {
    own_names.insert(name);
    const auto found = state.find(name);
    if (found == state.end()) {
      result.missing_keys.push_back(name);
    } else if (!found->second.defined()) {
      wrong_shapes.push_back(name + ": undefined tensor in the state dict, " + shape_str(target.shape()) +
                             " in the model");
    } else if (found->second.shape() != target.shape()) {
      wrong_shapes.push_back(name + ": " + shape_str(found->second.shape()) + " in the state dict, " +
                             shape_str(target.shape()) + " in the model");
    }
  }
  for (const auto& [name, tensor] : state)
    if (!own_names.contains(name)) result.unexpected_keys.push_back(name);

  const bool fails = !wrong_shapes.empty() || (strict && (!result.missing_keys.empty() || !result.unexpected_keys.empty()));
  if (fails) {
    std::string report;
    size_t problems = wrong_shapes.size();
    for (const auto& line : wrong_shapes) report += "\n  wrong shape: " + line;
    if (strict) {
      problems += result.missing_keys.size() + result.unexpected_keys.size();
      for (const auto& name : result.missing_keys) report += "\n  missing: " + name;
      for (const auto& name : result.unexpected_keys) report += "\n  unexpected: " + name;
    }
    CHEX_FAIL("the state dict does not fit the model ", type_name(), " (", problems, " problem",
              problems == 1 ? "" : "s", "; nothing was loaded):", report);
  }

  NoGradGuard no_grad;
  for (const auto& [name, target] : own) {
    const auto found = state.find(name);
    if (found == state.end()) continue;
    const Tensor& source = found->second;
    // Half-precision checkpoints convert on the host, then copy_ moves the values to the device.
    target.copy_(source.dtype() == target.dtype() ? source : source.to(Device::cpu()).to(target.dtype()));
  }
  return result;
}

LoadStateDictResult Module::load_state_dict(const NamedTensors& state, bool strict) {
  std::map<std::string, Tensor> by_name;
  for (const auto& [name, tensor] : state)
    CHEX_CHECK(by_name.emplace(name, tensor).second, "load_state_dict: the state dict names '", name, "' twice");
  return load_state_dict(by_name, strict);
}

// --- Mode and gradients --------------------------------------------------------------------------

Module& Module::train(bool on) {
  training_ = on;
  for (auto& [name, module] : children_) module->train(on);
  return *this;
}

void Module::zero_grad(bool set_to_none) {
  for (const Tensor& p : parameters()) p.zero_grad(set_to_none);
}

namespace {

// Points t's handle at a contiguous copy of its values on `device`, keeping the handle itself
// (and with it requires_grad).
void move_in_place(const Tensor& t, Device device) {
  const Tensor moved = t.detach().to(device).contiguous();
  TensorImpl* impl = t.impl();
  impl->storage = moved.storage();
  impl->offset = moved.offset();
  impl->strides = moved.strides();
}

}  // namespace

Module& Module::to(Device device) {
  require_device(device);
  NoGradGuard no_grad;
  NamedTensors all = named_parameters();
  const NamedTensors buffers = named_buffers();
  all.insert(all.end(), buffers.begin(), buffers.end());
  for (const auto& [name, t] : all) {
    if (t.device() == device) continue;
    const Tensor grad = t.grad();
    move_in_place(t, device);
    if (grad.defined()) t.set_grad(grad.detach().to(device).contiguous());
  }
  return *this;
}

}  // namespace chex::nn

#pragma once
// nn::Module: a tree of named parameters, buffers and child modules, named exactly as PyTorch's
// state_dict names them ("features.denseblock1.denselayer1.norm1.running_mean"), so that weights
// move between chex and PyTorch by name.
//
// Modules are held by shared_ptr and never copied: a parent owns its children, and a parameter is
// one tensor shared by the module, the optimizer and any state dict taken from it.
#include <concepts>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "chex/tensor.h"

namespace chex::nn {

// Name -> tensor pairs in a meaningful order (registration order, as PyTorch's OrderedDict).
using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

// What a non-strict load_state_dict() left alone (PyTorch's _IncompatibleKeys).
struct LoadStateDictResult {
  std::vector<std::string> missing_keys;     // in the module, not in the state dict: left as they were
  std::vector<std::string> unexpected_keys;  // in the state dict, not in the module: ignored
};

class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // The computation. The default throws, naming the module's type: containers and modules with
  // several inputs need not have one.
  virtual Tensor forward(const Tensor& input);
  Tensor operator()(const Tensor& input) { return forward(input); }

  // The module's C++ type, demangled ("chex::nn::Conv2d"), for messages.
  std::string type_name() const;

  // --- Registration (names: non-empty, no '.', unique among this module's entries) ------------
  // Marks the tensor as requiring gradients and returns it (the same handle).
  Tensor register_parameter(const std::string& name, const Tensor& tensor);
  // State that is saved and loaded but not trained (running statistics, counters).
  Tensor register_buffer(const std::string& name, const Tensor& tensor);
  template <std::derived_from<Module> M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    add_child(name, module);
    return module;
  }

  // --- Introspection (all in registration order; recursive ones pre-order, as PyTorch) --------
  // A tensor registered in several places is listed once, under its first name.
  NamedTensors named_parameters(bool recurse = true) const;
  NamedTensors named_buffers(bool recurse = true) const;
  std::vector<Tensor> parameters(bool recurse = true) const;
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& named_children() const { return children_; }
  // This module (named "") and all its descendants, pre-order; the pointers live as long as this
  // module does.
  std::vector<std::pair<std::string, Module*>> named_modules();
  // The entry registered under `name` in this module itself (not a dotted path); throws if absent.
  std::shared_ptr<Module> child(const std::string& name) const;

  // --- State ---------------------------------------------------------------------------------
  // Every parameter and buffer, in PyTorch's order: a module's own parameters, then its own
  // buffers, then each child's entries recursively. The tensors are detached handles to the live
  // storage (as PyTorch's): serialise them, or clone() them, before the model trains on.
  NamedTensors state_dict() const;
  // Copies the values into the module's tensors in place (converting half-precision sources to
  // float32). A wrong shape is always an error; in strict mode so are missing and unexpected
  // names. All problems are reported in one error, and nothing is copied unless the whole load
  // can succeed.
  LoadStateDictResult load_state_dict(const std::map<std::string, Tensor>& state, bool strict = true);
  LoadStateDictResult load_state_dict(const NamedTensors& state, bool strict = true);

  // --- Mode and gradients ---------------------------------------------------------------------
  // Training mode (the default) or evaluation mode, for this module and all its descendants.
  Module& train(bool on = true);
  Module& eval() { return train(false); }
  bool is_training() const { return training_; }
  // Clears the gradients of all parameters (set_to_none: drop them rather than fill with zeros).
  void zero_grad(bool set_to_none = true);

  // --- Device ----------------------------------------------------------------------------------
  // Moves every parameter and buffer (recursively) to `device` in place: each keeps its handle, so
  // the layers, an optimizer built from parameters() and earlier state_dict() entries see the
  // moved storage; requires_grad is kept and a gradient, if any, moves along. Tensors already on
  // `device` are left as they are (moving to their own device is a no-op). The device is checked
  // first (require_device): an unusable one is an error before anything moves. Not recorded by
  // autograd.
  Module& to(Device device);

 private:
  void check_new_name(const std::string& name) const;
  void add_child(const std::string& name, std::shared_ptr<Module> module);
  void collect_state(const std::string& prefix, NamedTensors& out) const;

  NamedTensors parameters_;
  NamedTensors buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

}  // namespace chex::nn

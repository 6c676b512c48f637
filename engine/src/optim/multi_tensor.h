#pragma once
// One optimizer step's tensors as tables, one per device, each updated in one kernel call
// (kernels/optimizer.h). The step comes in two halves (Optimizer::stage_step and
// launch_staged_step): stage() builds the tables on the host and copies each into device memory
// that the optimizer keeps from step to step; launch() enqueues the kernels that read them. The
// kept tables let a step be recorded as a device graph (chex/graph.h): the recorded launch reads
// the table in place, and each replay is preceded by a stage() that rewrites it, stream-ordered.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "backend/backend.h"
#include "chex/tensor.h"
#include "kernels/optimizer.h"

namespace chex::optim::detail {

// A step's hyperparameters field by field, into a launch key (never the struct's padding bytes).
template <typename Append>
void append_fields(const kernels::AdamHyper& h, Append&& append) {
  for (float f : {h.beta1, h.beta2, h.one_minus_beta1, h.one_minus_beta2, h.eps, h.weight_decay}) append(f);
}
template <typename Append>
void append_fields(const kernels::SgdHyper& h, Append&& append) {
  for (float f : {h.weight_decay, h.momentum, h.one_minus_dampening, h.neg_lr}) append(f);
  append(h.nesterov);
}

template <typename Entry, typename Args, typename Hyper>
class StagedTables {
 public:
  // Starts a new step's tables (the previous step's are replaced at upload()).
  void begin(const Hyper& hyper) {
    hyper_ = hyper;
    for (auto& t : tables_) t.entries.clear();
    grads_.clear();
  }

  // `grad` stays referenced until launch().
  void add(const Tensor& param, const Tensor& grad, const Entry& entry) {
    grads_.push_back(grad);
    table_for(param.device()).entries.push_back(entry);
  }

  // Plans each device's chunks and copies its table into the kept device memory (stream-ordered:
  // the previous launch has read the old table by the time the copy lands).
  void upload() {
    for (auto& t : tables_) {
      t.count = static_cast<int>(t.entries.size());
      if (t.count == 0) continue;
      t.chunks = kernels::plan_optimizer_chunks(t.entries.data(), t.count);
      const size_t bytes = sizeof(Entry) * t.entries.size();
      if (!t.memory || t.memory->bytes() < bytes) t.memory = std::make_unique<backend::Workspace>(t.device, bytes);
      backend::copy_from_host(t.device, t.memory->get(), t.entries.data(), bytes);
    }
  }

  // One kernel call per device with entries (&backend::KernelTable::adam_multi_tensor, ...).
  template <typename Kernel>
  void launch(Kernel backend::KernelTable::*kernel) const {
    for (const auto& t : tables_) {
      if (t.count == 0) continue;
      backend::backend(t.device).call(kernel, Args{static_cast<const Entry*>(t.memory->get()), t.count, t.chunks, hyper_});
    }
    grads_.clear();  // enqueued: a gradient dropped now is freed after the kernels, stream-ordered
  }

  // What a recorded launch() fixes: the kernels' arguments, byte for byte. A recording stays
  // valid while this does not change.
  std::string launch_key() const {
    std::string key;
    auto append = [&key](const auto& value) { key.append(reinterpret_cast<const char*>(&value), sizeof value); };
    append_fields(hyper_, append);
    for (const auto& t : tables_) {
      append(t.device.type);
      append(t.device.index);
      append(t.count);
      append(t.chunks);
      append(t.memory ? t.memory->get() : nullptr);
    }
    return key;
  }

 private:
  struct Table {
    Device device;
    std::vector<Entry> entries;
    int count = 0;
    int64_t chunks = 0;
    std::unique_ptr<backend::Workspace> memory;  // kept from step to step
  };

  Table& table_for(Device device) {
    for (auto& t : tables_)
      if (t.device == device) return t;
    tables_.push_back(Table{.device = device, .entries = {}, .count = 0, .chunks = 0, .memory = nullptr});
    return tables_.back();
  }

  Hyper hyper_{};
  std::vector<Table> tables_;
  mutable std::vector<Tensor> grads_;
};

}  // namespace chex::optim::detail

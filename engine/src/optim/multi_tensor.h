#pragma once
// One optimizer step's tensors as tables, one per device, each updated in one kernel call
// (kernels/optimizer.h): the table is built and planned here on the host and put where the kernel
// reads it (device memory for a GPU) before the call, so the kernel itself does no host work.
#include <utility>
#include <vector>

#include "backend/backend.h"
#include "chex/tensor.h"
#include "kernels/optimizer.h"

namespace chex::optim::detail {

template <typename Entry>
class MultiTensorTables {
 public:
  // `grad` stays referenced until the step's calls are enqueued.
  void add(const Tensor& param, const Tensor& grad, const Entry& entry) {
    grads_.push_back(grad);
    for (auto& [device, entries] : tables_) {
      if (device == param.device()) {
        entries.push_back(entry);
        return;
      }
    }
    tables_.push_back({param.device(), {entry}});
  }

  // Calls `kernel` (&backend::KernelTable::adam_multi_tensor or sgd_multi_tensor) once per device.
  template <typename Args, typename Kernel, typename Hyper>
  void run(Kernel backend::KernelTable::*kernel, const Hyper& hyper) {
    for (auto& [device, entries] : tables_) {
      const int count = static_cast<int>(entries.size());
      const int64_t chunks = kernels::plan_optimizer_chunks(entries.data(), count);
      const backend::Backend be = backend::backend(device);
      const size_t bytes = sizeof(Entry) * entries.size();
      const backend::Workspace table = be.workspace(bytes);  // released stream-ordered after the call
      backend::copy_from_host(device, table.get(), entries.data(), bytes);
      be.call(kernel, Args{static_cast<const Entry*>(table.get()), count, chunks, hyper});
    }
  }

 private:
  std::vector<std::pair<Device, std::vector<Entry>>> tables_;
  std::vector<Tensor> grads_;
};

}  // namespace chex::optim::detail

// Optimizer steps on CUDA: the multi-tensor Adam and SGD kernels (kernels/adam.cu) over a table
// of every parameter of the device, planned on the host and uploaded for each step.
#include "device_runtime.h"
#include "device_buffer.h"
#include "device_context.h"
#include "ops_cuda.h"

namespace chex::cuda {
namespace {

// Plans the chunks, uploads the table (synchronously: the host vector may go right after) and
// returns it with the chunk count; the buffer's stream-ordered release follows the launch.
template <typename Entry>
int64_t upload_table(int device, std::vector<Entry>& tensors, const DeviceBuffer& table) {
  const int64_t chunks = kernels::plan_optimizer_chunks(tensors.data(), static_cast<int>(tensors.size()));
  copy_host_to_device(table.get(), tensors.data(), table.bytes(), device);
  return chunks;
}

}  // namespace

void adam_multi_tensor(int device, std::vector<kernels::AdamTensor>& tensors, const kernels::AdamHyper& hyper) {
  if (tensors.empty()) return;
  const DeviceContext& ctx = context(device);
  const DeviceBuffer table(device, sizeof(kernels::AdamTensor) * tensors.size());
  const int64_t chunks = upload_table(device, tensors, table);
  kernels::cuda::adam_multi_tensor(static_cast<const kernels::AdamTensor*>(table.get()),
                                   static_cast<int>(tensors.size()), chunks, hyper, ctx.stream);
}

void sgd_multi_tensor(int device, std::vector<kernels::SgdTensor>& tensors, const kernels::SgdHyper& hyper) {
  if (tensors.empty()) return;
  const DeviceContext& ctx = context(device);
  const DeviceBuffer table(device, sizeof(kernels::SgdTensor) * tensors.size());
  const int64_t chunks = upload_table(device, tensors, table);
  kernels::cuda::sgd_multi_tensor(static_cast<const kernels::SgdTensor*>(table.get()), static_cast<int>(tensors.size()),
                                  chunks, hyper, ctx.stream);
}

}  // namespace chex::cuda

#pragma once
// The one counter of host reads (chex::host_read_count(), chex/tensor.h): every engine path that
// copies a tensor's values to the host for a caller calls count_host_read() once.
namespace chex::detail {

void count_host_read();

}  // namespace chex::detail

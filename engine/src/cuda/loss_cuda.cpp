// bce_with_logits on CUDA. The logits are [N, 14]: the loss and its gradient are computed by the
// CPU kernels on a host copy, and the results copied back (one synchronisation per step).
#include <vector>

#include "cuda_backend.h"
#include "kernels/bce.h"
#include "ops_cuda.h"

namespace chex::cuda {
namespace {
std::vector<float> to_host(int device, const float* src, int64_t n) {
  std::vector<float> host(static_cast<size_t>(n));
  copy_device_to_host(host.data(), src, host.size() * sizeof(float), device);
  return host;
}
}  // namespace

void bce_with_logits(int device, const float* logits, const float* targets, const float* pos_weight,
                     const float* neg_weight, int64_t batch, int64_t classes, float* loss, float* dlogits) {
  const int64_t n = batch * classes;
  const std::vector<float> x = to_host(device, logits, n), y = to_host(device, targets, n);
  const std::vector<float> wp = pos_weight ? to_host(device, pos_weight, classes) : std::vector<float>();
  const std::vector<float> wn = neg_weight ? to_host(device, neg_weight, classes) : std::vector<float>();
  const float* wp_data = pos_weight ? wp.data() : nullptr;
  const float* wn_data = neg_weight ? wn.data() : nullptr;
  const auto value =
      static_cast<float>(kernels::cpu::bce_with_logits_forward(x.data(), y.data(), wp_data, wn_data, batch, classes));
  copy_host_to_device(loss, &value, sizeof(float), device);
  if (dlogits) {
    std::vector<float> grad(static_cast<size_t>(n));
    kernels::cpu::bce_with_logits_backward(x.data(), y.data(), wp_data, wn_data, batch, classes, 1.f, grad.data());
    copy_host_to_device(dlogits, grad.data(), grad.size() * sizeof(float), device);
  }
}

}  // namespace chex::cuda

// Adam and SGD steps on every available device against the CPU: several parameters of awkward
// sizes updated together (one multi-tensor launch per device on a GPU), over three steps.
#include "chex/optim/adam.h"
#include "chex/optim/sgd.h"
#include "device/device_test.h"

using namespace chex;
using testing::check_matches_cpu;
using testing::random_on;

namespace {

// Parameters of a few sizes (one larger than a kernel chunk), with gradients set by hand.
std::vector<Tensor> parameters_on(Device d) {
  std::vector<Tensor> params;
  uint64_t seed = 40;
  for (int64_t n : {int64_t{1}, int64_t{7}, int64_t{300}, int64_t{8192 + 13}}) {
    params.push_back(random_on(d, {n}, seed++));
    params.back().set_requires_grad();
  }
  return params;
}

template <typename Optimizer>
std::vector<Tensor> three_steps(Optimizer& opt, const std::vector<Tensor>& params) {
  for (int step = 0; step < 3; ++step) {
    for (size_t i = 0; i < params.size(); ++i)
      params[i].set_grad(random_on(params[i].device(), params[i].shape(), 100 + 10 * step + i));
    opt.step();
  }
  std::vector<Tensor> results;
  for (const Tensor& p : params) results.push_back(p.detach());
  for (const auto& [name, state] : opt.state_dict().tensors) results.push_back(state);
  return results;
}

}  // namespace

CHEX_DEVICE_TEST("Adam steps match the CPU", "[device][optim]") {
  check_matches_cpu(device, [](Device d) {
    const std::vector<Tensor> params = parameters_on(d);
    optim::Adam adam(params, {.lr = 1e-2, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 1e-2});
    return three_steps(adam, params);
  }, {.rtol = 1e-5, .atol = 1e-6});
}

CHEX_DEVICE_TEST("SGD with Nesterov momentum matches the CPU", "[device][optim]") {
  check_matches_cpu(device, [](Device d) {
    const std::vector<Tensor> params = parameters_on(d);
    optim::SGD sgd(params, {.lr = 0.1, .momentum = 0.9, .dampening = 0.0, .weight_decay = 1e-3, .nesterov = true});
    return three_steps(sgd, params);
  }, {.rtol = 1e-5, .atol = 1e-6});
}

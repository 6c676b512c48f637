#include "chex/device.h"

#include "chex/error.h"
#include "backend/backend.h"

namespace chex {

std::string Device::str() const { return is_cpu() ? "cpu" : "cuda:" + std::to_string(index); }

Device Device::parse(const std::string& text) {
  if (text == "cpu") return cpu();
  if (text == "cuda" || text == "gpu") return cuda(0);
  if (text.rfind("cuda:", 0) == 0) {
    const std::string digits = text.substr(5);
    if (!digits.empty() && digits.find_first_not_of("0123456789") == std::string::npos && digits.size() < 4)
      return cuda(std::stoi(digits));
  }
  CHEX_FAIL("unknown device '", text, "': use cpu, cuda or cuda:N");
}

bool cuda_compiled() { return backend::cuda_runtime() != nullptr; }

int cuda_device_count() {
  const backend::DeviceRuntime* cuda = backend::cuda_runtime();
  return cuda ? cuda->device_count() : 0;
}

std::vector<Device> available_devices() {
  std::vector<Device> devices{Device::cpu()};
  for (int i = 0; i < cuda_device_count(); ++i) devices.push_back(Device::cuda(i));
  return devices;
}

void require_device(Device device) {
  if (device.is_cpu()) return;
  CHEX_CHECK(cuda_compiled(), "device ", device.str(),
             " requested, but this build of chex has no CUDA backend (rebuild on a machine with the "
             "CUDA toolkit, or use --device cpu)");
  const int count = cuda_device_count();
  CHEX_CHECK(count > 0, "device ", device.str(), " requested, but no usable GPU was found (",
             backend::runtime(device).unavailable_reason(), "); use --device cpu");
  CHEX_CHECK(device.index >= 0 && device.index < count, "device ", device.str(), " requested, but only ",
             count, " GPU(s) are present; use --device cuda:0",
             count > 1 ? " to cuda:" + std::to_string(count - 1) : "");
}

void synchronize(Device device) {
  if (device.is_cpu()) return;
  backend::runtime(device).synchronize(device.index);
}

}  // namespace chex

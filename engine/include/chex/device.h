#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace chex {

enum class DeviceType : uint8_t { CPU, CUDA };

struct Device {
  DeviceType type = DeviceType::CPU;
  int index = 0;

  static constexpr Device cpu() { return {DeviceType::CPU, 0}; }
  static constexpr Device cuda(int i = 0) { return {DeviceType::CUDA, i}; }
  bool is_cpu() const { return type == DeviceType::CPU; }
  bool is_cuda() const { return type == DeviceType::CUDA; }
  bool operator==(const Device&) const = default;
  std::string str() const;  // "cpu", "cuda:0"

  // Parses "cpu", "cuda", "cuda:1"; throws on anything else.
  static Device parse(const std::string& text);
};

// True when this build has the CUDA backend compiled in.
bool cuda_compiled();
// Number of usable GPUs: 0 when CUDA is not compiled in or no driver/GPU answers (any error from
// the runtime counts as "no GPU").
int cuda_device_count();
// The devices this machine can run on: the CPU, then every usable GPU (what device-generic tests
// iterate over).
std::vector<Device> available_devices();
// Throws one clear error when `device` cannot be used on this machine (e.g. --device cuda without
// a GPU). Every entry point that takes a device calls this first.
void require_device(Device device);
// Waits until all the work queued on `device` has run (a no-op on the CPU, whose ops run when
// called): for timing. Never inside a training step, which it would stall.
void synchronize(Device device);

}  // namespace chex

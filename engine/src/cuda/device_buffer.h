#pragma once
// Scratch device memory (cuDNN workspaces, temporaries) from the device's stream-ordered
// allocator, so it shows in the current/peak accounting. Freeing is stream-ordered too: the
// buffer may go out of scope right after the calls that use it are enqueued on the device's
// stream, and the memory is reused only after they have run.
#include <cstddef>

#include "chex/allocator.h"
#include "chex/device.h"

namespace chex::cuda {

class DeviceBuffer {
 public:
  DeviceBuffer(int device, size_t bytes)
      : device_(device), bytes_(bytes), data_(bytes ? allocator_for(Device::cuda(device)).allocate(bytes) : nullptr) {}
  ~DeviceBuffer() {
    if (data_) allocator_for(Device::cuda(device_)).deallocate(data_, bytes_);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  void* get() const { return data_; }
  float* floats() const { return static_cast<float*>(data_); }
  size_t bytes() const { return bytes_; }

 private:
  int device_;
  size_t bytes_;
  void* data_;
};

}  // namespace chex::cuda

#include "chex/storage.h"

#include "capture_audit.h"

namespace chex {

Storage::Storage(size_t bytes, Device device) : bytes_(bytes), device_(device) {
  data_ = allocator_for(device).allocate(bytes);
  detail::audit_allocation(device, data_, bytes);
}

Storage::~Storage() {
  detail::audit_free(device_, data_);
  allocator_for(device_).deallocate(data_, bytes_);
}

}  // namespace chex

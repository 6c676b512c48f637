#pragma once
// The engine's side of chex::CaptureAudit (chex/graph.h): the places that allocate or free device
// memory, or copy host memory into a device, report it here; an audit active on the calling
// thread counts it. With no audit active each call is one thread-local load.
#include <cstddef>

#include "chex/device.h"

namespace chex::detail {

void audit_allocation(Device device, const void* ptr, size_t bytes);
void audit_free(Device device, const void* ptr);
void audit_host_upload(Device device);
void audit_host_read();

}  // namespace chex::detail

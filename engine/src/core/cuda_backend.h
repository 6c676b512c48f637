#pragma once
// The engine's view of the CUDA runtime. Implemented in engine/src/cuda/ when the CUDA backend is
// compiled in, and by stubs otherwise, so that nothing else in the engine needs #ifdefs.
#include <cstddef>
#include <string>

#include "chex/allocator.h"

namespace chex::cuda {

bool compiled();
int device_count();               // 0 on any runtime error
std::string unavailable_reason(); // why device_count() is 0
Allocator& allocator(int device);

// Synchronous copies between host and device memory (dst, src).
void copy_host_to_device(void* dst, const void* src, size_t bytes, int device);
void copy_device_to_host(void* dst, const void* src, size_t bytes, int device);
void copy_device_to_device(void* dst, const void* src, size_t bytes, int device);

}  // namespace chex::cuda

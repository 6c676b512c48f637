#pragma once
// The CUDA runtime's pieces (engine/src/cuda/cuda_runtime.cpp, tensor_copy_cuda.cpp), which the
// rest of the engine reaches through backend::runtime(device) (backend/backend.h).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "chex/allocator.h"
#include "chex/shape.h"
#include "backend/backend.h"

namespace chex::cuda {

int device_count();               // 0 on any runtime error
std::string unavailable_reason(); // why device_count() is 0
Allocator& allocator(int device);

// Synchronous copies between host and device memory (dst, src): they return once the bytes have
// arrived, so the host side may be freed or read at once.
void copy_host_to_device(void* dst, const void* src, size_t bytes, int device);
void copy_device_to_host(void* dst, const void* src, size_t bytes, int device);
// Stream-ordered copies on the device (no host synchronisation); across two devices, synchronous.
void copy_device_to_device(void* dst, const void* src, size_t bytes, int device);
void copy_between_devices(void* dst, int dst_device, const void* src, int src_device, size_t bytes);
// Stream-ordered copy into pinned host memory; the result waits only when read.
std::unique_ptr<backend::PendingRead> copy_device_to_host_async(const void* src, size_t bytes, int device);
// Stream-ordered copy from host memory, staged through pinned memory: src may be reused at once.
void copy_host_to_device_async(void* dst, const void* src, size_t bytes, int device);
// Waits for the device's stream.
void synchronize(int device);
// On the device's copy stream, after the event `after` (null: at once); the device's stream waits
// for it (backend.h's DeviceRuntime::copy_host_to_device_ahead).
void copy_host_to_device_ahead(void* dst, const void* src, size_t bytes, int device, void* after);
void* new_event();
void record_event(void* event, int device);  // at the current end of the device's stream
void delete_event(void* event);

// CUDA graphs (engine/src/cuda/cuda_graph.cpp; chex/graph.h): stream capture of what the calling
// thread enqueues on the device's stream, the instantiated graph, its replay and its release.
void begin_recording(int device);
void* end_recording(int device, bool keep);  // cudaGraphExec_t, or null when !keep
void replay_graph(void* graph, int device);
void destroy_graph(void* graph);
uint64_t graph_memory_high_water(int device);

// Stream-ordered strided operations on device memory (strides in elements; rank up to 8).
// A batch-strided copy (dimensions after the first densely packed on both sides) is one
// cudaMemcpy2DAsync; anything else goes through cuDNN (float32 only).
void strided_copy(void* dst, const Shape& dst_strides, const void* src, const Shape& src_strides, const Shape& shape,
                  size_t element_size, int device);
void strided_fill(float* dst, const Shape& shape, const Shape& strides, float value, int device);

}  // namespace chex::cuda

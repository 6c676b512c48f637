// CUDA graphs for chex::DeviceGraph: stream capture on the device's one stream.
//
// The capture mode is thread-local: only the recording thread's own CUDA calls are checked
// against the capture rules, so the loader's threads (pinned copies of the next batch) go on
// meanwhile. Allocations the recorded work makes (cudaMallocAsync from the stream-ordered pool)
// become the graph's memory nodes, which keep fixed addresses from one replay to the next; the
// graph is uploaded once at instantiation so that the first replay does not pay for mapping it.
#include <cuda_runtime.h>

#include "cuda_check.h"
#include "device_runtime.h"

namespace chex::cuda {


void begin_recording(int device) {
  CHEX_CUDA_CHECK(cudaSetDevice(device));
  CHEX_CUDA_CHECK(cudaStreamBeginCapture(stream(device), cudaStreamCaptureModeThreadLocal));
}

void* end_recording(int device, bool keep) {
  CHEX_CUDA_CHECK(cudaSetDevice(device));
  cudaGraph_t graph = nullptr;
  const cudaError_t ended = cudaStreamEndCapture(stream(device), &graph);
  if (!keep) {
    // An aborted recording (the recorded code threw): its partial graph is dropped, and an error
    // the capture itself left behind is cleared so that the original one is what the caller sees.
    if (graph) cudaGraphDestroy(graph);
    if (ended != cudaSuccess) cudaGetLastError();
    return nullptr;
  }
  CHEX_CUDA_CHECK(ended);
  cudaGraphExec_t exec = nullptr;
  const cudaError_t instantiated = cudaGraphInstantiateWithFlags(&exec, graph, 0);
  cudaGraphDestroy(graph);
  CHEX_CUDA_CHECK(instantiated);
  CHEX_CUDA_CHECK(cudaGraphUpload(exec, stream(device)));
  return exec;
}

void replay_graph(void* graph, int device) {
  CHEX_CUDA_CHECK(cudaSetDevice(device));
  CHEX_CUDA_CHECK(cudaGraphLaunch(static_cast<cudaGraphExec_t>(graph), stream(device)));
}

void destroy_graph(void* graph) {
  if (graph) cudaGraphExecDestroy(static_cast<cudaGraphExec_t>(graph));
}

uint64_t graph_memory_high_water(int device) {
  unsigned long long bytes = 0;  // the attribute's type (cuuint64_t)
  CHEX_CUDA_CHECK(cudaDeviceGetGraphMemAttribute(device, cudaGraphMemAttrReservedMemHigh, &bytes));
  return bytes;
}

}  // namespace chex::cuda

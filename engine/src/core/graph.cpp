// DeviceGraph: recording and replaying through the device's runtime (engine/src/cuda/cuda_graph.cpp).
#include "chex/graph.h"

#include <exception>
#include <utility>

#include "backend/backend.h"
#include "chex/error.h"

namespace chex {

DeviceGraph::DeviceGraph() = default;

DeviceGraph::~DeviceGraph() { release(); }

// A replay may still be running: the device finishes it before the graph and its memory go.
void DeviceGraph::release() {
  if (!exec_) return;
  const backend::DeviceRuntime& runtime = backend::runtime(device_);
  runtime.synchronize(device_.index);
  runtime.destroy_graph(std::exchange(exec_, nullptr));
}

DeviceGraph::DeviceGraph(DeviceGraph&& other) noexcept
    : device_(other.device_), exec_(std::exchange(other.exec_, nullptr)) {}

DeviceGraph& DeviceGraph::operator=(DeviceGraph&& other) noexcept {
  if (this != &other) {
    release();
    device_ = other.device_;
    exec_ = std::exchange(other.exec_, nullptr);
  }
  return *this;
}

bool DeviceGraph::supported(Device device) {
  if (!device.is_cuda()) return false;
  const backend::DeviceRuntime* r = backend::cuda_runtime();
  return r && device.index < r->device_count();
}

DeviceGraph DeviceGraph::record(Device device, const std::function<void()>& record) {
  CHEX_CHECK(supported(device), "device graphs need a CUDA device; ", device.str(),
             " runs its work as it is enqueued (record nothing there: call the step directly)");
  const backend::DeviceRuntime& runtime = backend::runtime(device);
  CaptureAudit audit(device, /*throw_at_once=*/true);
  runtime.begin_recording(device.index);
  try {
    record();
  } catch (...) {
    runtime.end_recording(device.index, /*keep=*/false);
    throw;
  }
  const CaptureReport report = audit.finish();
  if (!report.recordable()) {
    runtime.end_recording(device.index, /*keep=*/false);
    CHEX_FAIL("the work recorded as a device graph on ", device.str(), " breaks the recording rules (chex/graph.h): ",
              report.problems());
  }
  DeviceGraph graph;
  graph.device_ = device;
  graph.exec_ = runtime.end_recording(device.index, /*keep=*/true);
  return graph;
}

uint64_t DeviceGraph::memory_high_water(Device device) {
  return supported(device) ? backend::runtime(device).graph_memory_high_water(device.index) : 0;
}

void DeviceGraph::replay() const {
  CHEX_CHECK(exec_, "DeviceGraph::replay(): an empty graph (nothing was recorded)");
  backend::runtime(device_).replay_graph(exec_, device_.index);
}

}  // namespace chex

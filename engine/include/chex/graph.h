#pragma once
// Device graphs: a sequence of device work recorded once and replayed with one launch (on CUDA, a
// CUDA graph), and the audit that says whether a piece of host code can be recorded at all.
//
// Recording (stream capture) enqueues nothing: the host code runs once, and every kernel, copy,
// allocation and free it puts on the device's stream becomes a node of the graph. A replay runs
// those nodes again, with the same arguments and the same addresses, and no host code. So the code
// may be recorded only if, on the device:
//   - it reads no device value on the host (the read would see nothing: the work has not run);
//   - it copies nothing from host memory (the replay would copy the same bytes, or stale ones);
//   - it frees no memory allocated before the recording (a replay would free it again);
//   - whatever it allocates it frees before it returns (the graph's own memory, which the pool
//     keeps for it at fixed addresses from one replay to the next).
// Tensors that outlive a step (parameters, gradients, optimizer state, inputs and outputs) are
// therefore allocated before the recording and updated in place by it.
//
// CaptureAudit checks these rules on any device, the CPU included, by counting what the engine
// does inside a region: the same training step a GPU records is audited by a CPU test.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "chex/device.h"

namespace chex {

// What happened on one device inside an audited region (see CaptureAudit).
struct CaptureReport {
  uint64_t host_reads = 0;          // device values read on the host
  uint64_t host_uploads = 0;        // copies from host memory into the device
  uint64_t outside_frees = 0;       // frees of memory allocated before the region
  uint64_t leaked_allocations = 0;  // allocations made in the region and still alive at its end
  uint64_t leaked_bytes = 0;
  uint64_t allocations = 0;  // made in the region (freed or not)

  // Whether the region could be recorded as a device graph.
  bool recordable() const { return host_reads == 0 && host_uploads == 0 && outside_frees == 0 && leaked_allocations == 0; }
  // One line naming each broken rule with its count ("" when recordable).
  std::string problems() const;
};

// Counts, for `device`, what the calling thread's engine work does from construction to finish():
// host reads, host uploads, and allocations and frees (which blocks were made before the region
// and which inside it). One audit per thread at a time; other threads' work is not seen.
class CaptureAudit {
 public:
  // throw_at_once: a host read or host upload is an error the moment it happens, naming the rule
  // (DeviceGraph::record audits this way, so that the error comes before CUDA's own).
  explicit CaptureAudit(Device device, bool throw_at_once = false);
  ~CaptureAudit();
  CaptureAudit(const CaptureAudit&) = delete;
  CaptureAudit& operator=(const CaptureAudit&) = delete;

  // Ends the region and returns what happened in it.
  CaptureReport finish();

  struct State;

 private:
  std::unique_ptr<State> state_;
};

// A recorded sequence of device work. Move-only; destroying it frees the graph and its memory.
class DeviceGraph {
 public:
  DeviceGraph();
  ~DeviceGraph();
  DeviceGraph(DeviceGraph&&) noexcept;
  DeviceGraph& operator=(DeviceGraph&&) noexcept;

  // Whether `device` can record graphs (a CUDA device; the CPU runs everything at once).
  static bool supported(Device device);

  // Runs `record` once while recording what it enqueues on the device, and returns the graph
  // without having run any of it. `record` must follow the rules at the top of this file; it is
  // audited while it runs, and a broken rule is an error that names it (before CUDA's own).
  static DeviceGraph record(Device device, const std::function<void()>& record);

  // Enqueues the whole graph on the device's stream (stream-ordered with everything else).
  void replay() const;

  // The most device memory that `device`'s graphs have held at once, in bytes (their own memory,
  // kept from replay to replay; not in allocator_for(device).stats(), which sees a graph's
  // allocations only while it is recorded). 0 on the CPU.
  static uint64_t memory_high_water(Device device);

  bool empty() const { return exec_ == nullptr; }
  Device device() const { return device_; }

 private:
  void release();

  Device device_ = Device::cpu();
  void* exec_ = nullptr;  // the runtime's instantiated graph
};

}  // namespace chex

#pragma once
// The device's activity as NVIDIA's CUPTI traces it (kernels, memory copies and memsets, with
// start and end timestamps), for bench_densenet --gpu-busy. CUPTI is opened at run time
// (libcupti.so.13, then libcupti.so, then the toolkit's copy found at build time), as NCCL and
// cuBLAS are, so that a machine without it still runs the benchmark and is only told why there is
// no measurement.
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "bench/activity_intervals.h"

namespace chex::bench {

// Why there is no measurement (no CUPTI, a CUPTI call failed, records dropped): its what() is
// printed as "GPU busy: not measured (...)".
struct GpuActivityUnavailable : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Records from construction to destruction; at most one at a time (CUPTI's buffers are the
// process's). Construct it before the first CUDA call, so that kernels of CUDA graphs instantiated
// later are traced too.
class GpuActivityRecorder {
 public:
  GpuActivityRecorder();  // throws GpuActivityUnavailable
  ~GpuActivityRecorder();
  GpuActivityRecorder(const GpuActivityRecorder&) = delete;
  GpuActivityRecorder& operator=(const GpuActivityRecorder&) = delete;

  // Now, on the clock of the records' timestamps (ns).
  uint64_t now() const;
  // Everything recorded so far (CUPTI's buffers flushed); throws GpuActivityUnavailable when CUPTI
  // reports records it had to drop, since a partial trace would understate the busy time.
  std::vector<DeviceActivity> collect();
};

}  // namespace chex::bench

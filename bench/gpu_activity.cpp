#include "bench/gpu_activity.h"

#ifdef CHEX_HAVE_CUPTI
#include <cupti.h>  // types and prototypes only: the functions are looked up in the dlopen'ed library
#include <dlfcn.h>

#include <cstdlib>
#include <mutex>
#include <string>
#endif

namespace chex::bench {

#ifndef CHEX_HAVE_CUPTI

GpuActivityRecorder::GpuActivityRecorder() {
  throw GpuActivityUnavailable("this build has no CUPTI headers (cupti.h): build chex with the CUDA toolkit's CUPTI");
}
GpuActivityRecorder::~GpuActivityRecorder() = default;
uint64_t GpuActivityRecorder::now() const { return 0; }
std::vector<DeviceActivity> GpuActivityRecorder::collect() { return {}; }

#else

namespace {

#define CHEX_CUPTI_FUNCTIONS(X)                                                                     \
  X(cuptiGetResultString, result_string)                                                            \
  X(cuptiGetTimestamp, get_timestamp)                                                               \
  X(cuptiActivityRegisterCallbacks, register_callbacks)                                             \
  X(cuptiActivityEnable, enable)                                                                    \
  X(cuptiActivityDisable, disable)                                                                  \
  X(cuptiActivityFlushAll, flush_all)                                                               \
  X(cuptiActivityGetNextRecord, next_record)                                                        \
  X(cuptiActivityGetNumDroppedRecords, dropped_records)

// The CUPTI functions used here, each with the prototype cupti.h declares.
struct Cupti {
#define CHEX_CUPTI_MEMBER(function, member) decltype(&::function) member = nullptr;
  CHEX_CUPTI_FUNCTIONS(CHEX_CUPTI_MEMBER)
#undef CHEX_CUPTI_MEMBER
};

// Opened once and kept for the process's life (CUPTI stays attached to the driver anyway).
const Cupti& cupti() {
  static const Cupti library = [] {
    std::string errors;
    void* handle = nullptr;
    for (const char* name : {"libcupti.so.13", "libcupti.so",
#ifdef CHEX_CUPTI_BUILD_PATH
                             CHEX_CUPTI_BUILD_PATH,
#endif
         }) {
      if ((handle = dlopen(name, RTLD_NOW | RTLD_LOCAL))) break;
      errors += errors.empty() ? "" : "; ";
      errors += dlerror();
    }
    if (!handle)
      throw GpuActivityUnavailable("libcupti not found: " + errors +
                                   ". Install the CUDA toolkit's CUPTI, or put its folder on LD_LIBRARY_PATH");
    Cupti c;
#define CHEX_CUPTI_RESOLVE(function, member)                                                        \
  c.member = reinterpret_cast<decltype(c.member)>(dlsym(handle, #function));                        \
  if (!c.member) throw GpuActivityUnavailable("libcupti has no " #function " (an older CUPTI than the toolkit's)");
    CHEX_CUPTI_FUNCTIONS(CHEX_CUPTI_RESOLVE)
#undef CHEX_CUPTI_RESOLVE
    return c;
  }();
  return library;
}

void check(CUptiResult result, const char* call) {
  if (result == CUPTI_SUCCESS) return;
  const char* text = nullptr;
  if (cupti().result_string(result, &text) != CUPTI_SUCCESS || !text) text = "unknown CUPTI error";
  throw GpuActivityUnavailable(std::string(call) + " failed: " + text);
}

constexpr CUpti_ActivityKind kKinds[] = {CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL, CUPTI_ACTIVITY_KIND_MEMCPY,
                                         CUPTI_ACTIVITY_KIND_MEMSET};
constexpr size_t kBufferBytes = size_t{8} << 20;  // ~40,000 kernel records: a few DenseNet steps

// CUPTI's callbacks carry no user pointer: what they deliver goes to the process's one recorder.
struct Delivered {
  std::mutex mutex;
  std::vector<DeviceActivity> records;
  size_t dropped = 0;    // CUPTI had no buffer space for them
  size_t untimed = 0;    // records without (complete) timestamps
  bool active = false;
};
// Never destroyed: CUPTI may still hand back (empty) buffers while the process exits.
Delivered& delivered() {
  static Delivered* d = new Delivered;
  return *d;
}

void CUPTIAPI buffer_requested(uint8_t** buffer, size_t* size, size_t* max_records) {
  // CUPTI needs 8-byte aligned buffers.
  *buffer = static_cast<uint8_t*>(std::aligned_alloc(8, kBufferBytes));
  *size = *buffer ? kBufferBytes : 0;
  *max_records = 0;  // as many as fit
}

// Kernel records from version 4 (CUDA 9) on, and every copy and memset record, keep start and end
// at bytes 16 and 24, so these layouts also read the records of an older CUPTI.
template <class Record>
DeviceActivity activity_of(const CUpti_Activity* record, bool kernel) {
  const auto* r = reinterpret_cast<const Record*>(record);
  return {{r->start, r->end}, kernel};
}

void CUPTIAPI buffer_completed(CUcontext, uint32_t, uint8_t* buffer, size_t, size_t valid_bytes) {
  std::vector<DeviceActivity> found;
  size_t untimed = 0;
  CUpti_Activity* record = nullptr;
  while (cupti().next_record(buffer, valid_bytes, &record) == CUPTI_SUCCESS) {
    DeviceActivity a;
    switch (record->kind) {
      case CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL:
      case CUPTI_ACTIVITY_KIND_KERNEL: a = activity_of<CUpti_ActivityKernel10>(record, true); break;
      case CUPTI_ACTIVITY_KIND_MEMCPY: a = activity_of<CUpti_ActivityMemcpy6>(record, false); break;
      case CUPTI_ACTIVITY_KIND_MEMSET: a = activity_of<CUpti_ActivityMemset4>(record, false); break;
      default: continue;
    }
    if (a.span.start == 0 || a.span.end < a.span.start)  // not timed, or incomplete
      ++untimed;
    else
      found.push_back(a);
  }
  std::free(buffer);
  size_t dropped = 0;
  if (cupti().dropped_records(nullptr, 0, &dropped) != CUPTI_SUCCESS) dropped = 0;
  Delivered& d = delivered();
  const std::lock_guard lock(d.mutex);
  d.records.insert(d.records.end(), found.begin(), found.end());
  d.dropped += dropped;
  d.untimed += untimed;
}

}  // namespace

GpuActivityRecorder::GpuActivityRecorder() {
  Delivered& d = delivered();
  {
    const std::lock_guard lock(d.mutex);
    if (d.active) throw GpuActivityUnavailable("another GpuActivityRecorder is recording");
    d.records.clear();
    d.dropped = d.untimed = 0;
    d.active = true;
  }
  try {
    check(cupti().register_callbacks(buffer_requested, buffer_completed), "cuptiActivityRegisterCallbacks");
    for (CUpti_ActivityKind kind : kKinds) check(cupti().enable(kind), "cuptiActivityEnable");
  } catch (...) {
    const std::lock_guard lock(d.mutex);
    d.active = false;
    throw;
  }
}

GpuActivityRecorder::~GpuActivityRecorder() {
  for (CUpti_ActivityKind kind : kKinds) cupti().disable(kind);
  cupti().flush_all(0);
  Delivered& d = delivered();
  const std::lock_guard lock(d.mutex);
  d.active = false;
}

uint64_t GpuActivityRecorder::now() const {
  uint64_t t = 0;
  check(cupti().get_timestamp(&t), "cuptiGetTimestamp");
  return t;
}

std::vector<DeviceActivity> GpuActivityRecorder::collect() {
  // Forced: every buffer, even one holding a record still incomplete (the caller has synchronised
  // the device, so there should be none); such a record has no timestamps and is counted as untimed
  // rather than its whole buffer held back, which would understate the busy time unseen.
  check(cupti().flush_all(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED), "cuptiActivityFlushAll");
  Delivered& d = delivered();
  const std::lock_guard lock(d.mutex);
  if (d.dropped || d.untimed)
    throw GpuActivityUnavailable("CUPTI dropped " + std::to_string(d.dropped) + " records and could not time " +
                                 std::to_string(d.untimed) + ", so the trace is incomplete");
  return d.records;
}

#endif

}  // namespace chex::bench

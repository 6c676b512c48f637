// CaptureAudit: per-thread counts of what a region does that a device graph could not record.
#include <sstream>
#include <unordered_map>

#include "capture_audit.h"
#include "chex/error.h"
#include "chex/graph.h"

namespace chex {

struct CaptureAudit::State {
  Device device;
  bool throw_at_once = false;
  CaptureReport report;
  std::unordered_map<const void*, size_t> alive;  // allocated in the region, not yet freed
};

namespace {
thread_local CaptureAudit::State* active = nullptr;

CaptureAudit::State* watching(Device device) { return active && active->device == device ? active : nullptr; }
}  // namespace

std::string CaptureReport::problems() const {
  std::ostringstream out;
  const char* sep = "";
  auto add = [&](uint64_t count, const char* what) {
    if (count == 0) return;
    out << sep << count << ' ' << what;
    sep = "; ";
  };
  add(host_reads, "host read(s) of device values");
  add(host_uploads, "copy(ies) from host memory");
  add(outside_frees, "free(s) of memory allocated before the recording");
  if (leaked_allocations)
    out << sep << leaked_allocations << " allocation(s) still alive at the end (" << leaked_bytes << " bytes)";
  return out.str();
}

CaptureAudit::CaptureAudit(Device device, bool throw_at_once) : state_(std::make_unique<State>()) {
  CHEX_CHECK(!active, "CaptureAudit: another audit is already active on this thread");
  state_->device = device;
  state_->throw_at_once = throw_at_once;
  active = state_.get();
}

CaptureAudit::~CaptureAudit() {
  if (active == state_.get()) active = nullptr;
}

CaptureReport CaptureAudit::finish() {
  if (active == state_.get()) active = nullptr;
  CaptureReport r = state_->report;
  r.leaked_allocations = state_->alive.size();
  for (const auto& [ptr, bytes] : state_->alive) r.leaked_bytes += bytes;
  return r;
}

namespace detail {

void audit_allocation(Device device, const void* ptr, size_t bytes) {
  if (!ptr) return;
  if (CaptureAudit::State* s = watching(device)) {
    ++s->report.allocations;
    s->alive.emplace(ptr, bytes);
  }
}

void audit_free(Device device, const void* ptr) {
  if (!ptr) return;
  if (CaptureAudit::State* s = watching(device)) {
    if (s->alive.erase(ptr) == 0) ++s->report.outside_frees;
  }
}

void audit_host_upload(Device device) {
  if (CaptureAudit::State* s = watching(device)) {
    ++s->report.host_uploads;
    CHEX_CHECK(!s->throw_at_once, "a device graph cannot record a copy from host memory into ", device.str(),
               ": a replay would copy the same bytes again; copy before the recording into a tensor it reads");
  }
}

void audit_host_read() {
  if (!active) return;
  ++active->report.host_reads;
  CHEX_CHECK(!active->throw_at_once, "a device graph cannot record a host read of a device value (item(), to(cpu), "
             "HostCopy): nothing has run while it records; read the value after a replay");
}

}  // namespace detail
}  // namespace chex

// Host reads: the counter behind chex::host_read_count() and the asynchronous copies of
// Tensor::to_host_async(), whose wait is the read.
#include "host_read.h"

#include "capture_audit.h"

#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "backend/backend.h"
#include "chex/error.h"
#include "chex/tensor.h"

namespace chex {
namespace {
std::atomic<uint64_t> g_host_reads{0};
}  // namespace

namespace detail {
void count_host_read() {
  g_host_reads.fetch_add(1, std::memory_order_relaxed);
  audit_host_read();
}
}  // namespace detail

uint64_t host_read_count() { return g_host_reads.load(std::memory_order_relaxed); }

struct HostCopy::State {
  int64_t numel = 0;
  std::unique_ptr<backend::PendingRead> pending;  // null once read, or on the CPU
  std::vector<float> values;
  bool read = false;
};

HostCopy Tensor::to_host_async() const {
  CHEX_CHECK(dtype() == DType::F32, "to_host_async: expected a float32 tensor, got ", str());
  auto state = std::make_shared<HostCopy::State>();
  state->numel = numel();
  const Tensor source = contiguous();
  if (device().is_cpu()) {
    // Nothing to wait for: the values are copied now (the tensor may change after this call).
    state->values.assign(source.data(), source.data() + state->numel);
  } else {
    state->pending = backend::runtime(device()).copy_device_to_host_async(
        source.raw_data(), static_cast<size_t>(state->numel) * sizeof(float), device().index);
  }
  return HostCopy(std::move(state));
}

const std::vector<float>& HostCopy::values() const {
  CHEX_CHECK(state_, "HostCopy::values(): an undefined copy");
  State& s = *state_;
  if (!s.read) {
    detail::count_host_read();
    if (s.pending) {
      const auto* p = static_cast<const float*>(s.pending->wait());
      s.values.assign(p, p + s.numel);
      s.pending.reset();  // its pinned block goes back for the next copy
    }
    s.read = true;
  }
  return s.values;
}

float HostCopy::item() const {
  const std::vector<float>& v = values();
  CHEX_CHECK(v.size() == 1, "HostCopy::item(): the copy has ", v.size(), " elements");
  return v[0];
}

}  // namespace chex

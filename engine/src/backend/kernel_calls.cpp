// KernelCallRecorder (chex/kernel_calls.h): the CPU backend's table, wrapped so that each call is
// recorded with its shape before it runs the CPU kernel.
#include "chex/kernel_calls.h"

#include <atomic>
#include <concepts>
#include <type_traits>
#include <utility>

#include "backend/backend.h"
#include "chex/error.h"

namespace chex {
namespace {

using namespace kernels;

// The shape a kernel's argument describes (the kernels' argument structs; see kernel_calls.h).
std::vector<int64_t> shape_of(const ImageShape& s) { return {s.batch, s.channels, s.spatial}; }
template <typename T>
std::vector<int64_t> shape_of(const BasicBatchNormForwardArgs<T>& a) {
  return shape_of(a.shape);
}
template <typename T>
std::vector<int64_t> shape_of(const BasicBatchNormApplyArgs<T>& a) {
  return shape_of(a.shape);
}
template <typename T>
std::vector<int64_t> shape_of(const BasicBatchNormBackwardArgs<T>& a) {
  return shape_of(a.shape);
}
template <typename T>
std::vector<int64_t> shape_of(const BasicBatchNormMomentsArgs<T>& a) {
  return shape_of(a.shape);
}
std::vector<int64_t> shape_of(const BatchNormStatisticsFromMomentsArgs& a) { return {a.channels, a.count}; }
std::vector<int64_t> shape_of(const Pool2dGeometry& g) { return {g.batch, g.channels, g.height, g.width}; }
template <typename Logit>
std::vector<int64_t> shape_of(const BasicBceWithLogitsArgs<Logit>& a) {
  return {a.batch, a.classes};
}
std::vector<int64_t> shape_of(const ChannelCopyArgs& a) {
  const int64_t s = a.shape.spatial;
  return {a.shape.batch, a.shape.channels, s, s > 0 ? a.src.batch_stride / s : 0, s > 0 ? a.dst.batch_stride / s : 0};
}

template <typename T>
concept Described = requires(const T& v) { shape_of(v); };

// A call's shape: from its first argument that describes one, else its trailing int64_t
// arguments, at most three (elementwise [n], global pooling [N, C, H*W]).
template <typename... A>
std::vector<int64_t> describe(const A&... args) {
  std::vector<int64_t> described, integers;
  bool found = false;
  auto take = [&](const auto& v) {
    using T = std::decay_t<decltype(v)>;
    if constexpr (Described<T>) {
      if (!found) described = shape_of(v);
      found = true;
    } else if constexpr (std::is_same_v<T, int64_t>) {
      integers.push_back(v);
    }
  };
  (take(args), ...);
  if (found) return described;
  if (integers.size() > 3) integers.erase(integers.begin(), integers.end() - 3);
  return integers;
}

std::atomic<KernelCallRecorder*> active_recorder{nullptr};

// Each entry records (name, shape), then runs the CPU kernel. A captureless generic lambda
// converts to the slot's function-pointer type, its parameters deduced from it.
#define CHEX_RECORDED_ENTRY(ret, name, ...)                                                 \
  table.name = [](auto... args) {                                                          \
    if (KernelCallRecorder* r = active_recorder.load()) r->record({#name, describe(args...)}); \
    return backend::cpu_kernels().name(args...);                                           \
  };

backend::KernelTable recorded_table(CpuPath path) {
  backend::KernelTable table;
  CHEX_BACKEND_KERNELS(CHEX_RECORDED_ENTRY)
  if (path == CpuPath::as_is) {
    CHEX_OPTIONAL_BACKEND_KERNELS(CHEX_RECORDED_ENTRY)
  } else if (path == CpuPath::like_cuda) {
    CHEX_CUDA_OPTIONAL_KERNELS(CHEX_RECORDED_ENTRY)
  }
  return table;
}
#undef CHEX_RECORDED_ENTRY

}  // namespace

KernelCallRecorder::KernelCallRecorder(CpuPath path) {
  KernelCallRecorder* none = nullptr;
  CHEX_CHECK(active_recorder.compare_exchange_strong(none, this),
             "KernelCallRecorder: another recorder is alive; one at a time");
  static const backend::KernelTable as_is = recorded_table(CpuPath::as_is);
  static const backend::KernelTable like_cuda = recorded_table(CpuPath::like_cuda);
  static const backend::KernelTable without_optional = recorded_table(CpuPath::without_optional_kernels);
  backend::set_cpu_kernels(path == CpuPath::as_is       ? &as_is
                           : path == CpuPath::like_cuda ? &like_cuda
                                                        : &without_optional);
}

KernelCallRecorder::~KernelCallRecorder() {
  backend::set_cpu_kernels(nullptr);
  active_recorder.store(nullptr);
}

void KernelCallRecorder::record(KernelCall call) {
  const std::lock_guard<std::mutex> lock(mutex_);
  ++counts_[std::move(call)];
}

std::map<KernelCall, int64_t> KernelCallRecorder::counts() const {
  const std::lock_guard<std::mutex> lock(mutex_);
  return counts_;
}

int64_t KernelCallRecorder::count(const std::string& kernel) const {
  const std::lock_guard<std::mutex> lock(mutex_);
  int64_t total = 0;
  for (const auto& [call, n] : counts_)
    if (call.kernel == kernel) total += n;
  return total;
}

void KernelCallRecorder::clear() {
  const std::lock_guard<std::mutex> lock(mutex_);
  counts_.clear();
}

}  // namespace chex

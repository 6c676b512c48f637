// AheadUploader: host batches to a device on its copy stream (chex/upload.h).
#include "chex/upload.h"

#include "backend/backend.h"
#include "capture_audit.h"
#include "chex/error.h"

namespace chex {

AheadUploader::AheadUploader(Device device) : device_(device) {}

AheadUploader::~AheadUploader() {
  if (device_.is_cpu()) return;
  const backend::DeviceRuntime& runtime = backend::runtime(device_);
  for (void* event : read_done_) runtime.delete_event(event);
}

Tensor AheadUploader::upload(const Tensor& host) {
  CHEX_CHECK(host.device().is_cpu() && host.dtype() == DType::F32, "AheadUploader::upload: expected a float32 CPU "
             "tensor, got ", host.str());
  if (device_.is_cpu()) return host;
  const backend::DeviceRuntime& runtime = backend::runtime(device_);
  // Everything queued so far includes the work that read the last upload's buffer: mark its end.
  if (last_ >= 0) {
    if (!read_done_[last_]) read_done_[last_] = runtime.new_event();
    runtime.record_event(read_done_[last_], device_.index);
  }
  const int b = (last_ + 1) % 2;
  Tensor& buffer = buffers_[b];
  // A new shape (an epoch's last batch, or the first): a fresh buffer. The old one's memory is
  // released stream-ordered on the device's stream, which has waited for its upload.
  if (!buffer.defined() || buffer.shape() != host.shape()) {
    buffer = Tensor::empty(host.shape(), device_);
    // Its memory is the device stream's (stream-ordered): the copy stream waits for that point.
    if (!read_done_[b]) read_done_[b] = runtime.new_event();
    runtime.record_event(read_done_[b], device_.index);
  }
  const Tensor source = host.contiguous();
  detail::audit_host_upload(device_);
  runtime.copy_host_to_device_ahead(buffer.raw_data(), source.raw_data(), static_cast<size_t>(source.numel()) * sizeof(float),
                                    device_.index, read_done_[b]);
  last_ = b;
  return buffer;
}

}  // namespace chex

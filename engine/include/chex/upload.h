#pragma once
// Input batches copied to a device one step ahead. On a GPU the copy runs on the device's second
// (copy) stream, so it overlaps the step the device is computing; the work queued after upload()
// on the device's stream waits for it. The copies alternate between two device buffers: a buffer
// is written again only after the work queued behind its previous upload (the step that read it)
// has run, so the upload for step k+2 waits for step k, never for step k+1.
// On the CPU nothing is copied: upload() returns the host tensor itself.
#include <array>

#include "chex/device.h"
#include "chex/tensor.h"

namespace chex {

class AheadUploader {
 public:
  explicit AheadUploader(Device device);
  ~AheadUploader();
  AheadUploader(const AheadUploader&) = delete;
  AheadUploader& operator=(const AheadUploader&) = delete;

  // `host` (a float32 CPU tensor) on the device, for the work queued from now on. The returned
  // tensor is one of two buffers: valid until the next upload but one.
  Tensor upload(const Tensor& host);

 private:
  Device device_;
  std::array<Tensor, 2> buffers_;
  std::array<void*, 2> read_done_{};  // the end of the work queued behind each buffer's last upload
  int last_ = -1;                     // the buffer of the last upload
};

}  // namespace chex

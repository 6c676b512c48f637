// AheadUploader (chex/upload.h): batches copied to the device one step ahead, on its copy stream,
// into two alternating buffers. Every upload must reach the work queued after it with the host's
// values, whatever the work queued before it still reads; a new shape gets a new buffer.
#include <vector>

#include "chex/ops.h"
#include "chex/upload.h"
#include "device/device_test.h"

using namespace chex;

CHEX_DEVICE_TEST("AheadUploader: each upload reaches the work queued after it, buffers alternate", "[upload]") {
  AheadUploader uploader(device);
  std::vector<Tensor> results;
  std::vector<Tensor> hosts;
  const std::vector<Shape> shapes = {{3, 5}, {3, 5}, {3, 5}, {2, 5}, {2, 5}, {3, 5}};
  std::vector<const void*> storage;
  for (size_t i = 0; i < shapes.size(); ++i) {
    hosts.push_back(testing::random_on(Device::cpu(), shapes[i], 40 + i));
    const Tensor on_device = uploader.upload(hosts.back());
    CHECK(on_device.device() == device);
    storage.push_back(on_device.raw_data());
    // Work queued behind the upload, reading it: its result must be the host's values doubled.
    results.push_back(ops::add(on_device, on_device));
  }
  for (size_t i = 0; i < shapes.size(); ++i) {
    INFO("upload " << i + 1);
    const std::vector<float> host = hosts[i].to_vector(), got = results[i].to_vector();
    REQUIRE(got.size() == host.size());
    for (size_t j = 0; j < host.size(); ++j) CHECK(got[j] == host[j] + host[j]);
  }
  if (device.is_cuda()) {
    CHECK(storage[0] != storage[1]);  // two buffers in turn
    CHECK(storage[2] == storage[0]);
  } else {
    CHECK(storage[0] == hosts[0].raw_data());  // the CPU copies nothing
  }
}

TEST_CASE("AheadUploader refuses what is not a float32 host tensor (cpu)", "[upload][on-cpu]") {
  AheadUploader uploader(Device::cpu());
  CHECK_THROWS_WITH(uploader.upload(Tensor::ones({2}).to(DType::BF16)), Catch::Contains("float32 CPU tensor"));
}

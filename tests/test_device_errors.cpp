// Asking for a GPU that is not there gives one clear error, never a crash: from tensor creation,
// from moving a tensor, and from an op. On a machine with GPUs the same holds for an index past
// the last one.
#include <catch2/catch.hpp>

#include <filesystem>
#include <new>
#include <string>

#include "chex/device.h"
#include "chex/error.h"
#include "chex/ops.h"
#include "chex/tensor.h"

using namespace chex;

namespace {

// A device that this machine cannot use: cuda:0 without GPUs, else one past the last GPU.
Device missing_gpu() { return Device::cuda(cuda_device_count() > 0 ? cuda_device_count() : 0); }

// The error names the device and says what to do, on one line.
void check_clear_error(const std::string& message) {
  INFO(message);
  CHECK_THAT(message, Catch::Contains(missing_gpu().str()));
  if (!cuda_compiled())
    CHECK_THAT(message, Catch::Contains("no CUDA backend"));
  else if (cuda_device_count() == 0)
    CHECK_THAT(message, Catch::Contains("no usable GPU") && Catch::Contains("--device cpu"));
  else
    CHECK_THAT(message, Catch::Contains("GPU(s) are present"));
  CHECK(message.find('\n') == std::string::npos);
}

template <typename Fn>
void check_refused(Fn fn) {
  try {
    fn();
    FAIL("the missing GPU was not refused");
  } catch (const Error& e) {
    check_clear_error(e.what());
  }
}

}  // namespace

TEST_CASE("a missing GPU is refused with one clear error", "[device][errors]") {
  const Device gpu = missing_gpu();
  check_refused([&] { Tensor::zeros({2, 3}, gpu); });
  check_refused([&] { Tensor::empty({4}, gpu); });
  check_refused([&] { Tensor::ones({2}).to(gpu); });
  check_refused([&] { require_device(Device::parse("cuda:" + std::to_string(gpu.index))); });
  // An op asked to run there never gets as far as its kernels.
  check_refused([&] { ops::relu(Tensor::ones({3}).to(gpu)); });
}

TEST_CASE("available_devices lists the CPU first, then each usable GPU", "[device]") {
  const auto devices = available_devices();
  REQUIRE(!devices.empty());
  CHECK(devices.front() == Device::cpu());
  CHECK(static_cast<int>(devices.size()) == 1 + cuda_device_count());
}

TEST_CASE("chex::Error: what() is the user's sentence, details() the failed check and its line", "[errors]") {
  const int images = 0;
  try {
    CHEX_CHECK(images > 0, "no images in '", "xrays", "'; give --images a folder of PNG files");
    FAIL("CHEX_CHECK did not throw");
  } catch (const Error& e) {
    CHECK(std::string(e.what()) == "no images in 'xrays'; give --images a folder of PNG files");
    CHECK_THAT(e.details(), Catch::StartsWith("check failed: images > 0; at test_device_errors.cpp:"));
    // Programs print the sentence, and the details only when asked.
    CHECK(describe_error(e, false) == e.what());
    CHECK(describe_error(e, true) == std::string(e.what()) + "\n  details: " + e.details());
  }
  try {
    CHEX_FAIL("the run stopped");
  } catch (const Error& e) {
    CHECK(std::string(e.what()) == "the run stopped");
    CHECK_THAT(e.details(), Catch::StartsWith("at test_device_errors.cpp:"));
  }
  // Other exceptions are worded for a user too.
  const std::filesystem::filesystem_error full("cannot create directories", "/data/run",
                                               std::make_error_code(std::errc::no_space_on_device));
  CHECK(describe_error(full, false) == "cannot create directories '/data/run': No space left on device");
  CHECK_THAT(describe_error(std::bad_alloc(), false), Catch::StartsWith("out of memory"));
}

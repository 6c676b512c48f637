#include "chex/determinism.h"

#include <atomic>

#include "chex/error.h"
#include "chex/precision.h"

namespace chex {
namespace {
std::atomic<bool> deterministic_setting{true};
}

bool deterministic() { return deterministic_setting.load(std::memory_order_relaxed); }
void set_deterministic(bool on) { deterministic_setting.store(on, std::memory_order_relaxed); }

bool parse_on_off(std::string_view option, std::string_view text) {
  if (text == "on") return true;
  if (text == "off") return false;
  CHEX_FAIL(option, " takes on or off, not '", text, "'");
}

std::string convolution_mode(Device device) {
  if (!device.is_cuda())
    return "convolutions on " + device.str() + ": deterministic (the CPU always is; --deterministic changes nothing " +
           "there), no TF32";
  const std::string how = deterministic() ? "deterministic (cuDNN heuristics)"
                                          : "timed once per shape, non-deterministic allowed (cudnnFind)";
  return "convolutions on " + device.str() + ": " + how + ", " + describe(cuda_tf32());
}

}  // namespace chex

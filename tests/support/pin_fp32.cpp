// Linked into the test binaries that run on CUDA: their GPU results are compared with fp32
// references (the CPU twins, PyTorch without TF32), so TF32 is refused everywhere before any test
// runs, whatever the library's default (TF32 convolutions, as PyTorch) or CHEX_CUDA_TF32 say.
#define CATCH_CONFIG_EXTERNAL_INTERFACES
#include <catch2/catch.hpp>

#include "chex/precision.h"

namespace {
struct PinFp32 : Catch::TestEventListenerBase {
  using TestEventListenerBase::TestEventListenerBase;
  void testRunStarting(const Catch::TestRunInfo& info) override {
    chex::set_cuda_tf32(false);
    TestEventListenerBase::testRunStarting(info);
  }
};
}  // namespace
CATCH_REGISTER_LISTENER(PinFp32)

// libFuzzer entry point (build with -DCHEX_FUZZ=ON, clang): see tests/fuzz/README.md.
#include "fuzz/fuzz_one_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  chex::fuzz::dicom_one_input(data, size);
  return 0;
}

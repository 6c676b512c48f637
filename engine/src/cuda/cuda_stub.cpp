// Used when chex is built without the CUDA backend.
#include "chex/error.h"
#include "cuda_backend.h"

namespace chex::cuda {

bool compiled() { return false; }
int device_count() { return 0; }
std::string unavailable_reason() { return "chex was built without CUDA"; }
Allocator& allocator(int) { CHEX_FAIL("this build of chex has no CUDA backend"); }
void copy_host_to_device(void*, const void*, size_t, int) { CHEX_FAIL("this build of chex has no CUDA backend"); }
void copy_device_to_host(void*, const void*, size_t, int) { CHEX_FAIL("this build of chex has no CUDA backend"); }
void copy_device_to_device(void*, const void*, size_t, int) { CHEX_FAIL("this build of chex has no CUDA backend"); }

}  // namespace chex::cuda

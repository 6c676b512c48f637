#include "device_context.h"

#include <array>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>

#include "chex/error.h"
#include "cublas_library.h"
#include "cuda_check.h"
#include "cudnn_check.h"

namespace chex::cuda {
namespace {

// -1 until read: then the environment's setting, or set_tf32_allowed's.
std::atomic<int> tf32_state{-1};
std::atomic<bool> any_context{false};

std::unique_ptr<DeviceContext> make_context(int device) {
  any_context = true;
  auto ctx = std::make_unique<DeviceContext>();
  ctx->device = device;
  ctx->stream = stream(device);
  CHEX_CUDNN_CHECK(cudnnCreate(&ctx->cudnn));
  CHEX_CUDNN_CHECK(cudnnSetStream(ctx->cudnn, ctx->stream));
  CHEX_CUBLAS_CHECK(cublas().create(&ctx->cublas));
  CHEX_CUBLAS_CHECK(cublas().set_stream(ctx->cublas, ctx->stream));
  // Scalars (alpha, beta) are passed from the host.
  CHEX_CUBLAS_CHECK(cublas().set_pointer_mode(ctx->cublas, CUBLAS_POINTER_MODE_HOST));
  // Pedantic: no TF32 and no reduced-precision reductions, so a GEMM gives float32 results.
  CHEX_CUBLAS_CHECK(
      cublas().set_math_mode(ctx->cublas, tf32_allowed() ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_PEDANTIC_MATH));
  return ctx;
}

}  // namespace

const DeviceContext& context(int device) {
  static std::array<std::unique_ptr<DeviceContext>, 64> contexts;
  static std::mutex mutex;
  CHEX_CHECK(device >= 0 && device < 64, "CUDA device index out of range: ", device);
  CHEX_CUDA_CHECK(cudaSetDevice(device));
  std::lock_guard lock(mutex);
  auto& slot = contexts[static_cast<size_t>(device)];
  if (!slot) slot = make_context(device);
  return *slot;
}

bool tf32_allowed() {
  int state = tf32_state.load();
  if (state < 0) {
    const char* value = std::getenv("CHEX_CUDA_TF32");
    int from_environment = value && std::strcmp(value, "1") == 0 ? 1 : 0;
    tf32_state.compare_exchange_strong(state, from_environment);
    state = tf32_state.load();
  }
  return state == 1;
}

void set_tf32_allowed(bool allowed) {
  CHEX_CHECK(!any_context.load() || allowed == tf32_allowed(),
             "TF32 can only be switched before the first CUDA operation: choose the precision first");
  tf32_state = allowed ? 1 : 0;
}

}  // namespace chex::cuda

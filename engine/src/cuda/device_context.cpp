#include "device_context.h"

#include <array>
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

std::unique_ptr<DeviceContext> make_context(int device) {
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
  static const bool allowed = [] {
    const char* value = std::getenv("CHEX_CUDA_TF32");
    return value && std::strcmp(value, "1") == 0;
  }();
  return allowed;
}

}  // namespace chex::cuda

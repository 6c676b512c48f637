#include "device_context.h"

#include <array>
#include <atomic>
#include <memory>
#include <mutex>

#include "chex/error.h"
#include "chex/precision.h"
#include "cublas_library.h"
#include "cuda_check.h"
#include "cudnn_check.h"

namespace chex::cuda {
namespace {

constexpr int kMaxDevices = 64;
std::atomic<bool> any_context{false};

DeviceContext* make_context(int device) {
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
  // Without TF32 for matmuls (the default, as PyTorch's): pedantic, no TF32 and no
  // reduced-precision reductions, so a GEMM gives float32 results.
  CHEX_CUBLAS_CHECK(cublas().set_math_mode(
      ctx->cublas, chex::cuda_tf32().matmuls ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_PEDANTIC_MATH));
  return ctx.release();  // lives for the whole process
}

}  // namespace

const DeviceContext& context(int device) {
  static std::array<std::atomic<DeviceContext*>, kMaxDevices> contexts{};
  static std::mutex creation;
  CHEX_CHECK(device >= 0 && device < kMaxDevices, "CUDA device index out of range: ", device);
  make_current(device);
  auto& slot = contexts[static_cast<size_t>(device)];
  if (DeviceContext* ctx = slot.load(std::memory_order_acquire)) return *ctx;
  std::lock_guard lock(creation);
  if (!slot.load(std::memory_order_relaxed)) slot.store(make_context(device), std::memory_order_release);
  return *slot.load(std::memory_order_relaxed);
}

bool any_context_created() { return any_context.load(); }

}  // namespace chex::cuda

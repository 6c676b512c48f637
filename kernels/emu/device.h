#pragma once
// What a CUDA kernel source sees when compiled by a host compiler for the emulator: the CUDA
// keywords, built-in variables, vector types, barriers, warp operations, atomics and the
// intrinsics our kernels use. Include kernels/cuda_compat.h rather than this header.
//
// Differences a kernel author must know:
//   - declare static shared memory with CHEX_SHARED(type, name) instead of `__shared__ type name`,
//     and dynamic shared memory with CHEX_DYNAMIC_SHARED(type, name) (see cuda_compat.h);
//   - __CUDA_ARCH__ is not defined; CHEX_EMULATOR is;
//   - threads switch only at barriers and warp operations, so atomics are plain read-modify-writes
//     and a thread spinning on a flag that another thread sets never finishes.
#include <math.h>  // first: glibc declares __expf & co., which are defined below

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <source_location>
#include <type_traits>

#include "kernels/emu/kernel_api.h"
#include "kernels/emu/vector_types.h"

#define CHEX_EMULATOR 1

#define __global__
#define __device__
#define __host__
#define __constant__
#define __forceinline__ inline
#define __noinline__ __attribute__((noinline))
#define __align__(n) __attribute__((aligned(n)))
#define __launch_bounds__(...)
// __restrict__ is understood by GCC and Clang as it is.
#define __shared__ \
  static_assert(false, "chex emulator: declare shared memory with CHEX_SHARED(type, name), see kernels/cuda_compat.h");

typedef struct CUstream_st* cudaStream_t;  // the same declaration as CUDA's

constexpr int warpSize = 32;

// Built-in variables: per thread; the scheduler rewrites them before resuming a thread.
inline const uint3& threadIdx = chex::emu::detail::builtins.thread_idx;
inline const uint3& blockIdx = chex::emu::detail::builtins.block_idx;
inline const dim3& blockDim = chex::emu::detail::builtins.block_dim;
inline const dim3& gridDim = chex::emu::detail::builtins.grid_dim;

// ---- Barriers. The call site identifies the barrier: all threads must meet at the same one.
inline void __syncthreads(std::source_location where = std::source_location::current()) {
  chex::emu::detail::block_barrier(chex::emu::detail::BarrierOp::sync, 0, where);
}
inline int __syncthreads_count(int predicate, std::source_location where = std::source_location::current()) {
  return chex::emu::detail::block_barrier(chex::emu::detail::BarrierOp::count, predicate, where);
}
inline int __syncthreads_and(int predicate, std::source_location where = std::source_location::current()) {
  return chex::emu::detail::block_barrier(chex::emu::detail::BarrierOp::all, predicate, where);
}
inline int __syncthreads_or(int predicate, std::source_location where = std::source_location::current()) {
  return chex::emu::detail::block_barrier(chex::emu::detail::BarrierOp::any, predicate, where);
}
// One address space, and threads interleave only at barriers: fences have nothing to order.
inline void __threadfence() {}
inline void __threadfence_block() {}

// ---- Warp operations.
namespace chex::emu::detail {
template <typename T>
T shuffle(WarpOp op, unsigned mask, T var, int arg, int width, std::source_location where) {
  static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= sizeof(std::uint64_t),
                "warp shuffles move values of at most 8 bytes");
  std::uint64_t bits = 0;
  std::memcpy(&bits, &var, sizeof(T));
  bits = warp_collective(op, mask, bits, arg, width, where);
  T result = var;
  std::memcpy(&result, &bits, sizeof(T));
  return result;
}
}  // namespace chex::emu::detail

inline void __syncwarp(unsigned mask = 0xffffffffu, std::source_location where = std::source_location::current()) {
  chex::emu::detail::warp_collective(chex::emu::detail::WarpOp::sync, mask, 0, 0, warpSize, where);
}
template <typename T>
T __shfl_sync(unsigned mask, T var, int src_lane, int width = warpSize,
              std::source_location where = std::source_location::current()) {
  return chex::emu::detail::shuffle(chex::emu::detail::WarpOp::shfl, mask, var, src_lane, width, where);
}
template <typename T>
T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = warpSize,
                 std::source_location where = std::source_location::current()) {
  return chex::emu::detail::shuffle(chex::emu::detail::WarpOp::shfl_up, mask, var, static_cast<int>(delta), width, where);
}
template <typename T>
T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = warpSize,
                   std::source_location where = std::source_location::current()) {
  return chex::emu::detail::shuffle(chex::emu::detail::WarpOp::shfl_down, mask, var, static_cast<int>(delta), width, where);
}
template <typename T>
T __shfl_xor_sync(unsigned mask, T var, int lane_mask, int width = warpSize,
                  std::source_location where = std::source_location::current()) {
  return chex::emu::detail::shuffle(chex::emu::detail::WarpOp::shfl_xor, mask, var, lane_mask, width, where);
}
inline unsigned __ballot_sync(unsigned mask, int predicate, std::source_location where = std::source_location::current()) {
  return static_cast<unsigned>(
      chex::emu::detail::warp_collective(chex::emu::detail::WarpOp::ballot, mask, predicate != 0, 0, warpSize, where));
}
inline int __any_sync(unsigned mask, int predicate, std::source_location where = std::source_location::current()) {
  return static_cast<int>(
      chex::emu::detail::warp_collective(chex::emu::detail::WarpOp::any, mask, predicate != 0, 0, warpSize, where));
}
inline int __all_sync(unsigned mask, int predicate, std::source_location where = std::source_location::current()) {
  return static_cast<int>(
      chex::emu::detail::warp_collective(chex::emu::detail::WarpOp::all, mask, predicate != 0, 0, warpSize, where));
}
// The lanes of the warp that have not exited (the emulator cannot tell which lanes are converged).
inline unsigned __activemask() { return chex::emu::detail::active_mask(); }

// ---- Atomics: threads switch only at barriers and warp operations, so a plain read-modify-write
// is atomic here. Overloads, not templates, so that arguments convert as they do in CUDA.
#define CHEX_EMU_ATOMIC(function, T, update)   \
  inline T function(T* address, T val) {       \
    const T old = *address;                    \
    *address = (update);                       \
    return old;                                \
  }
CHEX_EMU_ATOMIC(atomicAdd, int, old + val)
CHEX_EMU_ATOMIC(atomicAdd, unsigned, old + val)
CHEX_EMU_ATOMIC(atomicAdd, unsigned long long, old + val)
CHEX_EMU_ATOMIC(atomicAdd, float, old + val)
CHEX_EMU_ATOMIC(atomicAdd, double, old + val)
CHEX_EMU_ATOMIC(atomicSub, int, old - val)
CHEX_EMU_ATOMIC(atomicSub, unsigned, old - val)
CHEX_EMU_ATOMIC(atomicExch, int, val)
CHEX_EMU_ATOMIC(atomicExch, unsigned, val)
CHEX_EMU_ATOMIC(atomicExch, unsigned long long, val)
CHEX_EMU_ATOMIC(atomicExch, float, val)
CHEX_EMU_ATOMIC(atomicMax, int, old < val ? val : old)
CHEX_EMU_ATOMIC(atomicMax, unsigned, old < val ? val : old)
CHEX_EMU_ATOMIC(atomicMax, long long, old < val ? val : old)
CHEX_EMU_ATOMIC(atomicMax, unsigned long long, old < val ? val : old)
CHEX_EMU_ATOMIC(atomicMin, int, val < old ? val : old)
CHEX_EMU_ATOMIC(atomicMin, unsigned, val < old ? val : old)
CHEX_EMU_ATOMIC(atomicMin, long long, val < old ? val : old)
CHEX_EMU_ATOMIC(atomicMin, unsigned long long, val < old ? val : old)
CHEX_EMU_ATOMIC(atomicAnd, int, old & val)
CHEX_EMU_ATOMIC(atomicAnd, unsigned, old & val)
CHEX_EMU_ATOMIC(atomicAnd, unsigned long long, old & val)
CHEX_EMU_ATOMIC(atomicOr, int, old | val)
CHEX_EMU_ATOMIC(atomicOr, unsigned, old | val)
CHEX_EMU_ATOMIC(atomicOr, unsigned long long, old | val)
CHEX_EMU_ATOMIC(atomicXor, int, old ^ val)
CHEX_EMU_ATOMIC(atomicXor, unsigned, old ^ val)
CHEX_EMU_ATOMIC(atomicXor, unsigned long long, old ^ val)
CHEX_EMU_ATOMIC(atomicInc, unsigned, old >= val ? 0u : old + 1)
CHEX_EMU_ATOMIC(atomicDec, unsigned, old == 0 || old > val ? val : old - 1)
#undef CHEX_EMU_ATOMIC

#define CHEX_EMU_ATOMIC_CAS(T)                               \
  inline T atomicCAS(T* address, T compare, T val) {         \
    const T old = *address;                                  \
    if (old == compare) *address = val;                      \
    return old;                                              \
  }
CHEX_EMU_ATOMIC_CAS(int)
CHEX_EMU_ATOMIC_CAS(unsigned)
CHEX_EMU_ATOMIC_CAS(unsigned long long)
CHEX_EMU_ATOMIC_CAS(unsigned short)
#undef CHEX_EMU_ATOMIC_CAS

// ---- Loads and intrinsics (the fast-math ones are computed exactly here: compare kernels with
// tolerances, never bitwise).
template <typename T>
T __ldg(const T* address) {
  return *address;
}

inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
inline float __expf(float x) noexcept { return std::exp(x); }
inline float __logf(float x) noexcept { return std::log(x); }
inline float __powf(float x, float y) noexcept { return std::pow(x, y); }
inline float __sinf(float x) noexcept { return std::sin(x); }
inline float __cosf(float x) noexcept { return std::cos(x); }
inline float __tanf(float x) noexcept { return std::tan(x); }
inline float __fdividef(float x, float y) { return x / y; }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __fsqrt_rn(float x) { return std::sqrt(x); }
inline float __fadd_rn(float x, float y) { return x + y; }
inline float __fmul_rn(float x, float y) { return x * y; }
inline float __fmaf_rn(float x, float y, float z) { return std::fma(x, y, z); }
inline float __saturatef(float x) { return x > 0.0f ? (x < 1.0f ? x : 1.0f) : 0.0f; }  // NaN gives 0
inline int __float2int_rn(float x) { return static_cast<int>(std::nearbyint(x)); }
inline int __float2int_rz(float x) { return static_cast<int>(x); }
inline int __float_as_int(float x) { return std::bit_cast<int>(x); }
inline unsigned __float_as_uint(float x) { return std::bit_cast<unsigned>(x); }
inline float __int_as_float(int x) { return std::bit_cast<float>(x); }
inline float __uint_as_float(unsigned x) { return std::bit_cast<float>(x); }
inline long long __double_as_longlong(double x) { return std::bit_cast<long long>(x); }
inline double __longlong_as_double(long long x) { return std::bit_cast<double>(x); }
inline int __popc(unsigned x) { return std::popcount(x); }
inline int __popcll(unsigned long long x) { return std::popcount(x); }
inline int __clz(int x) { return std::countl_zero(static_cast<unsigned>(x)); }
inline int __ffs(int x) { return x == 0 ? 0 : std::countr_zero(static_cast<unsigned>(x)) + 1; }
inline unsigned __brev(unsigned x) {
  unsigned out = 0;
  for (int bit = 0; bit < 32; ++bit, x >>= 1) out = (out << 1) | (x & 1u);
  return out;
}

// CUDA's global min/max accept mixed arithmetic types.
template <typename A, typename B>
  requires std::is_arithmetic_v<A> && std::is_arithmetic_v<B>
constexpr std::common_type_t<A, B> min(A a, B b) {
  const std::common_type_t<A, B> x = a, y = b;
  return y < x ? y : x;
}
template <typename A, typename B>
  requires std::is_arithmetic_v<A> && std::is_arithmetic_v<B>
constexpr std::common_type_t<A, B> max(A a, B b) {
  const std::common_type_t<A, B> x = a, y = b;
  return x < y ? y : x;
}

// ---- Shared memory (see CHEX_SHARED in cuda_compat.h).
namespace chex::emu::detail {
template <typename T>
T& shared_object(SharedSite& site) {
  static_assert(std::is_trivially_default_constructible_v<T> && std::is_trivially_destructible_v<T>,
                "shared memory holds trivial types only, as in CUDA");
  return *static_cast<T*>(shared_storage(site, sizeof(T), alignof(T)));
}
}  // namespace chex::emu::detail

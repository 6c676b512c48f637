#pragma once
// CUDA's built-in vector types for host compilers, with CUDA's sizes and alignments (float4 and
// int4 are 16-byte aligned, so a kernel's vectorised loads behave the same). Aggregates, so that
// shared arrays of them need no constructors.

struct uint3 {
  unsigned x, y, z;
};

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}  // NOLINT: implicit, as in CUDA
  constexpr operator uint3() const { return uint3{x, y, z}; }
};

#define CHEX_EMU_VECTOR_TYPES(T, name, align2, align4)                                  \
  struct name##1 { T x; };                                                             \
  struct alignas(align2) name##2 { T x, y; };                                          \
  struct name##3 { T x, y, z; };                                                       \
  struct alignas(align4) name##4 { T x, y, z, w; };                                    \
  constexpr name##1 make_##name##1(T x) { return {x}; }                                \
  constexpr name##2 make_##name##2(T x, T y) { return {x, y}; }                        \
  constexpr name##3 make_##name##3(T x, T y, T z) { return {x, y, z}; }                \
  constexpr name##4 make_##name##4(T x, T y, T z, T w) { return {x, y, z, w}; }

CHEX_EMU_VECTOR_TYPES(float, float, 8, 16)
CHEX_EMU_VECTOR_TYPES(int, int, 8, 16)
CHEX_EMU_VECTOR_TYPES(double, double, 16, 16)
CHEX_EMU_VECTOR_TYPES(unsigned char, uchar, 2, 4)
CHEX_EMU_VECTOR_TYPES(short, short, 4, 8)
#undef CHEX_EMU_VECTOR_TYPES

struct alignas(8) uint2 { unsigned x, y; };
struct alignas(16) uint4 { unsigned x, y, z, w; };
constexpr uint2 make_uint2(unsigned x, unsigned y) { return {x, y}; }
constexpr uint3 make_uint3(unsigned x, unsigned y, unsigned z) { return {x, y, z}; }
constexpr uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return {x, y, z, w}; }

static_assert(sizeof(float4) == 16 && alignof(float4) == 16);
static_assert(sizeof(float2) == 8 && alignof(float2) == 8);
static_assert(sizeof(float3) == 12 && alignof(float3) == 4);
static_assert(alignof(double2) == 16 && alignof(uint4) == 16);

#pragma once
// Independent random streams from one user seed: the split, each epoch's order and each image's
// flip draw from their own stream, so changing one never shifts another.
#include <cstdint>

namespace chex::data::detail {

inline uint64_t mix64(uint64_t x) {  // splitmix64's finaliser: a bijection that scrambles every bit
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

inline uint64_t stream_seed(uint64_t seed, uint64_t stream, uint64_t a = 0, uint64_t b = 0) {
  return mix64(mix64(mix64(mix64(seed) ^ stream) ^ a) ^ b);
}

// Stream names.
inline constexpr uint64_t kSplitStream = 0x73706c6974;  // "split"
inline constexpr uint64_t kOrderStream = 0x6f72646572;  // "order"
inline constexpr uint64_t kFlipStream = 0x666c6970;     // "flip"

}  // namespace chex::data::detail

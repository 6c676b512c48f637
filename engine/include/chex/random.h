#pragma once
// A small, portable random generator (xoshiro256** seeded by splitmix64): the same seed gives the
// same numbers with any compiler or standard library, which makes initialisation and data order
// reproducible across machines.
#include <array>
#include <cstdint>

namespace chex {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0x5eed);
  uint64_t next_u64();
  float uniform();                  // [0, 1)
  float normal();                   // standard normal (Box-Muller)
  uint64_t below(uint64_t bound);   // uniform integer in [0, bound)
  // The full state, for checkpoints.
  std::array<uint64_t, 4> state() const { return s_; }
  void set_state(const std::array<uint64_t, 4>& s) { s_ = s; }

 private:
  std::array<uint64_t, 4> s_{};
};

// The process-wide generator that layers draw their initial weights from when none is passed.
// Not thread-safe: build models on one thread (as PyTorch's default generator, it is one stream).
Generator& default_generator();
// Reseeds the default generator, so that a model built afterwards is reproducible.
void manual_seed(uint64_t seed);

}  // namespace chex

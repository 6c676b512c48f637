#pragma once
// The emulator's thread schedule: the order in which runnable threads are resumed between
// barriers, and the order in which blocks run. A race that one order hides, another shows, so
// tests run every kernel under several schedules and demand the same answer.
#include <cstdint>
#include <string>

namespace chex::emu {

enum class Schedule {
  forward,  // threads (and blocks) in index order
  reverse,  // highest index first
  random,   // a fresh seeded permutation at every round and for the blocks
};

struct ScheduleSetting {
  Schedule order = Schedule::forward;
  std::uint64_t seed = 0;  // for Schedule::random
};

void set_schedule(Schedule order, std::uint64_t seed = 0);
ScheduleSetting schedule();
std::string to_string(const ScheduleSetting& setting);  // "forward", "random(seed 7)"

// Sets a schedule for a scope and restores the previous one at its end.
class ScopedSchedule {
 public:
  explicit ScopedSchedule(Schedule order, std::uint64_t seed = 0);
  ~ScopedSchedule();
  ScopedSchedule(const ScopedSchedule&) = delete;
  ScopedSchedule& operator=(const ScopedSchedule&) = delete;

 private:
  ScheduleSetting saved_;
};

// Stack size of each emulated thread. Default 64 KiB (256 KiB under AddressSanitizer, whose
// redzones make frames larger); takes effect at the next launch.
void set_fiber_stack_bytes(std::size_t bytes);
std::size_t fiber_stack_bytes();

}  // namespace chex::emu

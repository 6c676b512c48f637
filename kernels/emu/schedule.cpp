#include "kernels/emu/schedule.h"

#include "kernels/emu/sanitizer.h"
#include "kernels/emu/state.h"

namespace chex::emu {

void set_schedule(Schedule order, std::uint64_t seed) {
  detail::state().schedule = ScheduleSetting{order, seed};
  detail::state().rng.seed(seed);
}

ScheduleSetting schedule() { return detail::state().schedule; }

std::string to_string(const ScheduleSetting& setting) {
  switch (setting.order) {
    case Schedule::forward: return "forward";
    case Schedule::reverse: return "reverse";
    case Schedule::random: return "random(seed " + std::to_string(setting.seed) + ")";
  }
  return "?";
}

ScopedSchedule::ScopedSchedule(Schedule order, std::uint64_t seed) : saved_(schedule()) {
  set_schedule(order, seed);
}

ScopedSchedule::~ScopedSchedule() { set_schedule(saved_.order, saved_.seed); }

void set_fiber_stack_bytes(std::size_t bytes) { detail::state().stack_bytes = bytes; }

std::size_t fiber_stack_bytes() { return detail::state().stack_bytes; }

}  // namespace chex::emu

#pragma once
// The schedules every emulated test runs under: a missing barrier often passes one order and
// fails another.
#include <vector>

#include "kernels/emu/emu.h"

namespace chex::emu_test {

inline std::vector<emu::ScheduleSetting> all_schedules() {
  return {{emu::Schedule::forward, 0}, {emu::Schedule::reverse, 0}, {emu::Schedule::random, 1},
          {emu::Schedule::random, 2}, {emu::Schedule::random, 3}};
}

}  // namespace chex::emu_test

// The fiber layer on its own: switching back and forth keeps each fiber's locals, and exceptions
// thrown and caught on a fiber stay on it.
#include <catch2/catch.hpp>

#include <stdexcept>
#include <string>

#include "kernels/emu/fiber.h"

namespace emu = chex::emu::detail;

namespace {

struct PingPong {
  emu::Context main, fiber;
  int counter = 0;
  std::string caught;
};

void ping_pong_entry(void* arg) {
  auto& game = *static_cast<PingPong*>(arg);
  emu::fiber_started(game.main);
  double local = 1.5;  // must survive the switches
  for (int i = 0; i < 100; ++i) {
    game.counter += 1;
    local *= 1.0;
    emu::switch_context(game.fiber, game.main);
  }
  try {
    throw std::runtime_error("thrown on a fiber");
  } catch (const std::exception& e) {
    game.caught = e.what();
  }
  game.counter += static_cast<int>(local * 2);  // +3
  emu::exit_fiber(game.fiber, game.main);
}

}  // namespace

TEST_CASE("fibers switch back and forth and keep their state", "[emu]") {
  emu::FiberStack stack(64 * 1024);
  PingPong game;
  emu::prepare_fiber(game.fiber, stack, &ping_pong_entry, &game);
  for (int i = 0; i < 100; ++i) {
    emu::switch_context(game.main, game.fiber);
    REQUIRE(game.counter == i + 1);
  }
  emu::switch_context(game.main, game.fiber);  // runs to exit_fiber
  CHECK(game.counter == 103);
  CHECK(game.caught == "thrown on a fiber");
  // The stack can be reused for a new fiber.
  PingPong again;
  emu::prepare_fiber(again.fiber, stack, &ping_pong_entry, &again);
  emu::switch_context(again.main, again.fiber);
  CHECK(again.counter == 1);
}

#include "interrupt.h"

#include <unistd.h>

#include <atomic>
#include <csignal>

namespace chex::train {
namespace {

std::atomic<bool> requested{false};

extern "C" void on_signal(int) {
  if (requested.exchange(true)) _exit(130);
  constexpr char kMessage[] = "\ntrain_chexnet: stopping after this step to write a checkpoint (Ctrl-C again to quit now)\n";
  const ssize_t ignored = write(STDERR_FILENO, kMessage, sizeof kMessage - 1);
  (void)ignored;
}

}  // namespace

void install_interrupt_handler() {
  struct sigaction action {};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

bool interrupt_requested() { return requested.load(); }

}  // namespace chex::train

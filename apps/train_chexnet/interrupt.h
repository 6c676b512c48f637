#pragma once
// Ctrl-C (SIGINT) and SIGTERM ask the training loop to stop at the next step boundary, after it
// has written a checkpoint; a second Ctrl-C ends the process at once.
namespace chex::train {

void install_interrupt_handler();
bool interrupt_requested();

}  // namespace chex::train

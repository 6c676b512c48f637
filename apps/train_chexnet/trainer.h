#pragma once
// One training run: data and splits, the model, the epochs with validation, the plateau schedule,
// checkpoints and the final test evaluation.
#include "options.h"

namespace chex::train {

// Exit codes beside 0 (done) and 1 (error).
inline constexpr int kExitNonFiniteLoss = 3;
inline constexpr int kExitInterrupted = 130;

int run_training(const Options& options);

}  // namespace chex::train

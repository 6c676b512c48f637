#pragma once
// The whole training state in one safetensors file, so that --resume continues exactly:
//   model.<name>          the model's parameters and buffers (batch-norm running statistics)
//   optimizer.<i>.<name>  Adam's moments per parameter
//   metadata "chex_training_state": a JSON object with the position (epoch, next batch, step), the
//     scheduler (lr, best validation loss, epochs without improvement, plateaus), the optimizer's
//     step counts and the options that decide the numbers.
// One file holds all of it because one rename is atomic and two are not; checkpoint.json beside it
// is a readable copy. The data order and flips are functions of (seed, epoch, batch), so the
// position is the loader's whole random state.
#include <cstdint>
#include <string>
#include <vector>

#include "chex/nn/module.h"
#include "chex/optim/optimizer.h"

namespace chex::train {

struct TrainingState {
  int64_t epoch = 0;       // the epoch under way (0-based)
  int64_t next_batch = 0;  // its next batch
  int64_t step = 0;        // optimizer steps so far
  double lr = 0;
  // Scheduler: the lowest validation loss so far (none yet: infinity) and when it was reached.
  double best_val_loss = 0;
  bool has_best = false;
  int64_t best_epoch = -1;
  int64_t epochs_without_improvement = 0;
  int64_t plateaus = 0;
  // The epoch's running training loss, so the epoch's mean is the same after a resume.
  double epoch_loss_sum = 0;
  int64_t epoch_loss_batches = 0;
  bool finished = false;    // training is over; only the final evaluation remains
  std::string fingerprint;  // options that must match on resume
};

std::string to_json(const TrainingState& state, const optim::OptimizerState& optimizer, bool pretty);

// Writes `dir`/checkpoint.safetensors (atomically) and then `dir`/checkpoint.json.
void save_checkpoint(const std::string& dir, const TrainingState& state, const nn::Module& model,
                     const optim::Optimizer& optimizer);

// Reads `dir`/checkpoint.safetensors into the model and optimizer; returns the state. Throws
// chex::Error if it is missing, malformed, or was made with other options (`fingerprint`).
TrainingState load_checkpoint(const std::string& dir, const std::string& fingerprint, nn::Module& model,
                              optim::Optimizer& optimizer);

std::string checkpoint_path(const std::string& dir);

}  // namespace chex::train

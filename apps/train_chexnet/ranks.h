#pragma once
// train_chexnet's data-parallel pieces: what the ranks agree on after each step, and the
// predictions of a split evaluated in shards, gathered in the split's order.
#include <cstdint>
#include <vector>

#include "chex/data/nih_dataset.h"
#include "chex/distributed.h"
#include "evaluation.h"

namespace chex::train {

// The global view of one step, the same on every rank: the images in the global batch, its mean
// loss, and whether any rank was asked to stop (Ctrl-C reaches ranks at different moments; they
// all stop after the same step). Fails when the ranks are not at the same batch.
struct StepAgreement {
  int64_t images = 0;
  double loss = 0;
  bool stop = false;
};
StepAgreement agree_on_step(distributed::Communicator& comm, int64_t images, float loss, bool stop, int64_t batch);

// Every rank's predictions, merged into the order of `split` (a single process's order).
SplitPredictions gather_predictions(distributed::Communicator& comm, const SplitPredictions& mine,
                                    const std::vector<data::Sample>& split);

}  // namespace chex::train

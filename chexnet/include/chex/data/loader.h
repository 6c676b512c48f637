#pragma once
// The training data loader: worker threads decode (or read from the image cache), resize, flip and
// normalise whole batches ahead of the consumer, through a bounded prefetch window.
//
// Deterministic whatever the worker count: the epoch's order is drawn from (seed, epoch) and each
// image's flip from (seed, epoch, image), never from which worker ran first, and batches are
// delivered in order. Batch k of an epoch is the same batch whether the epoch started at 0 or was
// resumed at k, which is what a checkpoint taken mid-epoch needs.
//
// A corrupt or unreadable image is left out of its batch (which is then one image short) with a
// warning naming it, once, and counted; in strict mode it is an error instead.
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "chex/data/image_cache.h"
#include "chex/data/nih_dataset.h"
#include "chex/tensor.h"

namespace chex::data {

struct LoaderOptions {
  int64_t batch_size = 16;
  int image_size = 224;
  int workers = 2;           // threads preparing batches; 0 prepares them on the calling thread
  int prefetch = 4;          // batches prepared ahead of the consumer (the queue's bound)
  bool shuffle = false;      // a new order every epoch (training)
  bool random_flip = false;  // horizontal flip with probability 1/2 (training)
  uint64_t seed = 0;
  bool strict = false;       // a corrupt image is an error, not skipped
  std::shared_ptr<const ImageCache> cache;  // read resized pixels from here instead of decoding
  std::function<void(const std::string&)> warn;  // default: "warning: ..." on stderr
  // Data-parallel training: this loader delivers only share `shard` of `shards` of each batch
  // (batch_size stays the global batch, the order is the one all shards share), so that each rank
  // decodes only its own images. A shuffled (training) epoch leaves out a last batch with fewer
  // than two images per shard (a rank's batch norm needs two).
  int shard = 0;
  int shards = 1;
};

struct Batch {
  Tensor images;  // [n, 3, S, S], ImageNet-normalised
  Tensor labels;  // [n, 14], 0 or 1
  std::vector<std::string> names;
  int64_t epoch = 0;
  int64_t index = 0;  // the batch's position in its epoch (resume with start_epoch(epoch, index + 1))
};

class DataLoader {
 public:
  DataLoader(std::vector<Sample> samples, LoaderOptions options);
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  int64_t size() const { return static_cast<int64_t>(samples_.size()); }
  int64_t batches_per_epoch() const;
  const LoaderOptions& options() const { return options_; }

  // Starts an epoch (or restarts one, dropping whatever was prepared) at batch `first_batch`.
  void start_epoch(int64_t epoch, int64_t first_batch = 0);
  // The epoch's next batch, in order; nothing at the end of the epoch. Batches whose every image
  // was skipped are passed over.
  std::optional<Batch> next();

  // The distinct images skipped so far (each warned about once).
  int64_t skipped_images() const { return static_cast<int64_t>(skipped_.size()); }
  const std::set<std::string>& skipped_names() const { return skipped_; }

 private:
  struct Prepared {
    Batch batch;
    std::vector<std::pair<std::string, std::string>> failures;  // image, why
    std::exception_ptr error;                                   // anything else that went wrong
  };
  Prepared prepare(int64_t epoch, int64_t index, const std::vector<int64_t>& order) const;
  void work();

  std::vector<Sample> samples_;
  LoaderOptions options_;
  std::set<std::string> skipped_;  // touched by the consumer only

  std::mutex mutex_;
  std::condition_variable work_ready_, batch_ready_;
  bool started_ = false, stopping_ = false;
  uint64_t generation_ = 0;  // bumped by start_epoch: work for an older epoch is thrown away
  int64_t epoch_ = 0, next_to_prepare_ = 0, next_to_deliver_ = 0, end_ = 0;
  std::shared_ptr<const std::vector<int64_t>> order_;
  std::map<int64_t, Prepared> prepared_;
  std::vector<std::jthread> workers_;
};

}  // namespace chex::data

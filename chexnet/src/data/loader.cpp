#include "chex/data/loader.h"

#include <algorithm>
#include <iostream>
#include <numeric>

#include "chex/data/training_input.h"
#include "chex/error.h"
#include "chex/random.h"
#include "seed_streams.h"

namespace chex::data {

DataLoader::DataLoader(std::vector<Sample> samples, LoaderOptions options)
    : samples_(std::move(samples)), options_(std::move(options)) {
  CHEX_CHECK(!samples_.empty(), "the data loader has no images (an empty split?)");
  CHEX_CHECK(options_.batch_size > 0, "the batch size must be positive, not ", options_.batch_size);
  CHEX_CHECK(options_.shards >= 1 && options_.shard >= 0 && options_.shard < options_.shards, "loader shard ",
             options_.shard, " of ", options_.shards, " does not exist");
  CHEX_CHECK(options_.image_size > 0, "the image size must be positive, not ", options_.image_size);
  CHEX_CHECK(options_.workers >= 0, "the worker count cannot be negative");
  CHEX_CHECK(options_.prefetch > 0, "the prefetch depth must be positive");
  if (options_.cache) {
    CHEX_CHECK(options_.cache->image_size() == options_.image_size, "the image cache '", options_.cache->path(),
               "' holds ", options_.cache->image_size(), "-pixel images, the loader wants ", options_.image_size);
  }
  if (!options_.warn) options_.warn = [](const std::string& message) { std::cerr << "warning: " << message << '\n'; };
  for (int i = 0; i < options_.workers; ++i) workers_.emplace_back([this] { work(); });
}

DataLoader::~DataLoader() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  work_ready_.notify_all();
  workers_.clear();  // joins
}

int64_t DataLoader::batches_per_epoch() const {
  const int64_t whole = size() / options_.batch_size, rest = size() % options_.batch_size;
  // Training (shuffled): batch norm needs two images, so a last batch that would leave a share (the
  // whole batch, without sharding) with fewer is dropped; the next epoch's shuffle gives its images
  // their turn.
  const bool keeps_rest = rest > 0 && !(options_.shuffle && rest < 2 * std::max(options_.shards, 1));
  return whole + (keeps_rest ? 1 : 0);
}

void DataLoader::start_epoch(int64_t epoch, int64_t first_batch) {
  CHEX_CHECK(epoch >= 0, "the epoch cannot be negative");
  CHEX_CHECK(first_batch >= 0 && first_batch <= batches_per_epoch(), "cannot resume at batch ", first_batch,
             ": an epoch has ", batches_per_epoch(), " batches");
  auto order = std::make_shared<std::vector<int64_t>>(samples_.size());
  std::iota(order->begin(), order->end(), int64_t{0});
  if (options_.shuffle) {
    Generator gen(detail::stream_seed(options_.seed, detail::kOrderStream, static_cast<uint64_t>(epoch)));
    for (size_t i = order->size(); i > 1; --i) std::swap((*order)[i - 1], (*order)[gen.below(i)]);
  }
  {
    std::lock_guard lock(mutex_);
    started_ = true;
    ++generation_;
    epoch_ = epoch;
    order_ = std::move(order);
    next_to_prepare_ = next_to_deliver_ = first_batch;
    end_ = batches_per_epoch();
    prepared_.clear();
  }
  work_ready_.notify_all();
}

DataLoader::Prepared DataLoader::prepare(int64_t epoch, int64_t index, const std::vector<int64_t>& order) const {
  Prepared out;
  try {
    const int64_t global_first = index * options_.batch_size;
    const int64_t global_n = std::min(options_.batch_size, size() - global_first);
    // This shard's consecutive part of the batch (all of it with one shard).
    const int64_t first = global_first + global_n * options_.shard / options_.shards;
    const int64_t n = global_first + global_n * (options_.shard + 1) / options_.shards - first;
    const int64_t s = options_.image_size, image_floats = 3 * s * s;
    Tensor images = Tensor::empty({n, 3, s, s});
    Tensor labels = Tensor::zeros({n, kNumLabels});
    int64_t rows = 0;
    for (int64_t i = 0; i < n; ++i) {
      const int64_t k = order[static_cast<size_t>(first + i)];
      const Sample& sample = samples_[static_cast<size_t>(k)];
      // The flip belongs to (seed, epoch, image): the same whichever worker or position draws it.
      const bool flip = options_.random_flip &&
                        (detail::stream_seed(options_.seed, detail::kFlipStream, static_cast<uint64_t>(epoch),
                                             static_cast<uint64_t>(k)) &
                         1) != 0;
      try {
        const Image resized =
            options_.cache ? options_.cache->load(sample.image) : load_resized(sample.path, options_.image_size);
        write_training_input(resized, flip, images.data() + rows * image_floats);
      } catch (const std::exception& e) {
        out.failures.emplace_back(sample.image, e.what());
        continue;
      }
      float* label_row = labels.data() + rows * kNumLabels;
      for (int c = 0; c < kNumLabels; ++c) label_row[c] = sample.labels.test(static_cast<size_t>(c)) ? 1.f : 0.f;
      out.batch.names.push_back(sample.image);
      ++rows;
    }
    out.batch.images = rows == n ? images : images.narrow(0, 0, rows);
    out.batch.labels = rows == n ? labels : labels.narrow(0, 0, rows);
    out.batch.epoch = epoch;
    out.batch.index = index;
  } catch (...) {
    out.error = std::current_exception();
  }
  return out;
}

void DataLoader::work() {
  std::unique_lock lock(mutex_);
  while (true) {
    work_ready_.wait(lock, [&] {
      return stopping_ ||
             (started_ && next_to_prepare_ < end_ && next_to_prepare_ < next_to_deliver_ + options_.prefetch);
    });
    if (stopping_) return;
    const int64_t index = next_to_prepare_++;
    const uint64_t generation = generation_;
    const int64_t epoch = epoch_;
    const std::shared_ptr<const std::vector<int64_t>> order = order_;
    lock.unlock();
    Prepared prepared = prepare(epoch, index, *order);
    lock.lock();
    if (generation == generation_) {
      prepared_.emplace(index, std::move(prepared));
      batch_ready_.notify_all();
    }
  }
}

std::optional<Batch> DataLoader::next() {
  while (true) {
    Prepared prepared;
    {
      std::unique_lock lock(mutex_);
      CHEX_CHECK(started_, "DataLoader::next() before start_epoch()");
      if (next_to_deliver_ >= end_) return std::nullopt;
      const int64_t index = next_to_deliver_++;
      if (workers_.empty()) {
        const std::shared_ptr<const std::vector<int64_t>> order = order_;
        const int64_t epoch = epoch_;
        lock.unlock();
        prepared = prepare(epoch, index, *order);
      } else {
        batch_ready_.wait(lock, [&] { return prepared_.contains(index); });
        auto it = prepared_.find(index);
        prepared = std::move(it->second);
        prepared_.erase(it);
        lock.unlock();
        work_ready_.notify_all();  // the window moved on
      }
    }
    if (prepared.error) std::rethrow_exception(prepared.error);
    for (const auto& [image, why] : prepared.failures) {
      if (options_.strict) CHEX_FAIL("cannot read image '", image, "': ", why,
                                      "; replace the file, or leave out --strict to skip unreadable images");
      if (skipped_.insert(image).second) options_.warn("skipping unreadable image '" + image + "': " + why);
    }
    if (prepared.batch.names.empty()) continue;
    return std::move(prepared.batch);
  }
}

}  // namespace chex::data

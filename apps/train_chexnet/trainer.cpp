#include "trainer.h"

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <limits>
#include <memory>
#include <thread>

#include <nlohmann/json.hpp>

#include "checkpoint.h"
#include "chex/allocator.h"
#include "chex/autograd.h"
#include "chex/data/image_cache.h"
#include "chex/graph.h"
#include "chex/upload.h"
#include "chex/data/labels.h"
#include "chex/data/loader.h"
#include "chex/data/splits.h"
#include "chex/demo/demo_dataset.h"
#include "chex/determinism.h"
#include "chex/distributed.h"
#include "chex/error.h"
#include "chex/metrics/f1.h"
#include "chex/metrics/report.h"
#include "chex/precision.h"
#include "chex/optim/adam.h"
#include "chex/parallel.h"
#include "chex/random.h"
#include "evaluation.h"
#include "files.h"
#include "interrupt.h"
#include "loss.h"
#include "models/densenet.h"
#include "models/run_report.h"
#include "models/weights.h"
#include "progress.h"
#include "ranks.h"
#include "graphed_step.h"
#include "train_step.h"

namespace chex::train {
namespace fs = std::filesystem;
namespace {

models::DenseNetConfig architecture(const std::string& name) {
  const int64_t classes = data::kNumLabels;
  if (name == "densenet121") return models::DenseNetConfig::densenet121(classes);
  if (name == "densenet169") return models::DenseNetConfig::densenet169(classes);
  if (name == "densenet201") return models::DenseNetConfig::densenet201(classes);
  if (name == "tiny") {
    // The same kinds of layers, a few of each: for tests that must train in seconds.
    models::DenseNetConfig c;
    c.growth_rate = 4;
    c.block_config = {1, 1, 1, 1};
    c.num_init_features = 8;
    c.bn_size = 2;
    c.num_classes = classes;
    return c;
  }
  CHEX_FAIL("--arch must be densenet121, densenet169, densenet201 or tiny, not '", name, "'");
}

bool has_label_file(const std::string& dir) {
  return fs::exists(fs::path(dir) / "Data_Entry_2017_v2020.csv") || fs::exists(fs::path(dir) / "Data_Entry_2017.csv");
}

void make_demo_if_absent(const Options& o) {
  if (has_label_file(o.data)) return;
  std::printf("demo: writing the synthetic dataset to %s (once)\n", o.data.c_str());
  std::fflush(stdout);
  demo::DemoOptions demo;
  demo.out = o.data;
  demo.images = o.demo_images;
  demo.readers = 4;  // simulated readers (readers/), so the demo holds the paper's reader study too
  const demo::DemoSummary summary = demo::make_demo_dataset(demo);
  std::printf("demo: %d images (%d train_val, %d test), %d boxes\n", summary.train_val.images + summary.test.images,
              summary.train_val.images, summary.test.images, summary.boxes);
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// --device cuda under mpirun: the rank's GPU, from its local rank.
Device rank_device(const std::string& text) {
  if (text != "cuda" || distributed::launched_ranks() == 1) return Device::parse(text);
  const char* local = std::getenv("OMPI_COMM_WORLD_LOCAL_RANK");
  return Device::cuda(local ? std::atoi(local) : 0);
}

// A training step queued on the device whose loss has not been read yet.
struct QueuedStep {
  int64_t batch_index = 0;
  int64_t images = 0;      // the step's batch (several ranks: the global one)
  double data_wait = 0;    // seconds the step waited for the loader
  HostCopy loss;           // read when the step is finished
  std::optional<float> global_loss;  // several ranks: agreed inside the step
  bool stop = false;                  // several ranks: a rank was interrupted
  bool replayed = false;              // a CUDA graph replay
};

// What finishing a step decided.
struct StepOutcome {
  std::optional<int> exit_code;  // return this from go()
  bool max_steps_reached = false;
};

class Run {
 public:
  explicit Run(const Options& o) : o_(o), device_(rank_device(o.device)) {}
  int go();

 private:
  // The training loop's parts (see go()): the next batch with at least two readable images; a
  // step queued on the device; a queued step finished (its loss read, counted, logged, and the
  // files written or the run stopped when due); whether the step after step `number` may be
  // queued before step `number` is finished.
  std::optional<data::Batch> next_usable_batch(double& data_wait);
  QueuedStep queue_step(data::Batch batch, double data_wait);
  StepOutcome finish_step(QueuedStep& step, bool more_queued, EpochProgress& progress, int64_t& epoch_images,
                          std::chrono::steady_clock::time_point& last_finish);
  bool runs_ahead(int64_t number) const;

  void prepare_data();
  void build_model();
  // Ends the epoch (whole, or cut short by --max-steps): validation, schedule, best model, checkpoint.
  void end_epoch();
  int final_evaluation();
  void write_report(const metrics::Evaluation& evaluation);
  void checkpoint() {
    if (leader_) save_checkpoint(o_.out, state_, *model_, *optimizer_);
  }
  void write_log(const nlohmann::json& entry) {
    if (log_) log_->write(entry);
  }
  // The split evaluated in shards, gathered on every rank in the split's order.
  SplitPredictions predict(data::DataLoader& loader, const std::vector<data::Sample>& split) {
    return gather_predictions(*comm_, predict_split(*model_, loader, *loss_, device_), split);
  }
  std::string out(const std::string& name) const { return (fs::path(o_.out) / name).string(); }

  Options o_;
  Device device_;
  std::shared_ptr<distributed::Communicator> comm_;
  bool leader_ = true;  // rank 0: the one that writes files and prints
  std::unique_ptr<distributed::DataParallel> ddp_;
  data::DatasetSplits splits_;
  std::shared_ptr<const data::ImageCache> cache_;
  std::unique_ptr<data::DataLoader> train_, val_, test_;
  std::unique_ptr<Loss> loss_;
  std::unique_ptr<models::DenseNet> model_;
  std::unique_ptr<optim::Adam> optimizer_;
  std::unique_ptr<GraphedTrainStep> graphed_;  // on one GPU with --cuda-graph on
  AheadUploader images_upload_{device_}, labels_upload_{device_};  // batches copied one step ahead
  TrainingState state_;
  std::unique_ptr<JsonLog> log_;
  std::chrono::steady_clock::time_point epoch_start_;
  double epoch_data_wait_ = 0;  // seconds this epoch's steps waited for the loader (this process's part)
};

void Run::prepare_data() {
  if (o_.demo && leader_) make_demo_if_absent(o_);
  comm_->barrier(24 * 3600.0);  // the others wait for rank 0's demo set
  const data::NihDataset dataset = data::open_nih_dataset(o_.data);
  if (const std::string notice = dataset.missing_notice(); !notice.empty()) std::printf("%s\n", notice.c_str());
  splits_ = data::make_splits(dataset, data::parse_split_method(o_.split), o_.seed);
  if (!splits_.notice.empty()) std::printf("%s\n", splits_.notice.c_str());
  std::printf("%s split of %s (patient-disjoint):\n%s\n", o_.split.c_str(), o_.data.c_str(),
              data::format_split_table({data::summarize_split("train", splits_.train),
                                        data::summarize_split("validation", splits_.val),
                                        data::summarize_split("test", splits_.test)})
                  .c_str());
  if (!o_.cache.empty()) {
    std::vector<data::Sample> all = splits_.train;
    all.insert(all.end(), splits_.val.begin(), splits_.val.end());
    all.insert(all.end(), splits_.test.begin(), splits_.test.end());
    // Rank 0 builds the cache once; the others open it when it is there.
    auto open = [&] {
      cache_ = data::ImageCache::open_or_build(o_.cache, all, o_.image_size, std::max(o_.workers, 1),
                                               [](const std::string& s) { std::printf("cache: %s\n", s.c_str()); });
    };
    if (leader_) open();
    comm_->barrier(24 * 3600.0);
    if (!leader_) open();
  }
  auto loader = [&](const std::vector<data::Sample>& samples, bool training) {
    data::LoaderOptions lo;
    lo.batch_size = o_.batch_size;
    lo.image_size = o_.image_size;
    lo.workers = o_.workers;
    lo.shuffle = lo.random_flip = training;
    lo.seed = o_.seed;
    lo.strict = o_.strict;
    lo.cache = cache_;
    lo.shard = comm_->rank();
    lo.shards = comm_->size();
    return std::make_unique<data::DataLoader>(samples, lo);
  };
  train_ = loader(splits_.train, true);
  val_ = loader(splits_.val, false);
  test_ = loader(splits_.test, false);
  loss_ = std::make_unique<Loss>(o_.loss == "weighted", splits_.train, device_);
}

void Run::build_model() {
  manual_seed(o_.seed);  // the initial weights
  models::DenseNetConfig config = architecture(o_.arch);
  // Sync and ghost batch norm go through batch_norm2d, which the memory-efficient block does not call.
  if (o_.sync_bn || o_.bn_groups > 1) config.memory_efficient = false;
  model_ = std::make_unique<models::DenseNet>(config);
  if (o_.sync_bn) distributed::convert_sync_batch_norm(*model_, comm_);
  for (auto& [name, module] : model_->named_modules())
    if (auto* bn = dynamic_cast<nn::BatchNorm2d*>(module)) bn->set_groups(o_.bn_groups);
  if (!o_.pretrained.empty()) {
    const models::WeightLoadReport report = models::load_weights(*model_, o_.pretrained);
    std::printf("%s\n", report.summary().c_str());
  }
  model_->to(device_);
  model_->train();
  optimizer_ = std::make_unique<optim::Adam>(model_->parameters(), optim::AdamOptions{.lr = o_.lr});
}

int Run::go() {
  // Before the first CUDA operation: TF32 is chosen once per process.
  const bool precision_given = !o_.precision.empty();
  const PrecisionPlan precision =
      plan_precision(parse_precision(precision_given ? o_.precision : "fp32"), device_, /*training=*/true);
  if (!precision.note.empty()) std::printf("note: %s\n", precision.note.c_str());
  // Without --precision, CUDA keeps its default: TF32 convolutions, fp32 matmuls (as PyTorch).
  if (device_.is_cuda() && precision_given) set_cuda_tf32_for(precision.precision);
  // bf16: every convolution of the run (training steps, their recording, evaluation) on this thread.
  const PrecisionScope compute_precision(precision.precision == Precision::bf16 ? Precision::bf16 : Precision::fp32);
  set_deterministic(o_.deterministic);
  require_device(device_);
  // The ranks (NCCL's set-up is the first CUDA work on a GPU rank), or one.
  comm_ = distributed::init(device_, {.timeout_seconds = o_.collective_timeout});
  leader_ = comm_->rank() == 0;
  CHEX_CHECK(o_.batch_size % comm_->size() == 0, "--batch-size ", o_.batch_size, " does not divide among ",
             comm_->size(), " ranks: it is the global batch; use a multiple of ", comm_->size());
  CHEX_CHECK(o_.batch_size / comm_->size() >= 2 || o_.sync_bn, "--batch-size ", o_.batch_size, " over ",
             comm_->size(), " ranks leaves each fewer than 2 images for its batch norm; use a larger batch or --sync-bn");
  // One voice: the other ranks' progress would repeat rank 0's (their errors still reach stderr).
  if (!leader_ && !std::freopen("/dev/null", "w", stdout)) std::fprintf(stderr, "warning: rank %d prints too\n", comm_->rank());
  if (o_.threads > 0) set_num_threads(o_.threads);
  std::printf("%s\n", convolution_mode(device_).c_str());
  if (o_.resume && !o_.deterministic && device_.is_cuda())
    std::printf("note: --deterministic off: the resumed run will not repeat the interrupted one bit for bit\n");
  if (leader_) fs::create_directories(o_.out);
  if (comm_->size() > 1)
    std::printf("data-parallel: %d ranks over %s, %lld images per rank per step%s\n", comm_->size(),
                comm_->description().c_str(), static_cast<long long>(o_.batch_size / comm_->size()),
                o_.sync_bn ? ", sync batch norm" : "");
  prepare_data();
  build_model();

  state_.lr = o_.lr;
  state_.fingerprint = fingerprint(o_);
  state_.best_val_loss = std::numeric_limits<double>::infinity();
  if (o_.resume) {
    state_ = load_checkpoint(o_.out, fingerprint(o_), *model_, *optimizer_);
    optimizer_->set_lr(state_.lr);
    std::printf("resumed from %s: epoch %lld, batch %lld, step %lld, lr %g\n", checkpoint_path(o_.out).c_str(),
                static_cast<long long>(state_.epoch + 1), static_cast<long long>(state_.next_batch),
                static_cast<long long>(state_.step), state_.lr);
  } else if (leader_) {
    CHEX_CHECK(!fs::exists(checkpoint_path(o_.out)), "'", o_.out,
               "' already holds a training run; continue it with --resume or choose another --out");
  }
  // The same start on every rank: rank 0's weights (a fresh model is the same on all anyway).
  ddp_ = std::make_unique<distributed::DataParallel>(
      *model_, comm_, distributed::DataParallelOptions{.bucket_bytes = static_cast<size_t>(o_.bucket_mb * 1e6)});
  // One GPU: the step recorded as a CUDA graph after warm-up (graphed_step.h); under mpirun the
  // backward's all-reduce runs on the host's schedule, so every step stays eager there.
  const bool graphs = o_.cuda_graph && comm_->size() == 1 && DeviceGraph::supported(device_);
  if (graphs) graphed_ = std::make_unique<GraphedTrainStep>(*model_, std::cref(*loss_), *optimizer_, device_);
  if (device_.is_cuda() && leader_)
    std::printf("CUDA graphs: %s\n", graphs ? "on (the step is recorded after two eager warm-up steps, then replayed)"
                                            : "off (every step eager)");
  if (leader_) log_ = std::make_unique<JsonLog>(out("log.jsonl"));
  write_log({{"event", o_.resume ? "resume" : "start"}, {"step", state_.step}, {"options", fingerprint(o_)},
               {"device", device_.str()}, {"precision", precision_name(precision.precision)}, {"ranks", comm_->size()}, {"cuda_graph", graphs}, {"threads", num_threads()}, {"workers", o_.workers},
               {"train_images", splits_.train.size()}, {"val_images", splits_.val.size()},
               {"test_images", splits_.test.size()}});
  install_interrupt_handler();
  std::printf("training %s on %s (%d threads): %zu training images, %lld batches of %lld an epoch, lr %g\n",
              o_.arch.c_str(), device_.str().c_str(), num_threads(), splits_.train.size(),
              static_cast<long long>(train_->batches_per_epoch()), static_cast<long long>(o_.batch_size), state_.lr);

  const auto run_start = std::chrono::steady_clock::now();
  while (!state_.finished) {
    if (state_.epoch >= o_.epochs || (o_.max_steps && state_.step >= o_.max_steps)) {
      state_.finished = true;  // a resumed run whose limits are already reached
      checkpoint();
      break;
    }
    model_->train();
    train_->start_epoch(state_.epoch, state_.next_batch);
    EpochProgress progress(state_.epoch, o_.epochs, train_->batches_per_epoch(), state_.next_batch, o_.log_interval);
    epoch_start_ = std::chrono::steady_clock::now();
    epoch_data_wait_ = 0;
    int64_t epoch_images = 0;
    bool cut_short = false;
    // How long the next step waited for the loader: the time blocked in next(), including that of
    // batches passed over since the last step. Logged per step, so that a starved device shows.
    double data_wait = 0;
    // One step runs ahead: step k+1 is queued before step k's loss is read, so that the device
    // always has work while the host reads, logs and prepares the next batch (on a GPU the read
    // waits for the device; with nothing queued behind it, the device would idle meanwhile). A step
    // after which the run may write files or stop on schedule is finished before the next is
    // queued (see runs_ahead), so checkpoints hold exactly the steps they count.
    std::optional<QueuedStep> pending;
    auto last_finish = std::chrono::steady_clock::now();
    for (;;) {
      std::optional<QueuedStep> queued;
      bool exhausted = false;
      if (!pending || runs_ahead(state_.step + 1)) {
        std::optional<data::Batch> batch = next_usable_batch(data_wait);
        if (batch) {
          // The step's number: the pending one, not yet counted, comes first.
          const int64_t number = state_.step + 1 + (pending ? 1 : 0);
          // Tests: poison the input so that the NaN travels through the model and the loss as a real one would.
          if (o_.nan_input_at_step && number == o_.nan_input_at_step) batch->images.data()[0] = std::nanf("");
          queued = queue_step(std::move(*batch), data_wait);
          data_wait = 0;
        } else {
          exhausted = true;
        }
      }
      if (pending) {
        const StepOutcome outcome = finish_step(*pending, /*more_queued=*/queued.has_value(), progress, epoch_images,
                                                last_finish);
        if (outcome.exit_code) return *outcome.exit_code;
        if (outcome.max_steps_reached) {
          cut_short = state_.next_batch < train_->batches_per_epoch();
          break;
        }
      }
      pending = std::move(queued);
      if (!pending && exhausted) break;
    }
    progress.finish();
    if (train_->skipped_images()) std::printf("%lld unreadable images skipped so far\n", static_cast<long long>(train_->skipped_images()));
    if (cut_short) std::printf("--max-steps %lld reached in epoch %lld\n", static_cast<long long>(o_.max_steps),
                               static_cast<long long>(state_.epoch + 1));
    end_epoch();
  }
  std::printf("training done: %lld steps in %s\n", static_cast<long long>(state_.step),
              format_duration(seconds_since(run_start)).c_str());
  return final_evaluation();
}

std::optional<data::Batch> Run::next_usable_batch(double& data_wait) {
  for (;;) {
    const auto wait_start = std::chrono::steady_clock::now();
    std::optional<data::Batch> batch = train_->next();
    data_wait += seconds_since(wait_start);
    if (!batch) return std::nullopt;
    const auto n = static_cast<int64_t>(batch->names.size());
    if (comm_->size() > 1 || n >= 2) return batch;
    // Unreadable images left fewer than the two that batch norm needs: the batch is passed over.
    std::printf("\nnote: batch %lld of epoch %lld has %lld readable image%s, fewer than batch norm needs: "
                "skipped\n", static_cast<long long>(batch->index + 1), static_cast<long long>(state_.epoch + 1),
                static_cast<long long>(n), n == 1 ? "" : "s");
    state_.next_batch = std::max(state_.next_batch, batch->index + 1);
  }
}

QueuedStep Run::queue_step(data::Batch batch, double data_wait) {
  QueuedStep q;
  q.batch_index = batch.index;
  q.images = static_cast<int64_t>(batch.names.size());
  q.data_wait = data_wait;
  // The step queues all its work before its loss is read (on a GPU the read waits; mid-step it
  // would stall the queue); a non-finite loss has then updated the weights in memory, but the run
  // stops without writing them, so the files keep the last good state.
  // Several ranks: the backward starts summing n_rank * gradient over the ranks as it goes; then
  // the ranks agree on the global loss, image count and stopping, and the sum is divided by the
  // global count: the gradient of the global batch's mean loss, even for unequal shares.
  DistributedStep distributed;
  if (comm_->size() > 1) {
    distributed.forward = [&](const Tensor& x) { return ddp_->forward(x); };
    distributed.backward = [&](const Tensor& l) { ddp_->backward(l, static_cast<double>(q.images)); };
    distributed.before_step = [&](HostCopy& local) {
      const StepAgreement global = agree_on_step(*comm_, q.images, local.item(), interrupt_requested(), batch.index);
      ddp_->finish_gradients(static_cast<double>(global.images));
      q.images = global.images;
      q.global_loss = static_cast<float>(global.loss);
      q.stop = global.stop;
    };
  }
  const int64_t replays_before = graphed_ ? graphed_->replays() : 0;
  q.loss = graphed_ ? graphed_->step(batch.images, batch.labels)
                    : train_step(*model_, std::cref(*loss_), *optimizer_, images_upload_.upload(batch.images),
                                 labels_upload_.upload(batch.labels), distributed);
  q.replayed = graphed_ && graphed_->replays() > replays_before;
  return q;
}

bool Run::runs_ahead(int64_t number) const {
  // Under mpirun the ranks agree on every step inside it (a host read there anyway). Otherwise
  // the step after `number` waits when `number` may write files or end the run on schedule.
  if (comm_->size() > 1 || interrupt_requested()) return false;
  const auto at = [number](int64_t when) { return when && number == when; };
  if (o_.checkpoint_every && number % o_.checkpoint_every == 0) return false;
  if (o_.max_steps && number >= o_.max_steps) return false;
  return !at(o_.crash_after_step) && !at(o_.hang_after_step) && !at(o_.interrupt_after_step);
}

StepOutcome Run::finish_step(QueuedStep& step, bool more_queued, EpochProgress& progress, int64_t& epoch_images,
                             std::chrono::steady_clock::time_point& last_finish) {
  const float value = step.global_loss ? *step.global_loss : step.loss.item();
  if (!std::isfinite(value)) {
    progress.finish();
    write_log({{"event", "non_finite_loss"}, {"step", state_.step + 1}, {"epoch", state_.epoch + 1},
                 {"loss", std::isnan(value) ? "nan" : "inf"}});
    if (leader_)  // every rank sees the same global loss; one says so
      std::fprintf(stderr,
                   "train_chexnet: error: the loss became %s at step %lld (epoch %lld, batch %lld); training "
                   "stopped.\nThe last good checkpoint is %s (step %lld) and the best model %s; try --resume with "
                   "a lower --lr.\n",
                   std::isnan(value) ? "NaN" : "infinite", static_cast<long long>(state_.step + 1),
                   static_cast<long long>(state_.epoch + 1), static_cast<long long>(step.batch_index + 1),
                   checkpoint_path(o_.out).c_str(), static_cast<long long>(state_.step), out("best.safetensors").c_str());
    return {.exit_code = kExitNonFiniteLoss, .max_steps_reached = false};
  }
  ++state_.step;
  state_.next_batch = std::max(state_.next_batch, step.batch_index + 1);
  state_.epoch_loss_sum += value;
  ++state_.epoch_loss_batches;
  epoch_images += step.images;
  // The wall time between two steps' ends: with one step queued ahead, what a step costs.
  const double step_seconds = seconds_since(last_finish);
  last_finish = std::chrono::steady_clock::now();
  const double rate = static_cast<double>(epoch_images) / seconds_since(epoch_start_);
  epoch_data_wait_ += step.data_wait;
  write_log({{"event", "step"}, {"step", state_.step}, {"epoch", state_.epoch + 1}, {"batch", step.batch_index + 1},
               {"loss", value}, {"lr", state_.lr}, {"images", step.images}, {"step_seconds", step_seconds},
               {"data_wait_seconds", step.data_wait}, {"images_per_s", rate},
               {"allocator_peak_bytes", allocator_for(device_).stats().peak_bytes},
               {"cuda_graph_replay", step.replayed}, {"graph_memory_bytes", DeviceGraph::memory_high_water(device_)}});
  progress.update(step.batch_index, state_.epoch_loss_sum / static_cast<double>(state_.epoch_loss_batches), state_.lr,
                  rate);
  // Tests: a hard crash, or (under mpirun) the last rank stopping to answer.
  const bool last_rank = comm_->rank() == comm_->size() - 1;
  if (o_.crash_after_step && state_.step == o_.crash_after_step && last_rank) std::raise(SIGKILL);
  if (o_.hang_after_step && state_.step == o_.hang_after_step && last_rank)
    for (;;) std::this_thread::sleep_for(std::chrono::hours(1));
  if (o_.interrupt_after_step && state_.step == o_.interrupt_after_step) std::raise(SIGINT);

  // Scheduled writes and stops come after steps that nothing was queued behind (runs_ahead); a
  // Ctrl-C with a step queued behind this one stops after that one, which the loop finishes next.
  if (o_.checkpoint_every && state_.step % o_.checkpoint_every == 0) checkpoint();
  if (!more_queued && (step.stop || (comm_->size() == 1 && interrupt_requested()))) {
    progress.finish();
    checkpoint();
    write_log({{"event", "interrupted"}, {"step", state_.step}});
    std::printf("interrupted: checkpoint written at step %lld; continue with --resume\n",
                static_cast<long long>(state_.step));
    return {.exit_code = kExitInterrupted, .max_steps_reached = false};
  }
  StepOutcome outcome;
  outcome.max_steps_reached = o_.max_steps && state_.step >= o_.max_steps;
  return outcome;
}

void Run::end_epoch() {
  const double train_loss = state_.epoch_loss_batches ? state_.epoch_loss_sum / static_cast<double>(state_.epoch_loss_batches)
                                                      : std::numeric_limits<double>::quiet_NaN();
  const SplitPredictions val = predict(*val_, splits_.val);
  model_->train();
  const double auroc = mean_auroc(val);
  const bool improved = std::isfinite(val.mean_loss) && (!state_.has_best || val.mean_loss < state_.best_val_loss);
  bool plateau = false;
  if (improved) {
    state_.has_best = true;
    state_.best_val_loss = val.mean_loss;
    state_.best_epoch = state_.epoch;
    state_.epochs_without_improvement = 0;
    if (leader_) models::save_weights(*model_, out("best.safetensors"));
  } else if (++state_.epochs_without_improvement >= o_.patience) {
    plateau = true;
    state_.epochs_without_improvement = 0;
    ++state_.plateaus;
  }
  const bool stop = state_.plateaus >= o_.max_plateaus;
  const double epoch_lr = state_.lr;
  if (plateau && !stop) {
    state_.lr /= 10;  // the paper's schedule: lr / 10 when the validation loss plateaus
    optimizer_->set_lr(state_.lr);
  }
  std::printf("epoch %lld: train loss %.4f  val loss %.4f  val mean AUROC %.4f  %s%s  (%s)\n",
              static_cast<long long>(state_.epoch + 1), train_loss, val.mean_loss, auroc,
              improved ? "best so far, saved" : "no improvement",
              plateau ? (stop ? "; plateau, stopping" : "; plateau, lr / 10") : "",
              format_duration(seconds_since(epoch_start_)).c_str());
  std::fflush(stdout);
  write_log({{"event", "epoch"}, {"epoch", state_.epoch + 1}, {"step", state_.step}, {"train_loss", train_loss},
               {"val_loss", val.mean_loss}, {"val_mean_auroc", std::isfinite(auroc) ? nlohmann::json(auroc) : nlohmann::json()},
               {"lr", epoch_lr}, {"next_lr", state_.lr}, {"improved", improved}, {"plateaus", state_.plateaus},
               {"seconds", seconds_since(epoch_start_)}, {"data_wait_seconds", epoch_data_wait_},
               {"skipped_images", train_->skipped_images()},
               {"allocator_peak_bytes", allocator_for(device_).stats().peak_bytes}});
  ++state_.epoch;
  state_.next_batch = 0;
  state_.epoch_loss_sum = 0;
  state_.epoch_loss_batches = 0;
  state_.finished = stop || state_.epoch >= o_.epochs || (o_.max_steps && state_.step >= o_.max_steps);
  checkpoint();
}

int Run::final_evaluation() {
  const std::string best = out("best.safetensors");
  if (leader_) {
    CHEX_CHECK(fs::exists(best), "no best model to evaluate: '", best, "' is missing");
    models::load_weights(*model_, best);
  }
  ddp_->broadcast_state();  // rank 0's best model on every rank
  std::printf("evaluating the best model (epoch %lld, val loss %.4f) on the test split\n",
              static_cast<long long>(state_.best_epoch + 1), state_.best_val_loss);
  const SplitPredictions val = predict(*val_, splits_.val);
  const SplitPredictions test = predict(*test_, splits_.test);
  if (!leader_) return 0;  // rank 0 writes the predictions and the reports
  write_predictions_csv(out("val_predictions.csv"), val);
  write_predictions_csv(out("test_predictions.csv"), test);

  // F1 thresholds chosen on validation, as chex eval does with --thresholds.
  metrics::EvaluationOptions eo;
  eo.bootstrap.resamples = o_.bootstrap;
  eo.bootstrap.seed = o_.seed;
  const metrics::ScoreTable val_table = val.table();
  for (size_t c = 0; c < val_table.classes(); ++c) {
    const auto choice = metrics::best_f1_threshold(val_table.scores(c), val_table.truth(c));
    eo.thresholds.push_back(choice ? std::optional<double>(choice->threshold) : std::nullopt);
  }
  const metrics::Evaluation evaluation = metrics::evaluate(test.table(), eo);
  const std::string markdown = metrics::to_markdown(evaluation);
  write_text_atomically(out("test_report.md"), markdown);
  metrics::write_json(evaluation, out("test_report.json"));
  std::printf("%s", markdown.c_str());
  const int64_t skipped = train_->skipped_images() + val_->skipped_images() + test_->skipped_images();
  if (skipped) std::printf("%lld unreadable images were skipped\n", static_cast<long long>(skipped));
  write_log({{"event", "test"}, {"images", test.images.size()}, {"test_loss", test.mean_loss},
               {"mean_auroc", evaluation.mean_auroc ? nlohmann::json(*evaluation.mean_auroc) : nlohmann::json()},
               {"skipped_images", skipped}});
  std::printf("test mean AUROC %.4f on %zu images; predictions in %s, report in %s\n",
              evaluation.mean_auroc.value_or(std::nan("")), test.images.size(), out("test_predictions.csv").c_str(),
              out("test_report.md").c_str());
  write_report(evaluation);
  return 0;
}

// OUT/run_info.json (what chex report needs to redo it) and OUT/report.html; with reader files,
// the reader study is added to test_report.md and .json too.
void Run::write_report(const metrics::Evaluation& evaluation) {
  models::RunReportOptions ro;
  ro.run_dir = o_.out;
  ro.info = {.data = fs::absolute(o_.data).string(), .image_size = o_.image_size, .seed = o_.seed,
             .bootstrap = o_.bootstrap, .readers = {}};
  for (const auto& r : o_.readers) ro.info.readers.push_back(fs::absolute(r).string());
  if (o_.demo && o_.readers.empty()) ro.info.readers = models::demo_reader_files(o_.data);
  models::write_run_info(o_.out, ro.info);
  if (!o_.report) return;
  ro.model = model_.get();
  ro.device = device_;
  ro.evaluation = &evaluation;  // the test split's, just computed: its bootstrap is not run twice
  const models::RunReport report = models::write_run_report(ro);
  if (report.readers) {
    const std::string markdown = metrics::to_markdown(report.evaluation) + "\n" + metrics::reader_study_markdown(*report.readers);
    write_text_atomically(out("test_report.md"), markdown);
    metrics::write_json(report.evaluation, out("test_report.json"), &*report.readers);
    std::printf("\n%s", metrics::reader_study_markdown(*report.readers).c_str());
  }
  std::printf("HTML report in %s\n", report.html_path.c_str());
}

}  // namespace

int run_training(const Options& options) { return Run(options).go(); }

}  // namespace chex::train

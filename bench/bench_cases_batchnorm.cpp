// Batch norm (kernels/batchnorm.cu) against cudnnBatchNormalizationForwardTraining / Inference /
// Backward, at every distinct BN input of DenseNet-121 and at the large shape. Two cuDNN modes:
// the legacy CUDNN_BATCHNORM_SPATIAL, and CUDNN_BATCHNORM_SPATIAL_PERSISTENT (the case's
// alternative, where cuDNN accepts it: it may be faster, and PyTorch picks it in some layouts).
// The step fuses a ReLU into every BN (one compare per value, no extra traffic); cuDNN's calls
// have none, so both sides are timed without it.
// Bytes on paper, n = N·C·H·W floats: training forward reads x twice (statistics, then normalise)
// and writes y: 3 · 4n; inference reads x, writes y: 2 · 4n; backward reads x and dy twice
// (the sums, then dx) and writes dx: 5 · 4n. Shapes whose channels fit one block's registers
// (kernels::cuda::batch_norm_one_pass: DenseNet's 7x7, 14x14 and, at batch 16, 28x28) read x and
// dy once: 2 · 4n and 3 · 4n. Per-channel arrays are negligible and not counted.
#include "bench/bench_cases.h"
#include "chex/cuda_check.h"
#include "kernels/batchnorm.h"
#include "models/densenet_shapes.h"

namespace chex::bench {
namespace {

// apply: normalising with given (mean, invstd), what the dense block's backward recomputes; its
// cuDNN counterpart is the inference call with the variance 1/invstd² - eps.
enum class Pass { forward_training, forward_inference, apply, backward };
constexpr float kMomentum = 0.1f, kEps = 1e-5f;

class BatchNormCase final : public Case {
 public:
  BatchNormCase(Bench& b, const models::MapShape& s, Pass pass)
      : b_(b),
        pass_(pass),
        n_(s.batch),
        c_(s.channels),
        hw_(s.height * s.width),
        count_(n_ * c_ * hw_),
        desc_(n_, c_, s.height, s.width),
        per_channel_(1, c_, 1, 1),
        x_(count_),
        dy_(count_),
        ours_(count_),
        theirs_(count_),
        gamma_(c_),
        beta_(c_),
        persistent_(count_),
        stats_{DeviceArray(c_), DeviceArray(c_), DeviceArray(c_), DeviceArray(c_)},
        theirs_stats_{DeviceArray(c_), DeviceArray(c_), DeviceArray(c_), DeviceArray(c_)},
        persistent_stats_{DeviceArray(c_), DeviceArray(c_), DeviceArray(c_), DeviceArray(c_)},
        workspace_(static_cast<int64_t>(kernels::cuda::batch_norm_workspace_bytes({}, {n_, c_, hw_}) / sizeof(float)) + 1) {
    x_.upload(random_values(count_, 3, -1.f, 3.f));
    dy_.upload(random_values(count_, 4));
    gamma_.upload(random_values(c_, 5, 0.5f, 1.5f));
    beta_.upload(random_values(c_, 6));
    reset_statistics();
    const bool one_pass = kernels::cuda::batch_norm_one_pass({n_, c_, hw_});  // x and dy read once
    bytes = (pass == Pass::forward_training                                 ? (one_pass ? 2.0 : 3.0)
             : pass == Pass::forward_inference || pass == Pass::apply ? 2.0
                                               : (one_pass ? 3.0 : 5.0)) *
            4.0 * static_cast<double>(count_);
    tolerance = pass == Pass::backward ? 1e-3 : 1e-4;
    if (pass == Pass::apply) set_applied_statistics();
    if (pass == Pass::backward) {  // the saved statistics every backward uses: legacy cuDNN's
      CHEX_CUDNN_CHECK(cudnn_training(CUDNN_BATCHNORM_SPATIAL, theirs_, theirs_stats_));
      CHEX_CUDA_CHECK(cudaStreamSynchronize(b_.stream));
    }
    // The persistent mode where cuDNN takes it for this pass and shape (asked once, here).
    if (run_cudnn(CUDNN_BATCHNORM_SPATIAL_PERSISTENT, persistent_, persistent_stats_) == CUDNN_STATUS_SUCCESS)
      alternative = "SPATIAL_PERSISTENT";
    CHEX_CUDA_CHECK(cudaStreamSynchronize(b_.stream));
  }

  void ours() override {
    switch (pass_) {
      case Pass::forward_training:
        kernels::cuda::batch_norm_forward_training(b_.queue(), {.shape = {n_, c_, hw_},
                                                             .x = {x_.get(), c_ * hw_},
                                                             .y = {ours_.get(), c_ * hw_},
                                                             .gamma = gamma_.get(),
                                                             .beta = beta_.get(),
                                                             .running_mean = stats_[0].get(),
                                                             .running_var = stats_[1].get(),
                                                             .momentum = kMomentum,
                                                             .eps = kEps,
                                                             .save_mean = stats_[2].get(),
                                                             .save_invstd = stats_[3].get(),
                                                             .fuse_relu = false,
                                                             .workspace = workspace_.get()});
        break;
      case Pass::forward_inference:
        kernels::cuda::batch_norm_forward_inference(b_.queue(), {.shape = {n_, c_, hw_},
                                                              .x = {x_.get(), c_ * hw_},
                                                              .y = {ours_.get(), c_ * hw_},
                                                              .gamma = gamma_.get(),
                                                              .beta = beta_.get(),
                                                              .running_mean = stats_[0].get(),
                                                              .running_var = stats_[1].get(),
                                                              .eps = kEps});
        break;
      case Pass::apply:
        kernels::cuda::batch_norm_apply(b_.queue(), {.shape = {n_, c_, hw_},
                                                     .x = {x_.get(), c_ * hw_},
                                                     .y = {ours_.get(), c_ * hw_},
                                                     .mean = stats_[2].get(),
                                                     .invstd = stats_[3].get(),
                                                     .gamma = gamma_.get(),
                                                     .beta = beta_.get(),
                                                     .fuse_relu = false});
        break;
      case Pass::backward:
        kernels::cuda::batch_norm_backward(b_.queue(), {.shape = {n_, c_, hw_},
                                                     .x = {x_.get(), c_ * hw_},
                                                     .dy = {dy_.get(), c_ * hw_},
                                                     .dx = {ours_.get(), c_ * hw_},
                                                     .mean = theirs_stats_[2].get(),
                                                     .invstd = theirs_stats_[3].get(),
                                                     .gamma = gamma_.get(),
                                                     .beta = beta_.get(),
                                                     .batch_statistics = true,
                                                     .fuse_relu = false,
                                                     .dgamma = stats_[2].get(),
                                                     .dbeta = stats_[3].get(),
                                                     .workspace = workspace_.get()});
        break;
    }
  }

  void cudnn() override { CHEX_CUDNN_CHECK(run_cudnn(CUDNN_BATCHNORM_SPATIAL, theirs_, theirs_stats_)); }
  void cudnn_alternative() override {
    CHEX_CUDNN_CHECK(run_cudnn(CUDNN_BATCHNORM_SPATIAL_PERSISTENT, persistent_, persistent_stats_));
  }

  double difference() override { return difference_from(&BatchNormCase::cudnn, theirs_, theirs_stats_); }
  double alternative_difference() override {
    return difference_from(&BatchNormCase::cudnn_alternative, persistent_, persistent_stats_);
  }

 private:
  // apply: ours normalises with (mean, invstd) in stats_[2..3]; cuDNN with (mean, 1/invstd² - eps).
  void set_applied_statistics() {
    const std::vector<float> mean = random_values(c_, 7, -0.5f, 0.5f), invstd = random_values(c_, 9, 0.5f, 2.f);
    std::vector<float> var(invstd.size());
    for (size_t i = 0; i < var.size(); ++i) var[i] = 1.f / (invstd[i] * invstd[i]) - kEps;
    stats_[2].upload(mean);
    stats_[3].upload(invstd);
    for (DeviceArray* s : {theirs_stats_, persistent_stats_}) {
      s[0].upload(mean);
      s[1].upload(var);
    }
  }
  void reset_statistics() {
    const std::vector<float> mean = random_values(c_, 7, -0.5f, 0.5f), var = random_values(c_, 8, 0.5f, 2.f);
    for (DeviceArray* s : {stats_, theirs_stats_, persistent_stats_}) {
      s[0].upload(mean);
      s[1].upload(var);
    }
  }
  // One cuDNN call of this pass in `mode`, writing `y` and `s` (see theirs_stats_ for the layout).
  cudnnStatus_t run_cudnn(cudnnBatchNormMode_t mode, DeviceArray& y, DeviceArray (&s)[4]) {
    const float one = 1.f, zero = 0.f;
    switch (pass_) {
      case Pass::forward_training:
        return cudnn_training(mode, y, s);
      case Pass::forward_inference:
      case Pass::apply:
        return cudnnBatchNormalizationForwardInference(b_.cudnn, mode, &one, &zero, desc_.get(), x_.get(),
                                                       desc_.get(), y.get(), per_channel_.get(), gamma_.get(),
                                                       beta_.get(), s[0].get(), s[1].get(), kEps);
      case Pass::backward:
        // dgamma, dbeta into s[0..1]; the saved statistics of legacy cuDNN's forward (theirs_stats_[2..3]).
        return cudnnBatchNormalizationBackward(b_.cudnn, mode, &one, &zero, &one, &zero, desc_.get(), x_.get(),
                                               desc_.get(), dy_.get(), desc_.get(), y.get(), per_channel_.get(),
                                               gamma_.get(), s[0].get(), s[1].get(), kEps, theirs_stats_[2].get(),
                                               theirs_stats_[3].get());
    }
    return CUDNN_STATUS_BAD_PARAM;
  }
  cudnnStatus_t cudnn_training(cudnnBatchNormMode_t mode, DeviceArray& y, DeviceArray (&s)[4]) {
    const float one = 1.f, zero = 0.f;
    return cudnnBatchNormalizationForwardTraining(b_.cudnn, mode, &one, &zero, desc_.get(), x_.get(), desc_.get(),
                                                  y.get(), per_channel_.get(), gamma_.get(), beta_.get(), kMomentum,
                                                  s[0].get(), s[1].get(), kEps, s[2].get(), s[3].get());
  }

  // Runs ours and one cuDNN side (`run`, writing `y` and `s`) from the same starting statistics
  // and compares every output: y, then the running and saved statistics (training) or dgamma and
  // dbeta (backward).
  double difference_from(void (BatchNormCase::*run)(), const DeviceArray& y, DeviceArray (&s)[4]) {
    if (pass_ == Pass::forward_training || pass_ == Pass::forward_inference) reset_statistics();
    ours();
    (this->*run)();
    double worst = max_scaled_difference(ours_.download(), y.download());
    const int first = pass_ == Pass::backward ? 2 : 0;
    const int last = pass_ == Pass::forward_inference || pass_ == Pass::apply ? 0 : 4;
    for (int i = first; i < last; ++i) {
      const int theirs_index = pass_ == Pass::backward ? i - 2 : i;
      worst = std::max(worst, max_scaled_difference(stats_[i].download(), s[theirs_index].download()));
    }
    return worst;
  }

  Bench& b_;
  Pass pass_;
  int64_t n_, c_, hw_, count_;
  Desc4 desc_, per_channel_;
  DeviceArray x_, dy_, ours_, theirs_, gamma_, beta_, persistent_;
  DeviceArray stats_[4];  // ours: running mean, running var, saved mean, saved invstd (backward: dgamma, dbeta in 2, 3)
  DeviceArray theirs_stats_[4];  // cuDNN's, the same layout (backward: dgamma, dbeta in 0, 1)
  DeviceArray persistent_stats_[4];  // the persistent mode's, as theirs_stats_
  DeviceArray workspace_;
};

}  // namespace

void add_batchnorm_cases(std::vector<CaseFactory>& out, int64_t batch) {
  auto shapes = models::densenet_layer_shapes(batch).batch_norms;
  shapes.push_back({kLargeBatch, kLargeChannels, kLargeSize, kLargeSize});
  const std::pair<Pass, const char*> passes[] = {{Pass::forward_training, "batch_norm_forward_training"},
                                                 {Pass::forward_inference, "batch_norm_forward_inference"},
                                                 {Pass::apply, "batch_norm_apply"},
                                                 {Pass::backward, "batch_norm_backward"}};
  // The training forward and apply run only at some shapes (norm1's prefixes are applied, from the
  // moments the dense block keeps, not normalised by a training forward): only those (and the
  // large one).
  const auto step_calls = models::densenet_kernel_calls(models::DenseNetPass::training_step, batch);
  for (const auto& [pass, name] : passes) {
    for (size_t i = 0; i < shapes.size(); ++i) {
      const auto s = shapes[i];
      const bool densenet = i + 1 < shapes.size();
      const bool step_only = pass == Pass::apply || pass == Pass::forward_training;
      if (step_only && densenet && !step_calls.contains(image_call(name, s))) continue;
      out.push_back(
          {name, shape_text({s.batch, s.channels, s.height, s.width}), densenet,
           [s, pass](Bench& b) -> std::unique_ptr<Case> { return std::make_unique<BatchNormCase>(b, s, pass); },
           densenet ? image_call(name, s) : KernelCall{}});
    }
  }
}

}  // namespace chex::bench

// Batch norm (kernels/batchnorm.cu) against cudnnBatchNormalizationForwardTraining / Inference /
// Backward (spatial mode), at every distinct BN input of DenseNet-121 and at the large shape.
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

enum class Pass { forward_training, forward_inference, backward };
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
        stats_{DeviceArray(c_), DeviceArray(c_), DeviceArray(c_), DeviceArray(c_)},
        theirs_stats_{DeviceArray(c_), DeviceArray(c_), DeviceArray(c_), DeviceArray(c_)},
        workspace_(static_cast<int64_t>(kernels::cuda::batch_norm_workspace_bytes({}, {n_, c_, hw_}) / sizeof(float)) + 1) {
    x_.upload(random_values(count_, 3, -1.f, 3.f));
    dy_.upload(random_values(count_, 4));
    gamma_.upload(random_values(c_, 5, 0.5f, 1.5f));
    beta_.upload(random_values(c_, 6));
    reset_statistics();
    const bool one_pass = kernels::cuda::batch_norm_one_pass({n_, c_, hw_});  // x and dy read once
    bytes = (pass == Pass::forward_training    ? (one_pass ? 2.0 : 3.0)
             : pass == Pass::forward_inference ? 2.0
                                               : (one_pass ? 3.0 : 5.0)) *
            4.0 * static_cast<double>(count_);
    tolerance = pass == Pass::backward ? 1e-3 : 1e-4;
    if (pass == Pass::backward) {  // the saved statistics both backwards use: cuDNN's
      cudnn_training(theirs_stats_);
      CHEX_CUDA_CHECK(cudaStreamSynchronize(b_.stream));
    }
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

  void cudnn() override {
    const float one = 1.f, zero = 0.f;
    switch (pass_) {
      case Pass::forward_training:
        cudnn_training(theirs_stats_);
        break;
      case Pass::forward_inference:
        CHEX_CUDNN_CHECK(cudnnBatchNormalizationForwardInference(
            b_.cudnn, CUDNN_BATCHNORM_SPATIAL, &one, &zero, desc_.get(), x_.get(), desc_.get(), theirs_.get(),
            per_channel_.get(), gamma_.get(), beta_.get(), theirs_stats_[0].get(), theirs_stats_[1].get(), kEps));
        break;
      case Pass::backward:
        // dgamma, dbeta into theirs_stats_[0..1]; the saved statistics in [2..3].
        CHEX_CUDNN_CHECK(cudnnBatchNormalizationBackward(
            b_.cudnn, CUDNN_BATCHNORM_SPATIAL, &one, &zero, &one, &zero, desc_.get(), x_.get(), desc_.get(), dy_.get(),
            desc_.get(), theirs_.get(), per_channel_.get(), gamma_.get(), theirs_stats_[0].get(),
            theirs_stats_[1].get(), kEps, theirs_stats_[2].get(), theirs_stats_[3].get()));
        break;
    }
  }

  double difference() override {
    if (pass_ != Pass::backward) reset_statistics();
    ours();
    cudnn();
    double worst = max_scaled_difference(ours_.download(), theirs_.download());
    // Training: running mean/var and saved mean/invstd; backward: dgamma, dbeta.
    const int first = pass_ == Pass::backward ? 2 : 0;
    const int last = pass_ == Pass::forward_training ? 4 : pass_ == Pass::backward ? 4 : 0;
    for (int i = first; i < last; ++i) {
      const int theirs_index = pass_ == Pass::backward ? i - 2 : i;
      worst = std::max(worst, max_scaled_difference(stats_[i].download(), theirs_stats_[theirs_index].download()));
    }
    return worst;
  }

 private:
  void reset_statistics() {
    const std::vector<float> mean = random_values(c_, 7, -0.5f, 0.5f), var = random_values(c_, 8, 0.5f, 2.f);
    stats_[0].upload(mean);
    stats_[1].upload(var);
    theirs_stats_[0].upload(mean);
    theirs_stats_[1].upload(var);
  }
  void cudnn_training(DeviceArray (&s)[4]) {
    const float one = 1.f, zero = 0.f;
    CHEX_CUDNN_CHECK(cudnnBatchNormalizationForwardTraining(b_.cudnn, CUDNN_BATCHNORM_SPATIAL, &one, &zero, desc_.get(),
                                                            x_.get(), desc_.get(), theirs_.get(), per_channel_.get(),
                                                            gamma_.get(), beta_.get(), kMomentum, s[0].get(),
                                                            s[1].get(), kEps, s[2].get(), s[3].get()));
  }

  Bench& b_;
  Pass pass_;
  int64_t n_, c_, hw_, count_;
  Desc4 desc_, per_channel_;
  DeviceArray x_, dy_, ours_, theirs_, gamma_, beta_;
  DeviceArray stats_[4];  // ours: running mean, running var, saved mean, saved invstd (backward: dgamma, dbeta in 2, 3)
  DeviceArray theirs_stats_[4];  // cuDNN's, the same layout (backward: dgamma, dbeta in 0, 1)
  DeviceArray workspace_;
};

}  // namespace

void add_batchnorm_cases(std::vector<CaseFactory>& out, int64_t batch) {
  auto shapes = models::densenet_layer_shapes(batch).batch_norms;
  shapes.push_back({kLargeBatch, kLargeChannels, kLargeSize, kLargeSize});
  const std::pair<Pass, const char*> passes[] = {{Pass::forward_training, "batch_norm_forward_training"},
                                                 {Pass::forward_inference, "batch_norm_forward_inference"},
                                                 {Pass::backward, "batch_norm_backward"}};
  for (const auto& [pass, name] : passes) {
    for (size_t i = 0; i < shapes.size(); ++i) {
      const auto s = shapes[i];
      out.push_back(
          {name, shape_text({s.batch, s.channels, s.height, s.width}), i + 1 < shapes.size(),
           [s, pass](Bench& b) -> std::unique_ptr<Case> { return std::make_unique<BatchNormCase>(b, s, pass); }});
    }
  }
}

}  // namespace chex::bench

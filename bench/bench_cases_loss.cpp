// Sigmoid + weighted BCE, forward and backward in one pass (kernels/bce.cu: one launch at CheXNet's
// [16, 14], a many-block launch plus the one-block mean of its partial sums at the large
// [65536, 14]), against the unfused counterpart: cuDNN's sigmoid (cudnnActivationForward), then a
// plain kernel computing the loss and the gradient from the probabilities (bench_baselines.cu).
// Bytes on paper: read logits and targets, write dlogits: 3 · 4n.
#include <algorithm>

#include "bench/bench_baselines.h"
#include "bench/bench_cases.h"
#include "chex/cuda_check.h"
#include "kernels/bce.h"

namespace chex::bench {
namespace {

constexpr int64_t kClasses = 14;

class BceCase final : public Case {
 public:
  BceCase(Bench& b, int64_t batch)
      : b_(b),
        batch_(batch),
        n_(batch * kClasses),
        desc_(1, 1, 1, n_),
        logits_(n_),
        targets_(n_),
        pos_(kClasses),
        neg_(kClasses),
        p_(n_),
        ours_(n_ + 1),
        theirs_(n_ + 1),
        workspace_(workspace_floats(b, batch)) {
    logits_.upload(random_values(n_, 11, -4.f, 4.f));
    std::vector<float> labels = random_values(n_, 12, 0.f, 1.f);
    for (float& l : labels) l = l < 0.2f ? 1.f : 0.f;
    targets_.upload(labels);
    pos_.upload(random_values(kClasses, 13, 1.f, 8.f));
    neg_.upload(random_values(kClasses, 14, 0.5f, 1.f));
    CHEX_CUDNN_CHECK(cudnnCreateActivationDescriptor(&sigmoid_));
    CHEX_CUDNN_CHECK(cudnnSetActivationDescriptor(sigmoid_, CUDNN_ACTIVATION_SIGMOID, CUDNN_NOT_PROPAGATE_NAN, 0.0));
    bytes = 3.0 * 4.0 * static_cast<double>(n_);
    tolerance = 1e-4;
  }
  ~BceCase() override { cudnnDestroyActivationDescriptor(sigmoid_); }

  // Outputs: dlogits in [0, n), the loss at [n].
  void ours() override {
    kernels::cuda::bce_with_logits(b_.queue(), {batch_, kClasses, logits_.get(), targets_.get(), pos_.get(),
                                                neg_.get(), ours_.get() + n_, nullptr, ours_.get(), workspace_.get()});
  }
  void cudnn() override {
    const float one = 1.f, zero = 0.f;
    CHEX_CUDNN_CHECK(
        cudnnActivationForward(b_.cudnn, sigmoid_, &one, desc_.get(), logits_.get(), &zero, desc_.get(), p_.get()));
    bce_from_probabilities(p_.get(), targets_.get(), pos_.get(), neg_.get(), batch_, kClasses, theirs_.get() + n_,
                           theirs_.get(), b_.stream);
  }
  double difference() override { return compare_one_output(ours_, theirs_); }

 private:
  static int64_t workspace_floats(Bench& b, int64_t batch) {
    const size_t bytes = kernels::cuda::bce_with_logits_workspace_bytes(b.queue(), batch, kClasses);
    return std::max<int64_t>(1, static_cast<int64_t>((bytes + sizeof(float) - 1) / sizeof(float)));
  }

  Bench& b_;
  int64_t batch_, n_;
  Desc4 desc_;
  DeviceArray logits_, targets_, pos_, neg_, p_, ours_, theirs_, workspace_;
  cudnnActivationDescriptor_t sigmoid_ = nullptr;
};

}  // namespace

void add_loss_cases(std::vector<CaseFactory>& out, int64_t batch) {
  for (const int64_t rows : {batch, int64_t{65536}}) {
    // One run computes the loss and its gradient, which the step asks for in two calls.
    out.push_back({"sigmoid_bce", shape_text({rows, kClasses}), rows == batch,
                   [rows](Bench& b) -> std::unique_ptr<Case> { return std::make_unique<BceCase>(b, rows); },
                   rows == batch ? KernelCall{"bce_with_logits", {rows, kClasses}} : KernelCall{}, 2});
  }
}

}  // namespace chex::bench

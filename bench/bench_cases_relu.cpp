// ReLU forward and backward (kernels/elementwise.cu) against cudnnActivationForward/Backward, at
// every distinct input of a ReLU in DenseNet-121 (the BN outputs) and at the large shape. The
// DenseNet step fuses every ReLU into its BN, so these are measured for other models and left out
// of the DenseNet totals.
// Bytes on paper: forward reads x and writes y (2 · 4n); backward reads y and dy, writes dx (3 · 4n).
#include "bench/bench_cases.h"
#include "chex/cuda_check.h"
#include "kernels/elementwise.h"
#include "models/densenet_shapes.h"

namespace chex::bench {
namespace {

class ReluCase final : public Case {
 public:
  ReluCase(Bench& b, int64_t n, int64_t c, int64_t h, int64_t w, bool backward)
      : b_(b), count_(n * c * h * w), backward_(backward), x_(count_), dy_(count_), ours_(count_), theirs_(count_) {
    x_.upload(random_values(count_, 1));
    dy_.upload(random_values(count_, 2));
    bytes = (backward ? 3.0 : 2.0) * 4.0 * static_cast<double>(count_);
    tolerance = 0;  // exact: max(x, 0) and a masked copy
    CHEX_CUDNN_CHECK(cudnnCreateTensorDescriptor(&desc_));
    CHEX_CUDNN_CHECK(cudnnSetTensor4dDescriptor(desc_, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, static_cast<int>(n),
                                                static_cast<int>(c), static_cast<int>(h), static_cast<int>(w)));
    CHEX_CUDNN_CHECK(cudnnCreateActivationDescriptor(&relu_));
    CHEX_CUDNN_CHECK(cudnnSetActivationDescriptor(relu_, CUDNN_ACTIVATION_RELU, CUDNN_NOT_PROPAGATE_NAN, 0.0));
  }
  ~ReluCase() override {
    cudnnDestroyActivationDescriptor(relu_);
    cudnnDestroyTensorDescriptor(desc_);
  }

  // Backward: x doubles as the forward output y (any values do; only y > 0 matters).
  void ours() override {
    if (backward_)
      kernels::cuda::relu_backward(b_.queue(), x_.get(), dy_.get(), ours_.get(), count_);
    else
      kernels::cuda::relu_forward(b_.queue(), x_.get(), ours_.get(), count_);
  }
  void cudnn() override {
    const float one = 1.f, zero = 0.f;
    if (backward_)
      CHEX_CUDNN_CHECK(cudnnActivationBackward(b_.cudnn, relu_, &one, desc_, x_.get(), desc_, dy_.get(), desc_,
                                               x_.get(), &zero, desc_, theirs_.get()));
    else
      CHEX_CUDNN_CHECK(cudnnActivationForward(b_.cudnn, relu_, &one, desc_, x_.get(), &zero, desc_, theirs_.get()));
  }
  double difference() override { return compare_one_output(ours_, theirs_); }

 private:
  Bench& b_;
  int64_t count_;
  bool backward_;
  DeviceArray x_, dy_, ours_, theirs_;
  cudnnTensorDescriptor_t desc_ = nullptr;
  cudnnActivationDescriptor_t relu_ = nullptr;
};

}  // namespace

void add_relu_cases(std::vector<CaseFactory>& out, int64_t batch) {
  auto shapes = models::densenet_layer_shapes(batch).batch_norms;
  shapes.push_back({kLargeBatch, kLargeChannels, kLargeSize, kLargeSize});
  for (const bool backward : {false, true}) {
    for (size_t i = 0; i < shapes.size(); ++i) {
      const auto s = shapes[i];
      // Counted as the standalone ReLU of that many values, which a DenseNet step never calls
      // (every ReLU is fused into its BN): these cases weigh nothing in the totals.
      const bool densenet = i + 1 < shapes.size();
      const char* name = backward ? "relu_backward" : "relu_forward";
      out.push_back({name, shape_text({s.batch, s.channels, s.height, s.width}), densenet,
                     [s, backward](Bench& b) -> std::unique_ptr<Case> {
                       return std::make_unique<ReluCase>(b, s.batch, s.channels, s.height, s.width, backward);
                     },
                     densenet ? KernelCall{name, {s.batch * s.channels * s.height * s.width}} : KernelCall{}});
    }
  }
}

}  // namespace chex::bench

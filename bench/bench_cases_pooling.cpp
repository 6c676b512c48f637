// Pooling (kernels/pooling.cu, kernels/global_pool.cu) against cudnnPoolingForward/Backward: the
// stem's 3x3/2 max pool (padding 1), the transitions' 2x2/2 average pools, the final global
// average pool, each also at the large shape. Bytes on paper: forward reads x, writes y; max-pool
// backward reads x and dy, writes dx; average-pool backward reads dy, writes dx.
#include "bench/bench_cases.h"
#include "chex/cuda_check.h"
#include "kernels/pooling.h"
#include "models/densenet_shapes.h"

namespace chex::bench {
namespace {

enum class Kind { max, average, global };

class PoolCase final : public Case {
 public:
  PoolCase(Bench& b, const models::MapShape& s, Kind kind, bool backward)
      : b_(b),
        kind_(kind),
        backward_(backward),
        g_(geometry(s, kind)),
        in_(s.batch * s.channels * s.height * s.width),
        out_(s.batch * s.channels * g_.out_height * g_.out_width),
        x_desc_(s.batch, s.channels, s.height, s.width),
        y_desc_(s.batch, s.channels, g_.out_height, g_.out_width),
        x_(in_),
        y_(out_),
        dy_(out_),
        ours_(backward ? in_ : out_),
        theirs_(backward ? in_ : out_) {
    x_.upload(random_values(in_, 9));
    dy_.upload(random_values(out_, 10));
    CHEX_CUDNN_CHECK(cudnnCreatePoolingDescriptor(&pool_));
    const int window_h = static_cast<int>(kind == Kind::global ? s.height : g_.kernel);
    const int window_w = static_cast<int>(kind == Kind::global ? s.width : g_.kernel);
    const int stride = static_cast<int>(kind == Kind::global ? 1 : g_.stride);
    CHEX_CUDNN_CHECK(cudnnSetPooling2dDescriptor(
        pool_, kind == Kind::max ? CUDNN_POOLING_MAX_DETERMINISTIC : CUDNN_POOLING_AVERAGE_COUNT_EXCLUDE_PADDING,
        CUDNN_NOT_PROPAGATE_NAN, window_h, window_w, static_cast<int>(g_.padding), static_cast<int>(g_.padding), stride,
        stride));
    // cuDNN's backward takes the forward's y.
    const float one = 1.f, zero = 0.f;
    CHEX_CUDNN_CHECK(
        cudnnPoolingForward(b_.cudnn, pool_, &one, x_desc_.get(), x_.get(), &zero, y_desc_.get(), y_.get()));
    const double in_bytes = 4.0 * static_cast<double>(in_), out_bytes = 4.0 * static_cast<double>(out_);
    bytes = !backward ? in_bytes + out_bytes : kind == Kind::max ? 2 * in_bytes + out_bytes : in_bytes + out_bytes;
    tolerance = 1e-5;
  }
  ~PoolCase() override { cudnnDestroyPoolingDescriptor(pool_); }

  void ours() override {
    const int64_t bs = g_.channels * g_.height * g_.width;
    switch (kind_) {
      case Kind::max:
        if (backward_)
          kernels::cuda::max_pool2d_backward(b_.queue(), x_.get(), bs, dy_.get(), ours_.get(), g_);
        else
          kernels::cuda::max_pool2d_forward(b_.queue(), x_.get(), bs, ours_.get(), g_);
        break;
      case Kind::average:
        if (backward_)
          kernels::cuda::avg_pool2d_backward(b_.queue(), dy_.get(), ours_.get(), g_);
        else
          kernels::cuda::avg_pool2d_forward(b_.queue(), x_.get(), bs, ours_.get(), g_);
        break;
      case Kind::global:
        if (backward_)
          kernels::cuda::global_avg_pool_backward(b_.queue(), dy_.get(), ours_.get(), g_.batch, g_.channels,
                                                  g_.height * g_.width);
        else
          kernels::cuda::global_avg_pool_forward(b_.queue(), x_.get(), bs, ours_.get(), g_.batch, g_.channels,
                                                 g_.height * g_.width);
        break;
    }
  }
  void cudnn() override {
    const float one = 1.f, zero = 0.f;
    if (backward_)
      CHEX_CUDNN_CHECK(cudnnPoolingBackward(b_.cudnn, pool_, &one, y_desc_.get(), y_.get(), y_desc_.get(), dy_.get(),
                                            x_desc_.get(), x_.get(), &zero, x_desc_.get(), theirs_.get()));
    else
      CHEX_CUDNN_CHECK(
          cudnnPoolingForward(b_.cudnn, pool_, &one, x_desc_.get(), x_.get(), &zero, y_desc_.get(), theirs_.get()));
  }
  double difference() override { return compare_one_output(ours_, theirs_); }

 private:
  static kernels::Pool2dGeometry geometry(const models::MapShape& s, Kind kind) {
    kernels::Pool2dGeometry g;
    g.batch = s.batch;
    g.channels = s.channels;
    g.height = s.height;
    g.width = s.width;
    g.kernel = kind == Kind::max ? 3 : kind == Kind::average ? 2 : s.height;
    g.stride = kind == Kind::max ? 2 : kind == Kind::average ? 2 : 1;
    g.padding = kind == Kind::max ? 1 : 0;
    g.out_height = kind == Kind::global ? 1 : kernels::pool_output_size(s.height, g.kernel, g.stride, g.padding);
    g.out_width = kind == Kind::global ? 1 : kernels::pool_output_size(s.width, g.kernel, g.stride, g.padding);
    return g;
  }

  Bench& b_;
  Kind kind_;
  bool backward_;
  kernels::Pool2dGeometry g_;
  int64_t in_, out_;
  Desc4 x_desc_, y_desc_;
  DeviceArray x_, y_, dy_, ours_, theirs_;
  cudnnPoolingDescriptor_t pool_ = nullptr;
};

}  // namespace

void add_pooling_cases(std::vector<CaseFactory>& out, int64_t batch) {
  const models::DenseNetShapes shapes = models::densenet_layer_shapes(batch);
  const models::MapShape large{kLargeBatch, kLargeChannels, kLargeSize, kLargeSize};
  const std::vector<std::pair<Kind, std::vector<models::MapShape>>> kinds = {
      {Kind::max, {shapes.stem_pool_input}},
      {Kind::average, shapes.transition_pool_inputs},
      {Kind::global, {shapes.global_pool_input}}};
  for (const auto& [kind, densenet] : kinds) {
    for (const bool backward : {false, true}) {
      const std::string name = std::string(kind == Kind::max       ? "max_pool"
                                           : kind == Kind::average ? "avg_pool"
                                                                   : "global_avg_pool") +
                               (backward ? "_backward" : "_forward");
      std::vector<models::MapShape> all = densenet;
      all.push_back(large);
      // The engine's kernel (kernels/pooling.h) each case times, for the step's weights.
      const std::string kernel = std::string(kind == Kind::max       ? "max_pool2d"
                                             : kind == Kind::average ? "avg_pool2d"
                                                                     : "global_avg_pool") +
                                 (backward ? "_backward" : "_forward");
      for (size_t i = 0; i < all.size(); ++i) {
        const auto s = all[i];
        const bool of_densenet = i + 1 < all.size();
        const KernelCall call = !of_densenet          ? KernelCall{}
                                : kind == Kind::global ? image_call(kernel.c_str(), s)
                                                       : map_call(kernel.c_str(), s);
        out.push_back({name, shape_text({s.batch, s.channels, s.height, s.width}), of_densenet,
                       [s, kind = kind, backward](Bench& b) -> std::unique_ptr<Case> {
                         return std::make_unique<PoolCase>(b, s, kind, backward);
                       },
                       call});
      }
    }
  }
}

}  // namespace chex::bench

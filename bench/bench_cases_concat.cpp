// The dense block's channel copies (kernels/concat.cu, copy_channels: a block of channels between
// two batch-strided buffers) against one cudaMemcpy2DAsync (a row per image, pitched by the batch
// strides): every copy a DenseNet-121 training step makes (models::densenet_kernel_calls: each
// block's input into its buffer, in the backward the output's gradient into the block's and the
// input's gradient out of it), and the large shape (128 channels into a 256-channel buffer).
// Bytes on paper: read and write the copied channels.
#include "bench/bench_cases.h"
#include "chex/cuda_check.h"
#include "kernels/concat.h"

namespace chex::bench {
namespace {

struct CopyShape {
  int64_t batch, channels, spatial, src_channels, dst_channels, dst_offset;
};

class ConcatCase final : public Case {
 public:
  ConcatCase(Bench& b, const CopyShape& s)
      : b_(b),
        s_(s),
        src_(s.batch * s.src_channels * s.spatial),
        ours_(s.batch * s.dst_channels * s.spatial),
        theirs_(s.batch * s.dst_channels * s.spatial) {
    src_.upload(random_values(src_.size(), 15));
    CHEX_CUDA_CHECK(cudaMemset(ours_.get(), 0, ours_.bytes));
    CHEX_CUDA_CHECK(cudaMemset(theirs_.get(), 0, theirs_.bytes));
    bytes = 2.0 * 4.0 * static_cast<double>(s.batch * s.channels * s.spatial);
    tolerance = 0;
  }
  void ours() override {
    kernels::cuda::copy_channels(b_.queue(), {.src = {src_.get(), s_.src_channels * s_.spatial},
                                              .dst = {ours_.get(), s_.dst_channels * s_.spatial},
                                              .dst_channel_offset = s_.dst_offset,
                                              .shape = {s_.batch, s_.channels, s_.spatial}});
  }
  void cudnn() override {
    const size_t row = sizeof(float) * static_cast<size_t>(s_.channels * s_.spatial);
    CHEX_CUDA_CHECK(cudaMemcpy2DAsync(theirs_.get() + s_.dst_offset * s_.spatial,
                                      sizeof(float) * static_cast<size_t>(s_.dst_channels * s_.spatial), src_.get(),
                                      sizeof(float) * static_cast<size_t>(s_.src_channels * s_.spatial), row,
                                      static_cast<size_t>(s_.batch), cudaMemcpyDeviceToDevice, b_.stream));
  }
  double difference() override { return compare_one_output(ours_, theirs_); }

 private:
  Bench& b_;
  CopyShape s_;
  DeviceArray src_, ours_, theirs_;
};

std::string copy_text(const CopyShape& s) {
  return shape_text({s.batch, s.channels, s.spatial}) + " " + std::to_string(s.src_channels) + "->" +
         std::to_string(s.dst_channels);
}

}  // namespace

void add_concat_cases(std::vector<CaseFactory>& out, int64_t batch) {
  for (const auto& [call, times] : models::densenet_kernel_calls(models::DenseNetPass::training_step, batch)) {
    if (call.kernel != "copy_channels") continue;
    const CopyShape s{call.shape[0], call.shape[1], call.shape[2], call.shape[3], call.shape[4], 0};
    out.push_back({"concat_channels", copy_text(s), true,
                   [s](Bench& b) -> std::unique_ptr<Case> { return std::make_unique<ConcatCase>(b, s); }, call});
  }
  const CopyShape large{kLargeBatch, 128, kLargeSize * kLargeSize, 128, 256, 128};
  out.push_back({"concat_channels", copy_text(large), false,
                 [large](Bench& b) -> std::unique_ptr<Case> { return std::make_unique<ConcatCase>(b, large); },
                 KernelCall{}});
}

}  // namespace chex::bench

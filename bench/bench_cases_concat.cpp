// Dense-block concatenation (kernels/concat.cu: a layer's new channels copied into its channel
// slice of the block buffer) against one cudaMemcpy2DAsync (a row per image, pitched by the batch
// strides): the 32 new channels into each block's buffer of DenseNet-121, and the large shape
// (128 channels into a 256-channel buffer). Bytes on paper: read and write the copied channels.
#include "bench/bench_cases.h"
#include "chex/cuda_check.h"
#include "kernels/concat.h"

namespace chex::bench {
namespace {

class ConcatCase final : public Case {
 public:
  ConcatCase(Bench& b, int64_t batch, int64_t channels, int64_t total, int64_t offset, int64_t hw)
      : b_(b),
        batch_(batch),
        channels_(channels),
        total_(total),
        offset_(offset),
        hw_(hw),
        src_(batch * channels * hw),
        ours_(batch * total * hw),
        theirs_(batch * total * hw) {
    src_.upload(random_values(src_.size(), 15));
    CHEX_CUDA_CHECK(cudaMemset(ours_.get(), 0, ours_.bytes));
    CHEX_CUDA_CHECK(cudaMemset(theirs_.get(), 0, theirs_.bytes));
    bytes = 2.0 * 4.0 * static_cast<double>(src_.size());
    tolerance = 0;
  }
  void ours() override {
    kernels::cuda::copy_channels(b_.queue(), {.src = {src_.get(), channels_ * hw_},
                                              .dst = {ours_.get(), total_ * hw_},
                                              .dst_channel_offset = offset_,
                                              .shape = {batch_, channels_, hw_}});
  }
  void cudnn() override {
    const size_t row = sizeof(float) * static_cast<size_t>(channels_ * hw_);
    CHEX_CUDA_CHECK(cudaMemcpy2DAsync(theirs_.get() + offset_ * hw_, sizeof(float) * static_cast<size_t>(total_ * hw_),
                                      src_.get(), row, row, static_cast<size_t>(batch_), cudaMemcpyDeviceToDevice,
                                      b_.stream));
  }
  double difference() override { return compare_one_output(ours_, theirs_); }

 private:
  Bench& b_;
  int64_t batch_, channels_, total_, offset_, hw_;
  DeviceArray src_, ours_, theirs_;
};

}  // namespace

void add_concat_cases(std::vector<CaseFactory>& out, int64_t batch) {
  struct Shape {
    int64_t batch, channels, total, offset, size;
    bool densenet;
  };
  // The last layer of each block writes channels [total - 32, total) of its block buffer.
  const Shape shapes[] = {{batch, 32, 256, 224, 56, true},
                          {batch, 32, 512, 480, 28, true},
                          {batch, 32, 1024, 992, 14, true},
                          {batch, 32, 1024, 992, 7, true},
                          {kLargeBatch, 128, 256, 128, kLargeSize, false}};
  for (const Shape& s : shapes) {
    out.push_back({"concat_channels",
                   shape_text({s.batch, s.channels, s.size, s.size}) + " into " + std::to_string(s.total), s.densenet,
                   [s](Bench& b) -> std::unique_ptr<Case> {
                     return std::make_unique<ConcatCase>(b, s.batch, s.channels, s.total, s.offset, s.size * s.size);
                   }});
  }
}

}  // namespace chex::bench

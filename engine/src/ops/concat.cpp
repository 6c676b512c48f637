// cat_channels: concatenation along dimension 1, and its backward (the split of the gradient).
#include <string>

#include "chex/autograd.h"
#include "chex/ops.h"
#include "backend/backend.h"
#include "kernels/concat.h"
#include "op_utils.h"

namespace chex::ops {

Tensor cat_channels(const std::vector<Tensor>& xs) {
  constexpr const char* op = "cat_channels";
  CHEX_CHECK(!xs.empty(), op, ": no tensors to concatenate");
  const Tensor& first = xs.front();
  detail::check_float(op, "tensor 0", first);
  CHEX_CHECK(first.dim() >= 2, op, ": tensors need a channel dimension (at least 2 dimensions), got shape ",
             shape_str(first.shape()));
  std::vector<int64_t> channel_offsets;  // where each input starts in the output
  channel_offsets.reserve(xs.size());
  int64_t total_channels = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    const Tensor& t = xs[i];
    const std::string arg = "tensor " + std::to_string(i);
    detail::check_float(op, arg.c_str(), t);
    Shape expected = first.shape();
    if (t.dim() == first.dim()) expected[1] = t.size(1);
    CHEX_CHECK(t.shape() == expected, op, ": ", arg, " has shape ", shape_str(t.shape()), " but tensor 0 has shape ",
               shape_str(first.shape()), "; they may differ only in dimension 1");
    CHEX_CHECK(t.device() == first.device(), op, ": tensors on different devices (", first.str(), " and ", t.str(),
               ")");
    channel_offsets.push_back(total_channels);
    total_channels += t.size(1);
  }

  const int64_t batch = first.size(0);
  int64_t spatial = 1;  // the values per channel: the product of the dimensions after the first two
  for (int64_t d = 2; d < first.dim(); ++d) spatial *= first.size(d);
  Shape out_shape = first.shape();
  out_shape[1] = total_channels;
  Tensor y = Tensor::empty(out_shape, first.device());
  const int64_t out_image = total_channels * spatial;
  std::vector<Shape> input_shapes;
  input_shapes.reserve(xs.size());
  for (size_t i = 0; i < xs.size(); ++i) {
    const Tensor input = detail::detached_batch_strided(xs[i]);
    backend::backend(y.device())
        .copy_channels(kernels::ChannelCopyArgs{.src = {input.data(), detail::batch_stride(input)},
                                                .dst = {y.data(), out_image},
                                                .dst_channel_offset = channel_offsets[i],
                                                .shape = {batch, input.size(1), spatial}});
    input_shapes.push_back(input.shape());
  }

  // The backward copies each input's channel range of the gradient back out.
  return record(op, y, xs,
                [input_shapes, channel_offsets, spatial](const Tensor& g, const std::vector<bool>& needs) {
                  const Tensor dy = detail::detached_batch_strided(g);
                  std::vector<Tensor> grads(input_shapes.size());
                  for (size_t i = 0; i < input_shapes.size(); ++i) {
                    if (!needs[i]) continue;
                    const Shape& shape = input_shapes[i];
                    grads[i] = Tensor::empty(shape, dy.device());
                    backend::backend(dy.device())
                        .copy_channels(kernels::ChannelCopyArgs{.src = {dy.data(), detail::batch_stride(dy)},
                                                                .src_channel_offset = channel_offsets[i],
                                                                .dst = {grads[i].data(), shape[1] * spatial},
                                                                .shape = {shape[0], shape[1], spatial}});
                  }
                  return grads;
                });
}

}  // namespace chex::ops

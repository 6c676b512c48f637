// cuDNN descriptor and shape code, run without a GPU: descriptor calls work on our machines, only
// handle creation and compute need a device.
#include <catch2/catch.hpp>

#include "chex/error.h"
#include "engine/src/cuda/cudnn_descriptors.h"
#include "kernels/conv2d.h"
#include "kernels/pooling.h"
#include "models/densenet_shapes.h"

using namespace chex;

TEST_CASE("cuDNN agrees with the CPU geometry on every DenseNet-121 convolution", "[cudnn]") {
  const auto shapes = models::densenet_layer_shapes(16);
  // stem + (6 + 12 + 24 + 16) distinct bottleneck 1x1 inputs + one 3x3 per block + 3 transitions,
  // pooled first, so that transition 1's (256 -> 128 at 28 px) is block 2's first bottleneck
  REQUIRE(shapes.convolutions.size() == 1 + 58 + 4 + 2);
  for (const auto& c : shapes.convolutions) {
    const Shape x{c.batch, c.in_channels, c.height, c.width};
    const Shape w{c.out_channels, c.in_channels, c.kernel, c.kernel};
    const Shape y = cuda::convolution_output_shape(x, contiguous_strides(x), w, c.padding, c.stride);
    const int64_t expected = (c.height + 2 * c.padding - c.kernel) / c.stride + 1;
    INFO("conv " << shape_str(x) << " * " << shape_str(w) << " stride " << c.stride << " pad " << c.padding);
    REQUIRE(y == Shape{c.batch, c.out_channels, expected, expected});
  }
}

TEST_CASE("cuDNN tensor descriptors take a channel slice of a dense-block buffer in place", "[cudnn]") {
  // Block 1 at batch 16: buffer [16, 256, 56, 56]; layer 3 reads the prefix of 128 channels.
  const Shape buffer{16, 256, 56, 56};
  const Shape strides = contiguous_strides(buffer);
  const Shape prefix{16, 128, 56, 56};
  const cuda::TensorDescriptor d(prefix, strides);
  Shape read_shape, read_strides;
  d.read(read_shape, read_strides);
  CHECK(read_shape == prefix);
  CHECK(read_strides == strides);  // batch stride of the whole buffer, not of the slice
  // The convolution over the strided prefix has the same output shape as over a packed copy.
  CHECK(cuda::convolution_output_shape(prefix, strides, {128, 128, 1, 1}, 0, 1) == Shape{16, 128, 56, 56});
}

TEST_CASE("cuDNN pooling shapes match the CPU's for DenseNet's pools", "[cudnn]") {
  const auto shapes = models::densenet_layer_shapes(16);
  const auto& stem = shapes.stem_pool_input;
  const Shape stem_out = cuda::pooling_output_shape({stem.batch, stem.channels, stem.height, stem.width},
                                                    cuda::PoolingDescriptor::Mode::max, 3, 2, 1);
  CHECK(stem_out == Shape{16, 64, 56, 56});
  CHECK(kernels::pool_output_size(stem.height, 3, 2, 1) == stem_out[2]);
  for (const auto& t : shapes.transition_pool_inputs) {
    const Shape out = cuda::pooling_output_shape({t.batch, t.channels, t.height, t.width},
                                                 cuda::PoolingDescriptor::Mode::average, 2, 2, 0);
    CHECK(out[2] == kernels::pool_output_size(t.height, 2, 2, 0));
    CHECK(out[2] == t.height / 2);
  }
}

TEST_CASE("bad descriptors fail with an error naming the cuDNN call", "[cudnn][errors]") {
  CHECK_THROWS_WITH(cuda::TensorDescriptor({2, 3, 4}, {12, 4, 1}), Catch::Contains("4-d NCHW"));
  // A stride that makes channels overlap the batch is rejected by cuDNN itself.
  CHECK_THROWS_WITH(cuda::TensorDescriptor({2, 3, 4, 4}, {0, 16, 4, 1}), Catch::Contains("cudnnSetTensor4dDescriptorEx"));
  CHECK_THROWS_WITH(cuda::FilterDescriptor({8, 3, 0, 3}), Catch::Contains("cudnnSetFilter4dDescriptor"));
  CHECK_THROWS_WITH(cuda::convolution_output_shape({1, 3, 8, 8}, contiguous_strides({1, 3, 8, 8}), {4, 5, 3, 3}, 1, 1),
                    Catch::Contains("cuDNN error"));
  CHECK_THROWS_WITH(cuda::TensorDescriptor({1ll << 32, 1, 1, 1}, {1, 1, 1, 1}), Catch::Contains("does not fit"));
}

TEST_CASE("bf16 descriptors hold bf16 data, their convolution tensor-core math with float accumulation",
          "[cudnn][bf16]") {
  const cuda::TensorDescriptor x({16, 128, 56, 56}, contiguous_strides({16, 128, 56, 56}), CUDNN_DATA_BFLOAT16);
  CHECK(x.data_type() == CUDNN_DATA_BFLOAT16);
  Shape shape, strides;
  x.read(shape, strides);
  CHECK(shape == Shape{16, 128, 56, 56});
  CHECK(cuda::TensorDescriptor({1, 2, 3, 4}, {24, 12, 4, 1}).data_type() == CUDNN_DATA_FLOAT);  // the default
  CHECK(cuda::FilterDescriptor({32, 128, 3, 3}, CUDNN_DATA_BFLOAT16).data_type() == CUDNN_DATA_BFLOAT16);
  CHECK(cuda::FilterDescriptor({32, 128, 3, 3}).data_type() == CUDNN_DATA_FLOAT);
  CHECK(cuda::ConvolutionDescriptor(1, 1, CUDNN_TENSOR_OP_MATH).math_type() == CUDNN_TENSOR_OP_MATH);
  CHECK(cuda::ConvolutionDescriptor(1, 1, false).math_type() == CUDNN_FMA_MATH);
  CHECK(cuda::ConvolutionDescriptor(1, 1, true).math_type() == CUDNN_DEFAULT_MATH);
}

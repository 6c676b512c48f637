#pragma once
// The differentiable operations. Image tensors are NCHW float32. Every op checks its arguments and
// throws chex::Error naming the op and the shapes it was given; every op records its backward when
// an input requires a gradient (see autograd.h).
#include <cstdint>

#include "chex/tensor.h"

namespace chex::distributed {
class Communicator;
}

namespace chex::ops {

// --- Convolution, normalisation, activation ----------------------------------------------------

struct Conv2dOptions {
  int64_t stride = 1;
  int64_t padding = 0;
};
// x [N, Cin, H, W], weight [Cout, Cin, kH, kW], bias [Cout] or undefined -> [N, Cout, Ho, Wo].
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(), Conv2dOptions options = {});

struct BatchNormOptions {
  bool training = true;
  float momentum = 0.1f;  // running = (1 - momentum) * running + momentum * batch statistic
  float eps = 1e-5f;
  bool fuse_relu = false; // apply ReLU to the result in the same pass
  // Training only. Sync batch norm: the batch moments, and the two sums of the backward, are summed
  // over `sync`'s ranks, so that each rank normalises with the statistics of the global batch
  // (chex/distributed.h). The per-channel statistics pass through the host (on a GPU, a wait per
  // BN forward and backward).
  distributed::Communicator* sync = nullptr;
  // Training only. Ghost batch norm: the batch is cut into `groups` equal slices, each normalised
  // with its own statistics (what `groups` ranks without sync do; the running statistics move with
  // the first slice's, as rank 0's would).
  int64_t groups = 1;
};
// x [N, C, H, W]; weight, bias, running_mean, running_var [C]. In training, normalises with the
// batch statistics and updates the running statistics in place (running_var from the unbiased
// batch variance, as PyTorch); in eval, normalises with the running statistics.
Tensor batch_norm2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                    const Tensor& running_var, BatchNormOptions options = {});

Tensor relu(const Tensor& x);
Tensor sigmoid(const Tensor& x);

// --- Pooling -----------------------------------------------------------------------------------

// Max pooling with implicit -inf padding (DenseNet's stem uses kernel 3, stride 2, padding 1).
Tensor max_pool2d(const Tensor& x, int64_t kernel, int64_t stride, int64_t padding = 0);
// Average pooling without padding (DenseNet's transitions use 2x2, stride 2).
Tensor avg_pool2d(const Tensor& x, int64_t kernel, int64_t stride);
// [N, C, H, W] -> [N, C]
Tensor global_avg_pool(const Tensor& x);

// --- Structure ---------------------------------------------------------------------------------

// Concatenation along the channel dimension (dim 1) of tensors that agree elsewhere.
Tensor cat_channels(const std::vector<Tensor>& xs);

// --- Dense layers and losses -------------------------------------------------------------------

// x [N, in], weight [out, in], bias [out] or undefined -> [N, out].
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

// Binary cross-entropy on logits, averaged over all N*C elements:
//   -mean( w+_c * y * log(sigmoid(x)) + w-_c * (1 - y) * log(1 - sigmoid(x)) )
// logits, targets [N, C]; pos_weight, neg_weight [C] or undefined (= 1). Targets get no gradient.
Tensor bce_with_logits(const Tensor& logits, const Tensor& targets, const Tensor& pos_weight = Tensor(),
                       const Tensor& neg_weight = Tensor());

// --- Elementwise and reductions ----------------------------------------------------------------

Tensor add(const Tensor& a, const Tensor& b);       // same shapes
Tensor sub(const Tensor& a, const Tensor& b);       // same shapes
Tensor mul(const Tensor& a, const Tensor& b);       // same shapes
Tensor scale(const Tensor& a, float factor);
// t += value in place, on t's device, not recorded by autograd: how a counter (BatchNorm2d's
// num_batches_tracked) moves without its value ever being read back to the host.
void add_scalar_(const Tensor& t, float value);
Tensor sum(const Tensor& a);                        // -> one element, shape []
Tensor mean(const Tensor& a);                       // -> one element, shape []

}  // namespace chex::ops

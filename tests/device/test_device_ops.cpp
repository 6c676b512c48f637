// Every op, forward and backward, on every available device against the CPU (see device_test.h).
// Small shapes, inputs from fixed seeds; batch-strided views (channel slices of a block buffer)
// wherever an op reads them in place.
#include "chex/determinism.h"
#include "device/device_test.h"

using namespace chex;
using testing::check_matches_cpu;
using testing::random_on;
using testing::weighted_sum;

namespace {

// Runs `loss` from `inputs` (which get requires_grad) and returns the forward value, then every
// input's gradient.
std::vector<Tensor> forward_and_grads(const std::vector<Tensor>& inputs,
                                      const std::function<Tensor(const std::vector<Tensor>&)>& f) {
  for (const Tensor& t : inputs) t.set_requires_grad();
  const Tensor y = f(inputs);
  weighted_sum(y).backward();
  std::vector<Tensor> results{y.detach()};
  for (const Tensor& t : inputs) results.push_back(t.grad());
  return results;
}

// A channel slice [n, c, h, w] of a wider buffer [n, c + 5, h, w]: batch-strided, not contiguous.
Tensor channel_slice(Device device, const Shape& shape, uint64_t seed) {
  const Tensor buffer = random_on(device, {shape[0], shape[1] + 5, shape[2], shape[3]}, seed);
  return buffer.narrow(1, 2, shape[1]);
}

}  // namespace

CHEX_DEVICE_TEST("conv2d forward and backward match the CPU", "[device][conv]") {
  struct Case {
    Shape x, w;
    int64_t stride, padding;
    bool bias;
  };
  for (const Case& c : {Case{{2, 3, 9, 9}, {4, 3, 3, 3}, 1, 1, true}, Case{{3, 8, 6, 6}, {5, 8, 1, 1}, 1, 0, false},
                        Case{{2, 3, 15, 15}, {6, 3, 7, 7}, 2, 3, true}, Case{{1, 4, 5, 5}, {2, 4, 3, 3}, 2, 0, true}}) {
    INFO("x " << shape_str(c.x) << " w " << shape_str(c.w) << " stride " << c.stride << " padding " << c.padding);
    check_matches_cpu(device, [&](Device d) {
      const Tensor x = random_on(d, c.x, 1), w = random_on(d, c.w, 2, 0.3f);
      const Tensor b = c.bias ? random_on(d, {c.w[0]}, 3) : Tensor();
      std::vector<Tensor> inputs{x, w};
      if (c.bias) inputs.push_back(b);
      return forward_and_grads(inputs, [&](const std::vector<Tensor>& in) {
        return ops::conv2d(in[0], in[1], c.bias ? in[2] : Tensor(), {.stride = c.stride, .padding = c.padding});
      });
    });
  }
}

CHEX_DEVICE_TEST("conv2d reads a channel slice of a block buffer in place", "[device][conv]") {
  check_matches_cpu(device, [&](Device d) {
    const Tensor x = channel_slice(d, {3, 6, 7, 7}, 4);
    REQUIRE_FALSE(x.is_contiguous());
    const Tensor w = random_on(d, {4, 6, 3, 3}, 5, 0.3f).set_requires_grad();
    const Tensor y = ops::conv2d(x, w, Tensor(), {.stride = 1, .padding = 1});
    weighted_sum(y).backward();
    return std::vector<Tensor>{y.detach(), w.grad()};
  });
}

// --deterministic off: on CUDA each pass's algorithm is timed once on the call's own buffers
// (cudnnFind*Ex, which writes the pass's output before the call does) and may add with atomics, so
// results move in the last bits but stay within the fp32 tolerance; the CPU ignores the setting.
CHEX_DEVICE_TEST("conv2d with timed, non-deterministic algorithm choice matches the CPU", "[device][conv]") {
  struct RestoreDeterminism {
    bool saved = deterministic();
    ~RestoreDeterminism() { set_deterministic(saved); }
  } restore;
  set_deterministic(false);
  for (const int64_t batch : {1, 4}) {
    INFO("batch " << batch);
    check_matches_cpu(device, [&](Device d) {
      const Tensor x = channel_slice(d, {batch, 6, 9, 9}, 11);
      const Tensor w = random_on(d, {5, 6, 3, 3}, 12, 0.3f).set_requires_grad();
      const Tensor b = random_on(d, {5}, 13).set_requires_grad();
      const Tensor y = ops::conv2d(x, w, b, {.stride = 2, .padding = 1});
      weighted_sum(y).backward();
      return std::vector<Tensor>{y.detach(), w.grad(), b.grad()};
    });
  }
}

CHEX_DEVICE_TEST("batch_norm2d in training updates the running statistics as on the CPU", "[device][batchnorm]") {
  for (const bool fuse_relu : {false, true}) {
    INFO("fuse_relu " << fuse_relu);
    check_matches_cpu(device, [&](Device d) {
      const Tensor x = channel_slice(d, {4, 3, 5, 5}, 6);
      const Tensor gamma = random_on(d, {3}, 7), beta = random_on(d, {3}, 8);
      const Tensor running_mean = Tensor::zeros({3}, d), running_var = Tensor::ones({3}, d);
      std::vector<Tensor> r = forward_and_grads({x, gamma, beta}, [&](const std::vector<Tensor>& in) {
        return ops::batch_norm2d(in[0], in[1], in[2], running_mean, running_var,
                                 {.training = true, .momentum = 0.1f, .eps = 1e-5f, .fuse_relu = fuse_relu});
      });
      r.push_back(running_mean);
      r.push_back(running_var);
      return r;
    }, {.rtol = 1e-4, .atol = 1e-4});
  }
}

CHEX_DEVICE_TEST("batch_norm2d in eval mode normalises with the running statistics", "[device][batchnorm]") {
  for (const bool fuse_relu : {false, true}) {
    INFO("fuse_relu " << fuse_relu);
    check_matches_cpu(device, [&](Device d) {
      const Tensor x = random_on(d, {2, 4, 3, 3}, 9);
      const Tensor gamma = random_on(d, {4}, 10), beta = random_on(d, {4}, 11);
      const Tensor running_mean = random_on(d, {4}, 12, 0.1f);
      const Tensor running_var = Tensor::full({4}, 0.7f, d);
      return forward_and_grads({x, gamma, beta}, [&](const std::vector<Tensor>& in) {
        return ops::batch_norm2d(in[0], in[1], in[2], running_mean, running_var,
                                 {.training = false, .momentum = 0.1f, .eps = 1e-5f, .fuse_relu = fuse_relu});
      });
    }, {.rtol = 1e-4, .atol = 1e-4});
  }
}

CHEX_DEVICE_TEST("relu and sigmoid match the CPU", "[device][elementwise]") {
  check_matches_cpu(device, [&](Device d) {
    return forward_and_grads({random_on(d, {3, 5, 7}, 13)},
                             [](const std::vector<Tensor>& in) { return ops::relu(in[0]); });
  });
  check_matches_cpu(device, [&](Device d) {
    return forward_and_grads({random_on(d, {1031}, 14, 3.f)},
                             [](const std::vector<Tensor>& in) { return ops::sigmoid(in[0]); });
  }, {.rtol = 1e-5, .atol = 1e-6});
}

CHEX_DEVICE_TEST("add, sub, mul, scale, sum and mean match the CPU", "[device][elementwise]") {
  check_matches_cpu(device, [&](Device d) {
    return forward_and_grads({random_on(d, {4, 33}, 15), random_on(d, {4, 33}, 16)}, [](const std::vector<Tensor>& in) {
      const Tensor a = ops::add(in[0], in[1]);
      const Tensor b = ops::sub(in[0], ops::scale(in[1], 2.5f));
      return ops::mul(a, b);
    });
  }, {.rtol = 1e-5, .atol = 1e-6});
  check_matches_cpu(device, [&](Device d) {
    const Tensor x = random_on(d, {5, 77}, 17).set_requires_grad();
    const Tensor s = ops::sum(x), m = ops::mean(x);
    ops::add(s, ops::scale(m, 3.f)).backward();
    return std::vector<Tensor>{s.detach(), m.detach(), x.grad()};
  }, {.rtol = 1e-5, .atol = 1e-5});
}

CHEX_DEVICE_TEST("max, average and global average pooling match the CPU", "[device][pooling]") {
  check_matches_cpu(device, [&](Device d) {
    return forward_and_grads({channel_slice(d, {2, 3, 9, 9}, 18)},
                             [](const std::vector<Tensor>& in) { return ops::max_pool2d(in[0], 3, 2, 1); });
  });
  check_matches_cpu(device, [&](Device d) {
    return forward_and_grads({channel_slice(d, {2, 3, 8, 8}, 19)},
                             [](const std::vector<Tensor>& in) { return ops::avg_pool2d(in[0], 2, 2); });
  });
  check_matches_cpu(device, [&](Device d) {
    return forward_and_grads({channel_slice(d, {3, 4, 7, 7}, 20)},
                             [](const std::vector<Tensor>& in) { return ops::global_avg_pool(in[0]); });
  });
}

CHEX_DEVICE_TEST("cat_channels and its backward match the CPU", "[device][concat]") {
  check_matches_cpu(device, [&](Device d) {
    return forward_and_grads({random_on(d, {2, 3, 4, 5}, 21), channel_slice(d, {2, 1, 4, 5}, 22),
                              random_on(d, {2, 6, 4, 5}, 23)},
                             [](const std::vector<Tensor>& in) { return ops::cat_channels(in); });
  });
}

CHEX_DEVICE_TEST("linear matches the CPU", "[device][linear]") {
  check_matches_cpu(device, [&](Device d) {
    return forward_and_grads({random_on(d, {5, 17}, 24), random_on(d, {14, 17}, 25, 0.3f), random_on(d, {14}, 26)},
                             [](const std::vector<Tensor>& in) { return ops::linear(in[0], in[1], in[2]); });
  });
}

CHEX_DEVICE_TEST("weighted bce_with_logits matches the CPU", "[device][loss]") {
  // 6 rows: one block on a GPU; 3,000 rows: 42 blocks and the mean of their partial sums, in the
  // workspace the op allocates.
  for (const int64_t rows : {int64_t{6}, int64_t{3000}}) {
    INFO(rows << " rows");
    check_matches_cpu(device, [&](Device d) {
      Generator gen(27);
      std::vector<float> labels(static_cast<size_t>(rows) * 14);
      for (float& l : labels) l = gen.uniform() < 0.3f ? 1.f : 0.f;
      const Tensor targets = Tensor::from_vector(labels, {rows, 14}, d);
      const Tensor logits = random_on(d, {rows, 14}, 28, 4.f).set_requires_grad();
      const Tensor pos = Tensor::uniform({14}, gen, 0.5f, 2.f).to(d), neg = Tensor::uniform({14}, gen, 0.5f, 2.f).to(d);
      const Tensor loss = ops::bce_with_logits(logits, targets, pos, neg);
      ops::scale(loss, 3.f).backward();
      return std::vector<Tensor>{loss.detach(), logits.grad()};
    }, {.rtol = 1e-5, .atol = 1e-6});
  }
}

CHEX_DEVICE_TEST("narrow, contiguous, copy_, fill_ and zeros match the CPU", "[device][tensor]") {
  check_matches_cpu(device, [&](Device d) {
    const Tensor buffer = random_on(d, {3, 6, 4, 5}, 29);
    const Tensor slice = buffer.narrow(1, 1, 3);                      // batch-strided
    const Tensor rows = buffer.narrow(2, 1, 2);                       // strided inside each image
    const Tensor packed = slice.contiguous(), packed_rows = rows.contiguous();
    Tensor target = Tensor::zeros({3, 6, 4, 5}, d);
    target.narrow(1, 3, 3).copy_(slice);                              // into a slice: one 2-D copy
    target.narrow(3, 0, 2).fill_(-1.5f);                              // strided fill
    const Tensor from_host = Tensor::zeros({3, 3, 4, 5}, d);
    from_host.copy_(slice.to(Device::cpu()));                         // host -> device
    return std::vector<Tensor>{packed, packed_rows, target, from_host};
  }, {.rtol = 0, .atol = 0});
}

CHEX_DEVICE_TEST("gradients flow through narrow and accumulate across uses", "[device][autograd]") {
  check_matches_cpu(device, [&](Device d) {
    const Tensor x = random_on(d, {2, 5, 3, 3}, 30).set_requires_grad();
    const Tensor y = ops::add(ops::relu(x.narrow(1, 0, 3)), ops::sigmoid(x.narrow(1, 2, 3)));
    weighted_sum(y).backward();
    weighted_sum(x, 31).backward();  // a second backward accumulates into x.grad
    return std::vector<Tensor>{y.detach(), x.grad()};
  }, {.rtol = 1e-5, .atol = 1e-6});
}

// Global average pooling (kernels/global_pool.cu), DenseNet's fused final BN + ReLU + global pool
// (kernels/batchnorm.cu) and sigmoid + weighted BCE (kernels/bce.cu), emulated against their CPU
// twins under the forward, reverse and random schedules (which must agree bit for bit).
//
// Tolerances, as max |a - b| / max(|b|, 1): the pooled means and the loss are summed in double on
// both sides, so they differ by the final rounding only (1e-6); the pool backward is the same float
// division on both sides (exact). The fused kernels match the composition of the twins (BN + ReLU,
// then pool) to 1e-6 for means, statistics and parameter gradients and 1e-5 for dx, as the BN tests.
// BCE gradients are compared after scaling by N*C / grad_output (so that they are O(1)), to 1e-6.
#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "kernel_test_support.h"
#include "kernels/batchnorm.h"
#include "kernels/bce.h"
#include "kernels/pooling.h"
#include "support/densenet_shapes.h"

using namespace chex;

namespace {

constexpr float kSentinel = -7.f;
constexpr float kMomentum = 0.1f, kEps = 1e-5f;

// [batch, channels, spatial] planes, batch-strided inside a buffer: `offset` floats before image 0
// and `pad` after each image.
struct Case {
  int64_t batch, channels, spatial;
  int64_t offset = 0, pad = 0;
  int64_t stride() const { return channels * spatial + pad; }
  int64_t buffer() const { return offset + batch * stride(); }
  int64_t planes() const { return batch * channels; }
  std::string name() const {
    std::ostringstream out;
    out << "[" << batch << ", " << channels << ", " << spatial << "] offset " << offset << " pad " << pad;
    return out.str();
  }
};

std::vector<float> random_values(int64_t n, Generator& gen, float scale = 1.f, float shift = 0.f) {
  std::vector<float> v = testing::random_vector(n, gen, scale);
  for (float& x : v) x += shift;
  return v;
}

}  // namespace

TEST_CASE("global average pool kernels match the CPU twin", "[emu][pool]") {
  Generator gen(31);
  const testing::MapShape norm5 = testing::densenet121_shapes(2).global_pool_input;
  // DenseNet-121's pool ([2, 1024, 7, 7]); one value; planes of 2 and 3 (float4 groups of the
  // backward straddle planes); aligned and misaligned float4 candidates; a padded batch stride.
  const std::vector<Case> cases{{norm5.batch, norm5.channels, norm5.height * norm5.width},
                                {1, 1, 1},
                                {1, 1, 2},
                                {2, 9, 3},
                                {3, 5, 196},
                                {3, 5, 196, 1, 0},
                                {2, 3, 1000, 0, 3},
                                {2, 3, 64, 4, 4},
                                {1, 2, 4099, 0, 0}};
  for (const Case& k : cases) {
    DYNAMIC_SECTION(k.name()) {
      const std::vector<float> x = random_values(k.buffer(), gen, 1.f, 0.5f), dy = random_values(k.planes(), gen);
      std::vector<float> y_ref(k.planes()), dx_ref(k.planes() * k.spatial);
      kernels::cpu::global_avg_pool_forward({}, x.data() + k.offset, k.stride(), y_ref.data(), k.batch, k.channels,
                                            k.spatial);
      kernels::cpu::global_avg_pool_backward({}, dy.data(), dx_ref.data(), k.batch, k.channels, k.spatial);
      testing::check_outputs_against_twin(
          "global average pool " + k.name(),
          [&] {
            std::vector<float> y(k.planes(), kSentinel), dx(k.planes() * k.spatial + 1, kSentinel);
            kernels::emu::global_avg_pool_forward({}, x.data() + k.offset, k.stride(), y.data(), k.batch, k.channels,
                                                  k.spatial);
            // dx at an odd offset as well, when the case has one: the scalar path.
            float* dx_at = dx.data() + (k.offset % 2);
            kernels::emu::global_avg_pool_backward({}, dy.data(), dx_at, k.batch, k.channels, k.spatial);
            return std::vector<std::vector<float>>{y, std::vector<float>(dx_at, dx_at + k.planes() * k.spatial)};
          },
          {{"y", y_ref, 1e-6}, {"dx", dx_ref, 0.0}});
    }
  }
}

namespace {

// Fused BN + ReLU + global pool, in training or inference, forward and backward, against the twins
// composed: batch_norm_forward_*(relu) + global_avg_pool_forward, and global_avg_pool_backward +
// batch_norm_backward(relu).
void check_fused_pool(const Case& k, bool training, Generator& gen) {
  const int64_t C = k.channels, HW = k.spatial;
  const std::vector<float> x = random_values(k.buffer(), gen, 2.f, -0.5f);
  const std::vector<float> dpool = random_values(k.planes(), gen);
  std::vector<float> gamma, beta, running_mean, running_var;
  for (int64_t c = 0; c < C; ++c) {
    gamma.push_back(1.f + 0.3f * gen.normal());
    beta.push_back(0.5f * gen.normal());
    running_mean.push_back(0.5f * gen.normal() - 0.5f);
    running_var.push_back(2.f + gen.uniform());
  }

  // The twins, composed.
  std::vector<float> act(k.batch * C * HW), y_ref(k.planes()), mean_ref(C), invstd_ref(C);
  std::vector<float> rm_ref = running_mean, rv_ref = running_var;
  std::vector<float> rm_fixed = running_mean, rv_fixed = running_var;
  const kernels::BatchNormForwardArgs bn{.shape = {k.batch, C, HW},
                                         .x = {x.data() + k.offset, k.stride()},
                                         .y = {act.data(), C * HW},
                                         .gamma = gamma.data(),
                                         .beta = beta.data(),
                                         .running_mean = training ? rm_ref.data() : rm_fixed.data(),
                                         .running_var = training ? rv_ref.data() : rv_fixed.data(),
                                         .momentum = kMomentum,
                                         .eps = kEps,
                                         .save_mean = mean_ref.data(),
                                         .save_invstd = invstd_ref.data(),
                                         .fuse_relu = true};
  if (training)
    kernels::cpu::batch_norm_forward_training({}, bn);
  else
    kernels::cpu::batch_norm_forward_inference({}, bn);
  kernels::cpu::global_avg_pool_forward({}, act.data(), C * HW, y_ref.data(), k.batch, C, HW);
  std::vector<float> dact(k.batch * C * HW), dx_ref(k.buffer(), kSentinel), dgamma_ref(C), dbeta_ref(C);
  kernels::cpu::global_avg_pool_backward({}, dpool.data(), dact.data(), k.batch, C, HW);
  kernels::cpu::batch_norm_backward({}, {.shape = {k.batch, C, HW},
                                         .x = {x.data() + k.offset, k.stride()},
                                         .dy = {dact.data(), C * HW},
                                         .dx = {dx_ref.data() + k.offset, k.stride()},
                                         .mean = mean_ref.data(),
                                         .invstd = invstd_ref.data(),
                                         .gamma = gamma.data(),
                                         .beta = beta.data(),
                                         .batch_statistics = training,
                                         .fuse_relu = true,
                                         .dgamma = dgamma_ref.data(),
                                         .dbeta = dbeta_ref.data()});

  testing::check_outputs_against_twin(
      std::string("fused BN + ReLU + global pool ") + (training ? "(training) " : "(inference) ") + k.name(),
      [&] {
        std::vector<float> y(k.planes(), kSentinel), mean(C), invstd(C), rm = running_mean, rv = running_var;
        std::vector<float> ws(kernels::emu::batch_norm_workspace_bytes({}, {k.batch, C, HW}) / sizeof(float) + 2);
        if (training)
          kernels::emu::batch_norm_relu_global_avg_pool_forward_training(
              x.data() + k.offset, k.stride(), y.data(), k.batch, C, HW, gamma.data(), beta.data(), kMomentum, kEps,
              rm.data(), rv.data(), mean.data(), invstd.data(), ws.data(), nullptr);
        else
          kernels::emu::batch_norm_relu_global_avg_pool_forward_inference(
              x.data() + k.offset, k.stride(), y.data(), k.batch, C, HW, gamma.data(), beta.data(),
              running_mean.data(), running_var.data(), kEps, mean.data(), invstd.data(), nullptr);
        std::vector<float> dx(k.buffer(), kSentinel), dgamma(C), dbeta(C);
        kernels::emu::batch_norm_relu_global_avg_pool_backward(
            x.data() + k.offset, k.stride(), dpool.data(), dx.data() + k.offset, k.stride(), k.batch, C, HW,
            mean.data(), invstd.data(), gamma.data(), beta.data(), training, dgamma.data(), dbeta.data(), ws.data(),
            nullptr);
        return std::vector<std::vector<float>>{y, mean, invstd, rm, rv, dx, dgamma, dbeta};
      },
      {{"y", y_ref, 1e-6},
       {"save_mean", mean_ref, 1e-6},
       {"save_invstd", invstd_ref, 1e-6},
       {"running_mean", rm_ref, 1e-6},
       {"running_var", rv_ref, 1e-6},
       {"dx", dx_ref, 1e-5},
       {"dgamma", dgamma_ref, 1e-6},
       {"dbeta", dbeta_ref, 1e-6}});
}

}  // namespace

TEST_CASE("fused BN + ReLU + global pool kernels match the CPU twins composed", "[emu][pool][batchnorm]") {
  Generator gen(32);
  const testing::MapShape norm5 = testing::densenet121_shapes(2).global_pool_input;
  const testing::MapShape norm5_256px = testing::densenet121_shapes(2, 256).global_pool_input;  // 8x8: float4
  const std::vector<Case> cases{{norm5.batch, norm5.channels, norm5.height * norm5.width},
                                {norm5_256px.batch, norm5_256px.channels, norm5_256px.height * norm5_256px.width},
                                {2, 3, 1},
                                {1, 2, 2},
                                {3, 5, 49, 1, 2},
                                {2, 3, 196, 4, 4},
                                {2, 3, 196, 0, 1},
                                {4, 2, 4099, 2, 0}};
  for (const Case& k : cases)
    for (bool training : {true, false})
      DYNAMIC_SECTION(k.name() << (training ? " training" : " inference")) { check_fused_pool(k, training, gen); }
}

TEST_CASE("sigmoid + weighted BCE kernel matches the CPU twin", "[emu][bce]") {
  Generator gen(33);
  struct BceCase {
    int64_t batch, classes;
    bool weighted;
    float logit_scale, grad_output;
  };
  // CheXNet's [16, 14]; one value; no weights; more values than the block's threads; logits far
  // beyond where a naive log(sigmoid) overflows; a grad_output other than 1.
  const std::vector<BceCase> cases{{16, 14, true, 2.f, 1.f},  {1, 1, true, 1.f, 1.f},    {3, 14, false, 1.f, 1.f},
                                   {37, 14, true, 3.f, 0.5f}, {4, 5, true, 100.f, 2.f}, {1, 300, false, 1.f, -1.f}};
  for (const BceCase& k : cases) {
    DYNAMIC_SECTION("[" << k.batch << ", " << k.classes << "] weighted " << k.weighted << " logit scale "
                        << k.logit_scale << " grad_output " << k.grad_output) {
      const int64_t n = k.batch * k.classes;
      const std::vector<float> logits = testing::random_vector(n, gen, k.logit_scale);
      std::vector<float> targets(n), pos_weight, neg_weight;
      for (float& t : targets) t = gen.uniform() < 0.3f ? 1.f : 0.f;
      for (int64_t c = 0; c < k.classes; ++c) {
        pos_weight.push_back(0.5f + 2.f * gen.uniform());
        neg_weight.push_back(0.5f + gen.uniform());
      }
      const float* pw = k.weighted ? pos_weight.data() : nullptr;
      const float* nw = k.weighted ? neg_weight.data() : nullptr;
      const auto loss_ref = static_cast<float>(
          kernels::cpu::bce_with_logits_forward(logits.data(), targets.data(), pw, nw, k.batch, k.classes));
      std::vector<float> dlogits_ref(n);
      kernels::cpu::bce_with_logits_backward(logits.data(), targets.data(), pw, nw, k.batch, k.classes, k.grad_output,
                                             dlogits_ref.data());
      // Gradients are O(1 / (N*C)): compare them scaled to O(1).
      const float unscale = static_cast<float>(n) / k.grad_output;
      auto scaled = [&](std::vector<float> g) {
        for (float& v : g) v *= unscale;
        return g;
      };
      REQUIRE(std::isfinite(loss_ref));
      testing::check_outputs_against_twin(
          "bce",
          [&] {
            std::vector<float> loss(1, kSentinel), dlogits(n, kSentinel);
            kernels::emu::bce_with_logits({}, {k.batch, k.classes, logits.data(), targets.data(), pw, nw,
                                                loss.data(), &k.grad_output, dlogits.data()});
            // Forward only and backward only give the same values.
            std::vector<float> loss_only(1, kSentinel), dlogits_only(n, kSentinel);
            kernels::emu::bce_with_logits({}, {k.batch, k.classes, logits.data(), targets.data(), pw, nw,
                                                loss_only.data(), &k.grad_output, nullptr});
            kernels::emu::bce_with_logits({}, {k.batch, k.classes, logits.data(), targets.data(), pw, nw, nullptr,
                                                &k.grad_output, dlogits_only.data()});
            const bool same_loss = loss_only == loss, same_dlogits = dlogits_only == dlogits;
            CHECK(same_loss);
            CHECK(same_dlogits);
            return std::vector<std::vector<float>>{loss, scaled(dlogits)};
          },
          {{"loss", {loss_ref}, 1e-6}, {"dlogits", scaled(dlogits_ref), 1e-6}});
    }
  }
}

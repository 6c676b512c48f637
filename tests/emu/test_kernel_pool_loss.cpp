// Global average pooling (kernels/global_pool.cu) and sigmoid + weighted BCE (kernels/bce.cu),
// emulated against their CPU twins under the forward, reverse and random schedules (which must agree
// bit for bit).
//
// Tolerances, as max |a - b| / max(|b|, 1): the pooled means and the loss are summed in double on
// both sides, so they differ by the final rounding only (1e-6); the pool backward is the same float
// division on both sides (exact).
// BCE gradients are compared after scaling by N*C / grad_output (so that they are O(1)), to 1e-6.
#include <cmath>
#include <string>
#include <vector>

#include "bce_test_support.h"
#include "kernel_test_support.h"
#include "kernels/bce.h"
#include "kernels/pooling.h"
#include "models/densenet_shapes.h"

using namespace chex;

namespace {

constexpr float kSentinel = -7.f;

using Case = testing::StridedCase;

std::vector<float> random_values(int64_t n, Generator& gen, float scale = 1.f, float shift = 0.f) {
  std::vector<float> v = testing::random_vector(n, gen, scale);
  for (float& x : v) x += shift;
  return v;
}

}  // namespace

TEST_CASE("global average pool kernels match the CPU twin", "[emu][pool]") {
  Generator gen(31);
  const models::MapShape norm5 = models::densenet_layer_shapes(2).global_pool_input;
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

TEST_CASE("sigmoid + weighted BCE kernel matches the CPU twin", "[emu][bce]") {
  Generator gen(33);
  using testing::BceCase;
  // CheXNet's [16, 14]; one value; no weights; more values than the block's threads; logits far
  // beyond where a naive log(sigmoid) overflows; a grad_output other than 1. Then the many-block
  // launch (1,024 values a block): the most that one block takes (73 x 14 = 1,022), one row more
  // (two blocks, the second nearly empty), a batch of 5,000 (69 blocks, a partial last one), a
  // class count whose stride through the grid wraps unevenly (7 x 3,001), and beyond the grid's
  // 2,048 blocks (150,001 x 14: the grid-stride loop takes a second turn).
  const std::vector<BceCase> cases{{16, 14, true, 2.f, 1.f},   {1, 1, true, 1.f, 1.f},    {3, 14, false, 1.f, 1.f},
                                   {37, 14, true, 3.f, 0.5f},  {4, 5, true, 100.f, 2.f}, {1, 300, false, 1.f, -1.f},
                                   {73, 14, true, 2.f, 1.f},   {74, 14, true, 2.f, 1.f}, {5000, 14, true, 3.f, 0.25f},
                                   {3001, 7, false, 1.f, 1.f}, {150001, 14, true, 1.f, 1.f}};
  for (const BceCase& k : cases) {
    DYNAMIC_SECTION("[" << k.batch << ", " << k.classes << "] weighted " << k.weighted << " logit scale "
                        << k.logit_scale << " grad_output " << k.grad_output) {
      const int64_t n = k.batch * k.classes;
      const std::vector<float> logits = testing::random_vector(n, gen, k.logit_scale);
      const testing::BceLabels labels = testing::bce_labels(k, gen);
      const std::vector<float>& targets = labels.targets;
      const float* pw = labels.pos();
      const float* nw = labels.neg();
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
      // Partial sums for batches beyond one block (1,024 values); none for one block.
      const size_t workspace_bytes = kernels::emu::bce_with_logits_workspace_bytes({}, k.batch, k.classes);
      CHECK((workspace_bytes > 0) == (n > 1024));
      testing::check_outputs_against_twin(
          "bce",
          [&] {
            // The partial sums' workspace, poisoned: every partial the mean adds must be written first.
            std::vector<double> workspace(workspace_bytes / sizeof(double) + 1, std::nan(""));
            std::vector<float> loss(1, kSentinel), dlogits(n, kSentinel);
            kernels::emu::bce_with_logits({}, {k.batch, k.classes, logits.data(), targets.data(), pw, nw,
                                                loss.data(), &k.grad_output, dlogits.data(), workspace.data()});
            // Forward only and backward only give the same values.
            std::vector<float> loss_only(1, kSentinel), dlogits_only(n, kSentinel);
            kernels::emu::bce_with_logits({}, {k.batch, k.classes, logits.data(), targets.data(), pw, nw,
                                                loss_only.data(), &k.grad_output, nullptr, workspace.data()});
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

TEST_CASE("BCE kernel asks for its workspace when the loss needs partial sums", "[emu][bce]") {
  const std::vector<float> logits(2000, 0.5f), targets(2000, 1.f);
  float loss = kSentinel;
  std::vector<float> dlogits(2000, kSentinel);
  // [200, 10]: two blocks. The gradient alone needs no workspace; the loss without one is an error.
  kernels::emu::bce_with_logits({}, {200, 10, logits.data(), targets.data(), nullptr, nullptr, nullptr, nullptr,
                                     dlogits.data(), nullptr});
  CHECK(dlogits[1999] != kSentinel);
  CHECK_THROWS_WITH(kernels::emu::bce_with_logits({}, {200, 10, logits.data(), targets.data(), nullptr, nullptr,
                                                       &loss, nullptr, nullptr, nullptr}),
                    Catch::Contains("needs a workspace"));
  CHECK(loss == kSentinel);
}

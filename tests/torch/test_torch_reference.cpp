// chex's ops against PyTorch: the references are generated at test time by
// tests/reference/make_torch_references.py (Debian's python3-torch) into the build tree.
#include <catch2/catch.hpp>

#include <filesystem>
#include <map>

#include "chex/autograd.h"
#include "chex/io/safetensors.h"
#include "chex/ops.h"
#include "support/gradcheck.h"

using namespace chex;

namespace {

struct Case {
  std::map<std::string, Tensor> t;
  std::map<std::string, std::string> meta;

  const Tensor& operator[](const std::string& name) const {
    auto it = t.find(name);
    REQUIRE(it != t.end());
    return it->second;
  }
  bool has(const std::string& name) const { return t.count(name) != 0; }
  int64_t integer(const std::string& key) const { return std::stoll(meta.at(key)); }
  // A fresh leaf copy of an input, requiring gradients.
  Tensor leaf(const std::string& name) const {
    Tensor c = (*this)[name].clone();
    c.set_requires_grad();
    return c;
  }
};

Case load(const std::string& file) {
  const std::string path = std::string(CHEX_TORCH_REF_DIR) + "/" + file;
  INFO("reference file " << path << " (made by tests/reference/make_torch_references.py)");
  REQUIRE(std::filesystem::exists(path));
  io::SafetensorsFile f = io::load_safetensors(path);
  Case c;
  for (auto& [name, tensor] : f.tensors) c.t[name] = tensor;
  c.meta = f.metadata;
  return c;
}

// Per-tensor check: max |ours - ref| / max(|ref|, 1) within `tolerance`.
void check_close(const std::string& what, const Tensor& ours, const Tensor& ref, double tolerance) {
  INFO(what << ": ours " << ours.str() << ", PyTorch " << ref.str());
  REQUIRE(ours.shape() == ref.shape());
  const double error = testing::max_scaled_error(ours.to_vector(), ref.to_vector());
  INFO(what << ": max scaled error " << error << " (tolerance " << tolerance << ")");
  CHECK(error <= tolerance);
}

constexpr double kForwardTolerance = 1e-5;
constexpr double kGradTolerance = 1e-4;  // gradients sum over more terms in a different order

}  // namespace

TEST_CASE("conv2d matches PyTorch: output and all gradients", "[torch][conv]") {
  for (int i = 0; i < 4; ++i) {
    const Case c = load("conv2d_" + std::to_string(i) + ".safetensors");
    DYNAMIC_SECTION("case " << i) {
      Tensor x = c.leaf("x"), w = c.leaf("weight");
      Tensor b = c.has("bias") ? c.leaf("bias") : Tensor();
      Tensor y = ops::conv2d(x, w, b, {.stride = c.integer("stride"), .padding = c.integer("padding")});
      y.backward(c["gy"]);
      check_close("y", y, c["y"], kForwardTolerance);
      check_close("grad x", x.grad(), c["gx"], kGradTolerance);
      check_close("grad weight", w.grad(), c["gweight"], kGradTolerance);
      if (b.defined()) check_close("grad bias", b.grad(), c["gbias"], kGradTolerance);
    }
  }
}

TEST_CASE("batch norm matches PyTorch in training and eval, with running statistics", "[torch][batchnorm]") {
  for (int i = 0; i < 3; ++i) {
    const Case c = load("batchnorm_" + std::to_string(i) + ".safetensors");
    DYNAMIC_SECTION("case " << i << (c.integer("training") ? " training" : " eval") << (c.integer("relu") ? " + relu" : "")) {
      Tensor x = c.leaf("x"), w = c.leaf("weight"), b = c.leaf("bias");
      Tensor running_mean = c["running_mean"].clone(), running_var = c["running_var"].clone();
      ops::BatchNormOptions options;
      options.training = c.integer("training") != 0;
      options.fuse_relu = c.integer("relu") != 0;
      Tensor y = ops::batch_norm2d(x, w, b, running_mean, running_var, options);
      y.backward(c["gy"]);
      check_close("y", y, c["y"], kForwardTolerance);
      check_close("grad x", x.grad(), c["gx"], kGradTolerance);
      check_close("grad weight", w.grad(), c["gweight"], kGradTolerance);
      check_close("grad bias", b.grad(), c["gbias"], kGradTolerance);
      check_close("running_mean after", running_mean, c["running_mean_after"], kForwardTolerance);
      check_close("running_var after", running_var, c["running_var_after"], kForwardTolerance);
    }
  }
}

TEST_CASE("weighted and plain BCE with logits match PyTorch", "[torch][loss]") {
  for (int i = 0; i < 2; ++i) {
    const Case c = load("bce_" + std::to_string(i) + ".safetensors");
    DYNAMIC_SECTION((c.integer("weighted") ? "weighted" : "plain")) {
      Tensor logits = c.leaf("logits");
      Tensor loss = c.integer("weighted") ? ops::bce_with_logits(logits, c["targets"], c["pos_weight"], c["neg_weight"])
                                          : ops::bce_with_logits(logits, c["targets"]);
      loss.backward();
      check_close("loss", loss.reshape({1}), c["loss"], kForwardTolerance);
      check_close("grad logits", logits.grad(), c["glogits"], kGradTolerance);
    }
  }
}

TEST_CASE("pooling and linear match PyTorch", "[torch][pool][linear]") {
  SECTION("max pool 3x3 / 2, padding 1") {
    const Case c = load("max_pool2d.safetensors");
    Tensor x = c.leaf("x");
    Tensor y = ops::max_pool2d(x, c.integer("kernel"), c.integer("stride"), c.integer("padding"));
    y.backward(c["gy"]);
    check_close("y", y, c["y"], kForwardTolerance);
    check_close("grad x", x.grad(), c["gx"], kForwardTolerance);
  }
  SECTION("average pool 2x2 / 2") {
    const Case c = load("avg_pool2d.safetensors");
    Tensor x = c.leaf("x");
    Tensor y = ops::avg_pool2d(x, c.integer("kernel"), c.integer("stride"));
    y.backward(c["gy"]);
    check_close("y", y, c["y"], kForwardTolerance);
    check_close("grad x", x.grad(), c["gx"], kForwardTolerance);
  }
  SECTION("linear") {
    const Case c = load("linear.safetensors");
    Tensor x = c.leaf("x"), w = c.leaf("weight"), b = c.leaf("bias");
    Tensor y = ops::linear(x, w, b);
    y.backward(c["gy"]);
    check_close("y", y, c["y"], kForwardTolerance);
    check_close("grad x", x.grad(), c["gx"], kGradTolerance);
    check_close("grad weight", w.grad(), c["gweight"], kGradTolerance);
    check_close("grad bias", b.grad(), c["gbias"], kGradTolerance);
  }
}

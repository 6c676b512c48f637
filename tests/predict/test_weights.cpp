// models::load_weights / save_weights on a small module tree named like torchvision's DenseNet.
#include <catch2/catch.hpp>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "chex/dtype.h"
#include "chex/error.h"
#include "chex/io/safetensors.h"
#include "chex/nn/layers.h"
#include "chex/random.h"
#include "models/densenet.h"
#include "models/weights.h"

using namespace chex;
namespace fs = std::filesystem;

namespace {

// features.{conv0, norm0, denseblock1.denselayer1.{norm1, relu1, conv1, norm2, relu2, conv2}}, classifier.
class TinyDenseNet : public nn::Module {
 public:
  explicit TinyDenseNet(int64_t classes, Generator& gen) {
    auto features = register_module("features", std::make_shared<nn::Sequential>());
    features->add("conv0", std::make_shared<nn::Conv2d>(3, 4, 3, 1, 1, false, gen));
    features->add("norm0", std::make_shared<nn::BatchNorm2d>(4));
    auto layer = std::make_shared<nn::Sequential>();
    layer->add("norm1", std::make_shared<nn::BatchNorm2d>(4));
    layer->add("relu1", std::make_shared<nn::ReLU>());
    layer->add("conv1", std::make_shared<nn::Conv2d>(4, 6, 1, 1, 0, false, gen));
    layer->add("norm2", std::make_shared<nn::BatchNorm2d>(6));
    layer->add("relu2", std::make_shared<nn::ReLU>());
    layer->add("conv2", std::make_shared<nn::Conv2d>(6, 2, 3, 1, 1, false, gen));
    auto block = features->add("denseblock1", std::make_shared<nn::Sequential>());
    block->add("denselayer1", layer);
    register_module("classifier", std::make_shared<nn::Linear>(4, classes, true, gen));
  }
};

struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& name) : path(fs::temp_directory_path() / name) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

// Random values in every tensor (so that a tensor loaded from the wrong name would show).
nn::NamedTensors randomised_state(const nn::Module& model, uint64_t seed) {
  Generator gen(seed);
  nn::NamedTensors out;
  for (const auto& [name, t] : model.state_dict()) out.emplace_back(name, Tensor::randn(t.shape(), gen));
  return out;
}

std::map<std::string, std::vector<float>> values_of(const nn::Module& model) {
  std::map<std::string, std::vector<float>> out;
  for (const auto& [name, t] : model.state_dict()) out[name] = t.to_vector();
  return out;
}

// A safetensors file with tensors in a chosen dtype, written by hand (the engine writes F32 only).
void write_typed(const std::string& path, const nn::NamedTensors& tensors, const std::string& dtype) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  std::string data;
  for (const auto& [name, t] : tensors) {
    const std::vector<float> v = t.to_vector();
    const size_t begin = data.size();
    for (float x : v) {
      if (dtype == "F16" || dtype == "BF16") {
        const uint16_t h = dtype == "F16" ? float_to_half(x) : float_to_bfloat16(x);
        data.append(reinterpret_cast<const char*>(&h), 2);
      } else {
        data.append(reinterpret_cast<const char*>(&x), 4);
      }
    }
    header[name] = {{"dtype", dtype}, {"shape", t.shape()}, {"data_offsets", {begin, data.size()}}};
  }
  const std::string text = header.dump();
  const uint64_t length = text.size();
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(&length), 8);
  out << text << data;
}

}  // namespace

TEST_CASE("weights: save then load restores every parameter and buffer", "[weights]") {
  TempDir dir("chex_test_weights_roundtrip");
  Generator g1(1), g2(2);
  TinyDenseNet a(14, g1), b(14, g2);
  a.load_state_dict(randomised_state(a, 7));
  models::save_weights(a, dir.file("a.safetensors"));
  REQUIRE(values_of(a) != values_of(b));
  const models::WeightLoadReport report = models::load_weights(b, dir.file("a.safetensors"));
  CHECK(values_of(a) == values_of(b));
  CHECK(report.loaded == a.state_dict().size());
  CHECK(report.renamed.empty());
  CHECK_FALSE(report.classifier_reinitialised);
  CHECK_THAT(report.summary(), Catch::Contains("loaded " + std::to_string(report.loaded) + " tensors"));
}

TEST_CASE("weights: 'module.' prefixes and legacy 'norm.1' names are mapped to torchvision's", "[weights]") {
  CHECK(models::canonical_weight_name("module.features.conv0.weight") == "features.conv0.weight");
  CHECK(models::canonical_weight_name("module.module.classifier.bias") == "classifier.bias");
  CHECK(models::canonical_weight_name("features.denseblock3.denselayer12.norm.1.running_var") ==
        "features.denseblock3.denselayer12.norm1.running_var");
  CHECK(models::canonical_weight_name("module.features.denseblock1.denselayer1.conv.2.weight") ==
        "features.denseblock1.denselayer1.conv2.weight");
  // Only dense layers' numbered submodules are legacy names; others stay as they are.
  CHECK(models::canonical_weight_name("features.transition1.norm.weight") == "features.transition1.norm.weight");
  CHECK(models::canonical_weight_name("features.norm5.weight") == "features.norm5.weight");
  CHECK(models::canonical_weight_name("classifier.0.weight") == "classifier.0.weight");

  TempDir dir("chex_test_weights_legacy");
  Generator gen(3);
  TinyDenseNet source(14, gen), target(14, gen);
  nn::NamedTensors legacy;
  for (const auto& [name, t] : randomised_state(source, 9)) {
    std::string old = "module." + name;
    for (const char* part : {"norm1", "conv1", "norm2", "conv2"}) {
      const std::string p = std::string(".") + part + ".", q = std::string(".") + std::string(part, 4) + "." + part[4] + ".";
      if (const size_t at = old.find(p); at != std::string::npos) old.replace(at, p.size(), q);
    }
    legacy.emplace_back(old, t);
  }
  io::save_safetensors(dir.file("legacy.safetensors"), legacy);
  const models::WeightLoadReport report = models::load_weights(target, dir.file("legacy.safetensors"));
  source.load_state_dict(randomised_state(source, 9));
  CHECK(values_of(target) == values_of(source));
  CHECK(report.renamed.size() == legacy.size());
  CHECK_THAT(report.summary(), Catch::Contains("renamed"));
}

TEST_CASE("weights: every missing, unexpected or misshapen tensor is named in one error and nothing loads",
          "[weights][errors]") {
  TempDir dir("chex_test_weights_strict");
  Generator gen(4);
  TinyDenseNet model(14, gen);
  nn::NamedTensors state = randomised_state(model, 11);
  state.erase(state.begin());  // features.conv0.weight missing
  state.emplace_back("features.extra.weight", Tensor::ones({2}));  // unexpected
  for (auto& [name, t] : state)
    if (name == "features.norm0.bias") t = Tensor::ones({5});  // wrong shape
  const std::string path = dir.file("bad.safetensors");
  io::save_safetensors(path, state);
  const auto before = values_of(model);
  try {
    models::load_weights(model, path);
    FAIL("load_weights accepted a file that does not fit");
  } catch (const Error& e) {
    const std::string message = e.what();
    CHECK_THAT(message, Catch::Contains(path));
    CHECK_THAT(message, Catch::Contains("missing: features.conv0.weight"));
    CHECK_THAT(message, Catch::Contains("unexpected: features.extra.weight"));
    CHECK_THAT(message, Catch::Contains("wrong shape: features.norm0.bias"));
    CHECK_THAT(message, Catch::Contains("3 problems"));
  }
  CHECK(values_of(model) == before);

  // Non-strict: the fitting tensors load, the rest is reported (a wrong shape still fails).
  for (auto& [name, t] : state)
    if (name == "features.norm0.bias") t = Tensor::ones({4});
  io::save_safetensors(path, state);
  const models::WeightLoadReport report = models::load_weights(model, path, {.strict = false});
  CHECK(report.missing == std::vector<std::string>{"features.conv0.weight"});
  CHECK(report.unexpected == std::vector<std::string>{"features.extra.weight"});
  CHECK(report.loaded == model.state_dict().size() - 1);
}

TEST_CASE("weights: a file of another architecture gets a hint, not only a list", "[weights][errors]") {
  TempDir dir("chex_test_weights_foreign");
  Generator gen(5);
  TinyDenseNet model(14, gen);
  io::save_safetensors(dir.file("foreign.safetensors"), {{"densenet121.features.conv0.weight", Tensor::ones({4, 3, 3, 3})}});
  CHECK_THROWS_WITH(models::load_weights(model, dir.file("foreign.safetensors")),
                    Catch::Contains("None of the file's names match") && Catch::Contains("convert_checkpoint.py"));
  CHECK_THROWS_WITH(models::load_weights(model, dir.file("absent.safetensors")), Catch::Contains("absent.safetensors"));
}

TEST_CASE("weights: an ImageNet classifier (1000 classes) keeps the features and re-initialises the classifier",
          "[weights]") {
  TempDir dir("chex_test_weights_imagenet");
  Generator gen(6);
  TinyDenseNet imagenet(1000, gen), chexnet(14, gen);
  imagenet.load_state_dict(randomised_state(imagenet, 13));
  chexnet.load_state_dict(randomised_state(chexnet, 17));  // a bias of zeros now would be the re-initialisation
  models::save_weights(imagenet, dir.file("imagenet.safetensors"));
  const models::WeightLoadReport report = models::load_weights(chexnet, dir.file("imagenet.safetensors"));
  CHECK(report.classifier_reinitialised);
  CHECK_THAT(report.summary(), Catch::Contains("re-initialised") && Catch::Contains("1000 ImageNet classes"));
  const auto ours = values_of(chexnet), theirs = values_of(imagenet);
  for (const auto& [name, v] : ours) {
    INFO(name);
    if (name.rfind("classifier.", 0) == 0) continue;
    CHECK(v == theirs.at(name));
  }
  // torchvision's initialisation: weight U(±1/sqrt(in_features)) = U(±0.5) here, bias zero.
  for (float w : ours.at("classifier.weight")) CHECK(std::abs(w) <= 0.5f);
  CHECK(ours.at("classifier.bias") == std::vector<float>(14, 0.f));
  CHECK(report.loaded == ours.size() - 2);

  // Refused when asked, and for any class count other than ImageNet's.
  CHECK_THROWS_WITH(models::load_weights(chexnet, dir.file("imagenet.safetensors"), {.allow_classifier_reinit = false}),
                    Catch::Contains("wrong shape: classifier.weight"));
  TinyDenseNet fifteen(15, gen);
  models::save_weights(fifteen, dir.file("fifteen.safetensors"));
  CHECK_THROWS_WITH(models::load_weights(chexnet, dir.file("fifteen.safetensors")),
                    Catch::Contains("wrong shape: classifier.weight") && Catch::Contains("wrong shape: classifier.bias"));
}

TEST_CASE("weights: F16 and BF16 files load, and absent num_batches_tracked counters are tolerated", "[weights]") {
  TempDir dir("chex_test_weights_dtypes");
  Generator gen(8);
  TinyDenseNet model(14, gen);
  nn::NamedTensors state = randomised_state(model, 19);
  for (const std::string dtype : {"F16", "BF16"}) {
    INFO(dtype);
    const std::string path = dir.file(dtype + ".safetensors");
    write_typed(path, state, dtype);
    const models::WeightLoadReport report = models::load_weights(model, path);
    CHECK(report.stored_dtypes.at(dtype) == state.size());
    CHECK_THAT(report.summary(), Catch::Contains(std::to_string(state.size()) + " " + dtype));
    const auto loaded = values_of(model);
    for (const auto& [name, t] : state) {
      const std::vector<float> want = t.to_vector();
      const std::vector<float>& got = loaded.at(name);
      for (size_t i = 0; i < want.size(); ++i) {
        const float rounded = dtype == "F16" ? half_to_float(float_to_half(want[i]))
                                             : bfloat16_to_float(float_to_bfloat16(want[i]));
        REQUIRE(got[i] == rounded);
      }
    }
  }
  // PyTorch < 0.4.1 checkpoints have no num_batches_tracked (e.g. the original CheXNet's).
  nn::NamedTensors old;
  for (const auto& [name, t] : state)
    if (name.find("num_batches_tracked") == std::string::npos) old.emplace_back(name, t);
  REQUIRE(old.size() == state.size() - 3);  // three batch norms
  io::save_safetensors(dir.file("old.safetensors"), old);
  const models::WeightLoadReport report = models::load_weights(model, dir.file("old.safetensors"));
  CHECK(report.defaulted.size() == 3);
  CHECK(report.loaded == state.size() - 3);
  CHECK_THAT(report.summary(), Catch::Contains("3 num_batches_tracked"));
}

TEST_CASE("weights: two names in the file that map to one tensor are an error", "[weights][errors]") {
  TempDir dir("chex_test_weights_duplicate");
  Generator gen(9);
  TinyDenseNet model(14, gen);
  nn::NamedTensors state = randomised_state(model, 23);
  state.emplace_back("module.features.conv0.weight", state.front().second);
  io::save_safetensors(dir.file("dup.safetensors"), state);
  CHECK_THROWS_WITH(models::load_weights(model, dir.file("dup.safetensors")),
                    Catch::Contains("both name the tensor 'features.conv0.weight'") && Catch::Contains("dup.safetensors"));
}

TEST_CASE("weights: DenseNet-121 round-trips, and an ImageNet DenseNet-121 loads into the 14-class model", "[weights]") {
  TempDir dir("chex_test_weights_densenet");
  Generator g1(31), g2(37);
  models::DenseNet imagenet(models::DenseNetConfig::densenet121(1000), g1);
  models::DenseNet chexnet(models::DenseNetConfig::densenet121(14), g2);
  models::save_weights(imagenet, dir.file("imagenet.safetensors"));
  const models::WeightLoadReport report = models::load_weights(chexnet, dir.file("imagenet.safetensors"));
  CHECK(report.classifier_reinitialised);
  CHECK(report.loaded == 727 - 2);
  const auto theirs = values_of(imagenet);
  for (const auto& [name, v] : values_of(chexnet))
    if (name.rfind("classifier.", 0) != 0) REQUIRE(v == theirs.at(name));

  models::save_weights(chexnet, dir.file("chexnet.safetensors"));
  models::DenseNet again(models::DenseNetConfig::densenet121(14), g1);
  CHECK(models::load_weights(again, dir.file("chexnet.safetensors")).loaded == 727);
  CHECK(values_of(again) == values_of(chexnet));
}

// `chex predict` end to end against PyTorch: tests/reference/make_predict_references.py writes a
// seeded torchvision DenseNet-121 (probabilities spread over (0, 1)), its predictions for real NIH
// radiographs (grey and RGBA) and synthetic images, and an arnoweng/CheXNet-style checkpoint.
#include <catch2/catch.hpp>

#include <sys/wait.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "models/densenet.h"
#include "models/weights.h"

using namespace chex;
namespace fs = std::filesystem;

namespace {

const std::string kRefs = CHEX_PREDICT_REF_DIR;
constexpr double kProbabilityTolerance = 1e-3;

struct Run {
  int exit_code = -1;
  std::string out, err;
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Runs a command line through the shell, capturing stdout and stderr.
Run run(const std::string& command, const std::string& tag) {
  const fs::path out = fs::path(kRefs) / (tag + ".stdout"), err = fs::path(kRefs) / (tag + ".stderr");
  const int status = std::system((command + " >" + out.string() + " 2>" + err.string()).c_str());
  Run r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

using Table = std::map<std::string, std::vector<double>>;  // image -> 14 probabilities

Table read_csv(const std::string& path, std::string* header = nullptr) {
  std::ifstream in(path);
  INFO("CSV " << path);
  REQUIRE(in);
  std::string line;
  REQUIRE(std::getline(in, line));
  if (header) *header = line;
  Table t;
  while (std::getline(in, line)) {
    std::stringstream fields(line);
    std::string name, value;
    std::getline(fields, name, ',');
    std::vector<double>& row = t[name];
    while (std::getline(fields, value, ',')) row.push_back(std::stod(value));
    REQUIRE(row.size() == 14);
  }
  return t;
}

// Every image's every probability within the tolerance of PyTorch's; returns the largest difference.
double compare(const Table& ours, const Table& torch) {
  REQUIRE(ours.size() == torch.size());
  double worst = 0;
  for (const auto& [name, expected] : torch) {
    INFO("image " << name);
    REQUIRE(ours.contains(name));
    for (size_t c = 0; c < 14; ++c) worst = std::max(worst, std::abs(ours.at(name)[c] - expected[c]));
  }
  return worst;
}

std::string chex_predict(const std::string& args) { return std::string(CHEX_BINARY) + " predict " + args; }

}  // namespace

TEST_CASE("predict: probabilities equal PyTorch's within 1e-3 on NIH radiographs, and a corrupt image is skipped",
          "[predict][torch]") {
  const Table torch = read_csv(kRefs + "/expected_none.csv");
  if (torch.size() < 6) WARN("../shared/data is absent: only synthetic images were compared, no NIH radiograph");
  // The test means something only if the probabilities are spread out (not all ~0.5).
  double lo = 1, hi = 0;
  for (const auto& [name, p] : torch)
    for (double v : p) lo = std::min(lo, v), hi = std::max(hi, v);
  CHECK(lo < 0.1);
  CHECK(hi > 0.9);

  const std::string out = kRefs + "/ours_none.csv";
  fs::remove(out);
  const Run r = run(chex_predict("--weights " + kRefs + "/weights.safetensors --images " + kRefs +
                                 "/images --out " + out + " --batch-size 4 --threads 2"),
                    "predict_none");
  INFO("stdout:\n" << r.out << "stderr:\n" << r.err);
  CHECK(r.exit_code == 3);  // written, with something skipped
  CHECK_THAT(r.err, Catch::Contains("corrupt.png") && Catch::Contains("skipped"));
  CHECK_THAT(r.out, Catch::Contains("1 skipped"));
  std::string header;
  const Table ours = read_csv(out, &header);
  CHECK(header ==
        "Image Index,prob_Atelectasis,prob_Cardiomegaly,prob_Effusion,prob_Infiltration,prob_Mass,prob_Nodule,"
        "prob_Pneumonia,prob_Pneumothorax,prob_Consolidation,prob_Edema,prob_Emphysema,prob_Fibrosis,"
        "prob_Pleural_Thickening,prob_Hernia");
  const double worst = compare(ours, torch);
  INFO("largest |chex - PyTorch| over " << ours.size() << " images x 14 classes: " << worst);
  CHECK(worst <= kProbabilityTolerance);
  WARN("predict --tta none: largest |chex - PyTorch| probability difference " << worst << " over " << ours.size()
                                                                           << " images");
}

TEST_CASE("predict: --tta tencrop averages ten crops as arnoweng/CheXNet does, within 1e-3 of PyTorch",
          "[predict][torch]") {
  const Table torch = read_csv(kRefs + "/expected_tencrop.csv");
  std::string files;
  for (const auto& [name, p] : torch) files += " " + kRefs + "/images/" + name;
  const std::string out = kRefs + "/ours_tencrop.csv";
  fs::remove(out);
  const Run r = run(chex_predict("--weights " + kRefs + "/weights.safetensors --tta tencrop --out " + out +
                                 " --batch-size 2" + files),
                    "predict_tencrop");
  INFO("stdout:\n" << r.out << "stderr:\n" << r.err);
  CHECK(r.exit_code == 0);
  const double worst = compare(read_csv(out), torch);
  INFO("largest |chex - PyTorch| with ten crops: " << worst);
  CHECK(worst <= kProbabilityTolerance);
  WARN("predict --tta tencrop: largest |chex - PyTorch| probability difference " << worst << " over " << torch.size()
                                                                              << " images");
}

TEST_CASE("predict: refuses ImageNet weights and a run where no image can be read, writing nothing",
          "[predict][torch]") {
  const std::string out = kRefs + "/refused.csv";
  fs::remove(out);
  // Every image unreadable: status 1, no CSV.
  const Run none = run(chex_predict("--weights " + kRefs + "/weights.safetensors --out " + out + " " + kRefs +
                                    "/images/corrupt.png"),
                       "predict_unreadable");
  INFO("stderr:\n" << none.err);
  CHECK(none.exit_code == 1);
  CHECK_THAT(none.err, Catch::Contains("corrupt.png") && Catch::Contains("none of the 1 images could be read"));
  CHECK_FALSE(fs::exists(out));

  // A 1000-class (ImageNet) DenseNet-121: loadable for fine-tuning, meaningless for predictions.
  const std::string imagenet = kRefs + "/imagenet_like.safetensors";
  models::save_weights(models::DenseNet(models::DenseNetConfig::densenet121(1000)), imagenet);
  const Run refused = run(chex_predict("--weights " + imagenet + " --out " + out + " " + kRefs +
                                       "/images/synthetic_small.png"),
                          "predict_imagenet");
  INFO("stderr:\n" << refused.err);
  CHECK(refused.exit_code == 1);
  CHECK_THAT(refused.err, Catch::Contains("is an ImageNet checkpoint"));
  CHECK_FALSE(fs::exists(out));
  fs::remove(imagenet);
}

TEST_CASE("predict: PyTorch checkpoints (.pth state_dict, arnoweng/CheXNet's .pth.tar) convert to safetensors that "
          "load as the original weights",
          "[predict][torch][weights]") {
  const std::string convert = std::string(CHEX_REFERENCE_PYTHON) + " " + CHEX_CONVERTER + " ";
  models::DenseNet reference(models::DenseNetConfig::densenet121(14));
  models::load_weights(reference, kRefs + "/weights.safetensors");
  const nn::NamedTensors want = reference.state_dict();

  auto check_same_weights = [&](const std::string& file, size_t absent_counters) {
    models::DenseNet model(models::DenseNetConfig::densenet121(14));
    const models::WeightLoadReport report = models::load_weights(model, file);
    CHECK(report.renamed.empty());  // the converter wrote torchvision's names
    CHECK(report.defaulted.size() == absent_counters);
    CHECK(report.loaded == want.size() - absent_counters);
    const nn::NamedTensors got = model.state_dict();
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < got.size(); ++i) {
      INFO(want[i].first);
      if (want[i].first.find("num_batches_tracked") != std::string::npos && absent_counters) continue;
      CHECK(got[i].second.to_vector() == want[i].second.to_vector());
    }
  };

  SECTION("a plain state_dict, read with torch.load(weights_only=True)") {
    const std::string converted = kRefs + "/converted_plain.safetensors";
    fs::remove(converted);
    const Run r = run(convert + kRefs + "/state_dict.pth " + converted, "convert_plain");
    INFO("stdout:\n" << r.out << "stderr:\n" << r.err);
    REQUIRE(r.exit_code == 0);
    check_same_weights(converted, 0);
    fs::remove(converted);  // 32 MB
  }
  SECTION("{'state_dict': ...} with module.densenet121. prefixes, legacy names, no num_batches_tracked") {
    // The file also holds the optimizer's state, whose floats torch 1.13's weights-only reader
    // refuses: the converter says how to proceed for a trusted file.
    const std::string converted = kRefs + "/converted_arnoweng.safetensors";
    fs::remove(converted);
    const Run refused = run(convert + kRefs + "/checkpoint.pth.tar " + converted, "convert_untrusted");
    CHECK(refused.exit_code != 0);
    CHECK_THAT(refused.err, Catch::Contains("--trust-pickle"));
    CHECK_FALSE(fs::exists(converted));

    const Run r = run(convert + "--trust-pickle " + kRefs + "/checkpoint.pth.tar " + converted, "convert_arnoweng");
    INFO("stdout:\n" << r.out << "stderr:\n" << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK_THAT(r.out, Catch::Contains("727") || Catch::Contains("606 tensors"));
    check_same_weights(converted, 121);  // one counter per batch norm
    fs::remove(converted);
  }
  SECTION("a file that is not a checkpoint: a clear error and no output") {
    const Run bad = run(convert + kRefs + "/expected_none.csv " + kRefs + "/bad.safetensors", "convert_bad");
    CHECK(bad.exit_code != 0);
    CHECK_THAT(bad.err, Catch::Contains("cannot read"));
    CHECK_FALSE(fs::exists(kRefs + "/bad.safetensors"));
  }
}

#include "models/weights.h"

#include <cmath>
#include <regex>
#include <sstream>

#include "chex/autograd.h"
#include "chex/error.h"
#include "chex/io/safetensors.h"
#include "chex/nn/init.h"

namespace chex::models {
namespace {

constexpr int64_t kImageNetClasses = 1000;

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// An ImageNet classifier in the file where the model has another number of classes, with the same
// number of input features: the one shape mismatch that is a choice rather than a mistake.
bool is_imagenet_classifier_for(const std::map<std::string, Tensor>& file, const std::map<std::string, Tensor>& own) {
  const auto fw = file.find("classifier.weight"), fb = file.find("classifier.bias");
  const auto ow = own.find("classifier.weight"), ob = own.find("classifier.bias");
  if (fw == file.end() || fb == file.end() || ow == own.end() || ob == own.end()) return false;
  const Shape& f = fw->second.shape();
  const Shape& o = ow->second.shape();
  return f.size() == 2 && o.size() == 2 && f[0] == kImageNetClasses && o[0] != kImageNetClasses && f[1] == o[1] &&
         fb->second.shape() == Shape{kImageNetClasses} && ob->second.shape() == Shape{o[0]};
}

// Fresh values for the classifier, drawn as torchvision's DenseNet draws them: nn.Linear's weight
// U(±1/sqrt(in_features)) and a zero bias.
std::pair<Tensor, Tensor> fresh_classifier(const Tensor& weight, const Tensor& bias) {
  Tensor w = Tensor::empty(weight.shape()), b = Tensor::zeros(bias.shape());
  const float bound = 1.0f / std::sqrt(static_cast<float>(weight.size(1)));
  nn::init::uniform_(w, -bound, bound);
  return {w, b};
}

}  // namespace

std::string canonical_weight_name(const std::string& name) {
  std::string out = name;
  // nn.DataParallel saves "module."-prefixed names (nested wrappers repeat it).
  while (out.rfind("module.", 0) == 0) out.erase(0, 7);
  // torchvision renamed the dense layers' submodules in 0.4 ("norm.1" -> "norm1"); its own loader
  // applies the same mapping to older checkpoints.
  static const std::regex legacy(
      R"(^(.*denselayer\d+\.(?:norm|relu|conv))\.([12])\.(weight|bias|running_mean|running_var|num_batches_tracked)$)");
  std::smatch m;
  if (std::regex_match(out, m, legacy)) out = m[1].str() + m[2].str() + "." + m[3].str();
  return out;
}

WeightLoadReport load_weights(nn::Module& model, const std::string& path, const WeightLoadOptions& options) {
  const io::SafetensorsFile file = io::load_safetensors(path);  // its errors name the file
  WeightLoadReport report;
  report.path = path;

  std::map<std::string, Tensor> state;
  std::map<std::string, std::string> original_of;  // canonical name -> name in the file
  for (const auto& [stored, tensor] : file.tensors) {
    const std::string name = canonical_weight_name(stored);
    const auto [it, inserted] = original_of.emplace(name, stored);
    CHEX_CHECK(inserted, "cannot load weights from '", path, "': '", it->second, "' and '", stored,
               "' both name the tensor '", name, "'");
    if (name != stored) report.renamed.push_back(stored + " -> " + name);
    state.emplace(name, tensor);
    ++report.stored_dtypes[file.source_dtypes.at(stored)];
  }

  std::map<std::string, Tensor> own;
  for (const auto& [name, tensor] : model.state_dict()) own.emplace(name, tensor);

  // Entries the file may leave out: filled with the model's own (or fresh) values, so that the
  // strict load below still checks every other name.
  if (options.allow_classifier_reinit && is_imagenet_classifier_for(state, own)) {
    auto [weight, bias] = fresh_classifier(own.at("classifier.weight"), own.at("classifier.bias"));
    state["classifier.weight"] = weight;
    state["classifier.bias"] = bias;
    report.classifier_reinitialised = true;
  }
  for (const auto& [name, tensor] : own) {
    if (ends_with(name, ".num_batches_tracked") && !state.contains(name)) {
      state.emplace(name, tensor.detach().to(Device::cpu()).clone());
      report.defaulted.push_back(name);
    }
  }

  nn::LoadStateDictResult result;
  try {
    result = model.load_state_dict(state, options.strict);
  } catch (const Error& e) {
    size_t matching = 0;
    for (const auto& [name, tensor] : state) matching += own.contains(name) ? 1 : 0;
    const std::string hint =
        matching == report.defaulted.size()
            ? "\nNone of the file's names match the model's: is it a checkpoint of another architecture, or a "
              "PyTorch checkpoint with wrapper names (convert it with apps/convert_checkpoint.py)?"
            : "\nUse weights of the same architecture (the --arch they were trained with), in torchvision's "
              "names; PyTorch checkpoints convert with apps/convert_checkpoint.py.";
    throw Error(detail::concat("cannot load the weights in '", path, "' (", file.tensors.size(), " tensors): ",
                               e.what(), hint),
                e.details());
  }
  report.missing = result.missing_keys;
  report.unexpected = result.unexpected_keys;
  report.loaded = own.size() - report.missing.size() - report.defaulted.size() -
                  (report.classifier_reinitialised ? 2 : 0);
  return report;
}

void save_weights(const nn::Module& model, const std::string& path) {
  io::save_safetensors(path, model.state_dict(), {{"format", "pt"}});
}

std::string WeightLoadReport::summary() const {
  std::ostringstream out;
  out << "loaded " << loaded << " tensors from '" << path << "'";
  if (!stored_dtypes.empty()) {
    out << " (stored as";
    const char* separator = " ";
    for (const auto& [dtype, count] : stored_dtypes) {
      out << separator << count << " " << dtype;
      separator = ", ";
    }
    out << ")";
  }
  if (!renamed.empty()) out << "; " << renamed.size() << " names renamed (\"module.\" prefixes, legacy \"norm.1\" names)";
  if (classifier_reinitialised)
    out << "; the file's classifier has 1000 ImageNet classes: the features are loaded and the classifier is "
           "re-initialised";
  if (!defaulted.empty()) out << "; " << defaulted.size() << " num_batches_tracked counters absent (older checkpoint), left as they were";
  if (!missing.empty()) out << "; " << missing.size() << " tensors missing (left as they were, non-strict load)";
  if (!unexpected.empty()) out << "; " << unexpected.size() << " tensors unexpected (ignored, non-strict load)";
  return out.str();
}

}  // namespace chex::models

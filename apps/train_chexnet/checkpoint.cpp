#include "checkpoint.h"

#include <filesystem>
#include <limits>
#include <map>

#include <nlohmann/json.hpp>

#include "chex/error.h"
#include "chex/io/safetensors.h"
#include "files.h"

namespace chex::train {
namespace {

constexpr const char* kStateKey = "chex_training_state";
constexpr const char* kModelPrefix = "model.";
constexpr const char* kOptimizerPrefix = "optimizer.";

nlohmann::json state_json(const TrainingState& s, const optim::OptimizerState& optimizer) {
  nlohmann::json j;
  j["format"] = "chex-train-checkpoint-1";
  j["epoch"] = s.epoch;
  j["next_batch"] = s.next_batch;
  j["step"] = s.step;
  j["lr"] = s.lr;
  j["best_val_loss"] = s.has_best ? nlohmann::json(s.best_val_loss) : nlohmann::json(nullptr);
  j["best_epoch"] = s.best_epoch;
  j["epochs_without_improvement"] = s.epochs_without_improvement;
  j["plateaus"] = s.plateaus;
  j["epoch_loss_sum"] = s.epoch_loss_sum;
  j["epoch_loss_batches"] = s.epoch_loss_batches;
  j["finished"] = s.finished;
  j["fingerprint"] = s.fingerprint;
  j["optimizer"] = {{"type", optimizer.type}, {"lr", optimizer.lr}, {"steps", optimizer.steps}};
  return j;
}

}  // namespace

std::string checkpoint_path(const std::string& dir) { return (std::filesystem::path(dir) / "checkpoint.safetensors").string(); }

std::string to_json(const TrainingState& state, const optim::OptimizerState& optimizer, bool pretty) {
  return state_json(state, optimizer).dump(pretty ? 2 : -1);
}

void save_checkpoint(const std::string& dir, const TrainingState& state, const nn::Module& model,
                     const optim::Optimizer& optimizer) {
  const optim::OptimizerState opt = optimizer.state_dict();
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const auto& [name, t] : model.state_dict()) tensors.emplace_back(kModelPrefix + name, t);
  for (const auto& [name, t] : opt.tensors) tensors.emplace_back(kOptimizerPrefix + name, t);
  try {
    io::save_safetensors(checkpoint_path(dir), tensors, {{kStateKey, to_json(state, opt, false)}});
  } catch (const Error& e) {
    // The user's next step, said where the write failed: the old checkpoint is intact and resumes.
    throw Error(std::string(e.what()) + "; the last checkpoint is kept: --resume continues from it", e.details());
  }
  write_text_atomically((std::filesystem::path(dir) / "checkpoint.json").string(), to_json(state, opt, true) + "\n");
}

TrainingState load_checkpoint(const std::string& dir, const std::string& fingerprint, nn::Module& model,
                              optim::Optimizer& optimizer) {
  const std::string path = checkpoint_path(dir);
  CHEX_CHECK(std::filesystem::exists(path), "--resume: there is no checkpoint at '", path,
             "'; give --out the folder of the run to continue, or leave out --resume to start a new run");
  const io::SafetensorsFile file = io::load_safetensors(path);
  const auto found = file.metadata.find(kStateKey);
  CHEX_CHECK(found != file.metadata.end(), "'", path,
             "' is not a train_chexnet checkpoint (no training state); give --out the folder of a train_chexnet "
             "run, or leave out --resume");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(found->second);
  } catch (const nlohmann::json::exception& e) {
    CHEX_FAIL("'", path, "': the training state is not valid JSON (", e.what(),
              "); the checkpoint is damaged: start a new run without --resume");
  }
  TrainingState s;
  try {
    CHEX_CHECK(j.at("format") == "chex-train-checkpoint-1", "'", path, "' has an unknown checkpoint format");
    s.fingerprint = j.at("fingerprint").get<std::string>();
    CHEX_CHECK(s.fingerprint == fingerprint, "'", path, "' was made with other options; resume with the same ones\n  checkpoint: ",
               s.fingerprint, "\n  now:        ", fingerprint);
    s.epoch = j.at("epoch").get<int64_t>();
    s.next_batch = j.at("next_batch").get<int64_t>();
    s.step = j.at("step").get<int64_t>();
    s.lr = j.at("lr").get<double>();
    s.has_best = !j.at("best_val_loss").is_null();
    s.best_val_loss = s.has_best ? j["best_val_loss"].get<double>() : std::numeric_limits<double>::infinity();
    s.best_epoch = j.at("best_epoch").get<int64_t>();
    s.epochs_without_improvement = j.at("epochs_without_improvement").get<int64_t>();
    s.plateaus = j.at("plateaus").get<int64_t>();
    s.epoch_loss_sum = j.at("epoch_loss_sum").get<double>();
    s.epoch_loss_batches = j.at("epoch_loss_batches").get<int64_t>();
    s.finished = j.at("finished").get<bool>();
  } catch (const nlohmann::json::exception& e) {
    CHEX_FAIL("'", path, "': the training state is incomplete (", e.what(),
              "); the checkpoint is damaged: start a new run without --resume");
  }

  std::map<std::string, Tensor> model_state;
  optim::OptimizerState opt;
  opt.type = j["optimizer"].value("type", "");
  opt.lr = j["optimizer"].value("lr", 0.0);
  opt.steps = j["optimizer"].value("steps", std::vector<int64_t>{});
  const std::string model_prefix = kModelPrefix, optimizer_prefix = kOptimizerPrefix;
  for (const auto& [name, t] : file.tensors) {
    if (name.starts_with(model_prefix))
      model_state.emplace(name.substr(model_prefix.size()), t);
    else if (name.starts_with(optimizer_prefix))
      opt.tensors.emplace(name.substr(optimizer_prefix.size()), t);
    else
      CHEX_FAIL("'", path, "': unexpected tensor '", name, "'");
  }
  model.load_state_dict(model_state, true);
  optimizer.load_state_dict(opt);
  return s;
}

}  // namespace chex::train

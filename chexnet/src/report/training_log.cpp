// Reading the epochs of train_chexnet's log.jsonl for the report's training curves.
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "chex/error.h"
#include "chex/report/html_report.h"

namespace chex::report {
namespace {

double number_or_nan(const nlohmann::json& j, const char* key) {
  return j.contains(key) && j[key].is_number() ? j[key].get<double>() : std::nan("");
}

}  // namespace

std::vector<TrainingEpoch> read_training_log(const std::string& path) {
  std::ifstream in(path);
  CHEX_CHECK(in, "cannot open the training log '", path, "': ", std::strerror(errno));
  std::map<int, TrainingEpoch> epochs;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    if (line.empty()) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception&) {
      // A crash can cut the last line short; an unreadable line elsewhere is damage worth naming.
      if (in.peek() == EOF) break;
      CHEX_FAIL(path, ":", number, ": not a JSON record");
    }
    if (!j.is_object() || j.value("event", "") != "epoch") continue;
    CHEX_CHECK(j.contains("epoch") && j["epoch"].is_number_integer(), path, ":", number, ": an epoch record without its epoch number");
    TrainingEpoch e;
    e.epoch = j["epoch"].get<int>();
    e.train_loss = number_or_nan(j, "train_loss");
    e.val_loss = number_or_nan(j, "val_loss");
    if (j.contains("val_mean_auroc") && j["val_mean_auroc"].is_number()) e.val_mean_auroc = j["val_mean_auroc"].get<double>();
    e.lr = number_or_nan(j, "lr");
    e.next_lr = j.contains("next_lr") && j["next_lr"].is_number() ? j["next_lr"].get<double>() : e.lr;
    epochs[e.epoch] = e;
  }
  std::vector<TrainingEpoch> out;
  for (const auto& [_, e] : epochs) out.push_back(e);
  return out;
}

}  // namespace chex::report

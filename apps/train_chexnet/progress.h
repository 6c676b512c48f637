#pragma once
// What a training run tells the world as it goes: a live bar per epoch on a terminal (plain lines
// every few seconds otherwise), and every step and epoch as one JSON line in OUT/log.jsonl.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

namespace chex::train {

class EpochProgress {
 public:
  EpochProgress(int64_t epoch, int64_t epochs, int64_t batches, int64_t first_batch, double interval_seconds);
  // After batch `batch` (0-based) of the epoch.
  void update(int64_t batch, double mean_loss, double lr, double images_per_second);
  // Ends the bar's line (a terminal only).
  void finish();

 private:
  int64_t epoch_, epochs_, batches_, first_batch_;
  bool terminal_;
  double interval_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_, last_print_;
};

// Appends JSON lines to a file, flushed line by line so that a killed run keeps what it logged.
class JsonLog {
 public:
  explicit JsonLog(const std::string& path);
  ~JsonLog();
  JsonLog(const JsonLog&) = delete;
  JsonLog& operator=(const JsonLog&) = delete;
  void write(const nlohmann::json& record);

 private:
  std::FILE* file_;
};

// "1:02:03" or "4:05".
std::string format_duration(double seconds);

}  // namespace chex::train

#include "progress.h"

#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>

#include "chex/error.h"

namespace chex::train {

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const auto s = static_cast<long>(seconds + 0.5);
  char text[32];
  if (s >= 3600)
    std::snprintf(text, sizeof text, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
  else
    std::snprintf(text, sizeof text, "%ld:%02ld", s / 60, s % 60);
  return text;
}

EpochProgress::EpochProgress(int64_t epoch, int64_t epochs, int64_t batches, int64_t first_batch,
                             double interval_seconds)
    : epoch_(epoch),
      epochs_(epochs),
      batches_(batches),
      first_batch_(first_batch),
      terminal_(isatty(fileno(stdout)) != 0),
      interval_(interval_seconds),
      start_(std::chrono::steady_clock::now()),
      last_print_(start_) {}

void EpochProgress::update(int64_t batch, double mean_loss, double lr, double images_per_second) {
  const auto now = std::chrono::steady_clock::now();
  const double since_print = std::chrono::duration<double>(now - last_print_).count();
  const bool last = batch + 1 == batches_;
  // A terminal redraws a few times a second; a log gets a line every interval and at the end.
  if (since_print < (terminal_ ? 0.2 : interval_) && !last && !(batch == first_batch_ && !terminal_)) return;
  last_print_ = now;
  const int64_t done = batch + 1;
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double eta = elapsed / static_cast<double>(done - first_batch_) * static_cast<double>(batches_ - done);
  char stats[160];
  std::snprintf(stats, sizeof stats, "%lld/%lld  loss %.4f  lr %.0e  %.1f img/s  ETA %s", static_cast<long long>(done),
                static_cast<long long>(batches_), mean_loss, lr, images_per_second, format_duration(eta).c_str());
  if (terminal_) {
    constexpr int kWidth = 24;
    const int filled = static_cast<int>(kWidth * done / std::max<int64_t>(batches_, 1));
    std::string bar(static_cast<size_t>(filled), '#');
    bar.resize(kWidth, '.');
    std::printf("\repoch %lld/%lld [%s] %s\x1b[K", static_cast<long long>(epoch_ + 1),
                static_cast<long long>(epochs_), bar.c_str(), stats);
    drawn_ = true;
  } else {
    std::printf("epoch %lld/%lld  batch %s\n", static_cast<long long>(epoch_ + 1), static_cast<long long>(epochs_),
                stats);
  }
  std::fflush(stdout);
}

void EpochProgress::finish() {
  if (terminal_ && drawn_) std::printf("\n");
  drawn_ = false;
  std::fflush(stdout);
}

JsonLog::JsonLog(const std::string& path) : file_(std::fopen(path.c_str(), "a")) {
  CHEX_CHECK(file_ != nullptr, "cannot open the log '", path, "' for writing: ", std::strerror(errno));
}

JsonLog::~JsonLog() { std::fclose(file_); }

void JsonLog::write(const nlohmann::json& record) {
  const std::string line = record.dump() + "\n";
  std::fputs(line.c_str(), file_);
  std::fflush(file_);
}

}  // namespace chex::train

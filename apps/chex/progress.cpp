#include "progress.h"

#include <unistd.h>

#include <cmath>

namespace chex::cli {
namespace {

std::string duration(double seconds) {
  const long s = std::lround(seconds);
  char text[32];
  if (s >= 3600) std::snprintf(text, sizeof text, "%ldh%02ldm", s / 3600, s / 60 % 60);
  else if (s >= 60) std::snprintf(text, sizeof text, "%ldm%02lds", s / 60, s % 60);
  else std::snprintf(text, sizeof text, "%lds", s);
  return text;
}

}  // namespace

Progress::Progress(std::string what, size_t total, std::FILE* out, double interval_seconds)
    : what_(std::move(what)),
      total_(total),
      out_(out),
      terminal_(::isatty(::fileno(out)) == 1),
      interval_(terminal_ ? 0.2 : interval_seconds),
      start_(std::chrono::steady_clock::now()),
      last_print_(start_) {}

void Progress::update(size_t done) {
  const auto now = std::chrono::steady_clock::now();
  if (std::chrono::duration<double>(now - last_print_).count() < interval_) return;
  last_print_ = now;
  print(done, false);
}

void Progress::finish(size_t done, const std::string& note) {
  print(done, true);
  if (!note.empty()) std::fprintf(out_, "; %s", note.c_str());
  std::fprintf(out_, "\n");
  std::fflush(out_);
}

void Progress::print(size_t done, bool final) {
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double rate = elapsed > 0 ? done / elapsed : 0.0;
  if (terminal_) std::fprintf(out_, "\r\033[K");
  if (final) {
    std::fprintf(out_, "%s %zu of %zu in %s (%.1f/s)", what_.c_str(), done, total_, duration(elapsed).c_str(), rate);
    return;
  }
  const std::string eta = rate > 0 ? duration((total_ - done) / rate) : "?";
  std::fprintf(out_, "%s %zu/%zu (%.0f%%), %.1f/s, ETA %s", what_.c_str(), done, total_,
               total_ ? 100.0 * done / total_ : 100.0, rate, eta.c_str());
  if (!terminal_) std::fprintf(out_, "\n");
  std::fflush(out_);
}

}  // namespace chex::cli

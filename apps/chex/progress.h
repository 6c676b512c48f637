#pragma once
// Progress of a long run: on a terminal, one line rewritten in place; otherwise (a log, a pipe) a
// plain line every `interval` seconds. Rate and ETA count items done since the start.
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <string>

namespace chex::cli {

class Progress {
 public:
  Progress(std::string what, size_t total, std::FILE* out, double interval_seconds = 10.0);
  void update(size_t done);
  // The closing line, with the totals; `note` is appended ("3 skipped").
  void finish(size_t done, const std::string& note = "");

 private:
  void print(size_t done, bool final);

  std::string what_;
  size_t total_;
  std::FILE* out_;
  bool terminal_;
  double interval_;
  std::chrono::steady_clock::time_point start_, last_print_;
};

}  // namespace chex::cli

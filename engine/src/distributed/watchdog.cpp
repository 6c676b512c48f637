#include "watchdog.h"

#include <unistd.h>

#include <cstdio>

namespace chex::distributed {

Watchdog::Watchdog(int rank, double timeout_seconds)
    : rank_(rank), timeout_seconds_(timeout_seconds), thread_([this] { watch(); }) {}

Watchdog::~Watchdog() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

Watchdog::Guard::Guard(Watchdog& w, std::string what, double timeout_seconds) : w_(w) {
  {
    std::lock_guard lock(w_.mutex_);
    w_.armed_ = true;
    w_.what_ = std::move(what);
    w_.armed_timeout_ = timeout_seconds > 0 ? timeout_seconds : w_.timeout_seconds_;
    w_.deadline_ = std::chrono::steady_clock::now() +
                   std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                       std::chrono::duration<double>(w_.armed_timeout_));
  }
  w_.wake_.notify_all();
}

Watchdog::Guard::~Guard() {
  std::lock_guard lock(w_.mutex_);
  w_.armed_ = false;
}

void Watchdog::watch() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    if (!armed_) {
      wake_.wait(lock);
      continue;
    }
    const auto deadline = deadline_;
    if (wake_.wait_until(lock, deadline) == std::cv_status::timeout && armed_ && deadline_ == deadline &&
        std::chrono::steady_clock::now() >= deadline) {
      std::fprintf(stderr,
                   "\nchex: error: rank %d: %s did not complete within %.0f s: another rank has probably died or "
                   "stopped answering; ending this rank (raise the limit with --collective-timeout if a step is "
                   "legitimately that slow)\n",
                   rank_, what_.c_str(), armed_timeout_);
      std::fflush(stderr);
      // Not exit(): the main thread is blocked inside MPI, whose state static destructors would touch.
      _exit(75);
    }
  }
}

}  // namespace chex::distributed

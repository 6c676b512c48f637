#pragma once
// The deadline of a collective. A collective that a dead or stuck rank never completes would hang
// every other rank; a watchdog thread ends this process instead, with a message naming the
// collective, and mpirun then stops the job (a rank that exits non-zero ends it).
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

namespace chex::distributed {

class Watchdog {
 public:
  Watchdog(int rank, double timeout_seconds);
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  // Arms the deadline for the collective `what` for as long as the guard lives.
  class Guard {
   public:
    Guard(Watchdog& w, std::string what, double timeout_seconds = 0);
    ~Guard();
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;

   private:
    Watchdog& w_;
  };
  double timeout_seconds() const { return timeout_seconds_; }

 private:
  void watch();

  int rank_;
  double timeout_seconds_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool armed_ = false, stopping_ = false;
  std::string what_;
  double armed_timeout_ = 0;
  std::chrono::steady_clock::time_point deadline_;
  std::thread thread_;
};

}  // namespace chex::distributed

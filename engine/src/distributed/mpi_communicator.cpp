#if defined(CHEX_HAVE_MPI)
#include "mpi_communicator.h"

#include <mpi.h>

#include <cstdlib>
#include <cstring>

#include "chex/error.h"
#include "watchdog.h"

namespace chex::distributed {
namespace {

std::string mpi_error(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  return std::string(text, static_cast<size_t>(length));
}

void check(int code, const char* what) {
  CHEX_CHECK(code == MPI_SUCCESS, what, " failed: ", mpi_error(code),
             " (another rank has probably died; its own output says why)");
}

void finalize_at_exit() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

class MpiPending final : public PendingCollective {
 public:
  MpiPending(MPI_Request request, Watchdog& watchdog, size_t count)
      : request_(request), watchdog_(watchdog), count_(count) {}
  void wait() override {
    Watchdog::Guard guard(watchdog_, "an all-reduce of " + std::to_string(count_) + " values");
    check(MPI_Wait(&request_, MPI_STATUS_IGNORE), "MPI_Wait (all-reduce)");
  }
  void progress() override {
    int done = 0;
    check(MPI_Test(&request_, &done, MPI_STATUS_IGNORE), "MPI_Test (all-reduce)");
  }

 private:
  MPI_Request request_;
  Watchdog& watchdog_;
  size_t count_;
};

class MpiCommunicator final : public Communicator {
 public:
  explicit MpiCommunicator(const CommunicatorOptions& options) {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized) {
      int provided = 0;
      // Only the main thread calls MPI (the watchdog never does).
      check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
      std::atexit(finalize_at_exit);
    }
    // Errors come back as codes (and become chex::Error) instead of aborting the job silently.
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    MPI_Comm node;
    check(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node),
          "MPI_Comm_split_type");
    MPI_Comm_rank(node, &local_rank_);
    MPI_Comm_free(&node);
    watchdog_ = std::make_unique<Watchdog>(rank_, options.timeout_seconds);
    char version[MPI_MAX_LIBRARY_VERSION_STRING];
    int length = 0;
    MPI_Get_library_version(version, &length);
    library_ = std::string(version, static_cast<size_t>(length));
    if (const size_t comma = library_.find(','); comma != std::string::npos) library_.resize(comma);
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_rank() const override { return local_rank_; }

  void all_reduce_sum(float* data, size_t count, Device device) override {
    CHEX_CHECK(device.is_cpu(), "the MPI communicator all-reduces host memory; ", device.str(),
               " tensors need the NCCL communicator (distributed::init with that device)");
    reduce(data, count, MPI_FLOAT);
  }
  void all_reduce_sum(double* data, size_t count) override { reduce(data, count, MPI_DOUBLE); }

  std::unique_ptr<PendingCollective> start_all_reduce_sum(float* data, size_t count, Device device) override {
    if (!device.is_cpu() || count >= (1u << 30)) return Communicator::start_all_reduce_sum(data, count, device);
    MPI_Request request;
    check(MPI_Iallreduce(MPI_IN_PLACE, data, static_cast<int>(count), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &request),
          "MPI_Iallreduce");
    return std::make_unique<MpiPending>(request, *watchdog_, count);
  }

  void broadcast(void* data, size_t bytes, int root, Device device) override {
    CHEX_CHECK(device.is_cpu(), "the MPI communicator broadcasts host memory, not ", device.str());
    auto* p = static_cast<char*>(data);
    for (size_t done = 0; done < bytes;) {  // MPI counts are ints
      const int n = static_cast<int>(std::min<size_t>(bytes - done, 1u << 30));
      Watchdog::Guard guard(*watchdog_, "a broadcast of " + std::to_string(bytes) + " bytes");
      check(MPI_Bcast(p + done, n, MPI_BYTE, root, MPI_COMM_WORLD), "MPI_Bcast");
      done += static_cast<size_t>(n);
    }
  }

  void barrier(double timeout_seconds) override {
    Watchdog::Guard guard(*watchdog_, "a barrier", timeout_seconds);
    check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
  }

  std::vector<std::string> all_gather(const std::string& bytes) override {
    Watchdog::Guard guard(*watchdog_, "an all-gather");
    const int mine = static_cast<int>(bytes.size());
    CHEX_CHECK(bytes.size() < (1u << 31), "all_gather: ", bytes.size(), " bytes is more than MPI can count");
    std::vector<int> sizes(static_cast<size_t>(size_)), offsets(static_cast<size_t>(size_));
    check(MPI_Allgather(&mine, 1, MPI_INT, sizes.data(), 1, MPI_INT, MPI_COMM_WORLD), "MPI_Allgather");
    int64_t total = 0;
    for (size_t r = 0; r < sizes.size(); ++r) {
      offsets[r] = static_cast<int>(total);
      total += sizes[r];
    }
    CHEX_CHECK(total < (int64_t{1} << 31), "all_gather: ", total, " bytes in all is more than MPI can count");
    std::string all(static_cast<size_t>(total), '\0');
    check(MPI_Allgatherv(bytes.data(), mine, MPI_BYTE, all.data(), sizes.data(), offsets.data(), MPI_BYTE,
                         MPI_COMM_WORLD),
          "MPI_Allgatherv");
    std::vector<std::string> out;
    for (size_t r = 0; r < sizes.size(); ++r) out.push_back(all.substr(static_cast<size_t>(offsets[r]), static_cast<size_t>(sizes[r])));
    return out;
  }

  std::string description() const override { return "MPI (" + library_ + ")"; }

 private:
  template <class T>
  void reduce(T* data, size_t count, MPI_Datatype type) {
    for (size_t done = 0; done < count;) {
      const int n = static_cast<int>(std::min<size_t>(count - done, 1u << 30));
      Watchdog::Guard guard(*watchdog_, "an all-reduce of " + std::to_string(count) + " values");
      check(MPI_Allreduce(MPI_IN_PLACE, data + done, n, type, MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce");
      done += static_cast<size_t>(n);
    }
  }

  int rank_ = 0, size_ = 1, local_rank_ = 0;
  std::string library_;
  std::unique_ptr<Watchdog> watchdog_;
};

}  // namespace

void abort_mpi_job(int exit_code) {
  int initialized = 0, finalized = 0, size = 1;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (!initialized || finalized) return;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (size > 1) MPI_Abort(MPI_COMM_WORLD, exit_code);
}

std::shared_ptr<Communicator> make_mpi_communicator(const CommunicatorOptions& options) {
  return std::make_shared<MpiCommunicator>(options);
}

}  // namespace chex::distributed
#endif

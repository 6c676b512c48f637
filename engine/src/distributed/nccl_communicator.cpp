#if defined(CHEX_HAVE_MPI) && defined(CHEX_HAVE_CUDA)
// CUDA buffers through NCCL on the device's stream; host collectives through MPI. NCCL's unique id
// goes from rank 0 to the others over MPI.
#include <chrono>
#include <thread>

#include "../cuda/cuda_check.h"
#include "../cuda/device_context.h"
#include "chex/error.h"
#include "mpi_communicator.h"
#include "nccl_library.h"

namespace chex::distributed {
namespace {

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(std::shared_ptr<Communicator> host, Device device, const CommunicatorOptions& options)
      : host_(std::move(host)), device_(device), timeout_seconds_(options.timeout_seconds) {
    const nccl::Library& l = nccl::library();
    nccl::UniqueId id{};
    if (host_->rank() == 0) check(l.get_unique_id(&id), "ncclGetUniqueId");
    host_->broadcast(&id, sizeof id, 0, Device::cpu());
    cuda::context(device_.index);  // makes the device current
    check(l.comm_init_rank(&comm_, host_->size(), id, host_->rank()), "ncclCommInitRank");
  }
  ~NcclCommunicator() override {
    if (comm_) nccl::library().comm_destroy(comm_);
  }

  int rank() const override { return host_->rank(); }
  int size() const override { return host_->size(); }
  int local_rank() const override { return host_->local_rank(); }

  void all_reduce_sum(float* data, size_t count, Device device) override {
    if (device.is_cpu()) return host_->all_reduce_sum(data, count, device);
    check_device(device);
    const cudaStream_t stream = cuda::context(device_.index).stream;
    check(nccl::library().all_reduce(data, data, count, nccl::kFloat32, nccl::kSum, comm_, stream), "ncclAllReduce");
    wait(stream, "an NCCL all-reduce of " + std::to_string(count) + " floats");
  }
  void all_reduce_sum(double* data, size_t count) override { host_->all_reduce_sum(data, count); }

  // Queued on the device's stream behind the backward's kernels that made the gradients; the host
  // goes on queueing the rest of the backward, and wait() polls for the end (and the deadline).
  std::unique_ptr<PendingCollective> start_all_reduce_sum(float* data, size_t count, Device device) override {
    if (device.is_cpu()) return host_->start_all_reduce_sum(data, count, device);
    check_device(device);
    const cudaStream_t stream = cuda::context(device_.index).stream;
    check(nccl::library().all_reduce(data, data, count, nccl::kFloat32, nccl::kSum, comm_, stream), "ncclAllReduce");
    return std::make_unique<Pending>(*this, stream, "an NCCL all-reduce of " + std::to_string(count) + " floats");
  }

  void broadcast(void* data, size_t bytes, int root, Device device) override {
    if (device.is_cpu()) return host_->broadcast(data, bytes, root, device);
    check_device(device);
    CHEX_CHECK(bytes % sizeof(float) == 0, "NCCL broadcast of ", bytes, " bytes: not whole floats");
    const cudaStream_t stream = cuda::context(device_.index).stream;
    check(nccl::library().broadcast(data, data, bytes / sizeof(float), nccl::kFloat32, root, comm_, stream),
          "ncclBroadcast");
    wait(stream, "an NCCL broadcast of " + std::to_string(bytes) + " bytes");
  }

  void barrier(double timeout_seconds) override { host_->barrier(timeout_seconds); }
  std::vector<std::string> all_gather(const std::string& bytes) override { return host_->all_gather(bytes); }
  std::string description() const override { return "NCCL on " + device_.str() + ", " + host_->description(); }

 private:
  class Pending final : public PendingCollective {
   public:
    Pending(NcclCommunicator& owner, cudaStream_t stream, std::string what)
        : owner_(owner), stream_(stream), what_(std::move(what)) {}
    void wait() override { owner_.wait(stream_, what_); }

   private:
    NcclCommunicator& owner_;
    cudaStream_t stream_;
    std::string what_;
  };

  void check(nccl::Result result, const char* what) const {
    CHEX_CHECK(result == nccl::kSuccess, what, " failed: ", nccl::library().error_string(result));
  }
  void check_device(Device device) const {
    CHEX_CHECK(device == device_, "this rank's NCCL communicator is for ", device_.str(), ", not ", device.str());
  }
  // Polls the stream rather than blocking in it, so that a peer that died (NCCL's asynchronous
  // error) or a deadline passed aborts the communicator with a message instead of hanging.
  void wait(cudaStream_t stream, const std::string& what) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_seconds_);
    for (;;) {
      const cudaError_t state = cudaStreamQuery(stream);
      if (state == cudaSuccess) return;
      CHEX_CHECK(state == cudaErrorNotReady, what, ": ", cudaGetErrorString(state));
      nccl::Result async = nccl::kSuccess;
      nccl::library().comm_get_async_error(comm_, &async);
      const bool late = std::chrono::steady_clock::now() > deadline;
      if ((async != nccl::kSuccess && async != nccl::kInProgress) || late) {
        nccl::library().comm_abort(comm_);
        comm_ = nullptr;
        CHEX_FAIL(what, late ? " did not complete within " + std::to_string(static_cast<int>(timeout_seconds_)) + " s"
                             : std::string(" failed: ") + nccl::library().error_string(async),
                  ": another rank has probably died or stopped answering");
      }
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }

  std::shared_ptr<Communicator> host_;
  Device device_;
  double timeout_seconds_;
  nccl::Comm comm_ = nullptr;
};

}  // namespace

std::shared_ptr<Communicator> make_nccl_communicator(std::shared_ptr<Communicator> host, Device device,
                                                     const CommunicatorOptions& options) {
  return std::make_shared<NcclCommunicator>(std::move(host), device, options);
}

}  // namespace chex::distributed
#endif

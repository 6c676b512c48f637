#pragma once
// Data-parallel training: one process (rank) per device, launched by mpirun, training one model.
//
//   auto comm = chex::distributed::init(device);        // MPI (and NCCL for CUDA), or one rank
//   chex::distributed::DataParallel ddp(model, comm);    // broadcasts rank 0's weights
//   ddp.backward(loss(ddp.forward(images), labels));     // images: this rank's share of the batch
//   ddp.finish_gradients();                              // the mean of the ranks' gradients
//   optimizer.step();                                    // the same step on every rank
//
// The communication is MPI's (Open MPI; CPU tensors: MPI_Allreduce on host memory) and NCCL's
// (CUDA tensors; libnccl.so.2 opened at run time, its unique id carried by MPI). A build without
// MPI has only the one-rank communicator: init() then fails when mpirun started several ranks.
// docs/distributed.md has the design and the measurements.
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "chex/device.h"
#include "chex/nn/module.h"
#include "chex/tensor.h"

namespace chex::distributed {

// A collective in flight (Communicator::start_all_reduce_sum).
class PendingCollective {
 public:
  virtual ~PendingCollective() = default;
  virtual void wait() = 0;     // until it completed, under the communicator's deadline
  virtual void progress() {}   // lets the library move it on while the caller computes (MPI)
};

// The ranks of one job. Collectives must be called by every rank in the same order. Each has a
// deadline (CommunicatorOptions::timeout_seconds): a collective that does not complete in time
// (a rank died or hangs) ends this process with a message naming the collective, rather than
// hanging the job.
class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual int local_rank() const = 0;  // the rank among this machine's ranks: the GPU to use
  // Sums `count` values over the ranks, in place. `data` is in `device`'s memory (NCCL for CUDA).
  virtual void all_reduce_sum(float* data, size_t count, Device device) = 0;
  virtual void all_reduce_sum(double* data, size_t count) = 0;  // host memory
  // Starts the float sum and returns at once where the library can (MPI_Iallreduce); `data` must
  // stay untouched until wait(). The default runs all_reduce_sum and returns a finished one.
  virtual std::unique_ptr<PendingCollective> start_all_reduce_sum(float* data, size_t count, Device device);
  // Rank `root`'s bytes to every rank, in place.
  virtual void broadcast(void* data, size_t bytes, int root, Device device) = 0;
  // timeout_seconds <= 0: the communicator's own deadline.
  virtual void barrier(double timeout_seconds = 0) = 0;
  // Every rank's bytes (any length), in rank order, on every rank.
  virtual std::vector<std::string> all_gather(const std::string& bytes) = 0;
  // The backend in words ("MPI (Open MPI ...)", "NCCL 2.x over MPI", "single process").
  virtual std::string description() const = 0;
};

struct CommunicatorOptions {
  double timeout_seconds = 60;  // see Communicator
};

// True when this chex was built with MPI (CMake's CHEX_MPI and an MPI found).
bool mpi_compiled();
// The number of ranks the launcher asked for (mpirun's OMPI_COMM_WORLD_SIZE, or PMI_SIZE), 1
// when not launched by one. Needs no MPI.
int launched_ranks();

// The communicator of this job: MPI's world (initialised once; finalised at exit) when built with
// MPI and launched by mpirun, with NCCL for `device` when it is a CUDA device; otherwise one
// rank. Throws, naming what is missing, when several ranks were launched and this build or
// machine cannot join them.
std::shared_ptr<Communicator> init(Device device, const CommunicatorOptions& options = {});

// Ends every rank of the job at once (MPI_Abort) when this process is one of several ranks;
// returns otherwise. For an error on one rank: the others would wait for it in their next
// collective until the timeout, and a normal exit would wait for them in MPI_Finalize.
void abort_job_if_distributed(int exit_code);

// A communicator of one rank: every collective is the identity.
std::shared_ptr<Communicator> single_process();

// Every BatchNorm2d in `model` normalises with the moments of the global batch (summed over
// `comm`'s ranks), forward and backward: N ranks compute what one process computes on the whole
// batch (PyTorch's SyncBatchNorm). Needs layers that call batch_norm2d (DenseNet with
// memory_efficient = false).
void convert_sync_batch_norm(nn::Module& model, std::shared_ptr<Communicator> comm);

struct DataParallelOptions {
  size_t bucket_bytes = 25u << 20;  // gradients all-reduced together, as PyTorch's bucket_cap_mb
  // Before each forward, rank 0's buffers (BN running statistics) to every rank, as PyTorch's
  // DistributedDataParallel; without sync BN the ranks' running statistics would drift apart.
  bool broadcast_buffers = true;
};

// PyTorch's DistributedDataParallel for a chex module. The loss on each rank must be the mean over
// its own share of the global batch (equal shares): the mean of the ranks' gradients is then the
// gradient of the global batch's mean loss, and the same optimizer step follows on every rank.
class DataParallel {
 public:
  // Copies rank 0's parameters and buffers to every rank.
  DataParallel(nn::Module& model, std::shared_ptr<Communicator> comm, DataParallelOptions options = {});

  Tensor forward(const Tensor& input);
  // loss.backward(), starting each bucket's all-reduce as soon as the backward has finished all its
  // gradients (so that communication overlaps the rest of the backward), each gradient scaled by
  // `scale` first (default 1 / size). Then finish_gradients() before the optimizer.
  void backward(const Tensor& loss, double scale = -1);
  // Waits for the all-reduces that backward() started; each gradient becomes the sum divided by
  // `divisor`. backward(loss) then finish_gradients() is synchronize_gradients() overlapped;
  // backward(loss, n_rank) then finish_gradients(n_global) weights unequal shares.
  void finish_gradients(double divisor = 1);
  // After backward, before the optimizer: each parameter's gradient becomes the mean over the ranks,
  // all-reduced in buckets of ~bucket_bytes in reverse parameter order (the order backward finishes
  // them). A parameter without a gradient on every rank counts as zero. `weight`: this rank's share
  // of the global loss when the shares differ (n_rank / n_global for a mean over n_global images
  // of which this rank had n_rank); the gradients are then summed with these weights. Default:
  // 1 / size, the plain mean.
  void synchronize_gradients(double weight = -1);
  // Rank 0's parameters and buffers to every rank (after loading a checkpoint on rank 0 only, say).
  void broadcast_state();
  void broadcast_buffers();

  ~DataParallel();
  DataParallel(const DataParallel&) = delete;
  DataParallel& operator=(const DataParallel&) = delete;

  nn::Module& module() { return model_; }
  Communicator& communicator() { return *comm_; }
  double communication_seconds() const { return communication_seconds_; }  // summed over calls

 private:
  nn::Module& model_;
  std::shared_ptr<Communicator> comm_;
  DataParallelOptions options_;
  double communication_seconds_ = 0;
  struct Overlap;  // the buckets of one backward() in flight
  std::unique_ptr<Overlap> overlap_;
};

}  // namespace chex::distributed

// distributed::init and the one-rank communicator.
#include <cstdlib>
#include <string>

#include "chex/distributed.h"
#include "chex/error.h"
#include "mpi_communicator.h"

namespace chex::distributed {
namespace {

class SingleProcess final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  int local_rank() const override { return 0; }
  void all_reduce_sum(float*, size_t, Device) override {}
  void all_reduce_sum(double*, size_t) override {}
  void broadcast(void*, size_t, int root, Device) override {
    CHEX_CHECK(root == 0, "broadcast from rank ", root, " in a job of one rank");
  }
  void barrier(double) override {}
  std::vector<std::string> all_gather(const std::string& bytes) override { return {bytes}; }
  std::string description() const override { return "single process"; }
};

class Finished final : public PendingCollective {
 public:
  void wait() override {}
};

int env_int(const char* name) {
  const char* value = std::getenv(name);
  return value && *value ? std::atoi(value) : 0;
}

}  // namespace

std::unique_ptr<PendingCollective> Communicator::start_all_reduce_sum(float* data, size_t count, Device device) {
  all_reduce_sum(data, count, device);
  return std::make_unique<Finished>();
}

bool mpi_compiled() {
#if defined(CHEX_HAVE_MPI)
  return true;
#else
  return false;
#endif
}

int launched_ranks() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS"})
    if (const int n = env_int(name); n > 0) return n;
  return 1;
}

void abort_job_if_distributed(int exit_code) {
#if defined(CHEX_HAVE_MPI)
  abort_mpi_job(exit_code);
#else
  (void)exit_code;
#endif
}

std::shared_ptr<Communicator> single_process() { return std::make_shared<SingleProcess>(); }

std::shared_ptr<Communicator> init(Device device, const CommunicatorOptions& options) {
  CHEX_CHECK(options.timeout_seconds > 0, "the collectives' timeout must be positive, got ", options.timeout_seconds);
  const int ranks = launched_ranks();
#if defined(CHEX_HAVE_MPI)
  // Under mpirun, even with one rank: a one-rank NCCL run is the check that the NCCL path works.
  if (ranks == 1 && !std::getenv("OMPI_COMM_WORLD_RANK") && !std::getenv("PMI_RANK")) return single_process();
  std::shared_ptr<Communicator> host = make_mpi_communicator(options);
  if (device.is_cpu()) return host;
#if defined(CHEX_HAVE_CUDA)
  return make_nccl_communicator(std::move(host), device, options);
#else
  CHEX_FAIL("data-parallel training on ", device.str(), " needs a CUDA build of chex");
#endif
#else
  (void)device;
  CHEX_CHECK(ranks == 1, "mpirun started ", ranks,
             " ranks, but this chex was built without MPI, so they cannot train together. Install Open MPI "
             "(apt-get install libopenmpi-dev openmpi-bin), reconfigure with -DCHEX_MPI=ON and rebuild; or run "
             "one process without mpirun");
  return single_process();
#endif
}

}  // namespace chex::distributed

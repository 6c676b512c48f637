#pragma once
// The MPI communicator (builds with MPI only): MPI_COMM_WORLD, host buffers, every collective under
// the watchdog's deadline. The NCCL communicator builds on it for CUDA tensors.
#include <memory>

#include "chex/distributed.h"

namespace chex::distributed {

std::shared_ptr<Communicator> make_mpi_communicator(const CommunicatorOptions& options);
void abort_mpi_job(int exit_code);  // MPI_Abort when MPI is up with several ranks

#if defined(CHEX_HAVE_CUDA)
// NCCL for CUDA buffers on `device`, the MPI communicator `host` for the rest (nccl_communicator.cpp).
std::shared_ptr<Communicator> make_nccl_communicator(std::shared_ptr<Communicator> host, Device device,
                                                     const CommunicatorOptions& options);
#endif

}  // namespace chex::distributed

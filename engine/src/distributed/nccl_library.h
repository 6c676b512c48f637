#pragma once
// NCCL, opened at run time (libnccl.so.2) as cuBLAS is: Debian has no NCCL package, so a build
// cannot link it, and GPU machines carry it with their CUDA stack. The few types and functions
// chex uses are declared here from NCCL's documented C API (nccl.h, NCCL 2.x); the values of the
// enumerations are those of that API, which NCCL keeps stable across 2.x.
#include <cuda_runtime_api.h>

#include <cstddef>

namespace chex::distributed::nccl {

struct OpaqueComm;
using Comm = OpaqueComm*;                       // ncclComm_t
struct UniqueId { char internal[128]; };        // ncclUniqueId (NCCL_UNIQUE_ID_BYTES = 128)
enum Result : int { kSuccess = 0, kInProgress = 7 };  // ncclResult_t (the values chex tests)
enum DataType : int { kFloat32 = 7 };           // ncclDataType_t: ncclFloat32
enum ReduceOp : int { kSum = 0 };               // ncclRedOp_t: ncclSum

struct Library {
  Result (*get_unique_id)(UniqueId*) = nullptr;
  Result (*comm_init_rank)(Comm*, int nranks, UniqueId id, int rank) = nullptr;
  Result (*all_reduce)(const void* send, void* recv, size_t count, DataType, ReduceOp, Comm, cudaStream_t) = nullptr;
  Result (*broadcast)(const void* send, void* recv, size_t count, DataType, int root, Comm, cudaStream_t) = nullptr;
  Result (*comm_destroy)(Comm) = nullptr;
  Result (*comm_abort)(Comm) = nullptr;
  Result (*comm_get_async_error)(Comm, Result*) = nullptr;
  const char* (*error_string)(Result) = nullptr;
};

// Opens libnccl.so.2 on the first call; throws naming the library and the fix when it is missing.
const Library& library();

}  // namespace chex::distributed::nccl

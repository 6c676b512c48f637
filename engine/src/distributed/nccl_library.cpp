#if defined(CHEX_HAVE_MPI) && defined(CHEX_HAVE_CUDA)
#include "nccl_library.h"

#include <dlfcn.h>

#include "chex/error.h"
#include "core/runtime_library.h"

namespace chex::distributed::nccl {
namespace {

template <class Function>
void resolve(void* handle, const char* name, Function& function) {
  detail::resolve_function(handle, "libnccl.so.2", name, "NCCL 2.x is needed", function);
}

Library load() {
  void* handle = dlopen("libnccl.so.2", RTLD_NOW | RTLD_LOCAL);  // kept open for the process's life
  CHEX_CHECK(handle != nullptr, "cannot load NCCL (libnccl.so.2), which data-parallel training on GPUs needs: ",
             dlerror(), ". Install NVIDIA's NCCL 2 (the libnccl2 package of NVIDIA's CUDA repository), or put its "
             "directory on LD_LIBRARY_PATH");
  Library l;
  resolve(handle, "ncclGetUniqueId", l.get_unique_id);
  resolve(handle, "ncclCommInitRank", l.comm_init_rank);
  resolve(handle, "ncclAllReduce", l.all_reduce);
  resolve(handle, "ncclBroadcast", l.broadcast);
  resolve(handle, "ncclCommDestroy", l.comm_destroy);
  resolve(handle, "ncclCommAbort", l.comm_abort);
  resolve(handle, "ncclCommGetAsyncError", l.comm_get_async_error);
  resolve(handle, "ncclGetErrorString", l.error_string);
  return l;
}

}  // namespace

const Library& library() {
  static const Library l = load();
  return l;
}

}  // namespace chex::distributed::nccl
#endif

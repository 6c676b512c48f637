#include "cublas_library.h"

#include <dlfcn.h>

#include <string>

#include "chex/error.h"
#include "core/runtime_library.h"

namespace chex::cuda {
namespace {

#define CHEX_STRINGIFY_(x) #x
#define CHEX_STRINGIFY(x) CHEX_STRINGIFY_(x)

// The soname of the major version compiled against, found the way the dynamic linker would (the
// library's runpath, LD_LIBRARY_PATH, the cache); then the file CMake found at build time.
void* open_library() {
  const std::string soname = "libcublas.so." CHEX_STRINGIFY(CUBLAS_VER_MAJOR);
  if (void* handle = dlopen(soname.c_str(), RTLD_NOW | RTLD_LOCAL)) return handle;
  std::string errors = dlerror();
#ifdef CHEX_CUBLAS_BUILD_PATH
  if (void* handle = dlopen(CHEX_CUBLAS_BUILD_PATH, RTLD_NOW | RTLD_LOCAL)) return handle;
  errors += "; ";
  errors += dlerror();
#endif
  CHEX_FAIL("cannot load cuBLAS (", soname, "), which CUDA tensors need: ", errors,
            ". Install the CUDA toolkit's cuBLAS, or put its directory on LD_LIBRARY_PATH");
}

template <class Function>
void resolve(void* handle, const char* name, Function& function) {
  detail::resolve_function(handle, "cuBLAS", name, "the installed libcublas is older than the toolkit chex was built with",
                           function);
}

CublasLibrary load() {
  void* handle = open_library();  // kept open for the life of the process
  CublasLibrary library;
  resolve(handle, "cublasCreate_v2", library.create);
  resolve(handle, "cublasSetStream_v2", library.set_stream);
  resolve(handle, "cublasSetPointerMode_v2", library.set_pointer_mode);
  resolve(handle, "cublasSetMathMode", library.set_math_mode);
  resolve(handle, "cublasSgemm_v2", library.sgemm);
  resolve(handle, "cublasGetStatusString", library.status_string);
  return library;
}

}  // namespace

const CublasLibrary& cublas() {
  static const CublasLibrary library = load();
  return library;
}

}  // namespace chex::cuda

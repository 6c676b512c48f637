#pragma once
// Libraries opened at run time rather than linked (cuBLAS, NCCL): a function looked up by name in
// the handle dlopen gave, a missing one an error that names the library and what to install.
#include <dlfcn.h>

#include "chex/error.h"

namespace chex::detail {

template <class Function>
void resolve_function(void* handle, const char* library, const char* name, const char* remedy, Function& function) {
  function = reinterpret_cast<Function>(dlsym(handle, name));
  CHEX_CHECK(function != nullptr, library, " has no function ", name, " (", dlerror(), "): ", remedy);
}

}  // namespace chex::detail

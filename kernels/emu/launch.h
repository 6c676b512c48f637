#pragma once
// The emulator's chex::launch: converts the arguments once (CUDA copies them at the launch), then
// runs the kernel on every thread of every block; each thread receives its own copy of the
// arguments, as kernel parameters are per thread.
#include <cstddef>
#include <tuple>
#include <type_traits>
#include <utility>

#include "kernels/emu/device.h"
#include "kernels/emu/kernel_api.h"

namespace chex {

template <typename... Params, typename... Args>
void launch(const char* name, void (*kernel)(Params...), dim3 grid, dim3 block, std::size_t shared_bytes,
            cudaStream_t /*stream: launches run to completion here*/, Args&&... args) {
  static_assert(sizeof...(Params) == sizeof...(Args), "chex::launch: wrong number of kernel arguments");
  const std::tuple<std::remove_cvref_t<Params>...> params(std::forward<Args>(args)...);
  const auto run_thread = [&] { std::apply(kernel, params); };
  using Closure = decltype(run_thread);
  const emu::detail::KernelBody body{[](const void* closure) { (*static_cast<const Closure*>(closure))(); },
                                     &run_thread};
  emu::detail::run_kernel({name, reinterpret_cast<void (*)()>(kernel), grid, block, shared_bytes}, body);
}

// Lets `kernel` use more than 48 KiB of dynamic shared memory (cudaFuncSetAttribute on a GPU).
template <typename... Params>
void set_max_dynamic_shared_bytes(void (*kernel)(Params...), std::size_t bytes) {
  emu::detail::set_max_dynamic_shared_bytes(reinterpret_cast<void (*)()>(kernel), bytes);
}

}  // namespace chex

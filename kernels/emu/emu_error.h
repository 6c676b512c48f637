#pragma once
// How the emulator reports errors: chex::Error, so callers and tests treat it like any other.
#include "chex/error.h"

namespace chex::emu::detail {

template <typename... Parts>
[[noreturn]] void fail(const Parts&... parts) {
  throw Error(::chex::detail::concat(parts...));
}

}  // namespace chex::emu::detail

#pragma once
// Whether this translation unit is built with AddressSanitizer (GCC and Clang spell it differently).
#if defined(__SANITIZE_ADDRESS__)
#define CHEX_EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CHEX_EMU_ASAN 1
#endif
#endif

#ifdef CHEX_EMU_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

#pragma once
// cuDNN 9 marks its legacy (non-graph) API CUDNN_DEPRECATED; the build turns those warnings on
// (CUDNN_WARN_DEPRECATED) so that a new use is seen. Code that calls the legacy API on purpose
// wraps exactly those definitions in these two markers.
#define CHEX_CUDNN_LEGACY_API_BEGIN \
  _Pragma("GCC diagnostic push") _Pragma("GCC diagnostic ignored \"-Wdeprecated-declarations\"")
#define CHEX_CUDNN_LEGACY_API_END _Pragma("GCC diagnostic pop")

#pragma once
// Diagnostics on request: CHEX_LOG=conv (or a comma-separated list of topics, or "all") turns on
// the engine's messages on that topic, printed to stderr. Read once, at the first question.
#include <string_view>

namespace chex {

bool log_enabled(std::string_view topic);
// Whether `list` (CHEX_LOG's value) names `topic`: "conv", "conv,other", "all".
bool log_list_names(std::string_view list, std::string_view topic);

}  // namespace chex

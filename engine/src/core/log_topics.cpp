#include "core/log_topics.h"

#include <cstdlib>
#include <string>

namespace chex {

bool log_list_names(std::string_view list, std::string_view topic) {
  while (!list.empty()) {
    const size_t comma = list.find(',');
    const std::string_view item = list.substr(0, comma);
    if (item == topic || item == "all") return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

bool log_enabled(std::string_view topic) {
  static const std::string list = [] {
    const char* value = std::getenv("CHEX_LOG");
    return std::string(value ? value : "");
  }();
  return log_list_names(list, topic);
}

}  // namespace chex

#pragma once
// Output files written whole or not at all: a temporary beside the target, flushed to disk, then
// renamed over it, so a crash or a full disk leaves the previous version intact.
#include <string>

namespace chex::train {

void write_text_atomically(const std::string& path, const std::string& text);

}  // namespace chex::train

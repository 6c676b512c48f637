#pragma once
// Atomic file writes, for every output a crash or a full disk must not leave half-written
// (weights, checkpoints, prediction CSVs).
#include <functional>
#include <ostream>
#include <string>

namespace chex::io {
// Writes a file through `write` into a temporary name beside `path`, flushes it to disk, then
// renames it over `path`. On any failure (including a full disk) the temporary is removed, `path`
// is left as it was, and chex::Error says what happened.
void write_file_atomically(const std::string& path, const std::function<void(std::ostream&)>& write);
}  // namespace chex::io

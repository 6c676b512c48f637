#pragma once
// Splitting the simple CSV lines of the NIH files and chex's own: no quoting, but header names like
// "OriginalImage[Width,Height]" hold commas inside brackets, which do not split.
#include <string>
#include <vector>

namespace chex::metrics::detail {

std::vector<std::string> split_csv_line(std::string line, bool brackets_group = false);

}  // namespace chex::metrics::detail

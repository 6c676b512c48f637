#pragma once
// The "Finding Labels" field of the NIH label file ("Effusion|Mass", "No Finding"), parsed once
// for the label file (data/) and the reader files of the reader study (metrics/).
#include <string>
#include <string_view>

#include "chex/data/labels.h"

namespace chex::data::detail {

// Throws chex::Error naming origin:line and the name for a label that is none of the 14 nor
// "No Finding", or "No Finding" combined with a finding.
LabelSet parse_findings(std::string_view text, const std::string& origin, int line);

}  // namespace chex::data::detail

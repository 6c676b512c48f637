#pragma once
// The one CSV reader of libchexnet, for the NIH label and box files (data/) and the predictions
// files (metrics/). Splitting one CSV line into fields (RFC 4180 quoting: "a,b" is one field, ""
// inside quotes is a quote). A quoted field may not span lines: the NIH files never do, and a stray
// quote is better reported on its own line than swallowing the rest of the file.
#include <string>
#include <string_view>
#include <vector>

namespace chex::data::detail {

// Throws chex::Error naming origin:line on an unterminated quote or text after a closing quote.
std::vector<std::string> split_csv_fields(std::string_view line, const std::string& origin, int line_number);

// The file's text split into lines without their line endings ("\n" or "\r\n"); a UTF-8 byte-order
// mark at the start is dropped.
std::vector<std::string_view> split_lines(std::string_view text);

// The text without leading and trailing spaces and tabs.
std::string_view trim_blanks(std::string_view s);

// Reads a whole file; errors name the path.
std::string read_text_file(const std::string& path, const char* what = "the file");

}  // namespace chex::data::detail

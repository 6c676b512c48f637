#pragma once
// Where the real NIH test data lives: ../shared/data beside the repository (CHEX_SHARED_DATA
// overrides). Tests that need it call this first and return with a WARN when it is absent: Catch2 v2
// has no SKIP, and a test that silently passes without its data would be a lie.
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>

#include "chex/error.h"

namespace chex::testing {

inline std::optional<std::filesystem::path> shared_data_dir() {
  namespace fs = std::filesystem;
  fs::path dir;
  if (const char* env = std::getenv("CHEX_SHARED_DATA")) {
    dir = env;
  } else {
    const fs::path root = fs::path(__FILE__).parent_path().parent_path().parent_path();  // tests/support/ -> root
    dir = root.parent_path() / "shared" / "data";
  }
  if (!fs::is_directory(dir / "nih-sample") || !fs::is_directory(dir / "nih-meta")) return std::nullopt;
  return dir;
}

// The text of a gzip file, decompressed by gzip(1) (always present on Debian) so the tests need no zlib.
inline std::string gunzip_file(const std::filesystem::path& path) {
  const std::string command = "gzip -dc '" + path.string() + "'";
  FILE* pipe = ::popen(command.c_str(), "r");
  CHEX_CHECK(pipe != nullptr, "cannot run ", command);
  std::string text;
  char buffer[1 << 16];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) text.append(buffer, n);
  CHEX_CHECK(::pclose(pipe) == 0, command, " failed");
  return text;
}

}  // namespace chex::testing

// Returns from the test, saying so, when the shared data is absent.
#define CHEX_REQUIRE_SHARED_DATA(var)                                                                 \
  const auto var##_optional = ::chex::testing::shared_data_dir();                                     \
  if (!var##_optional) {                                                                              \
    WARN("NOT RUN: ../shared/data (nih-sample, nih-meta) is absent; set CHEX_SHARED_DATA to run this test"); \
    return;                                                                                           \
  }                                                                                                   \
  const std::filesystem::path var = *var##_optional

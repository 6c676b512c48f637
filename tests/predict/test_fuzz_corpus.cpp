// Replays the committed fuzz corpus (seeds, and every crasher the fuzzers found) through the same
// entry points as the libFuzzer targets: each input must parse or end in chex::Error, and the
// malformed ones (named crash-*, regress-*) must end in chex::Error.
#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "fuzz/fuzz_one_input.h"

using namespace chex;
namespace fs = std::filesystem;

namespace {

std::vector<uint8_t> read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

struct Replay {
  size_t parsed = 0, rejected = 0;
};

template <typename OneInput>
Replay replay(const std::string& folder, OneInput one_input) {
  const fs::path dir = fs::path(CHEX_FUZZ_CORPUS_DIR) / folder;
  REQUIRE(fs::is_directory(dir));
  Replay r;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    const std::vector<uint8_t> bytes = read_file(entry.path());
    INFO("corpus input " << entry.path().string() << " (" << bytes.size() << " bytes)");
    const auto start = std::chrono::steady_clock::now();
    fuzz::Outcome outcome{};
    REQUIRE_NOTHROW(outcome = one_input(bytes.data(), bytes.size()));
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    CHECK(seconds < 5.0);  // no input may make the parser hang
    (outcome == fuzz::Outcome::Parsed ? r.parsed : r.rejected) += 1;
    // Crashers and hand-made regressions are malformed: they must be rejected, not just survived.
    const std::string name = entry.path().filename().string();
    if (name.rfind("crash-", 0) == 0 || name.rfind("regress-", 0) == 0) CHECK(outcome == fuzz::Outcome::Rejected);
  }
  return r;
}

}  // namespace

TEST_CASE("fuzz corpus: every safetensors input parses or is rejected with chex::Error", "[fuzz][io]") {
  const Replay r = replay("safetensors", fuzz::safetensors_one_input);
  INFO(r.parsed << " parsed, " << r.rejected << " rejected");
  CHECK(r.parsed >= 3);  // the seeds
  CHECK(r.rejected >= 1);
}

TEST_CASE("fuzz corpus: every image input decodes or is rejected with chex::Error", "[fuzz][image]") {
  const Replay r = replay("image", fuzz::image_one_input);
  INFO(r.parsed << " decoded, " << r.rejected << " rejected");
  CHECK(r.parsed >= 11);  // the seeds
  CHECK(r.rejected >= 1);
}

TEST_CASE("fuzz corpus: every DICOM input decodes or is rejected with chex::Error", "[fuzz][image][dicom]") {
  const Replay r = replay("dicom", fuzz::dicom_one_input);
  INFO(r.parsed << " decoded, " << r.rejected << " rejected");
  CHECK(r.parsed >= 19);  // the seeds
  CHECK(r.rejected >= 10);
}

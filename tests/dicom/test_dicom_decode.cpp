// DICOM decoding against pydicom: the files and their expected 8-bit pixels are written at test
// time by make_dicom_cases.py (pixel_array, apply_modality_lut, apply_voi_lut, then the mapping to
// 8 bits of docs/dicom.md). Tolerance: exact, except +-1 where pydicom's fraction lies within 1e-6
// of a rounding tie (the .slack.pgm marks those; the count is printed).
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "chex/data/image.h"
#include "chex/error.h"

using namespace chex;
namespace fs = std::filesystem;

namespace {

const fs::path kCases = CHEX_DICOM_CASES_DIR;

nlohmann::json manifest() {
  std::ifstream in(kCases / "manifest.json");
  REQUIRE(in);
  return nlohmann::json::parse(in);
}

struct Grey {
  int width = 0, height = 0;
  std::vector<uint8_t> pixels;
};

Grey read_pgm(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in);
  std::string magic;
  int maxval = 0;
  Grey g;
  in >> magic >> g.width >> g.height >> maxval;
  in.get();
  REQUIRE(magic == "P5");
  g.pixels.resize(static_cast<size_t>(g.width) * g.height);
  in.read(reinterpret_cast<char*>(g.pixels.data()), static_cast<std::streamsize>(g.pixels.size()));
  REQUIRE(in);
  return g;
}

}  // namespace

TEST_CASE("dicom: every generated file decodes to pydicom's pixels", "[dicom]") {
  const nlohmann::json m = manifest();
  REQUIRE(m["good"].size() >= 18);
  for (const auto& entry : m["good"]) {
    const std::string name = entry["name"];
    INFO("case " << name);
    data::ImageSource source;
    const data::Image image = data::load_image((kCases / "good" / (name + ".dcm")).string(), {}, &source);
    const Grey expected = read_pgm(kCases / "good" / (name + ".expected.pgm"));
    const Grey slack = read_pgm(kCases / "good" / (name + ".slack.pgm"));
    CHECK(source.format == data::ImageFormat::DICOM);
    CHECK(source.channels == 1);
    REQUIRE(image.width == expected.width);
    REQUIRE(image.height == expected.height);
    size_t exact = 0, within_slack = 0, wrong = 0;
    for (int y = 0; y < image.height; ++y)
      for (int x = 0; x < image.width; ++x) {
        const size_t i = static_cast<size_t>(y) * image.width + x;
        const int ours = image.at(x, y, 0), theirs = expected.pixels[i];
        CHECK((image.at(x, y, 1) == ours && image.at(x, y, 2) == ours));  // grey replicated into RGB
        if (ours == theirs) ++exact;
        else if (slack.pixels[i] && std::abs(ours - theirs) <= 1) ++within_slack;
        else if (++wrong <= 3) FAIL_CHECK("pixel (" << x << ", " << y << "): chex " << ours << ", pydicom " << theirs);
      }
    CHECK(wrong == 0);
    if (within_slack) WARN(name << ": " << within_slack << " pixels at a rounding tie differ by 1");
    CHECK(exact + within_slack == expected.pixels.size());
  }
}

TEST_CASE("dicom: bad files are refused with an error naming the file and the problem", "[dicom][errors]") {
  const nlohmann::json m = manifest();
  REQUIRE(m["bad"].size() >= 8);
  for (const auto& entry : m["bad"]) {
    const std::string name = entry["name"], phrase = entry["phrase"];
    const std::string path = (kCases / "bad" / (name + ".dcm")).string();
    INFO("case " << name);
    CHECK_THROWS_WITH(data::load_image(path), Catch::Contains(path) && Catch::Contains(phrase));
  }
}

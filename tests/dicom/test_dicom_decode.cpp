// DICOM decoding against pydicom: the files and their expected 8-bit pixels are written at test
// time by make_dicom_cases.py (pixel_array, apply_modality_lut, apply_voi_lut, then the mapping to
// 8 bits of docs/dicom.md). Tolerance: exact, except +-1 where pydicom's fraction lies within 1e-6
// of a rounding tie (the .slack.pgm marks those; the count is printed).
#include <dcmtk/config/osconfig.h>  // first, as DCMTK requires
#include <dcmtk/dcmdata/dctk.h>
#include <dcmtk/dcmjpeg/djencode.h>
#include <dcmtk/dcmjpeg/djrplol.h>
#include <dcmtk/dcmjpls/djencode.h>
#include <dcmtk/dcmjpls/djrparam.h>

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <mutex>
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
  REQUIRE(m["bad"].size() >= 10);
  for (const auto& entry : m["bad"]) {
    const std::string name = entry["name"], phrase = entry["phrase"];
    const std::string path = (kCases / "bad" / (name + ".dcm")).string();
    INFO("case " << name);
    CHECK_THROWS_WITH(data::load_image(path), Catch::Contains(path) && Catch::Contains(phrase));
  }
}

// JPEG lossless (process 14, first-order prediction) and lossless JPEG-LS: no encoder exists in
// Debian's Python packages, so DCMTK's own encoders compress some of the pydicom files here. The
// compression is lossless, so chex must still decode pydicom's expected pixels of the original:
// this checks chex's handling of what DCMTK's decoders hand back (sample size, sign, OB/OW).
TEST_CASE("dicom: JPEG lossless and JPEG-LS files, compressed by DCMTK, decode to the original's pixels",
          "[dicom]") {
  static std::once_flag once;
  std::call_once(once, [] {
    DJEncoderRegistration::registerCodecs();
    DJLSEncoderRegistration::registerCodecs();
  });
  const fs::path out = kCases / "compressed";
  fs::create_directories(out);
  const DJ_RPLossless jpeg_lossless;
  const DJLSRepresentationParameter jpeg_ls(0, OFTrue);
  const std::vector<std::pair<E_TransferSyntax, const DcmRepresentationParameter*>> syntaxes = {
      {EXS_JPEGProcess14SV1, &jpeg_lossless}, {EXS_JPEGLSLossless, &jpeg_ls}};
  for (const char* name : {"mono2_8bit_minmax", "mono2_12bit_window", "mono1_16bit_minmax",
                           "mono2_12bit_voi_lut", "mono1_12bit_signed_rescale_minmax"}) {
    for (const auto& [syntax, parameters] : syntaxes) {
      // DCMTK's JPEG-LS encoder (CharLS) asserts on signed samples narrower than their 16-bit words.
      if (syntax == EXS_JPEGLSLossless && std::string(name).find("signed") != std::string::npos) continue;
      const std::string label = std::string(name) + " as " + DcmXfer(syntax).getXferName();
      INFO(label);
      DcmFileFormat file;
      REQUIRE(file.loadFile((kCases / "good" / (std::string(name) + ".dcm")).c_str()).good());
      REQUIRE(file.getDataset()->chooseRepresentation(syntax, parameters).good());
      REQUIRE(file.getDataset()->canWriteXfer(syntax));
      const fs::path path = out / (std::string(name) + "." + std::to_string(syntax) + ".dcm");
      REQUIRE(file.saveFile(path.c_str(), syntax).good());

      data::ImageSource source;
      const data::Image image = data::load_image(path.string(), {}, &source);
      const Grey expected = read_pgm(kCases / "good" / (std::string(name) + ".expected.pgm"));
      REQUIRE(image.width == expected.width);
      REQUIRE(image.height == expected.height);
      size_t wrong = 0;
      for (int y = 0; y < image.height; ++y)
        for (int x = 0; x < image.width; ++x)
          wrong += image.at(x, y, 0) != expected.pixels[static_cast<size_t>(y) * image.width + x];
      CHECK(wrong == 0);
    }
  }
}

// data::decode_image: conversion to RGB as PIL does it, and hostile files refused with clear errors.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "chex/data/image.h"
#include "chex/error.h"
#include "predict/image_files.h"

using namespace chex;
using testing::Bytes;
using testing::make_png;

namespace {

data::Image decode(const Bytes& b, data::ImageSource* source = nullptr, const data::DecodeLimits& limits = {}) {
  return data::decode_image(b, "test.png", limits, source);
}

Bytes read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in);
  return Bytes(std::istreambuf_iterator<char>(in), {});
}

std::string seed(const std::string& name) { return std::string(CHEX_FUZZ_CORPUS_DIR) + "/image/" + name; }

}  // namespace

TEST_CASE("decode: every PNG pixel format becomes RGB as PIL's convert('RGB') makes it", "[image]") {
  data::ImageSource source;
  SECTION("8-bit grey is replicated") {
    const data::Image img = decode(make_png(2, 1, 8, 0, {7, 200}), &source);
    CHECK(img.pixels == Bytes{7, 7, 7, 200, 200, 200});
    CHECK(source.channels == 1);
    CHECK(source.bits_per_sample == 8);
  }
  SECTION("grey + alpha drops the alpha, without compositing") {
    CHECK(decode(make_png(2, 1, 8, 4, {7, 0, 200, 128})).pixels == Bytes{7, 7, 7, 200, 200, 200});
  }
  SECTION("RGBA drops the alpha") {
    CHECK(decode(make_png(1, 1, 8, 6, {1, 2, 3, 0})).pixels == Bytes{1, 2, 3});
  }
  SECTION("16-bit grey clips at 255, as PIL's mode 'I' does") {
    const data::Image img = decode(make_png(3, 1, 16, 0, {0x00, 0x64, 0x01, 0x2C, 0xFF, 0xFF}), &source);
    CHECK(img.pixels == Bytes{100, 100, 100, 255, 255, 255, 255, 255, 255});
    CHECK(source.bits_per_sample == 16);
  }
  SECTION("16-bit RGB and grey + alpha keep the high byte") {
    CHECK(decode(make_png(1, 1, 16, 2, {0x01, 0x2C, 0xAB, 0xCD, 0x00, 0xFF})).pixels == Bytes{0x01, 0xAB, 0x00});
    CHECK(decode(make_png(1, 1, 16, 4, {0x12, 0x34, 0x56, 0x78})).pixels == Bytes{0x12, 0x12, 0x12});
  }
  SECTION("1-bit grey becomes 0 or 255") {
    CHECK(decode(make_png(3, 1, 1, 0, {0b10100000})).pixels == Bytes{255, 255, 255, 0, 0, 0, 255, 255, 255});
  }
}

TEST_CASE("decode: JPEG seeds decode (grey, colour, progressive)", "[image]") {
  for (const char* name : {"seed-grey-16x16.jpg", "seed-rgb-16x16.jpg", "seed-progressive-16x16.jpg"}) {
    INFO(name);
    data::ImageSource source;
    const data::Image img = data::decode_image(read_file(seed(name)), name, {}, &source);
    CHECK(img.width == 16);
    CHECK(img.height == 16);
    CHECK(source.format == data::ImageFormat::JPEG);
  }
}

TEST_CASE("decode: hostile and broken files are refused with an error naming the file", "[image][errors]") {
  auto fails_with = [](const Bytes& b, const std::string& text, const data::DecodeLimits& limits = {}) {
    INFO("expecting: " << text);
    CHECK_THROWS_WITH(data::decode_image(b, "bad.png", limits), Catch::Contains("bad.png") && Catch::Contains(text));
  };
  const Bytes good = make_png(4, 4, 8, 0, Bytes(16, 9));
  REQUIRE_NOTHROW(decode(good));

  fails_with({}, "empty");
  fails_with({'G', 'I', 'F', '8', '9', 'a', 0, 0}, "not a PNG, JPEG or DICOM file");
  fails_with({'B', 'M', 1, 2, 3, 4}, "not a PNG, JPEG or DICOM file");
  // Truncated anywhere: after the signature, inside IHDR, inside IDAT, just before IEND.
  for (size_t cut : {size_t{8}, size_t{20}, good.size() - 20, good.size() - 12, good.size() - 1}) {
    INFO("cut at " << cut << " of " << good.size());
    fails_with(Bytes(good.begin(), good.begin() + cut), "truncated");
  }
  // A header that lies: more pixels than the data holds, or more than any file this size can hold.
  fails_with(make_png(4, 4, 8, 0, Bytes(16, 9), 4, 8), "cannot decode");
  fails_with(make_png(4, 4, 8, 0, Bytes(16, 9), 100000, 100000), "larger than the limit");
  fails_with(make_png(4, 4, 8, 0, Bytes(16, 9), 16000, 16000), "more than the limit");
  fails_with(make_png(4, 4, 8, 0, Bytes(16, 9), 4000, 4000), "more than a file of");
  data::DecodeLimits small;
  small.max_side = 3;
  fails_with(good, "larger than the limit of 3", small);
  // An IHDR with width 0 (make_png writes the real size when asked for 0, so patch it).
  Bytes zero = good;
  std::fill_n(zero.begin() + 16, 4, 0);
  fails_with(zero, "bad.png");

  // JPEG: cut before the end-of-image marker, or with no scan at all.
  const Bytes jpeg = read_file(seed("seed-grey-16x16.jpg"));
  REQUIRE_NOTHROW(data::decode_image(jpeg, "ok.jpg"));
  fails_with(Bytes(jpeg.begin(), jpeg.end() - 2), "truncated");
  fails_with(Bytes(jpeg.begin(), jpeg.begin() + jpeg.size() / 2), "truncated");
  fails_with({0xFF, 0xD8, 0xFF, 0xD9}, "before any image data");
  fails_with({0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x40, 1, 2}, "truncated or corrupt");
}

TEST_CASE("decode: a JPEG with too many scans is refused before decoding", "[image][errors]") {
  const Bytes jpeg = read_file(seed("seed-progressive-16x16.jpg"));
  data::DecodeLimits limits;
  limits.max_jpeg_scans = 2;
  CHECK_THROWS_WITH(data::decode_image(jpeg, "scans.jpg", limits), Catch::Contains("more than 2 scans"));
}

TEST_CASE("decode: load_image names a missing or unreadable file", "[image][errors]") {
  CHECK_THROWS_WITH(data::load_image("/nonexistent/x.png"), Catch::Contains("/nonexistent/x.png"));
  CHECK_THROWS_WITH(data::load_image(std::filesystem::temp_directory_path().string()), Catch::Contains("cannot"));
}

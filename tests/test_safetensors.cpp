#include <catch2/catch.hpp>

#include <sys/resource.h>

#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "chex/error.h"
#include "chex/io/safetensors.h"
#include "chex/random.h"

using namespace chex;
namespace fs = std::filesystem;

namespace {
std::vector<char> file_image(const std::string& header, size_t data_bytes) {
  std::vector<char> bytes(8 + header.size() + data_bytes, 0);
  const uint64_t n = header.size();
  std::memcpy(bytes.data(), &n, 8);
  std::memcpy(bytes.data() + 8, header.data(), header.size());
  return bytes;
}
}  // namespace

TEST_CASE("safetensors: save then load round-trips names, shapes, values and metadata", "[io]") {
  const fs::path dir = fs::temp_directory_path() / "chex_test_safetensors";
  fs::create_directories(dir);
  const std::string path = (dir / "roundtrip.safetensors").string();
  Generator gen(5);
  Tensor a = Tensor::randn({2, 3, 4}, gen), b = Tensor::randn({7}, gen), scalar = Tensor::full({}, 3.f);
  io::save_safetensors(path, {{"features.conv0.weight", a}, {"classifier.bias", b}, {"step", scalar}},
                       {{"format", "pt"}});
  const io::SafetensorsFile f = io::load_safetensors(path);
  REQUIRE(f.tensors.size() == 3);
  CHECK(f.metadata.at("format") == "pt");
  CHECK(f.tensors[0].first == "features.conv0.weight");
  CHECK(f.tensors[0].second.shape() == Shape{2, 3, 4});
  CHECK(f.tensors[0].second.to_vector() == a.to_vector());
  CHECK(f.tensors[1].second.to_vector() == b.to_vector());
  CHECK(f.tensors[2].second.shape() == Shape{});
  CHECK(f.tensors[2].second.item() == 3.f);
  // Nothing temporary is left beside it.
  int files = 0;
  for (const auto& entry : fs::directory_iterator(dir)) files += entry.path().filename() == "roundtrip.safetensors" ? 1 : 100;
  CHECK(files == 1);
  fs::remove_all(dir);
}

TEST_CASE("safetensors: F16, BF16 and I64 tensors load as float32", "[io]") {
  // 1.0 and -2.0 in each encoding.
  const std::string header =
      R"({"h":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},)"
      R"("b":{"dtype":"BF16","shape":[2],"data_offsets":[4,8]},)"
      R"("n":{"dtype":"I64","shape":[],"data_offsets":[8,16]}})";
  std::vector<char> bytes = file_image(header, 16);
  char* data = bytes.data() + 8 + header.size();
  const uint16_t h[2] = {0x3c00, 0xc000}, bf[2] = {0x3f80, 0xc000};
  const int64_t n = 12345;
  std::memcpy(data, h, 4);
  std::memcpy(data + 4, bf, 4);
  std::memcpy(data + 8, &n, 8);
  const io::SafetensorsFile f = io::parse_safetensors(bytes, "mixed");
  CHECK(f.tensors[0].second.to_vector() == std::vector<float>{1.f, -2.f});
  CHECK(f.tensors[1].second.to_vector() == std::vector<float>{1.f, -2.f});
  CHECK(f.tensors[2].second.item() == 12345.f);
  CHECK(f.source_dtypes.at("n") == "I64");
}

TEST_CASE("safetensors: malformed files get a clear error naming the file", "[io][errors]") {
  auto fails_with = [](const std::vector<char>& bytes, const std::string& text) {
    INFO("expecting: " << text);
    CHECK_THROWS_WITH(io::parse_safetensors(bytes, "bad.safetensors"),
                      Catch::Contains("bad.safetensors") && Catch::Contains(text));
  };
  fails_with({1, 2, 3}, "truncated");
  std::vector<char> long_header = file_image("{}", 0);
  const uint64_t huge = 1ull << 40;
  std::memcpy(long_header.data(), &huge, 8);
  fails_with(long_header, "runs past the end");
  fails_with(file_image("{not json", 0), "not valid JSON");
  fails_with(file_image("[1,2]", 0), "JSON object");
  fails_with(file_image(R"({"w":{"dtype":"Q8","shape":[1],"data_offsets":[0,1]}})", 1), "unsupported dtype 'Q8'");
  fails_with(file_image(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 8), "outside the data section");
  fails_with(file_image(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}})", 16), "needs 12");
  fails_with(file_image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                        R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 12),
             "overlap");
  fails_with(file_image(R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4), "invalid size");
  fails_with(file_image(R"({"w":{"dtype":"F32"}})", 0), "dtype, shape and data_offsets");
  CHECK_THROWS_WITH(io::load_safetensors("/nonexistent/x.safetensors"), Catch::Contains("/nonexistent/x.safetensors"));
}

TEST_CASE("safetensors: a failed write leaves the previous file untouched", "[io][errors]") {
  const fs::path dir = fs::temp_directory_path() / "chex_test_atomic";
  fs::create_directories(dir);
  const std::string path = (dir / "model.safetensors").string();
  io::save_safetensors(path, {{"w", Tensor::ones({4})}});
  // The same name twice is refused before anything is written.
  CHECK_THROWS_WITH(io::save_safetensors(path, {{"w", Tensor::zeros({4})}, {"w", Tensor::zeros({4})}}),
                    Catch::Contains("appears twice"));
  CHECK(io::load_safetensors(path).tensors[0].second.to_vector() == std::vector<float>(4, 1.f));
  // A disk that fills up mid-write, simulated with a file-size limit smaller than the file: the
  // write fails, the error names the file, and the previous version survives.
  {
    struct rlimit old_limit {};
    REQUIRE(getrlimit(RLIMIT_FSIZE, &old_limit) == 0);
    auto old_handler = std::signal(SIGXFSZ, SIG_IGN);  // get EFBIG instead of being killed
    struct rlimit small = old_limit;
    small.rlim_cur = 1024;
    REQUIRE(setrlimit(RLIMIT_FSIZE, &small) == 0);
    bool threw = false;
    std::string message;
    try {
      io::save_safetensors(path, {{"w", Tensor::zeros({1 << 16})}});
    } catch (const Error& e) {
      threw = true;
      message = e.what();
    }
    setrlimit(RLIMIT_FSIZE, &old_limit);
    std::signal(SIGXFSZ, old_handler);
    CHECK(threw);
    CHECK_THAT(message, Catch::Contains(path));
    CHECK(io::load_safetensors(path).tensors[0].second.to_vector() == std::vector<float>(4, 1.f));
    int files = 0;
    for ([[maybe_unused]] const auto& entry : fs::directory_iterator(dir)) ++files;
    CHECK(files == 1);  // the temporary was removed
  }
  // Device files and folders are never replaced.
  CHECK_THROWS_WITH(io::save_safetensors("/dev/null", {{"w", Tensor::ones({1})}}), Catch::Contains("not a regular file"));
  CHECK_THROWS_WITH(io::save_safetensors(dir.string(), {{"w", Tensor::ones({1})}}), Catch::Contains("not a regular file"));
  fs::remove_all(dir);
}

#include "chex/io/safetensors.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "chex/error.h"
#include "chex/io/atomic_file.h"

namespace chex::io {
namespace {

static_assert(std::endian::native == std::endian::little, "safetensors loading assumes a little-endian host");

size_t stored_size(const std::string& dtype) {
  if (dtype == "F32" || dtype == "I32") return 4;
  if (dtype == "F16" || dtype == "BF16") return 2;
  if (dtype == "I64") return 8;
  return 0;
}

// Converts `count` stored elements to float32.
void convert(const std::string& dtype, const char* src, float* dst, int64_t count) {
  for (int64_t i = 0; i < count; ++i) {
    if (dtype == "F32") {
      std::memcpy(&dst[i], src + 4 * i, 4);
    } else if (dtype == "F16" || dtype == "BF16") {
      uint16_t h;
      std::memcpy(&h, src + 2 * i, 2);
      dst[i] = dtype == "F16" ? half_to_float(h) : bfloat16_to_float(h);
    } else if (dtype == "I32") {
      int32_t v;
      std::memcpy(&v, src + 4 * i, 4);
      dst[i] = static_cast<float>(v);
    } else {
      int64_t v;
      std::memcpy(&v, src + 8 * i, 8);
      dst[i] = static_cast<float>(v);
    }
  }
}

}  // namespace

SafetensorsFile parse_safetensors(const std::vector<char>& bytes, const std::string& origin) {
  const std::string where = "safetensors file '" + origin + "'";
  CHEX_CHECK(bytes.size() >= 8, where, " is truncated: ", bytes.size(),
             " bytes, fewer than the 8-byte header length; copy or download it again");
  uint64_t header_length = 0;
  std::memcpy(&header_length, bytes.data(), 8);
  CHEX_CHECK(header_length <= bytes.size() - 8, where, ": the header length ", header_length,
             " runs past the end of the file (", bytes.size(),
             " bytes): the file is truncated or not safetensors; copy or download it again, or convert a PyTorch "
             "checkpoint with apps/convert_checkpoint.py");
  const char* header_begin = bytes.data() + 8;
  const size_t data_begin = 8 + header_length;
  const size_t data_size = bytes.size() - data_begin;

  nlohmann::ordered_json header;  // keeps the file's tensor order
  try {
    header = nlohmann::ordered_json::parse(header_begin, header_begin + header_length);
  } catch (const nlohmann::json::exception& e) {
    CHEX_FAIL(where, ": the header is not valid JSON (", e.what(), ")");
  }
  CHEX_CHECK(header.is_object(), where, ": the header must be a JSON object");

  SafetensorsFile file;
  struct Span {
    uint64_t begin, end;
    std::string name;
  };
  std::vector<Span> spans;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      CHEX_CHECK(entry.is_object(), where, ": __metadata__ must be an object of strings");
      for (const auto& [key, value] : entry.items()) {
        CHEX_CHECK(value.is_string(), where, ": __metadata__ value of '", key, "' is not a string");
        file.metadata[key] = value.get<std::string>();
      }
      continue;
    }
    const std::string what = where + ", tensor '" + name + "'";
    CHEX_CHECK(entry.is_object() && entry.contains("dtype") && entry.contains("shape") && entry.contains("data_offsets"),
               what, ": each entry needs dtype, shape and data_offsets");
    CHEX_CHECK(entry["dtype"].is_string(), what, ": dtype is not a string");
    const std::string dtype = entry["dtype"].get<std::string>();
    const size_t element_size = stored_size(dtype);
    CHEX_CHECK(element_size != 0, what, ": unsupported dtype '", dtype, "' (supported: F32, F16, BF16, I64, I32)");
    const auto& shape_json = entry["shape"];
    CHEX_CHECK(shape_json.is_array() && shape_json.size() <= 8, what, ": shape must be an array of at most 8 sizes");
    Shape shape;
    uint64_t count = 1;
    // The product of the sizes, zeros counted as ones, bounded before each multiplication: a shape
    // like [2^39, 2^39] (or one with a zero among huge sizes) would otherwise overflow 64 bits.
    uint64_t extent = 1;
    constexpr uint64_t kLimit = uint64_t{1} << 40;
    for (const auto& s : shape_json) {
      CHEX_CHECK(s.is_number_unsigned() && s.get<uint64_t>() < kLimit, what, ": invalid size in shape ",
                 shape_json.dump());
      const uint64_t size = s.get<uint64_t>();
      CHEX_CHECK(extent <= kLimit / std::max<uint64_t>(size, 1), what, ": shape ", shape_json.dump(),
                 " is implausibly large");
      extent *= std::max<uint64_t>(size, 1);
      count *= size;
      shape.push_back(static_cast<int64_t>(size));
    }
    const auto& offsets = entry["data_offsets"];
    CHEX_CHECK(offsets.is_array() && offsets.size() == 2 && offsets[0].is_number_unsigned() &&
                   offsets[1].is_number_unsigned(),
               what, ": data_offsets must be two non-negative integers");
    const uint64_t begin = offsets[0].get<uint64_t>(), end = offsets[1].get<uint64_t>();
    CHEX_CHECK(begin <= end && end <= data_size, what, ": data_offsets [", begin, ", ", end,
               ") lie outside the data section of ", data_size,
               " bytes: the file is truncated or damaged; copy or download it again");
    CHEX_CHECK(end - begin == count * element_size, what, ": data_offsets cover ", end - begin, " bytes but shape ",
               shape_str(shape), " of ", dtype, " needs ", count * element_size);
    spans.push_back({begin, end, name});

    Tensor t = Tensor::empty(shape);
    convert(dtype, bytes.data() + data_begin + begin, t.data(), static_cast<int64_t>(count));
    file.tensors.emplace_back(name, t);
    file.source_dtypes[name] = dtype;
  }
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) { return a.begin < b.begin; });
  for (size_t i = 1; i < spans.size(); ++i)
    CHEX_CHECK(spans[i].begin >= spans[i - 1].end || spans[i].begin == spans[i].end, where, ": the data of tensors '",
               spans[i - 1].name, "' and '", spans[i].name, "' overlap");
  return file;
}

SafetensorsFile load_safetensors(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  CHEX_CHECK(in, "cannot open the safetensors file '", path, "': ", std::strerror(errno));
  const std::streamsize size = in.tellg();
  in.seekg(0);
  std::vector<char> bytes(static_cast<size_t>(std::max<std::streamsize>(size, 0)));
  CHEX_CHECK(in.read(bytes.data(), size), "cannot read safetensors file '", path, "'");
  return parse_safetensors(bytes, path);
}

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  std::vector<Tensor> host;
  for (const auto& [name, tensor] : tensors) {
    CHEX_CHECK(!header.contains(name), "save_safetensors '", path, "': the name '", name, "' appears twice");
    CHEX_CHECK(tensor.defined() && tensor.dtype() == DType::F32, "save_safetensors '", path, "': tensor '", name,
               "' must be a defined float32 tensor");
    host.push_back(tensor.detach().to(Device::cpu()).contiguous());
    const uint64_t bytes = static_cast<uint64_t>(tensor.numel()) * 4;
    header[name] = {{"dtype", "F32"}, {"shape", tensor.shape()}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // pad so the data section starts 8-byte aligned
  write_file_atomically(path, [&](std::ostream& out) {
    const uint64_t length = text.size();
    out.write(reinterpret_cast<const char*>(&length), 8);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (const Tensor& t : host) out.write(reinterpret_cast<const char*>(t.data()), t.numel() * 4);
  });
}

}  // namespace chex::io

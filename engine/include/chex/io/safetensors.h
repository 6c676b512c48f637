#pragma once
// The safetensors format: an 8-byte little-endian header length, a JSON header mapping each name to
// {dtype, shape, data_offsets: [begin, end)} relative to the data section, then the raw
// little-endian data. Weights converted from torchvision load directly by their state_dict names.
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "chex/tensor.h"

namespace chex::io {

struct SafetensorsFile {
  std::vector<std::pair<std::string, Tensor>> tensors;  // in file order, float32 on the CPU
  std::map<std::string, std::string> metadata;          // the optional "__metadata__" entry
  std::map<std::string, std::string> source_dtypes;     // name -> dtype as stored ("F16", "I64", ...)
};

// Reads a file. F32, F16 and BF16 tensors are converted to float32; integer tensors (I64, I32 —
// e.g. num_batches_tracked) are converted to float32 too. Any malformation (truncation, a header
// length past the end, bad JSON, unknown dtype, offsets out of range, overlapping or not matching
// the shape) throws chex::Error naming the file and the problem.
SafetensorsFile load_safetensors(const std::string& path);
// Parses an in-memory image of a file (what load_safetensors reads); `origin` names it in errors.
SafetensorsFile parse_safetensors(const std::vector<char>& bytes, const std::string& origin);

// Writes float32 tensors atomically (a temporary file in the same folder, then rename), so a crash
// or a full disk never leaves a half-written file under `path`.
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace chex::io

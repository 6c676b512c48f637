#pragma once
// One fuzz input through one parser: shared by the libFuzzer targets (tests/fuzz/fuzz_*.cpp, built
// with -DCHEX_FUZZ=ON) and by the regression test that replays the committed corpus in every build.
// A malformed input must end in chex::Error; anything else (a crash, another exception, a hang)
// is a bug.
#include <cstddef>
#include <cstdint>

namespace chex::fuzz {

enum class Outcome { Parsed, Rejected };  // Rejected: a chex::Error was thrown

// chex::io::parse_safetensors on the bytes.
Outcome safetensors_one_input(const uint8_t* data, size_t size);
// chex::data::decode_image with the default limits, then the predict pipeline's resize and
// normalisation when it decodes.
Outcome image_one_input(const uint8_t* data, size_t size);
// The same on a DICOM Part 10 file whose bytes after the 128-byte preamble and "DICM" are `data`:
// every input reaches DCMTK and chex's DICOM checks instead of failing the signature test.
Outcome dicom_one_input(const uint8_t* data, size_t size);

}  // namespace chex::fuzz

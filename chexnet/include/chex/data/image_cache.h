#pragma once
// --cache DIR: every image decoded and resized once, stored as 8-bit pixels in one memory-mapped
// file, so that later epochs never decode (decoding a 1024x1024 PNG costs milliseconds; copying
// its 224x224 pixels out of the page cache, microseconds).
//
// Images are stored at the training size, already resized exactly as chex predict resizes them,
// rather than at 256: the training input is a direct Resize((S, S)) of the original (no crop), and
// a second resize from 256 would give different pixels. A cache therefore belongs to one
// --image-size; another size rebuilds it. Grey images (R = G = B, the NIH norm) are stored as one
// channel, a third of the space: 112,120 images at 224 take ~5.6 GB instead of ~16.9 GB.
//
// File layout (little-endian; all of it written through a temporary name and renamed):
//   header   64 bytes: magic "CHEXIMGC", version, image size, the resize's name
//   pixels   one 64-byte-aligned block per image, size * size * channels bytes
//   index    per image: name, source file size and mtime, channels (0: unreadable), offset, error
//   trailer  32 bytes: index offset, index bytes, image count, magic "CHEXEND1"
// A file that is truncated, of another version or size, or whose images have changed on disk since
// is not used: open_or_build says why and builds it again.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "chex/data/image.h"
#include "chex/data/nih_dataset.h"

namespace chex::data {

class ImageCache {
 public:
  static constexpr const char* kFileName = "chex_images.cache";
  static constexpr uint32_t kVersion = 1;

  struct Entry {
    std::string name;
    int64_t source_bytes = 0;     // the original file's size and modification time, to notice
    int64_t source_mtime_ns = 0;  // an image replaced on disk since the cache was built
    int channels = 0;             // 1 (grey, R = G = B) or 3; 0: it could not be read
    uint64_t offset = 0;          // of its pixels in the file
    std::string error;            // why it could not be read
  };

  using Notice = std::function<void(const std::string&)>;

  // Opens DIR/chex_images.cache if it was built for these samples at this size, else builds it
  // (with `workers` threads decoding), telling `notice` why and how long it took.
  static std::shared_ptr<const ImageCache> open_or_build(const std::string& dir, const std::vector<Sample>& samples,
                                                         int image_size, int workers, const Notice& notice = {});
  // Builds the cache file at `path` (atomically: a reader never sees a partial file).
  static void build(const std::string& path, const std::vector<Sample>& samples, int image_size, int workers);
  // Maps an existing cache file; nullptr with the reason in `why_not` if it is missing or malformed.
  static std::shared_ptr<const ImageCache> open(const std::string& path, std::string* why_not = nullptr);

  ImageCache(const ImageCache&) = delete;
  ImageCache& operator=(const ImageCache&) = delete;
  ~ImageCache();

  const std::string& path() const { return path_; }
  int image_size() const { return image_size_; }
  const std::vector<Entry>& entries() const { return entries_; }
  const Entry* find(const std::string& name) const;
  // "" when the cache holds every sample at this size from the same source files; else why not.
  std::string mismatch(const std::vector<Sample>& samples, int image_size) const;
  // The stored pixels as an RGB image. An image that could not be read when the cache was built
  // throws chex::Error with the original message, as decoding it would.
  Image load(const std::string& name) const;

 private:
  ImageCache() = default;

  std::string path_;
  int image_size_ = 0;
  const uint8_t* map_ = nullptr;
  size_t map_bytes_ = 0;
  std::vector<Entry> entries_;
  std::unordered_map<std::string, size_t> by_name_;
};

}  // namespace chex::data

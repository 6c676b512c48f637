#include "chex/data/image_cache.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <thread>

#include "chex/data/training_input.h"
#include "chex/error.h"
#include "chex/io/atomic_file.h"

namespace chex::data {
namespace fs = std::filesystem;
namespace {

constexpr char kMagic[8] = {'C', 'H', 'E', 'X', 'I', 'M', 'G', 'C'};
constexpr char kEndMagic[8] = {'C', 'H', 'E', 'X', 'E', 'N', 'D', '1'};
constexpr size_t kHeaderBytes = 64, kTrailerBytes = 32, kAlign = 64;
// Names the resize the pixels came from: a change to the training input's resize must change this.
constexpr char kPipeline[32] = "pillow-bilinear-rgb8";

struct Source {
  int64_t bytes = -1, mtime_ns = 0;
};

Source source_of(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return {};
  return {static_cast<int64_t>(st.st_size), static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec};
}

// Sequential little-endian writing that knows its position (the stream may not).
class Writer {
 public:
  explicit Writer(std::ostream& out) : out_(out) {}
  void bytes(const void* data, size_t n) {
    out_.write(static_cast<const char*>(data), static_cast<std::streamsize>(n));
    CHEX_CHECK(out_, "writing the image cache failed (disk full?); free some space, give --cache a folder on a "
                     "disk with room, or train without --cache");
    position_ += n;
  }
  template <typename T>
  void value(T v) { bytes(&v, sizeof v); }
  void string(const std::string& s) {
    value(static_cast<uint32_t>(s.size()));
    bytes(s.data(), s.size());
  }
  void pad_to(size_t alignment) {
    static constexpr char zeros[kAlign] = {};
    bytes(zeros, (alignment - position_ % alignment) % alignment);
  }
  uint64_t position() const { return position_; }

 private:
  std::ostream& out_;
  uint64_t position_ = 0;
};

// Bounds-checked reading of the mapped file: a damaged cache is reported, never read past its end.
class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool ok() const { return ok_; }
  template <typename T>
  T value() {
    T v{};
    if (take(sizeof v)) std::memcpy(&v, data_ + position_ - sizeof v, sizeof v);
    return v;
  }
  std::string string() {
    const uint32_t n = value<uint32_t>();
    if (!take(n)) return {};
    return std::string(reinterpret_cast<const char*>(data_ + position_ - n), n);
  }
  bool at_end() const { return position_ == size_; }

 private:
  bool take(size_t n) {
    if (!ok_ || n > size_ - position_) return ok_ = false;
    position_ += n;
    return true;
  }
  const uint8_t* data_;
  size_t size_;
  size_t position_ = 0;
  bool ok_ = true;
};

bool is_grey(const Image& image) {
  for (size_t i = 0; i < image.pixels.size(); i += Image::kChannels)
    if (image.pixels[i] != image.pixels[i + 1] || image.pixels[i] != image.pixels[i + 2]) return false;
  return true;
}

}  // namespace

void ImageCache::build(const std::string& path, const std::vector<Sample>& samples, int image_size, int workers) {
  CHEX_CHECK(image_size > 0, "the image size must be positive, not ", image_size);
  const size_t n = samples.size();
  const size_t threads = static_cast<size_t>(std::max(1, workers));
  io::write_file_atomically(path, [&](std::ostream& out) {
    Writer w(out);
    w.bytes(kMagic, sizeof kMagic);
    w.value(kVersion);
    w.value(static_cast<uint32_t>(image_size));
    w.bytes(kPipeline, sizeof kPipeline);
    w.pad_to(kHeaderBytes);

    std::vector<Entry> entries(n);
    std::vector<uint8_t> grey(static_cast<size_t>(image_size) * image_size);
    // Decode a chunk in parallel, then write it in order: memory stays bounded and the file's
    // layout does not depend on which thread finished first.
    const size_t chunk = 8 * threads;
    for (size_t start = 0; start < n; start += chunk) {
      const size_t count = std::min(chunk, n - start);
      std::vector<Image> images(count);
      std::atomic<size_t> next{0};
      auto work = [&] {
        for (size_t i; (i = next++) < count;) {
          Entry& e = entries[start + i];
          const Sample& s = samples[start + i];
          e.name = s.image;
          const Source source = source_of(s.path);
          e.source_bytes = source.bytes;
          e.source_mtime_ns = source.mtime_ns;
          try {
            images[i] = load_resized(s.path, image_size);
          } catch (const std::exception& error) {
            e.error = error.what();
          }
        }
      };
      {
        std::vector<std::jthread> pool;
        for (size_t t = 1; t < std::min(threads, count); ++t) pool.emplace_back(work);
        work();
      }
      for (size_t i = 0; i < count; ++i) {
        Entry& e = entries[start + i];
        if (!e.error.empty()) continue;
        const Image& image = images[i];
        e.channels = is_grey(image) ? 1 : 3;
        w.pad_to(kAlign);
        e.offset = w.position();
        if (e.channels == 3) {
          w.bytes(image.pixels.data(), image.pixels.size());
        } else {
          for (size_t p = 0; p < grey.size(); ++p) grey[p] = image.pixels[p * Image::kChannels];
          w.bytes(grey.data(), grey.size());
        }
      }
    }

    const uint64_t index_offset = w.position();
    for (const Entry& e : entries) {
      w.string(e.name);
      w.value(e.source_bytes);
      w.value(e.source_mtime_ns);
      w.value(static_cast<uint32_t>(e.channels));
      w.value(e.offset);
      w.string(e.error);
    }
    const uint64_t index_bytes = w.position() - index_offset;
    w.value(index_offset);
    w.value(index_bytes);
    w.value(static_cast<uint64_t>(n));
    w.bytes(kEndMagic, sizeof kEndMagic);
  });
}

std::shared_ptr<const ImageCache> ImageCache::open(const std::string& path, std::string* why_not) {
  auto fail = [&](const std::string& reason) -> std::shared_ptr<const ImageCache> {
    if (why_not) *why_not = reason;
    return nullptr;
  };
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(std::string("cannot open it: ") + std::strerror(errno));
  struct stat st {};
  const bool sized = ::fstat(fd, &st) == 0;
  const size_t bytes = sized ? static_cast<size_t>(st.st_size) : 0;
  void* map = bytes >= kHeaderBytes + kTrailerBytes ? ::mmap(nullptr, bytes, PROT_READ, MAP_SHARED, fd, 0) : MAP_FAILED;
  ::close(fd);  // the mapping keeps the file
  if (map == MAP_FAILED) return fail(sized && bytes < kHeaderBytes + kTrailerBytes ? "it is truncated" : "cannot map it");

  std::shared_ptr<ImageCache> cache(new ImageCache());
  cache->path_ = path;
  cache->map_ = static_cast<const uint8_t*>(map);
  cache->map_bytes_ = bytes;

  Reader header(cache->map_, kHeaderBytes);
  char magic[8], pipeline[32];
  for (char& c : magic) c = header.value<char>();
  if (std::memcmp(magic, kMagic, sizeof magic) != 0) return fail("it is not a chex image cache");
  if (const uint32_t version = header.value<uint32_t>(); version != kVersion)
    return fail("it has format version " + std::to_string(version) + ", this program writes " + std::to_string(kVersion));
  cache->image_size_ = static_cast<int>(header.value<uint32_t>());
  for (char& c : pipeline) c = header.value<char>();
  if (std::memcmp(pipeline, kPipeline, sizeof pipeline) != 0) return fail("its images were resized another way");

  Reader trailer(cache->map_ + bytes - kTrailerBytes, kTrailerBytes);
  const uint64_t index_offset = trailer.value<uint64_t>(), index_bytes = trailer.value<uint64_t>();
  const uint64_t count = trailer.value<uint64_t>();
  for (char& c : magic) c = trailer.value<char>();
  if (std::memcmp(magic, kEndMagic, sizeof magic) != 0 || index_offset < kHeaderBytes ||
      index_bytes != bytes - kTrailerBytes - index_offset)
    return fail("it is truncated or damaged");

  const size_t pixels = static_cast<size_t>(cache->image_size_) * cache->image_size_;
  Reader index(cache->map_ + index_offset, index_bytes);
  cache->entries_.reserve(std::min<uint64_t>(count, index_bytes));
  for (uint64_t i = 0; i < count && index.ok(); ++i) {
    Entry e;
    e.name = index.string();
    e.source_bytes = index.value<int64_t>();
    e.source_mtime_ns = index.value<int64_t>();
    e.channels = static_cast<int>(index.value<uint32_t>());
    e.offset = index.value<uint64_t>();
    e.error = index.string();
    const bool valid = e.channels == 0 || ((e.channels == 1 || e.channels == 3) && e.offset >= kHeaderBytes &&
                                           e.offset <= index_offset && pixels * e.channels <= index_offset - e.offset);
    if (!valid) return fail("its index is damaged");
    cache->by_name_.emplace(e.name, cache->entries_.size());
    cache->entries_.push_back(std::move(e));
  }
  if (!index.ok() || !index.at_end()) return fail("its index is damaged");
  return cache;
}

std::shared_ptr<const ImageCache> ImageCache::open_or_build(const std::string& dir, const std::vector<Sample>& samples,
                                                            int image_size, int workers, const Notice& notice) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  CHEX_CHECK(fs::is_directory(dir), "cannot create the cache folder '", dir, "': ", ec.message(),
             "; give --cache a folder you can write");
  const std::string path = (fs::path(dir) / kFileName).string();
  std::string why;
  if (fs::exists(path)) {
    if (std::shared_ptr<const ImageCache> cache = open(path, &why)) {
      why = cache->mismatch(samples, image_size);
      if (why.empty()) return cache;
    }
    if (notice) notice("image cache '" + path + "' cannot be used (" + why + "): rebuilding it");
  }
  if (notice)
    notice("building the image cache '" + path + "': " + std::to_string(samples.size()) + " images at " +
           std::to_string(image_size) + "x" + std::to_string(image_size) + " ...");
  const auto start = std::chrono::steady_clock::now();
  build(path, samples, image_size, workers);
  std::shared_ptr<const ImageCache> cache = open(path, &why);
  CHEX_CHECK(cache != nullptr, "the image cache '", path, "' just written cannot be read: ", why);
  if (notice) {
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    notice("image cache built in " + std::to_string(static_cast<int>(seconds + 0.5)) + " s (" +
           std::to_string(cache->map_bytes_ >> 20) + " MiB)");
  }
  return cache;
}

ImageCache::~ImageCache() {
  if (map_) ::munmap(const_cast<uint8_t*>(map_), map_bytes_);
}

const ImageCache::Entry* ImageCache::find(const std::string& name) const {
  const auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &entries_[it->second];
}

std::string ImageCache::mismatch(const std::vector<Sample>& samples, int image_size) const {
  if (image_size != image_size_)
    return "it holds " + std::to_string(image_size_) + "-pixel images, " + std::to_string(image_size) + " are wanted";
  for (const Sample& s : samples) {
    const Entry* e = find(s.image);
    if (!e) return "it has no '" + s.image + "'";
    const Source source = source_of(s.path);
    if (source.bytes != e->source_bytes || source.mtime_ns != e->source_mtime_ns)
      return "'" + s.path + "' changed since it was cached";
  }
  return "";
}

Image ImageCache::load(const std::string& name) const {
  const Entry* e = find(name);
  CHEX_CHECK(e != nullptr, "image '", name, "' is not in the image cache '", path_, "'");
  if (e->channels == 0) throw Error(e->error);
  Image image = make_image(image_size_, image_size_);
  const uint8_t* pixels = map_ + e->offset;
  if (e->channels == 3) {
    std::memcpy(image.pixels.data(), pixels, image.pixels.size());
  } else {
    for (size_t p = 0, n = static_cast<size_t>(image_size_) * image_size_; p < n; ++p)
      std::memset(&image.pixels[p * Image::kChannels], pixels[p], Image::kChannels);
  }
  return image;
}

}  // namespace chex::data

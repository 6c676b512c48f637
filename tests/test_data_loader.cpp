// The data loader and the image cache: batches, determinism whatever the worker count, order and
// resumption, cached batches equal to decoded ones bit for bit, and corrupt images.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "chex/data/image_cache.h"
#include "chex/data/loader.h"
#include "chex/data/resize.h"
#include "chex/data/training_input.h"
#include "chex/data/transforms.h"
#include "chex/error.h"
#include "support/png_writer.h"
#include "support/shared_data.h"

using namespace chex;
using namespace chex::data;
namespace fs = std::filesystem;

namespace {

// Ten small PNGs, left-right asymmetric (so a flip shows), two of them in colour; image 3 of
// patient 2 etc. Written afresh into a temporary folder per test.
struct SyntheticSet {
  fs::path dir;
  std::vector<Sample> samples;

  explicit SyntheticSet(const std::string& name, int count = 10) : dir(fs::temp_directory_path() / name) {
    fs::remove_all(dir);
    fs::create_directories(dir / "images");
    for (int i = 0; i < count; ++i) {
      const int w = 48, h = 40, channels = (i == 3 || i == 7) ? 3 : 1;
      std::vector<uint8_t> pixels(static_cast<size_t>(w) * h * channels);
      for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x)
          for (int c = 0; c < channels; ++c)
            pixels[(static_cast<size_t>(y) * w + x) * channels + c] = static_cast<uint8_t>((x * 5 + y * (i + 1) + c * 60 + i * 17) % 256);
      const std::string image = "0000000" + std::to_string(i) + "_000.png";
      testing::write_png(dir / "images" / image, w, h, channels, pixels);
      Sample s{image, (dir / "images" / image).string(), i / 2 + 1, {}};
      s.labels.set(static_cast<size_t>(i % kNumLabels));
      samples.push_back(s);
    }
  }
  ~SyntheticSet() { fs::remove_all(dir); }
};

struct Epoch {
  std::vector<std::vector<float>> images, labels;
  std::vector<std::vector<std::string>> names;
  std::vector<int64_t> indices;
  bool operator==(const Epoch&) const = default;
};

Epoch run_epoch(DataLoader& loader, int64_t epoch, int64_t first_batch = 0) {
  Epoch out;
  loader.start_epoch(epoch, first_batch);
  while (std::optional<Batch> b = loader.next()) {
    CHECK(b->epoch == epoch);
    out.images.push_back(b->images.to_vector());
    out.labels.push_back(b->labels.to_vector());
    out.names.push_back(b->names);
    out.indices.push_back(b->index);
  }
  return out;
}

LoaderOptions training_options(int workers, int size = 16) {
  LoaderOptions o;
  o.batch_size = 3;
  o.image_size = size;
  o.workers = workers;
  o.prefetch = 2;
  o.shuffle = true;
  o.random_flip = true;
  o.seed = 7;
  return o;
}

std::vector<float> input_of(const Sample& s, int size, bool flip) {
  std::vector<float> out(static_cast<size_t>(3) * size * size);
  write_training_input(load_resized(s.path, size), flip, out.data());
  return out;
}

std::vector<float> row(const std::vector<float>& batch, size_t i, int size) {
  const size_t n = static_cast<size_t>(3) * size * size;
  return {batch.begin() + static_cast<std::ptrdiff_t>(i * n), batch.begin() + static_cast<std::ptrdiff_t>((i + 1) * n)};
}

}  // namespace

TEST_CASE("data: loader batches in sample order without shuffling, as chex predict's input", "[data]") {
  SyntheticSet set("chex_test_loader_plain");
  LoaderOptions o;
  o.batch_size = 4;
  o.image_size = 16;
  o.workers = 2;
  DataLoader loader(set.samples, o);
  CHECK(loader.batches_per_epoch() == 3);
  const Epoch e = run_epoch(loader, 0);
  REQUIRE(e.images.size() == 3);
  CHECK(e.names[0] == std::vector<std::string>{"00000000_000.png", "00000001_000.png", "00000002_000.png", "00000003_000.png"});
  CHECK(e.names[2].size() == 2);  // 10 = 4 + 4 + 2
  CHECK(e.indices == std::vector<int64_t>{0, 1, 2});
  // Image 3 (colour) is the predict pipeline's input: Pillow-exact resize, then ImageNet normalisation.
  const Image resized = resize_bilinear(load_image(set.samples[3].path), 16, 16);
  CHECK(row(e.images[0], 3, 16) == to_normalized_tensor(resized).to_vector());
  // Labels: image i has label i % 14.
  std::vector<float> expected(kNumLabels, 0.f);
  expected[5] = 1.f;
  CHECK(std::vector<float>(e.labels[1].begin() + kNumLabels, e.labels[1].begin() + 2 * kNumLabels) == expected);
}

TEST_CASE("data: a training loader drops a last batch too small for batch norm, evaluation keeps it", "[data]") {
  // 9 images in batches of 4: 4 + 4 + 1. Training (shuffled) drops the lone image (batch norm in
  // training needs two; the next shuffle gives it its turn), evaluation reads every image. Sharded
  // over 2 ranks, a rest of 3 would leave one rank a single image: dropped too.
  SyntheticSet set("chex_test_loader_rest", 9);
  LoaderOptions o;
  o.batch_size = 4;
  o.image_size = 16;
  o.workers = 0;
  DataLoader evaluation(set.samples, o);
  CHECK(evaluation.batches_per_epoch() == 3);
  o.shuffle = true;
  DataLoader training(set.samples, o);
  CHECK(training.batches_per_epoch() == 2);
  const Epoch e = run_epoch(training, 0);
  REQUIRE(e.images.size() == 2);
  CHECK(e.names[1].size() == 4);
  std::vector<Sample> ten = set.samples;
  ten.push_back(set.samples[0]);  // 10 = 4 + 4 + 2: the rest of 2 is kept by one process
  CHECK(DataLoader(ten, o).batches_per_epoch() == 3);
  std::vector<Sample> eleven = ten;
  eleven.push_back(set.samples[1]);  // 11 = 4 + 4 + 3: 2 ranks would share the 3 as 2 + 1
  o.shards = 2;
  CHECK(DataLoader(eleven, o).batches_per_epoch() == 2);
}

TEST_CASE("data: loader is deterministic whatever the worker count, flips included", "[data]") {
  SyntheticSet set("chex_test_loader_workers", 11);  // batches of 3: 3 + 3 + 3 + 2
  DataLoader synchronous(set.samples, training_options(0));
  DataLoader one(set.samples, training_options(1));
  DataLoader three(set.samples, training_options(3));
  for (int64_t epoch : {0, 1}) {
    const Epoch reference = run_epoch(synchronous, epoch);
    CHECK(run_epoch(one, epoch) == reference);
    CHECK(run_epoch(three, epoch) == reference);
  }
  // Every image is itself or its mirror, both occur, and the orders of two epochs differ.
  const Epoch e0 = run_epoch(three, 0), e1 = run_epoch(three, 1);
  CHECK(e0.names != e1.names);
  int flipped = 0, plain = 0;
  for (size_t b = 0; b < e0.names.size(); ++b) {
    for (size_t i = 0; i < e0.names[b].size(); ++i) {
      const Sample& s = *std::find_if(set.samples.begin(), set.samples.end(),
                                      [&](const Sample& x) { return x.image == e0.names[b][i]; });
      const std::vector<float> got = row(e0.images[b], i, 16);
      if (got == input_of(s, 16, true)) ++flipped;
      else if (got == input_of(s, 16, false)) ++plain;
    }
  }
  CHECK(flipped + plain == 11);
  CHECK(flipped > 0);
  CHECK(plain > 0);
  // Another seed, another order.
  LoaderOptions other = training_options(2);
  other.seed = 8;
  DataLoader reseeded(set.samples, other);
  CHECK(run_epoch(reseeded, 0).names != e0.names);
}

TEST_CASE("data: loader resumes within an epoch exactly where it left off", "[data]") {
  SyntheticSet set("chex_test_loader_resume", 11);  // batches of 3: 3 + 3 + 3 + 2
  DataLoader loader(set.samples, training_options(2));
  const Epoch full = run_epoch(loader, 3);
  REQUIRE(full.images.size() == 4);
  // Interrupted after batch 1 (with batches in flight), then resumed at batch 2.
  loader.start_epoch(3);
  REQUIRE(loader.next());
  REQUIRE(loader.next());
  const Epoch resumed = run_epoch(loader, 3, 2);
  CHECK(resumed.indices == std::vector<int64_t>{2, 3});
  CHECK(resumed.images == std::vector<std::vector<float>>(full.images.begin() + 2, full.images.end()));
  CHECK(resumed.names == std::vector<std::vector<std::string>>(full.names.begin() + 2, full.names.end()));
  // A fresh loader resuming gives the same batches too (what a restarted process does).
  DataLoader fresh(set.samples, training_options(1));
  CHECK(run_epoch(fresh, 3, 2) == resumed);
  CHECK(run_epoch(fresh, 3, 4).images.empty());
  CHECK_THROWS_WITH(fresh.start_epoch(3, 5), Catch::Matchers::Contains("cannot resume at batch 5"));
}

TEST_CASE("data: cached batches equal decoded ones bit for bit and the cache is rebuilt when stale", "[data]") {
  SyntheticSet set("chex_test_loader_cache");
  const fs::path cache_dir = set.dir / "cache";
  std::vector<std::string> notices;
  auto notice = [&](const std::string& m) { notices.push_back(m); };
  std::shared_ptr<const ImageCache> cache = ImageCache::open_or_build(cache_dir.string(), set.samples, 16, 2, notice);
  REQUIRE(notices.size() == 2);  // building ..., built in ...
  CHECK(cache->entries().size() == 10);
  CHECK(cache->find("00000003_000.png")->channels == 3);  // colour kept
  CHECK(cache->find("00000004_000.png")->channels == 1);  // grey stored once

  LoaderOptions cached = training_options(2);
  cached.cache = cache;
  DataLoader from_cache(set.samples, cached), decoding(set.samples, training_options(2));
  for (int64_t epoch : {0, 1}) CHECK(run_epoch(from_cache, epoch) == run_epoch(decoding, epoch));

  // Reopened as it is: no rebuild.
  notices.clear();
  cache = ImageCache::open_or_build(cache_dir.string(), set.samples, 16, 2, notice);
  CHECK(notices.empty());
  // Another size: rebuilt, saying why.
  cache = ImageCache::open_or_build(cache_dir.string(), set.samples, 8, 1, notice);
  REQUIRE(!notices.empty());
  CHECK_THAT(notices[0], Catch::Matchers::Contains("16-pixel images, 8 are wanted"));
  CHECK(cache->image_size() == 8);
  // A loader refuses a cache of another size.
  LoaderOptions mismatched = training_options(1);
  mismatched.cache = cache;
  CHECK_THROWS_WITH(DataLoader(set.samples, mismatched), Catch::Matchers::Contains("holds 8-pixel images"));
  // An image replaced on disk: rebuilt.
  notices.clear();
  std::vector<uint8_t> white(48 * 40, 255);
  testing::write_png(set.samples[0].path, 48, 40, 1, white);
  fs::last_write_time(set.samples[0].path, fs::last_write_time(set.samples[0].path) + std::chrono::seconds(5));
  cache = ImageCache::open_or_build(cache_dir.string(), set.samples, 8, 1, notice);
  REQUIRE(!notices.empty());
  CHECK_THAT(notices[0], Catch::Matchers::Contains("changed since it was cached"));
  CHECK(cache->load("00000000_000.png").pixels == std::vector<uint8_t>(8 * 8 * 3, 255));
  // A truncated file (a crash, a full disk elsewhere): rebuilt, not read past its end.
  cache.reset();
  const fs::path file = cache_dir / ImageCache::kFileName;
  fs::resize_file(file, fs::file_size(file) - 10);
  std::string why;
  CHECK(ImageCache::open(file.string(), &why) == nullptr);
  CHECK_THAT(why, Catch::Matchers::Contains("truncated"));
  notices.clear();
  cache = ImageCache::open_or_build(cache_dir.string(), set.samples, 8, 1, notice);
  CHECK(cache->entries().size() == 10);
  CHECK_THAT(notices[0], Catch::Matchers::Contains("truncated"));
}

TEST_CASE("data: a corrupt image is skipped with a warning naming it and counted, or an error in strict mode", "[data]") {
  SyntheticSet set("chex_test_loader_corrupt");
  // Image 4: a PNG cut in the middle of its pixel data.
  const std::string victim = set.samples[4].path;
  fs::resize_file(victim, fs::file_size(victim) / 2);
  std::vector<std::string> warnings;
  for (bool use_cache : {false, true}) {
    warnings.clear();
    LoaderOptions o = training_options(2);
    o.shuffle = false;
    o.random_flip = false;  // so that epochs 0 and 1 are alike
    o.warn = [&](const std::string& m) { warnings.push_back(m); };
    if (use_cache) o.cache = ImageCache::open_or_build((set.dir / "cache").string(), set.samples, 16, 2);
    DataLoader loader(set.samples, o);
    const Epoch e0 = run_epoch(loader, 0);
    const Epoch e1 = run_epoch(loader, 1);
    CHECK(e0.names[1] == std::vector<std::string>{"00000003_000.png", "00000005_000.png"});  // one short
    CHECK(e0.images[1].size() == 2u * 3 * 16 * 16);
    CHECK(e1 == e0);
    REQUIRE(warnings.size() == 1);  // once, not every epoch
    CHECK_THAT(warnings[0], Catch::Matchers::Contains("00000004_000.png"));
    CHECK(loader.skipped_images() == 1);

    o.strict = true;
    DataLoader strict(set.samples, o);
    strict.start_epoch(0);
    REQUIRE(strict.next());
    CHECK_THROWS_WITH(strict.next(), Catch::Matchers::Contains("00000004_000.png") && Catch::Matchers::Contains("strict"));
  }
}

TEST_CASE("data: cache equivalence on real NIH images (grey and RGBA)", "[data]") {
  CHEX_REQUIRE_SHARED_DATA(shared);
  const NihDataset dataset = open_nih_dataset((shared / "nih-sample").string());
  std::vector<Sample> samples;
  for (const Sample& s : dataset.samples)
    if (samples.size() < 3 || s.image == "00000004_000.png") samples.push_back(s);  // 3 grey, 1 RGBA
  REQUIRE(samples.size() == 4);
  const fs::path dir = fs::temp_directory_path() / "chex_test_loader_real_cache";
  fs::remove_all(dir);
  LoaderOptions o = training_options(2, 224);
  o.batch_size = 2;
  DataLoader decoding(samples, o);
  o.cache = ImageCache::open_or_build(dir.string(), samples, 224, 2);
  CHECK(o.cache->find("00000004_000.png")->channels == 1);  // RGBA with R = G = B is grey
  DataLoader cached(samples, o);
  CHECK(run_epoch(cached, 0) == run_epoch(decoding, 0));
  fs::remove_all(dir);
}

// bench_loader: the training data loader alone, in images per second, decoding every image or
// reading the image cache, with 1 and 2 worker threads (training settings: shuffle, random flip,
// 224x224, batch 16). Prints a Markdown table and one JSON line.
//
//   bench_loader [--data DIR] [--image-size S] [--batch-size B] [--cache-epochs N]
//
// DIR defaults to ../shared/data/nih-sample (100 real NIH radiographs, 1024x1024 PNG).
#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "chex/data/image_cache.h"
#include "chex/data/loader.h"
#include "chex/data/nih_dataset.h"
#include "chex/error.h"

using namespace chex;
using Clock = std::chrono::steady_clock;

namespace {

struct Options {
  std::string data = "../shared/data/nih-sample";
  int image_size = 224;
  int64_t batch_size = 16;
  int cache_epochs = 5;  // cached epochs are short: time several
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      CHEX_CHECK(i + 1 < argc, arg, " needs a value");
      return argv[++i];
    };
    if (arg == "--data") o.data = value();
    else if (arg == "--image-size") o.image_size = std::stoi(value());
    else if (arg == "--batch-size") o.batch_size = std::stoll(value());
    else if (arg == "--cache-epochs") o.cache_epochs = std::stoi(value());
    else if (arg == "-h" || arg == "--help") {
      std::cout << "usage: bench_loader [--data DIR] [--image-size S] [--batch-size B] [--cache-epochs N]\n";
      std::exit(0);
    } else CHEX_FAIL("unknown argument '", arg, "' (see --help)");
  }
  return o;
}

struct Rate {
  double images_per_s = 0;
  double cpu_ms_per_image = 0;  // process CPU time (all threads): what an image costs, however busy the machine
};

// Over `epochs` full epochs.
Rate measure(const std::vector<data::Sample>& samples, const Options& o, int workers,
               std::shared_ptr<const data::ImageCache> cache, int epochs) {
  data::LoaderOptions lo;
  lo.batch_size = o.batch_size;
  lo.image_size = o.image_size;
  lo.workers = workers;
  lo.shuffle = true;
  lo.random_flip = true;
  lo.seed = 1;
  lo.cache = std::move(cache);
  data::DataLoader loader(samples, lo);
  int64_t images = 0;
  const auto start = Clock::now();
  const std::clock_t cpu_start = std::clock();
  for (int e = 0; e < epochs; ++e) {
    loader.start_epoch(e);
    while (auto batch = loader.next()) images += batch->images.size(0);
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  const double cpu_ms = 1000.0 * static_cast<double>(std::clock() - cpu_start) / CLOCKS_PER_SEC;
  return {static_cast<double>(images) / seconds, cpu_ms / static_cast<double>(images)};
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Options o = parse(argc, argv);
    const data::NihDataset dataset = data::open_nih_dataset(o.data);
    const std::vector<data::Sample>& samples = dataset.samples;
    const std::filesystem::path cache_dir =
        std::filesystem::temp_directory_path() / ("chex_bench_loader_cache_" + std::to_string(::getpid()));

    const Rate decode1 = measure(samples, o, 1, nullptr, 1);
    const Rate decode2 = measure(samples, o, 2, nullptr, 1);
    const auto build_start = Clock::now();
    const std::clock_t build_cpu = std::clock();
    auto cache = data::ImageCache::open_or_build(cache_dir.string(), samples, o.image_size, 2);
    const Rate build{static_cast<double>(samples.size()) / std::chrono::duration<double>(Clock::now() - build_start).count(),
                     1000.0 * static_cast<double>(std::clock() - build_cpu) / CLOCKS_PER_SEC /
                         static_cast<double>(samples.size())};
    const Rate cached1 = measure(samples, o, 1, cache, o.cache_epochs);
    const Rate cached2 = measure(samples, o, 2, cache, o.cache_epochs);
    const auto cache_bytes = std::filesystem::file_size(cache->path());
    cache.reset();
    std::filesystem::remove_all(cache_dir);

    std::printf("loader, %zu images from %s, %dx%d, batch %lld, shuffle + flip\n\n", samples.size(), o.data.c_str(),
                o.image_size, o.image_size, static_cast<long long>(o.batch_size));
    std::printf("| source | workers | images/s | CPU ms/image |\n|---|---:|---:|---:|\n");
    auto line = [](const char* source, int workers, const Rate& r) {
      std::printf("| %s | %d | %.1f | %.2f |\n", source, workers, r.images_per_s, r.cpu_ms_per_image);
    };
    line("decode PNG + resize", 1, decode1);
    line("decode PNG + resize", 2, decode2);
    line("building the cache", 2, build);
    line("cache (mmap)", 1, cached1);
    line("cache (mmap)", 2, cached2);
    std::printf("\ncache file: %.1f MiB (%.1f KiB an image)\n", static_cast<double>(cache_bytes) / 1048576.0,
                static_cast<double>(cache_bytes) / 1024.0 / static_cast<double>(samples.size()));
    std::printf("{\"bench\":\"loader\",\"images\":%zu,\"image_size\":%d,\"batch_size\":%lld,"
                "\"decode_w1\":%.2f,\"decode_w2\":%.2f,\"cache_build_w2\":%.2f,\"cached_w1\":%.2f,\"cached_w2\":%.2f,"
                "\"decode_cpu_ms\":%.3f,\"cached_cpu_ms\":%.3f,\"cache_bytes\":%llu}\n",
                samples.size(), o.image_size, static_cast<long long>(o.batch_size), decode1.images_per_s,
                decode2.images_per_s, build.images_per_s, cached1.images_per_s, cached2.images_per_s,
                decode1.cpu_ms_per_image, cached1.cpu_ms_per_image, static_cast<unsigned long long>(cache_bytes));
    return 0;
  } catch (const std::exception& e) {
    chex::print_error("bench_loader", e, false);  // CHEX_DEBUG=1 adds the details
    return 1;
  }
}

// bench_loader: the training data loader alone, in images per second, decoding every image or
// reading the memory-mapped image cache (--cache), with each of the given worker counts (training
// settings: shuffle, random flip, 224x224, batch 16). Prints a Markdown table and one JSON line.
//
//   bench_loader [--data DIR] [--image-size S] [--batch-size B] [--cache-epochs N] [--workers LIST]
//                [--cache-only]
//
// DIR defaults to ../shared/data/nih-sample (100 real NIH radiographs, 1024x1024 PNG). What a GPU
// needs: at the goal speed one consumes over 1,000 images/s; `--cache-only --workers 4,8,16` on
// the GPU machine says whether the cache feeds that.
#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
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
  std::vector<int> workers = {1, 2};
  bool cache_only = false;  // skip decoding (slow on few cores): the cache is what feeds a GPU
};

// "1,2,8" -> {1, 2, 8}: each a worker count of at least 1.
std::vector<int> parse_workers(const std::string& text) {
  std::vector<int> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    int n = 0;
    try {
      n = std::stoi(item);
    } catch (const std::exception&) {
      n = 0;
    }
    CHEX_CHECK(n >= 1, "--workers takes worker counts of at least 1 separated by commas, e.g. 1,2,8; got '", text, "'");
    out.push_back(n);
  }
  CHEX_CHECK(!out.empty(), "--workers needs at least one worker count, e.g. 1,2,8");
  return out;
}

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
    else if (arg == "--workers") o.workers = parse_workers(value());
    else if (arg == "--cache-only") o.cache_only = true;
    else if (arg == "-h" || arg == "--help") {
      std::cout << "usage: bench_loader [--data DIR] [--image-size S] [--batch-size B] [--cache-epochs N]\n"
                   "                    [--workers LIST] [--cache-only]\n"
                   "\n"
                   "Times the training data loader alone (shuffle, random flip), in images per second:\n"
                   "decoding every image, and from the memory-mapped image cache (built first, in a\n"
                   "temporary folder, and removed at the end). Prints a Markdown table and one JSON line.\n"
                   "  --data DIR        NIH-layout folder (default ../shared/data/nih-sample)\n"
                   "  --image-size S    square input size (default 224)\n"
                   "  --batch-size B    images per batch (default 16)\n"
                   "  --cache-epochs N  epochs timed from the cache (default 5; they are short)\n"
                   "  --workers LIST    loader threads to time, e.g. 1,2,8,16 (default 1,2)\n"
                   "  --cache-only      time only the cache, not decoding\n";
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

    std::vector<Rate> decoded, cached;
    if (!o.cache_only)
      for (const int w : o.workers) decoded.push_back(measure(samples, o, w, nullptr, 1));
    const int build_workers = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
    const auto build_start = Clock::now();
    const std::clock_t build_cpu = std::clock();
    auto cache = data::ImageCache::open_or_build(cache_dir.string(), samples, o.image_size, build_workers);
    const Rate build{static_cast<double>(samples.size()) / std::chrono::duration<double>(Clock::now() - build_start).count(),
                     1000.0 * static_cast<double>(std::clock() - build_cpu) / CLOCKS_PER_SEC /
                         static_cast<double>(samples.size())};
    for (const int w : o.workers) cached.push_back(measure(samples, o, w, cache, o.cache_epochs));
    const auto cache_bytes = std::filesystem::file_size(cache->path());
    cache.reset();
    std::filesystem::remove_all(cache_dir);

    const unsigned cores = std::thread::hardware_concurrency();
    std::printf("loader, %zu images from %s, %dx%d, batch %lld, shuffle + flip, %u cores\n\n", samples.size(),
                o.data.c_str(), o.image_size, o.image_size, static_cast<long long>(o.batch_size), cores);
    std::printf("| source | workers | images/s | CPU ms/image |\n|---|---:|---:|---:|\n");
    auto line = [](const char* source, int workers, const Rate& r) {
      std::printf("| %s | %d | %.1f | %.2f |\n", source, workers, r.images_per_s, r.cpu_ms_per_image);
    };
    for (size_t i = 0; i < decoded.size(); ++i) line("decode PNG + resize", o.workers[i], decoded[i]);
    line("building the cache", build_workers, build);
    for (size_t i = 0; i < cached.size(); ++i) line("cache (mmap)", o.workers[i], cached[i]);
    std::printf("\ncache file: %.1f MiB (%.1f KiB an image)\n", static_cast<double>(cache_bytes) / 1048576.0,
                static_cast<double>(cache_bytes) / 1024.0 / static_cast<double>(samples.size()));
    // {"workers": w, "images_per_s": r, "cpu_ms_per_image": c} for each worker count.
    auto rates = [&](const std::vector<Rate>& r) {
      std::string text = "[";
      for (size_t i = 0; i < r.size(); ++i) {
        char item[160];
        std::snprintf(item, sizeof item, "%s{\"workers\":%d,\"images_per_s\":%.2f,\"cpu_ms_per_image\":%.3f}",
                      i ? "," : "", o.workers[i], r[i].images_per_s, r[i].cpu_ms_per_image);
        text += item;
      }
      return text + "]";
    };
    std::printf("{\"bench\":\"loader\",\"images\":%zu,\"image_size\":%d,\"batch_size\":%lld,\"cores\":%u,"
                "\"decode\":%s,\"cache_build\":{\"workers\":%d,\"images_per_s\":%.2f},\"cached\":%s,"
                "\"cache_bytes\":%llu}\n",
                samples.size(), o.image_size, static_cast<long long>(o.batch_size), cores, rates(decoded).c_str(),
                build_workers, build.images_per_s, rates(cached).c_str(), static_cast<unsigned long long>(cache_bytes));
    return 0;
  } catch (const std::exception& e) {
    chex::print_error("bench_loader", e, false);  // CHEX_DEBUG=1 adds the details
    return 1;
  }
}

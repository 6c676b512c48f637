// chex make-demo: writes the synthetic demo dataset (chex/demo) in the NIH layout.
#include <cstdio>
#include <string>

#include "args.h"
#include "chex/demo/demo_dataset.h"
#include "command.h"
#include "progress.h"

namespace chex::cli {
namespace {

constexpr const char* kUsage =
    "usage: chex make-demo --out DIR [--images N] [--size S] [--seed S] [--readers [N]]\n"
    "\n"
    "Writes a synthetic chest X-ray dataset in exactly the NIH ChestX-ray14 layout: DIR/images/*.png,\n"
    "Data_Entry_2017_v2020.csv, BBox_List_2017.csv, train_val_list.txt and test_list.txt (a\n"
    "patient-disjoint split, 20% of the patients for test). PA radiographs of varied patients and\n"
    "exposures, several per patient, with all 14 ChestX-ray14 findings at known places and their boxes\n"
    "(box label 'Infiltrate' for Infiltration, as NIH). The same seed gives the same files.\n"
    "\n"
    "options:\n"
    "  --out DIR      output folder (created; files already there are replaced)\n"
    "  --images N     number of images (default 2000, at least 20)\n"
    "  --size S       image width and height in pixels (default 256: resized to 224 for training as\n"
    "                 the real 1024-pixel images are, while decoding stays cheap)\n"
    "  --seed S       random seed (default 1)\n"
    "  --readers [N]  also write N simulated readers (4 when N is left out, as the CheXNet study's four\n"
    "                 radiologists): DIR/readers/reader_1.csv ..., each 'Image Index,Finding Labels'\n"
    "                 for every image, the truth with misses (fainter findings missed more) and false\n"
    "                 marks that differ by reader. Default: none\n"
    "  -h, --help     this help\n";

constexpr int kDefaultReaders = 4;

// "--readers" with no number after it means the default number of readers.
std::vector<std::string> with_reader_count(std::vector<std::string> arguments) {
  for (std::size_t i = 0; i < arguments.size(); ++i)
    if (arguments[i] == "--readers" &&
        (i + 1 == arguments.size() || arguments[i + 1].empty() || arguments[i + 1][0] == '-'))
      arguments.insert(arguments.begin() + static_cast<std::ptrdiff_t>(i) + 1, std::to_string(kDefaultReaders));
  return arguments;
}

}  // namespace

int run_make_demo(const std::vector<std::string>& arguments) {
  const Args args(with_reader_count(arguments), {{"out"}, {"images"}, {"size"}, {"seed"}, {"readers"}, {"help", false, 'h'}},
                  "make-demo");
  if (args.help(kUsage)) return kExitOk;
  if (!args.positional().empty()) throw UsageError("unexpected argument '" + args.positional()[0] + "'");
  demo::DemoOptions options;
  options.out = args.required("out");
  options.images = static_cast<int>(args.integer("images", 2000, demo::kMinDemoImages, 1'000'000));
  options.readers = static_cast<int>(args.integer("readers", 0, 1, 100));
  options.size = static_cast<int>(args.integer("size", 256, 64, 2048));
  options.seed = static_cast<uint64_t>(args.integer("seed", 1, 0, INT64_MAX));
  Progress progress("images", static_cast<size_t>(options.images), stderr, 5.0);
  options.progress = [&](int done, int) { progress.update(static_cast<size_t>(done)); };
  const demo::DemoSummary summary = demo::make_demo_dataset(options);
  progress.finish(static_cast<size_t>(options.images));

  std::printf("wrote %s: %d images of %d patients (%d x %d px), %d boxes\n", options.out.c_str(),
              summary.train_val.images + summary.test.images, summary.train_val.patients + summary.test.patients,
              options.size, options.size, summary.boxes);
  std::printf("| Split | Images | Patients |");
  for (const auto kind : demo::kAllFindings) std::printf(" %s |", std::string(demo::label_name(kind)).c_str());
  std::printf("\n|---|---:|---:|");
  for (int k = 0; k < demo::kFindingKinds; ++k) std::printf("---:|");
  std::printf("\n");
  for (const auto& [name, counts] : {std::pair{"train_val", summary.train_val}, std::pair{"test", summary.test}}) {
    std::printf("| %s | %d | %d |", name, counts.images, counts.patients);
    for (const int n : counts.positives) std::printf(" %d |", n);
    std::printf("\n");
  }
  for (std::size_t r = 0; r < summary.readers.size(); ++r) {
    const demo::ReaderSummary& t = summary.readers[r];
    std::printf("reader_%zu: marked %d of %d findings present (sensitivity %.2f), %d false marks in %d absent "
                "(specificity %.3f)\n",
                r + 1, t.positives - t.misses, t.positives, t.positives ? 1.0 - double(t.misses) / t.positives : 0.0,
                t.false_marks, t.negatives, t.negatives ? 1.0 - double(t.false_marks) / t.negatives : 0.0);
  }
  if (!summary.readers.empty()) std::printf("readers in %s/readers/\n", options.out.c_str());
  return kExitOk;
}

}  // namespace chex::cli

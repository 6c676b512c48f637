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
    "usage: chex make-demo --out DIR [--images N] [--size S] [--seed S]\n"
    "\n"
    "Writes a synthetic chest X-ray dataset in exactly the NIH ChestX-ray14 layout: DIR/images/*.png,\n"
    "Data_Entry_2017_v2020.csv, BBox_List_2017.csv, train_val_list.txt and test_list.txt (a\n"
    "patient-disjoint split, 20% of the patients for test). PA radiographs of varied patients and\n"
    "exposures, several per patient, with findings at known places and their boxes: Cardiomegaly,\n"
    "Effusion, Infiltration (box label 'Infiltrate', as NIH), Mass, Nodule, Pneumothorax and\n"
    "Consolidation. The other seven ChestX-ray14 labels never occur. The same seed gives the same files.\n"
    "\n"
    "options:\n"
    "  --out DIR      output folder (created; files already there are replaced)\n"
    "  --images N     number of images (default 2000, at least 14)\n"
    "  --size S       image width and height in pixels (default 256: resized to 224 for training as\n"
    "                 the real 1024-pixel images are, while decoding stays cheap)\n"
    "  --seed S       random seed (default 1)\n"
    "  -h, --help     this help\n";

}  // namespace

int run_make_demo(const std::vector<std::string>& arguments) {
  const Args args(arguments, {{"out"}, {"images"}, {"size"}, {"seed"}, {"help", false, 'h'}}, "make-demo");
  if (args.help(kUsage)) return kExitOk;
  if (!args.positional().empty()) throw UsageError("unexpected argument '" + args.positional()[0] + "'");
  demo::DemoOptions options;
  options.out = args.required("out");
  options.images = static_cast<int>(args.integer("images", 2000, 14, 1'000'000));
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
  return kExitOk;
}

}  // namespace chex::cli

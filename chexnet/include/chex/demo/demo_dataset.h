#pragma once
// The demo dataset: synthetic radiographs written in exactly the NIH ChestX-ray14 layout, so that
// every program reads it as it reads the real download:
//   DIR/images/PPPPPPPP_FFF.png     8-bit grey PNGs (patient id, follow-up number)
//   DIR/Data_Entry_2017_v2020.csv   the NIH label file (header, 11 fields, labels joined by '|')
//   DIR/BBox_List_2017.csv          one box per finding, NIH's header and "Infiltrate" spelling
//   DIR/train_val_list.txt, DIR/test_list.txt   a patient-disjoint official split
//   DIR/readers/reader_N.csv        optional simulated readers (chex/demo/readers.h): every image,
//                                   "Image Index,Finding Labels", NIH names joined by '|' or "No Finding"
#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "chex/demo/phantom.h"

namespace chex::demo {

// Enough that each split holds an image; crowded images then carry what chance left out.
inline constexpr int kMinDemoImages = 20;

struct DemoOptions {
  std::string out;          // the folder to write (created if absent)
  int images = 2000;
  int size = 256;           // pixels, square
  uint64_t seed = 1;
  double test_fraction = 0.2;  // of patients
  int readers = 0;             // simulated readers to write (0: none)
  // Called now and then with the images written so far (from one thread).
  std::function<void(int done, int total)> progress;
};

struct SplitCounts {
  int images = 0;
  int patients = 0;
  std::array<int, kFindingKinds> positives{};  // by kAllFindings order
};

// What a simulated reader did over the whole set, against the truth, and what its model expected.
struct ReaderSummary {
  int positives = 0, misses = 0;            // findings present, and those it left unmarked
  int negatives = 0, false_marks = 0;       // (image, finding) pairs absent, and those it marked
  double expected_misses = 0, expected_false_marks = 0;  // sums of the model's probabilities
};

struct DemoSummary {
  SplitCounts train_val, test;
  int boxes = 0;
  std::vector<ReaderSummary> readers;  // reader_1 first
};

// Deterministic for a seed (whatever the thread count). Every finding has positives in both the
// train_val and the test split, whatever the number of images (at least kMinDemoImages).
DemoSummary make_demo_dataset(const DemoOptions& options);

}  // namespace chex::demo

#pragma once
// The NIH ChestX-ray14 folder: a label file, PNGs under images/ (or spread over images_001/images/,
// images_002/images/, ... as the download unpacks), and optionally the official split lists.
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "chex/data/label_file.h"

namespace chex::data {

// One labelled image on disk.
struct Sample {
  std::string image;  // the name in the label file
  std::string path;   // where it is
  int64_t patient = 0;
  LabelSet labels;
};

// Image name -> path for every PNG, JPEG or DICOM (.dcm) in root/images/ and root/images_*/images/.
// A name found in two folders is an error naming both.
std::unordered_map<std::string, std::string> discover_images(const std::string& root);

struct NihDataset {
  std::string root;
  std::string label_file;                     // the label file read
  std::vector<Sample> samples;                // rows whose image exists, in label-file order
  int64_t missing_images = 0;                 // rows left out because their image is not on disk
  std::vector<std::string> missing_examples;  // the first few of them
  // "" when nothing is missing, else a one-line notice with the count and the first names.
  std::string missing_notice() const;
};

// Pairs label rows with discovered images; rows without an image are counted and left out. An
// empty result is an error.
NihDataset make_nih_dataset(const LabelTable& labels, const std::unordered_map<std::string, std::string>& images);

// Opens an NIH folder: the label file (Data_Entry_2017_v2020.csv, else Data_Entry_2017.csv), then
// the images. Errors say what is missing and where it was looked for.
NihDataset open_nih_dataset(const std::string& root);

// A split list (train_val_list.txt, test_list.txt): one image name a line, blank lines ignored.
std::vector<std::string> read_image_list(const std::string& path);
std::vector<std::string> parse_image_list(std::string_view text);

}  // namespace chex::data

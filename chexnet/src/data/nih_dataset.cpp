#include "chex/data/nih_dataset.h"

#include <algorithm>
#include <filesystem>

#include "chex/error.h"
#include "csv_fields.h"

namespace chex::data {
namespace fs = std::filesystem;
namespace {

bool is_image_file(const fs::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".dcm";
}

void add_folder(const fs::path& folder, std::unordered_map<std::string, std::string>& images) {
  for (const fs::directory_entry& entry : fs::directory_iterator(folder)) {
    if (!entry.is_regular_file() || !is_image_file(entry.path())) continue;
    const auto [it, inserted] = images.emplace(entry.path().filename().string(), entry.path().string());
    CHEX_CHECK(inserted, "image '", it->first, "' is present twice: '", it->second, "' and '", entry.path().string(),
               "'; remove one");
  }
}

constexpr const char* kLayoutHint =
    "give --data the NIH ChestX-ray14 folder, the one that holds images/ (or images_001/images/, ...) and "
    "Data_Entry_2017_v2020.csv";

void require_data_folder(const std::string& root) {
  std::error_code ec;
  if (fs::is_directory(root, ec)) return;
  CHEX_CHECK(fs::exists(root, ec), "the data folder '", root, "' does not exist; ", kLayoutHint);
  CHEX_FAIL("the data folder '", root, "' is a file, not a folder; ", kLayoutHint);
}

}  // namespace

std::unordered_map<std::string, std::string> discover_images(const std::string& root) {
  require_data_folder(root);
  std::vector<fs::path> folders;
  if (fs::is_directory(fs::path(root) / "images")) folders.push_back(fs::path(root) / "images");
  for (const fs::directory_entry& entry : fs::directory_iterator(root)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_directory() && name.starts_with("images_") && fs::is_directory(entry.path() / "images"))
      folders.push_back(entry.path() / "images");
  }
  CHEX_CHECK(!folders.empty(), "no image folder in the data folder '", root,
             "': expected images/ or images_001/images/, images_002/images/, ... as NIH's archives unpack; ",
             kLayoutHint);
  std::sort(folders.begin(), folders.end());  // the same "present twice" message whatever the listing order
  std::unordered_map<std::string, std::string> images;
  for (const fs::path& folder : folders) add_folder(folder, images);
  return images;
}

std::string NihDataset::missing_notice() const {
  if (missing_images == 0) return "";
  std::string notice = std::to_string(missing_images) + " of " + std::to_string(missing_images + std::ssize(samples)) +
                       " labelled images are not on disk and are left out (";
  for (size_t i = 0; i < missing_examples.size(); ++i) notice += (i ? ", " : "") + missing_examples[i];
  if (missing_images > std::ssize(missing_examples)) notice += ", ...";
  return notice + ")";
}

NihDataset make_nih_dataset(const LabelTable& labels, const std::unordered_map<std::string, std::string>& images) {
  constexpr size_t kExamples = 5;
  NihDataset dataset;
  dataset.label_file = labels.origin;
  dataset.samples.reserve(labels.records.size());
  for (const LabelRecord& record : labels.records) {
    const auto it = images.find(record.image);
    if (it == images.end()) {
      ++dataset.missing_images;
      if (dataset.missing_examples.size() < kExamples) dataset.missing_examples.push_back(record.image);
      continue;
    }
    dataset.samples.push_back({record.image, it->second, record.patient, record.labels});
  }
  CHEX_CHECK(!dataset.samples.empty(), "none of the ", labels.records.size(), " images listed in '", labels.origin,
             "' was found on disk (", images.size(), " images found); is --data the right folder?");
  return dataset;
}

NihDataset open_nih_dataset(const std::string& root) {
  require_data_folder(root);
  std::string label_file;
  for (const char* name : {"Data_Entry_2017_v2020.csv", "Data_Entry_2017.csv"}) {
    if (fs::is_regular_file(fs::path(root) / name)) {
      label_file = (fs::path(root) / name).string();
      break;
    }
  }
  CHEX_CHECK(!label_file.empty(), "no label file in the data folder '", root,
             "': expected NIH's Data_Entry_2017_v2020.csv (or Data_Entry_2017.csv) there; download it beside images/, "
             "or give --data the folder that holds it");
  NihDataset dataset = make_nih_dataset(read_label_file(label_file), discover_images(root));
  dataset.root = root;
  return dataset;
}

std::vector<std::string> read_image_list(const std::string& path) {
  return parse_image_list(detail::read_text_file(path, "the image list"));
}

std::vector<std::string> parse_image_list(std::string_view text) {
  std::vector<std::string> names;
  for (std::string_view line : detail::split_lines(text)) {
    while (!line.empty() && (line.back() == ' ' || line.back() == '\t')) line.remove_suffix(1);
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    if (!line.empty()) names.emplace_back(line);
  }
  return names;
}

}  // namespace chex::data

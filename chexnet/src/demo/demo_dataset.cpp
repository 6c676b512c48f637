// Plans the whole dataset first (patients, exposures, findings, split) on one generator, then draws
// and writes the images in parallel: each image depends only on its own plan, so the files are the
// same for a seed whatever the thread count.
#include "chex/demo/demo_dataset.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <numeric>
#include <ostream>
#include <vector>

#include "chex/error.h"
#include "chex/io/atomic_file.h"
#include "png_writer.h"

namespace chex::demo {
namespace {

// Prevalences: high enough that a 10% validation split of the default 2,000 images still holds
// dozens of each finding; about a third of the images have no finding.
constexpr float kCardiomegalyPatients = 0.2f;
constexpr float kFindingPerImage = 0.13f;
constexpr int kMaxImagesPerPatient = 6;
constexpr float kFieldOfViewMm = 430.0f;  // a 43 cm detector

struct PatientPlan {
  int id = 0;
  Anatomy anatomy;
  std::optional<Finding> cardiomegaly;  // a trait of the patient, on every one of their images
  int age = 50;
  bool test = false;
  uint64_t seed = 0;
};

struct ImagePlan {
  int patient = 0;  // index into the patients
  int follow_up = 0;
  View view;
  std::vector<Finding> findings;  // besides cardiomegaly
};

uint64_t mix(uint64_t a, uint64_t b) {
  uint64_t z = a ^ (0x9e3779b97f4a7c15ull * (b + 1));
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

std::string image_name(const PatientPlan& p, int follow_up) {
  char name[32];
  std::snprintf(name, sizeof name, "%08d_%03d.png", p.id, follow_up);
  return name;
}

std::vector<Finding> all_findings(const PatientPlan& p, const ImagePlan& image) {
  std::vector<Finding> findings;
  if (p.cardiomegaly) findings.push_back(*p.cardiomegaly);
  findings.insert(findings.end(), image.findings.begin(), image.findings.end());
  return findings;
}

bool has(const std::vector<Finding>& findings, FindingKind kind) {
  return std::any_of(findings.begin(), findings.end(), [&](const Finding& f) { return f.kind == kind; });
}

std::string label_field(const std::vector<Finding>& findings) {
  std::vector<std::string> names;
  for (const Finding& f : findings) names.emplace_back(label_name(f.kind));
  if (names.empty()) return "No Finding";
  std::sort(names.begin(), names.end());  // as NIH: alphabetical, joined by '|'
  std::string field;
  for (const auto& n : names) field += (field.empty() ? "" : "|") + n;
  return field;
}

}  // namespace

DemoSummary make_demo_dataset(const DemoOptions& options) {
  CHEX_CHECK(!options.out.empty(), "make-demo: no output folder given");
  CHEX_CHECK(options.images >= 2 * kFindingKinds, "make-demo: at least ", 2 * kFindingKinds,
             " images are needed so that every finding has positives in both splits, got ", options.images);
  CHEX_CHECK(options.size >= 64 && options.size <= 2048, "make-demo: image size ", options.size,
             " is outside [64, 2048]");
  CHEX_CHECK(options.test_fraction > 0 && options.test_fraction < 1, "make-demo: test fraction ",
             options.test_fraction, " is not in (0, 1)");

  // Patients and their images.
  Generator master(options.seed);
  std::vector<PatientPlan> patients;
  std::vector<ImagePlan> images;
  while (static_cast<int>(images.size()) < options.images) {
    PatientPlan& p = patients.emplace_back();
    p.id = static_cast<int>(patients.size());
    p.seed = master.next_u64();
    Generator g(p.seed);
    p.anatomy = random_anatomy(g);
    p.age = 20 + static_cast<int>(g.below(65));
    if (g.uniform() < kCardiomegalyPatients) p.cardiomegaly = random_finding(FindingKind::Cardiomegaly, p.anatomy, {}, g);
    const int count = std::min(1 + static_cast<int>(master.below(kMaxImagesPerPatient)),
                               options.images - static_cast<int>(images.size()));
    for (int k = 0; k < count; ++k) {
      ImagePlan& image = images.emplace_back();
      image.patient = static_cast<int>(patients.size()) - 1;
      image.follow_up = k;
      Generator gi(mix(p.seed, static_cast<uint64_t>(k)));
      image.view = random_view(gi);
      for (const FindingKind kind : kAllFindings) {
        if (kind == FindingKind::Cardiomegaly || gi.uniform() >= kFindingPerImage) continue;
        image.findings.push_back(random_finding(kind, p.anatomy, image.findings, gi));
      }
    }
  }

  // A patient-disjoint split: a shuffled fifth of the patients (by default) are the test set.
  std::vector<int> order(patients.size());
  std::iota(order.begin(), order.end(), 0);
  for (std::size_t i = order.size() - 1; i > 0; --i) std::swap(order[i], order[master.below(i + 1)]);
  const std::size_t test_patients = std::clamp<std::size_t>(
      static_cast<std::size_t>(std::lround(options.test_fraction * static_cast<double>(patients.size()))), 1,
      patients.size() - 1);
  for (std::size_t i = 0; i < test_patients; ++i) patients[static_cast<std::size_t>(order[i])].test = true;

  // Every finding gets positives in both splits: where chance left one out, add it to the image of
  // that split carrying the fewest findings.
  Generator fixer(mix(options.seed, 0xf1c5));
  for (const bool test : {false, true}) {
    for (const FindingKind kind : kAllFindings) {
      const auto in_split = [&](const ImagePlan& im) { return patients[static_cast<std::size_t>(im.patient)].test == test; };
      const bool present = std::any_of(images.begin(), images.end(), [&](const ImagePlan& im) {
        return in_split(im) && has(all_findings(patients[static_cast<std::size_t>(im.patient)], im), kind);
      });
      if (present) continue;
      ImagePlan* target = nullptr;
      for (ImagePlan& im : images)
        if (in_split(im) && !has(all_findings(patients[static_cast<std::size_t>(im.patient)], im), kind) &&
            (!target || im.findings.size() < target->findings.size()))
          target = &im;
      CHEX_CHECK(target != nullptr, "make-demo: no image left to carry a ", label_name(kind));
      PatientPlan& p = patients[static_cast<std::size_t>(target->patient)];
      if (kind == FindingKind::Cardiomegaly) p.cardiomegaly = random_finding(kind, p.anatomy, {}, fixer);
      else target->findings.push_back(random_finding(kind, p.anatomy, target->findings, fixer));
    }
  }

  // Draw and write the images.
  namespace fs = std::filesystem;
  const fs::path root(options.out), image_dir = root / "images";
  std::error_code ec;
  fs::create_directories(image_dir, ec);
  CHEX_CHECK(!ec && fs::is_directory(image_dir), "cannot create the demo's image folder '", image_dir.string(), "': ",
             ec.message(), "; choose an output folder you can write");
  const int total = static_cast<int>(images.size());
  std::vector<std::vector<Box>> boxes(images.size());
  std::atomic<int> done{0};
  std::string failure;
#pragma omp parallel for schedule(dynamic, 4)
  for (int i = 0; i < total; ++i) {
    try {
      const ImagePlan& im = images[static_cast<std::size_t>(i)];
      const PatientPlan& p = patients[static_cast<std::size_t>(im.patient)];
      const Radiograph r = draw_radiograph(p.anatomy, im.view, all_findings(p, im), options.size);
      for (const Box& b : r.boxes)
        CHEX_CHECK(b.w >= 2 && b.h >= 2, "make-demo: a finding on ", image_name(p, im.follow_up), " is not visible");
      detail::write_grey_png((image_dir / image_name(p, im.follow_up)).string(), r.size, r.size, r.pixels);
      boxes[static_cast<std::size_t>(i)] = r.boxes;
    } catch (const std::exception& e) {
#pragma omp critical(chex_demo_failure)
      if (failure.empty()) failure = e.what();
    }
    const int now = ++done;
    if (options.progress) {
#pragma omp critical(chex_demo_progress)
      options.progress(now, total);
    }
  }
  if (!failure.empty()) throw Error(failure);

  // The label file, box file and split lists, written after every image exists.
  DemoSummary summary;
  const float spacing = kFieldOfViewMm / static_cast<float>(options.size);
  io::write_file_atomically((root / "Data_Entry_2017_v2020.csv").string(), [&](std::ostream& out) {
    out << "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
           "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]\n";
    for (const ImagePlan& im : images) {
      const PatientPlan& p = patients[static_cast<std::size_t>(im.patient)];
      out << image_name(p, im.follow_up) << ',' << label_field(all_findings(p, im)) << ',' << im.follow_up << ','
          << p.id << ',' << p.age + im.follow_up / 2 << ',' << (p.anatomy.female ? 'F' : 'M') << ",PA,"
          << options.size << ',' << options.size << ',' << spacing << ',' << spacing << '\n';
    }
  });
  io::write_file_atomically((root / "BBox_List_2017.csv").string(), [&](std::ostream& out) {
    out << "Image Index,Finding Label,Bbox [x,y,w,h],,,\n";
    for (std::size_t i = 0; i < images.size(); ++i) {
      const ImagePlan& im = images[i];
      const PatientPlan& p = patients[static_cast<std::size_t>(im.patient)];
      const std::vector<Finding> findings = all_findings(p, im);
      for (std::size_t k = 0; k < findings.size(); ++k) {
        const Box& b = boxes[i][k];
        out << image_name(p, im.follow_up) << ',' << box_label_name(findings[k].kind) << ',' << b.x << ',' << b.y
            << ',' << b.w << ',' << b.h << '\n';
        ++summary.boxes;
      }
    }
  });
  for (const bool test : {false, true}) {
    SplitCounts& counts = test ? summary.test : summary.train_val;
    for (const PatientPlan& p : patients) counts.patients += p.test == test;
    io::write_file_atomically((root / (test ? "test_list.txt" : "train_val_list.txt")).string(), [&](std::ostream& out) {
      for (const ImagePlan& im : images) {
        const PatientPlan& p = patients[static_cast<std::size_t>(im.patient)];
        if (p.test != test) continue;
        out << image_name(p, im.follow_up) << '\n';
        ++counts.images;
        const std::vector<Finding> findings = all_findings(p, im);
        for (int k = 0; k < kFindingKinds; ++k) counts.positives[static_cast<std::size_t>(k)] += has(findings, kAllFindings[static_cast<std::size_t>(k)]);
      }
    });
  }
  return summary;
}

}  // namespace chex::demo

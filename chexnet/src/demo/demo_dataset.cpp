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
#include "chex/demo/readers.h"
#include "png_writer.h"
#include "thorax.h"

namespace chex::demo {
namespace {

// Prevalences, per image (chronic findings: per patient, on every one of their images). NIH's order
// (Infiltration most common, Hernia rarest) compressed so that the default 2,000 images still hold
// dozens of every finding in a 10% validation split; about a third of the images have no finding.
struct Prevalence {
  FindingKind kind;
  float rate;
};
constexpr Prevalence kChronic[] = {
    {FindingKind::Cardiomegaly, 0.08f}, {FindingKind::Emphysema, 0.07f},
    {FindingKind::Fibrosis, 0.06f},     {FindingKind::Hernia, 0.045f}};
// Drawn in this order so that co-occurrence can follow what is already there (see acute_rate).
constexpr Prevalence kAcute[] = {
    {FindingKind::Effusion, 0.12f},      {FindingKind::Pneumothorax, 0.085f}, {FindingKind::Atelectasis, 0.10f},
    {FindingKind::Edema, 0.05f},        {FindingKind::Pneumonia, 0.06f},     {FindingKind::Infiltration, 0.13f},
    {FindingKind::Consolidation, 0.075f}, {FindingKind::Mass, 0.09f},        {FindingKind::Nodule, 0.10f},
    {FindingKind::Pleural_Thickening, 0.08f}};
constexpr int kMaxImagesPerPatient = 6;
constexpr float kFieldOfViewMm = 430.0f;  // a 43 cm detector

struct PatientPlan {
  int id = 0;
  Anatomy anatomy;
  std::vector<Finding> chronic;  // traits of the patient, on every one of their images
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
  std::vector<Finding> findings = p.chronic;
  findings.insert(findings.end(), image.findings.begin(), image.findings.end());
  return findings;
}

bool has(const std::vector<Finding>& findings, FindingKind kind) {
  return std::any_of(findings.begin(), findings.end(), [&](const Finding& f) { return f.kind == kind; });
}

bool is_chronic(FindingKind kind) {
  return std::any_of(std::begin(kChronic), std::end(kChronic), [&](const Prevalence& p) { return p.kind == kind; });
}

// Plausible company: edema with a large heart, atelectasis beside an effusion, a pneumothorax from
// emphysema's bullae, infiltrates and consolidation with pneumonia; edema and pneumonia rarely together.
float acute_rate(const Prevalence& p, const std::vector<Finding>& present) {
  const auto with = [&](FindingKind k) { return has(present, k); };
  switch (p.kind) {
    case FindingKind::Edema: return p.rate * (with(FindingKind::Cardiomegaly) ? 4.0f : 0.8f);
    case FindingKind::Effusion: return p.rate * (with(FindingKind::Cardiomegaly) ? 2.0f : 1.0f);
    case FindingKind::Atelectasis: return p.rate * (with(FindingKind::Effusion) ? 2.5f : 0.85f);
    case FindingKind::Pneumothorax: return p.rate * (with(FindingKind::Emphysema) ? 2.5f : 0.9f);
    case FindingKind::Pneumonia: return p.rate * (with(FindingKind::Edema) ? 0.3f : 1.0f);
    case FindingKind::Infiltration:
    case FindingKind::Consolidation: return p.rate * (with(FindingKind::Pneumonia) ? 3.0f : 0.85f);
    default: return p.rate;
  }
}

// A finding of `kind` placed among `present`, in the anatomy as they have reshaped it.
Finding place(FindingKind kind, const Anatomy& anatomy, const std::vector<Finding>& present, Generator& g) {
  return random_finding(kind, detail::with_volume_changes(anatomy, present), present, g);
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

// Each reader's file, and its tally against the truth. A reader's marks on an image depend only on
// the seed, the reader and the image, so adding readers leaves the others' files unchanged.
void write_readers(const DemoOptions& options, const std::vector<PatientPlan>& patients,
                   const std::vector<ImagePlan>& images, const std::filesystem::path& root, DemoSummary& summary) {
  if (options.readers == 0) return;
  const std::filesystem::path dir = root / "readers";
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  CHEX_CHECK(!ec && std::filesystem::is_directory(dir), "make-demo: cannot create '", dir.string(), "': ", ec.message());
  for (int r = 1; r <= options.readers; ++r) {
    const ReaderModel model = reader_model(r, options.seed);
    ReaderSummary& tally = summary.readers.emplace_back();
    const std::string name = "reader_" + std::to_string(r) + ".csv";
    io::write_file_atomically((dir / name).string(), [&](std::ostream& out) {
      out << "Image Index,Finding Labels\n";
      for (std::size_t i = 0; i < images.size(); ++i) {
        const ImagePlan& im = images[i];
        const PatientPlan& p = patients[static_cast<std::size_t>(im.patient)];
        const std::vector<Finding> truth = all_findings(p, im);
        Generator g(mix(mix(options.seed, 0x7eade7 + static_cast<uint64_t>(r)), i));
        const std::vector<FindingKind> marked = read_image(model, truth, g);
        std::vector<Finding> as_findings;
        for (const FindingKind k : marked) as_findings.push_back(Finding{.kind = k});
        out << image_name(p, im.follow_up) << ',' << label_field(as_findings) << '\n';
        for (std::size_t k = 0; k < kFindingKinds; ++k) {
          const FindingKind kind = kAllFindings[k];
          const bool said = std::find(marked.begin(), marked.end(), kind) != marked.end();
          const auto it = std::find_if(truth.begin(), truth.end(), [&](const Finding& f) { return f.kind == kind; });
          if (it != truth.end()) {
            ++tally.positives, tally.misses += !said;
            tally.expected_misses += 1.0 - detection_probability(model, *it);
          } else {
            ++tally.negatives, tally.false_marks += said;
            tally.expected_false_marks += model.false_mark_rate[k];
          }
        }
      }
    });
  }
}

}  // namespace

DemoSummary make_demo_dataset(const DemoOptions& options) {
  CHEX_CHECK(!options.out.empty(), "make-demo: no output folder given");
  CHEX_CHECK(options.images >= kMinDemoImages, "make-demo: at least ", kMinDemoImages,
             " images are needed so that every finding has positives in both splits, got ", options.images);
  CHEX_CHECK(options.readers >= 0 && options.readers <= 100, "make-demo: the number of readers ", options.readers,
             " is outside [0, 100]");
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
    for (const Prevalence& c : kChronic) {
      // Emphysema and fibrosis pull the lungs opposite ways: one or the other.
      if (c.kind == FindingKind::Fibrosis && has(p.chronic, FindingKind::Emphysema)) continue;
      if (g.uniform() < c.rate) p.chronic.push_back(place(c.kind, p.anatomy, p.chronic, g));
    }
    const int count = std::min(1 + static_cast<int>(master.below(kMaxImagesPerPatient)),
                               options.images - static_cast<int>(images.size()));
    for (int k = 0; k < count; ++k) {
      ImagePlan& image = images.emplace_back();
      image.patient = static_cast<int>(patients.size()) - 1;
      image.follow_up = k;
      Generator gi(mix(p.seed, static_cast<uint64_t>(k)));
      image.view = random_view(gi);
      std::vector<Finding> present = p.chronic;
      for (const Prevalence& a : kAcute) {
        if (gi.uniform() >= acute_rate(a, present)) continue;
        present.push_back(place(a.kind, p.anatomy, present, gi));
        image.findings.push_back(present.back());
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
      const Finding added = place(kind, p.anatomy, all_findings(p, *target), fixer);
      if (is_chronic(kind)) p.chronic.push_back(added);
      else target->findings.push_back(added);
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
  write_readers(options, patients, images, root, summary);
  return summary;
}

}  // namespace chex::demo

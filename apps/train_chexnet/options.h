#pragma once
// train_chexnet's command line: the paper's recipe as defaults, every option documented in --help.
#include <cstdint>
#include <string>
#include <vector>

namespace chex::train {

struct Options {
  std::string data;           // NIH layout folder
  bool demo = false;          // make the demo set in `data` if absent; demo-sized defaults
  int demo_images = 2000;
  std::string out = "train_out";
  std::string device = "cpu";
  std::string precision;      // --precision, checked against the device in Run::go; empty: the default
  bool deterministic = true;  // --deterministic on|off (cuDNN algorithms; the CPU always is)
  bool cuda_graph = true;      // --cuda-graph on|off: the step recorded as a CUDA graph and replayed
  int threads = 0;            // 0: the engine's default
  int workers = 2;
  uint64_t seed = 1;
  int64_t batch_size = 16;
  int64_t epochs = 100;
  int64_t max_steps = 0;      // 0: no limit
  int image_size = 224;
  double lr = 1e-3;
  std::string loss = "weighted";
  std::string arch = "densenet121";
  std::string pretrained;
  std::string split = "random";
  std::string cache;
  bool strict = false;
  int patience = 1;
  int max_plateaus = 3;
  int64_t checkpoint_every = 0;  // steps; 0: at epoch ends only
  bool resume = false;
  int bootstrap = 1000;
  std::vector<std::string> readers;  // reader CSVs for the report's reader study (--demo: <data>/readers/ when absent)
  bool report = true;                // write OUT/report.html at the end
  double log_interval = 10.0;    // seconds between plain progress lines (not a terminal)
  int64_t crash_after_step = 0;      // tests only: SIGKILL ourselves right after this step
  int64_t interrupt_after_step = 0;  // tests only: SIGINT ourselves right after this step
  int64_t nan_input_at_step = 0;     // tests only: a NaN pixel in this step's batch (a real NaN loss)
  bool sync_bn = false;              // data-parallel: batch norm over the global batch
  double collective_timeout = 60;    // seconds a rank waits for the others before ending the job
  double bucket_mb = 25;             // data-parallel: gradients all-reduced together
  int bn_groups = 1;                 // tests only: ghost batch norm over this many slices of a batch
  int64_t hang_after_step = 0;       // tests only (mpirun): the last rank stops answering after this step
};

// Parses argv; prints --help and exits 0 when asked. Throws chex::Error on a bad option.
Options parse_options(const std::vector<std::string>& args);

// The options a checkpoint was made with that a resumed run must share (they decide the numbers).
std::string fingerprint(const Options& options);

}  // namespace chex::train

// chex_devices: what this build of chex can run on. `--has-gpu` answers with the exit code only
// (the test script uses it to leave out the GPU tests on machines without one).
#include <cstdio>
#include <cstring>

#include "chex/device.h"
#include "chex/parallel.h"

namespace {
void usage() {
  std::puts(
      "usage: chex_devices [--has-gpu] [--json]\n"
      "\n"
      "Prints the devices this build of chex can use.\n"
      "  --has-gpu   print nothing; exit 0 when a usable GPU is present, 1 otherwise\n"
      "  --json      print one JSON line instead of text\n"
      "  -h, --help  this help");
}
}  // namespace

int main(int argc, char** argv) {
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--has-gpu")) return chex::cuda_device_count() > 0 ? 0 : 1;
    if (!std::strcmp(argv[i], "--json")) {
      json = true;
    } else if (!std::strcmp(argv[i], "-h") || !std::strcmp(argv[i], "--help")) {
      usage();
      return 0;
    } else {
      std::fprintf(stderr, "chex_devices: error: unknown option '%s' (see --help)\n", argv[i]);
      return 2;
    }
  }
  const bool compiled = chex::cuda_compiled();
  const int gpus = chex::cuda_device_count();
  if (json) {
    std::printf("{\"cuda_compiled\": %s, \"gpus\": %d, \"cpu_threads\": %d}\n", compiled ? "true" : "false", gpus,
                chex::num_threads());
    return 0;
  }
  std::printf("cpu      : %d threads\n", chex::num_threads());
  std::printf("cuda     : %s\n", compiled ? "compiled in" : "not compiled in (no CUDA toolkit at build time)");
  if (compiled) std::printf("gpus     : %d%s\n", gpus, gpus ? "" : " (no usable GPU: --device cuda will refuse)");
  return 0;
}

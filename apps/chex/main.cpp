// chex: CheXNet from the command line. `chex SUBCOMMAND [options]`; see `chex --help`.
#include <algorithm>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "chex/parallel.h"
#include "command.h"

namespace {

using chex::cli::Command;

constexpr Command kCommands[] = {
    {"predict", "probabilities of the 14 findings for chest X-ray images, as CSV", chex::cli::run_predict},
    {"eval", "AUROC and F1 (bootstrap confidence intervals) of predictions against NIH labels", chex::cli::run_eval},
    {"cam", "class activation maps: heatmap overlays (PNG), raw maps (.npy) and boxes", chex::cli::run_cam},
    {"localize", "localization scores of the maps against NIH's boxes (IoU, IoBB, pointing game)",
     chex::cli::run_localize},
    {"report", "a train_chexnet run's HTML report: curves, paper comparison, readers, CAM gallery",
     chex::cli::run_report},
    {"make-demo", "write a synthetic chest X-ray dataset in the NIH layout", chex::cli::run_make_demo},
};

void print_usage(std::FILE* out) {
  std::fprintf(out,
               "usage: chex COMMAND [options]      (chex COMMAND --help for a command's options)\n\n"
               "CheXNet (DenseNet-121) on chest X-rays.\n\ncommands:\n");
  for (const Command& c : kCommands) std::fprintf(out, "  %-10s %s\n", c.name, c.summary);
  std::fprintf(out,
               "\n  --verbose  (with any command) on an error, also print the failed check and its source line;\n"
               "             CHEX_DEBUG=1 in the environment does the same\n"
               "\nexit status: 0 success, 1 error, 2 usage error, 3 output written but some inputs skipped\n");
}

}  // namespace

int main(int argc, char** argv) {
  chex::prefer_passive_openmp_waiting(argv);
  std::vector<std::string> args(argv + 1, argv + argc);
  // --verbose is understood by every command, so main takes it out before a command parses the rest.
  const auto options_end = std::find(args.begin(), args.end(), "--");
  const auto verbose_at = std::find(args.begin(), options_end, "--verbose");
  const bool verbose = verbose_at != options_end;
  if (verbose) args.erase(verbose_at);
  if (args.size() >= 2 && args[0] == "help") args = {args[1], "--help"};  // chex help predict
  if (args.empty()) {
    print_usage(stderr);
    return chex::cli::kExitUsage;
  }
  if (args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    print_usage(stdout);
    return chex::cli::kExitOk;
  }
  for (const Command& c : kCommands) {
    if (args[0] != c.name) continue;
    try {
      return c.run(std::vector<std::string>(args.begin() + 1, args.end()));
    } catch (const chex::cli::UsageError& e) {
      std::fprintf(stderr, "chex: error: %s (see 'chex %s --help')\n", e.what(), c.name);
      if ((verbose || chex::debug_requested()) && !e.details().empty())
        std::fprintf(stderr, "  details: %s\n", e.details().c_str());
      return chex::cli::kExitUsage;
    } catch (const std::exception& e) {
      chex::print_error("chex", e, verbose);
      return chex::cli::kExitError;
    }
  }
  std::fprintf(stderr, "chex: error: unknown command '%s' (see 'chex --help')\n", args[0].c_str());
  return chex::cli::kExitUsage;
}

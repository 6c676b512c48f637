// train_chexnet: trains and evaluates CheXNet. See --help, or trainer.cpp for the run's shape.
#include <algorithm>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "chex/error.h"
#include "chex/distributed.h"
#include "chex/parallel.h"
#include "options.h"
#include "trainer.h"

int main(int argc, char** argv) {
  chex::prefer_passive_openmp_waiting(argv);
  std::vector<std::string> args(argv + 1, argv + argc);
  const bool verbose = std::find(args.begin(), args.end(), "--verbose") != args.end();
  try {
    const chex::train::Options options = chex::train::parse_options(args);
    return chex::train::run_training(options);
  } catch (const std::exception& e) {
    chex::print_error("train_chexnet", e, verbose);
    std::fflush(stderr);
    chex::distributed::abort_job_if_distributed(1);  // under mpirun: the other ranks stop now too
    return 1;
  }
}

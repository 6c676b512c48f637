// train_chexnet: trains and evaluates CheXNet. See --help, or trainer.cpp for the run's shape.
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "chex/distributed.h"
#include "chex/parallel.h"
#include "options.h"
#include "trainer.h"

int main(int argc, char** argv) {
  chex::prefer_passive_openmp_waiting(argv);
  try {
    const chex::train::Options options = chex::train::parse_options(std::vector<std::string>(argv + 1, argv + argc));
    return chex::train::run_training(options);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "train_chexnet: error: %s\n", e.what());
    std::fflush(stderr);
    chex::distributed::abort_job_if_distributed(1);  // under mpirun: the other ranks stop now too
    return 1;
  }
}

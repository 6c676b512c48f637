// cuBLAS is opened on first use, not at process start (engine/src/cuda/cublas_library.h): a
// CPU-only run must not map it, and the first CUDA GEMM must find every function. Opening the
// library needs no GPU, so this runs on our machines.
#include <catch2/catch.hpp>

#include <fstream>
#include <string>

#include "engine/src/cuda/cublas_library.h"

namespace {

bool process_maps(const std::string& library) {
  std::ifstream maps("/proc/self/maps");
  for (std::string line; std::getline(maps, line);)
    if (line.find(library) != std::string::npos) return true;
  return false;
}

}  // namespace

TEST_CASE("cuBLAS is mapped only once a CUDA GEMM asks for it, and then has every function", "[cublas]") {
  // Linking libchex (this test does, with libcudart and libcudnn) must not pull cuBLAS in.
  REQUIRE(process_maps("libcudart"));
  REQUIRE_FALSE(process_maps("libcublas"));

  const chex::cuda::CublasLibrary& library = chex::cuda::cublas();
  CHECK(process_maps("libcublas.so"));
  CHECK(library.create != nullptr);
  CHECK(library.set_stream != nullptr);
  CHECK(library.set_pointer_mode != nullptr);
  CHECK(library.set_math_mode != nullptr);
  CHECK(library.sgemm != nullptr);
  REQUIRE(library.status_string != nullptr);
  CHECK(std::string(library.status_string(CUBLAS_STATUS_NOT_INITIALIZED)).find("not initialized") !=
        std::string::npos);
  CHECK(&chex::cuda::cublas() == &library);  // opened once
}

# System dependencies, all from Debian packages. When one is missing, configuration stops and names
# the package to install (third_party/setup.sh installs them all).

function(chex_missing what package)
  message(FATAL_ERROR "chex needs ${what}. Install it with:  sudo apt-get install ${package}\n"
                      "(or run: bash third_party/setup.sh test, which installs everything)")
endfunction()

find_package(OpenMP QUIET COMPONENTS CXX)
if(NOT OpenMP_CXX_FOUND)
  chex_missing("OpenMP for the CPU backend" "libgomp1 (part of g++)")
endif()

find_package(nlohmann_json 3 QUIET)
if(NOT nlohmann_json_FOUND)
  chex_missing("nlohmann-json (JSON headers for safetensors and checkpoints)" "nlohmann-json3-dev")
endif()

find_package(PkgConfig QUIET)
if(PkgConfig_FOUND)
  pkg_check_modules(CHEX_STB QUIET IMPORTED_TARGET stb)
endif()
if(NOT CHEX_STB_FOUND)
  chex_missing("stb (image decoding and encoding)" "libstb-dev pkg-config")
endif()

# JPEG decoding with the library PIL uses (libjpeg-turbo), so that decoded values are PIL's own.
find_package(JPEG QUIET)
if(NOT JPEG_FOUND)
  chex_missing("libjpeg-turbo (JPEG decoding)" "libjpeg-dev")
endif()

# DICOM: DCMTK parses the files and decodes their compressed pixel data (docs/dicom.md says why
# DCMTK). Its CMake package names every module; chex links the reading and decoding ones.
find_package(DCMTK QUIET CONFIG)
if(NOT DCMTK_FOUND OR NOT TARGET DCMTK::dcmdata OR NOT TARGET DCMTK::dcmjpeg OR NOT TARGET DCMTK::dcmjpls)
  chex_missing("DCMTK (DICOM reading)" "libdcmtk-dev")
endif()

# CPU GEMM. oneDNN's sgemm measured 1.06-1.63x OpenBLAS's on our (AVX2) machines; bench_gemm prints both.
if(CHEX_GEMM STREQUAL "onednn")
  # Debian's oneDNN is built with its OpenCL runtime and its CMake package requires OpenCL, which
  # libdnnl-dev only recommends: without it, find_package(dnnl) is a hard error naming OpenCL.
  find_package(OpenCL QUIET)
  if(NOT OpenCL_FOUND)
    chex_missing("the OpenCL loader that Debian's oneDNN CMake package requires" "ocl-icd-opencl-dev")
  endif()
  find_package(dnnl QUIET CONFIG)
  if(NOT dnnl_FOUND)
    chex_missing("oneDNN for the CPU GEMMs (or configure with -DCHEX_GEMM=openblas)" "libdnnl-dev")
  endif()
  set(CHEX_GEMM_TARGET DNNL::dnnl)
elseif(CHEX_GEMM STREQUAL "openblas")
  find_package(OpenBLAS QUIET CONFIG)
  if(NOT OpenBLAS_FOUND)
    chex_missing("OpenBLAS for the CPU GEMMs" "libopenblas-dev")
  endif()
  add_library(chex_openblas INTERFACE)
  target_include_directories(chex_openblas SYSTEM INTERFACE ${OpenBLAS_INCLUDE_DIRS})
  target_link_libraries(chex_openblas INTERFACE ${OpenBLAS_LIBRARIES})
  set(CHEX_GEMM_TARGET chex_openblas)
else()
  message(FATAL_ERROR "CHEX_GEMM must be onednn or openblas, not '${CHEX_GEMM}'")
endif()

if(CHEX_BUILD_TESTS)
  find_package(Catch2 2 QUIET)
  if(NOT Catch2_FOUND)
    chex_missing("Catch2 v2 for the tests (or configure with -DCHEX_BUILD_TESTS=OFF)" "catch2")
  endif()
  if(CHEX_TORCH_TESTS)
    # Debian's torch is built for Debian's python, not for whatever python3 is first on PATH.
    find_program(CHEX_REFERENCE_PYTHON python3 PATHS /usr/bin NO_DEFAULT_PATH)
    if(CHEX_REFERENCE_PYTHON)
      execute_process(COMMAND ${CHEX_REFERENCE_PYTHON} -c "import torch, torchvision, sklearn"
                      RESULT_VARIABLE _chex_torch_rc OUTPUT_QUIET ERROR_QUIET)
    endif()
    if(NOT CHEX_REFERENCE_PYTHON OR NOT _chex_torch_rc EQUAL 0)
      chex_missing("PyTorch for the reference tests (or configure with -DCHEX_TORCH_TESTS=OFF)"
                   "python3-torch python3-torchvision python3-sklearn")
    endif()
  endif()
endif()

# MPI, optional: with it, train_chexnet and chex::distributed run one process per device under
# mpirun (data-parallel training); without it, a request for several ranks is one clear error.
option(CHEX_MPI "Build data-parallel training over MPI (and NCCL, loaded at run time, for CUDA)" ON)
set(CHEX_HAVE_MPI OFF)
if(CHEX_MPI)
  enable_language(C)  # FindMPI's C component compiles a C test program
  find_package(MPI QUIET COMPONENTS C)
  if(MPI_C_FOUND)
    set(CHEX_HAVE_MPI ON)
  else()
    message(STATUS "chex: MPI not found: data-parallel training is off (apt-get install libopenmpi-dev openmpi-bin)")
  endif()
endif()

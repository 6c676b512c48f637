# CUDA toolkit glue: the CUDA backend is on when a toolkit is found, off cleanly when not.
#   -DCHEX_CUDA=AUTO (default) | ON (fail without a toolkit) | OFF
# GPU architectures are explicit: "native" cannot work on our machines, which have no GPU, and
# CUDA 13 compiles for sm_75 and newer only. 80 = A100, 90 = H100/H200.
set(CHEX_CUDA "AUTO" CACHE STRING "Build the CUDA backend: AUTO, ON or OFF")
set_property(CACHE CHEX_CUDA PROPERTY STRINGS AUTO ON OFF)
if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
  set(CMAKE_CUDA_ARCHITECTURES "80;90" CACHE STRING "GPU architectures to compile for")
endif()
if(NOT DEFINED CMAKE_CUDA_COMPILER AND NOT CHEX_CUDA STREQUAL "OFF")
  # The toolkit is often installed without being on PATH.
  find_program(_chex_nvcc nvcc PATHS /usr/local/cuda/bin NO_CACHE)
  if(_chex_nvcc)
    set(CMAKE_CUDA_COMPILER "${_chex_nvcc}" CACHE FILEPATH "CUDA compiler")
  endif()
endif()

macro(chex_enable_cuda_language)
  set(_chex_cuda_found OFF)
  if(NOT CHEX_CUDA STREQUAL "OFF")
    include(CheckLanguage)
    check_language(CUDA)
    if(CMAKE_CUDA_COMPILER)
      set(_chex_cuda_found ON)
    elseif(CHEX_CUDA STREQUAL "ON")
      message(FATAL_ERROR "CHEX_CUDA=ON but no CUDA compiler (nvcc) was found. Install the CUDA "
                          "toolkit or configure with -DCHEX_CUDA=OFF.")
    endif()
  endif()
  if(_chex_cuda_found)
    enable_language(CUDA)
    # No CMAKE_CUDA_STANDARD: CMake 3.25 knows no C++20 flag for nvcc and would reject it; CUDA
    # targets pass -std=c++20 themselves (see chex_cuda_compile_check in kernels/emu/).
    find_package(CUDAToolkit REQUIRED)
    # cuDNN ships no CMake package: look for it beside the toolkit's own libraries.
    find_library(CHEX_CUDNN_LIBRARY cudnn HINTS ${CUDAToolkit_LIBRARY_DIR} PATH_SUFFIXES lib64 lib)
    find_path(CHEX_CUDNN_INCLUDE_DIR cudnn.h HINTS ${CUDAToolkit_INCLUDE_DIRS})
    if(NOT CHEX_CUDNN_LIBRARY OR NOT CHEX_CUDNN_INCLUDE_DIR)
      message(FATAL_ERROR "The CUDA toolkit was found but cuDNN was not (looked for libcudnn and "
                          "cudnn.h under ${CUDAToolkit_LIBRARY_DIR}). Install cuDNN 9 for your "
                          "toolkit or configure with -DCHEX_CUDA=OFF.")
    endif()
    if(NOT TARGET CUDA::cublas)
      message(FATAL_ERROR "The CUDA toolkit has no cuBLAS; configure with -DCHEX_CUDA=OFF.")
    endif()
    add_library(chex_cudnn INTERFACE)
    target_link_libraries(chex_cudnn INTERFACE ${CHEX_CUDNN_LIBRARY})
    target_include_directories(chex_cudnn SYSTEM INTERFACE ${CHEX_CUDNN_INCLUDE_DIR})
    set(CHEX_CUDA ON)
  else()
    set(CHEX_CUDA OFF)
  endif()
endmacro()

# chex_cuda_kernel_library(<target> <file.cu>...): the CUDA backend's kernels, compiled by nvcc for
# every CMAKE_CUDA_ARCHITECTURES into a static library that libchex links. ptxas prints registers
# and spills (-v), and a spill fails the build (--warn-on-spills with warnings as errors): our
# kernels are memory-bound and must keep their values in registers.
# CMake 3.25 knows no C++20 flag for nvcc (it would reject a CUDA standard of 20, and add its own
# -std=c++17 when a standard is required), so the target states none and passes -std=c++20 itself.
function(chex_cuda_kernel_library target)
  unset(CMAKE_CUDA_STANDARD)
  unset(CMAKE_CXX_STANDARD)
  unset(CMAKE_CUDA_STANDARD_REQUIRED)
  unset(CMAKE_CXX_STANDARD_REQUIRED)
  add_library(${target} STATIC ${ARGN})
  # Hidden: linked into libchex, the launchers are not part of its interface (kernels/CMakeLists.txt).
  set_target_properties(${target} PROPERTIES CUDA_EXTENSIONS ON POSITION_INDEPENDENT_CODE ON
                                             CUDA_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON)
  target_include_directories(${target} PUBLIC ${CHEX_KERNELS_INCLUDE_ROOT})
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CUDA>:-std=c++20 -Xptxas=-v,--warn-on-spills --Werror=all-warnings>)
  target_link_libraries(${target} PUBLIC CUDA::cudart chex_base)
endfunction()

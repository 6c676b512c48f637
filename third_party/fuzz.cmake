# -DCHEX_FUZZ=ON (clang only): the whole build gets AddressSanitizer, UndefinedBehaviorSanitizer and
# libFuzzer's coverage instrumentation (the parsers under test live in libchex and libchexnet, so
# they must be instrumented too), and the fuzz targets of tests/fuzz/ are added.
# See tests/fuzz/README.md.
option(CHEX_FUZZ "Build the libFuzzer targets (needs clang; instruments the whole build)" OFF)
if(CHEX_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "CHEX_FUZZ needs clang: configure with -DCMAKE_CXX_COMPILER=clang++ (Debian: clang)")
  endif()
  # -Wno-pass-failed: instrumented loops cannot honour "omp simd" hints, which is fine for fuzzing.
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g
                      -Wno-pass-failed)
  add_link_options(-fsanitize=address,undefined)
endif()

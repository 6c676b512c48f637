# The layers' include rules, checked over the sources (cmake -DSOURCE_DIR=... -P check_layers.cmake):
#   apps -> models -> chexnet -> engine -> kernels -> base
# The build already refuses most wrong includes (each target's include roots hold only the layers
# below it); this names every offending line at once, including in files a build does not compile.
# A rule: a folder, then the quoted-include prefixes (comma-separated) that no file under it may use.
set(rules
  "base|chex/tensor.h,chex/ops.h,chex/data/,chex/metrics/,chex/demo/,kernels/,engine/,models/,chexnet/"
  "kernels|chex/tensor.h,chex/ops.h,chex/autograd.h,chex/device.h,chex/data/,chex/metrics/,chex/demo/,engine/,models/,chexnet/,bench/,tests/"
  "engine|chex/data/,chex/metrics/,chex/demo/,chex/chexnet.h,models/,apps/,bench/,tests/,chexnet/"
  "chexnet|models/,kernels/,engine/,apps/,bench/,tests/"
  "models|kernels/,engine/,apps/,bench/,tests/"
  "apps|kernels/,engine/,bench/,tests/"
  "bench|engine/,tests/,apps/")
set(violations "")
foreach(rule IN LISTS rules)
  string(REPLACE "|" ";" parts "${rule}")
  list(POP_FRONT parts folder)
  string(REPLACE "," ";" parts "${parts}")
  file(GLOB_RECURSE files "${SOURCE_DIR}/${folder}/*.h" "${SOURCE_DIR}/${folder}/*.cpp" "${SOURCE_DIR}/${folder}/*.cu"
       "${SOURCE_DIR}/${folder}/*.cuh")
  foreach(file IN LISTS files)
    file(STRINGS "${file}" includes REGEX "^[ \t]*#[ \t]*include[ \t]+\"")
    foreach(line IN LISTS includes)
      string(REGEX REPLACE "^[ \t]*#[ \t]*include[ \t]+\"([^\"]+)\".*" "\\1" path "${line}")
      foreach(prefix IN LISTS parts)
        string(FIND "${path}" "${prefix}" at)
        if(at EQUAL 0)
          file(RELATIVE_PATH rel "${SOURCE_DIR}" "${file}")
          string(APPEND violations "  ${rel}: #include \"${path}\" (${folder}/ may not include ${prefix}...)\n")
        endif()
      endforeach()
    endforeach()
  endforeach()
endforeach()
if(violations)
  message(FATAL_ERROR "includes against the layers (apps -> models -> chexnet -> engine -> kernels -> base):\n"
                      "${violations}")
endif()
message(STATUS "layers: no include against apps -> models -> chexnet -> engine -> kernels -> base")

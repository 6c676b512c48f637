# On a GPU (label gpu): bench_densenet (-DBENCH=path) trains two steps of DenseNet-121 under
# CHEX_LOG=conv, once per --deterministic mode (-DMODE=on|off). Every convolution pass is logged
# exactly once (the second step finds every choice cached), with the mode's way of choosing, and
# the start line names the mode.
execute_process(COMMAND ${CMAKE_COMMAND} -E env CHEX_LOG=conv
                        ${BENCH} --device cuda --mode train --batch 4 --size 64 --steps 2 --warmup 0
                        --deterministic ${MODE}
                RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT status EQUAL 0)
  message(FATAL_ERROR "bench_densenet --deterministic ${MODE} exited with ${status}:\n${out}\n${err}")
endif()
if(MODE STREQUAL "on")
  set(how "deterministic \\(cuDNN heuristics\\)")
  set(search ", heuristic")
else()
  set(how "timed once per shape, non-deterministic allowed \\(cudnnFind\\)")
  set(search ", timed")
endif()
if(NOT out MATCHES "convolutions on cuda:0: ${how}, TF32 on for convolutions, off for matmuls")
  message(FATAL_ERROR "no start line for --deterministic ${MODE}:\n${out}")
endif()
string(REGEX MATCHALL "chex conv: [^\n]*" lines "${err}")
list(LENGTH lines logged)
set(distinct ${lines})
list(REMOVE_DUPLICATES distinct)
list(LENGTH distinct unique)
# DenseNet-121 at 64 px runs 120 convolutions of 65 distinct shapes (the stem takes no input gradient).
if(logged LESS 150 OR NOT logged EQUAL unique)
  message(FATAL_ERROR "expected each pass logged once (about 3 x 65), got ${logged} lines, ${unique} distinct:\n${err}")
endif()
foreach(line IN LISTS lines)
  if(NOT line MATCHES "${search}")
    message(FATAL_ERROR "a choice not made by the mode's search (${search}):\n${line}")
  endif()
endforeach()
message(STATUS "${logged} convolution choices logged once each, e.g.\n${line}")

# same_file() (and train(), for single-process runs) from the training tests.
include(${CMAKE_CURRENT_LIST_DIR}/../train/train_support.cmake)

# Shared by the mpi test scripts. mpi_train(expected_rc ranks args...) runs train_chexnet ${common}
# args... under mpirun with `ranks` ranks (0: without mpirun); "fail" expects any non-zero status.
# Leaves stdout+stderr in last_output and the wall time in seconds in last_seconds.
function(mpi_train expected_rc ranks)
  if(ranks EQUAL 0)
    set(launcher)
  else()
    set(launcher ${MPIEXEC} -np ${ranks})
  endif()
  string(TIMESTAMP start "%s")
  execute_process(COMMAND ${launcher} ${TRAIN} ${common} ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out
                  ERROR_VARIABLE out TIMEOUT 240)
  string(TIMESTAMP stop "%s")
  if(expected_rc STREQUAL "fail")
    if("${rc}" STREQUAL "0")
      message(FATAL_ERROR "${ranks} ranks, ${ARGN}: succeeded, expected a failure\n${out}")
    endif()
  elseif(NOT "${rc}" STREQUAL "${expected_rc}")
    message(FATAL_ERROR "${ranks} ranks, ${ARGN}: exit ${rc}, expected ${expected_rc}\n${out}")
  endif()
  math(EXPR seconds "${stop} - ${start}")
  set(last_output "${out}" PARENT_SCOPE)
  set(last_seconds ${seconds} PARENT_SCOPE)
endfunction()

# close_weights(a b tolerance why)
function(close_weights a b tolerance why)
  execute_process(COMMAND ${PYTHON} ${COMPARE} ${a} ${b} ${tolerance} RESULT_VARIABLE rc OUTPUT_VARIABLE out
                  ERROR_VARIABLE out)
  if(rc)
    message(FATAL_ERROR "${why}: ${out}")
  endif()
  message(STATUS "${out}")
endfunction()

# Helpers for the command-line tests run with `cmake -P` (include() this file):
#   run(ARGS command... EXPECT_RC n OUT var ERR var)  runs ${RUN_PREFIX} command..., requires exit n
#   expect(text pattern)                              requires `pattern` (not a regex) in `text`
# RUN_PREFIX (optional) is put before every command, e.g. the chex binary.

function(run)
  cmake_parse_arguments(R "" "EXPECT_RC;OUT;ERR" "ARGS" ${ARGN})
  execute_process(COMMAND ${RUN_PREFIX} ${R_ARGS} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL R_EXPECT_RC)
    message(FATAL_ERROR
            "${RUN_PREFIX} ${R_ARGS}: exit ${rc}, expected ${R_EXPECT_RC}\nstdout:\n${out}\nstderr:\n${err}")
  endif()
  set(${R_OUT} "${out}" PARENT_SCOPE)
  set(${R_ERR} "${err}" PARENT_SCOPE)
endfunction()

function(expect text pattern)
  string(FIND "${text}" "${pattern}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "expected '${pattern}' in:\n${text}")
  endif()
endfunction()

# Runs bench_kernels (-DBENCH=path). Without a GPU it must print one line and exit with 3. With
# one, a filter that matches no case makes it measure only the copy baseline, quickly, and exit 0.
execute_process(COMMAND ${BENCH} --repeats 1 --filter "^no such case$" RESULT_VARIABLE status OUTPUT_VARIABLE out
                ERROR_VARIABLE err)
string(STRIP "${out}${err}" text)
string(REGEX MATCHALL "\n" newlines "${text}")
list(LENGTH newlines extra_lines)
if(status EQUAL 3)
  if(NOT extra_lines EQUAL 0 OR NOT text MATCHES "no usable GPU")
    message(FATAL_ERROR "expected one line saying there is no usable GPU, got:\n${text}")
  endif()
  message(STATUS "bench_kernels: ${text}")
elseif(status EQUAL 0)
  message(STATUS "a GPU is present: bench_kernels ran")
else()
  message(FATAL_ERROR "bench_kernels exited with ${status}:\n${text}")
endif()

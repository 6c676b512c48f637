# Installs chex into a fresh prefix, builds tests/consumer against it, and runs it.
# cmake -DCHEX_BUILD_DIR=... -DCONSUMER_SOURCE_DIR=... -DWORK_DIR=... -P run_consumer_test.cmake
file(REMOVE_RECURSE ${WORK_DIR})
function(run step)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  message(STATUS "${step}:\n${out}${err}")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "consumer test: '${step}' failed (exit ${rc})")
  endif()
endfunction()
run("install chex" ${CMAKE_COMMAND} --install ${CHEX_BUILD_DIR} --prefix ${WORK_DIR}/prefix)
run("configure the consumer" ${CMAKE_COMMAND} -S ${CONSUMER_SOURCE_DIR} -B ${WORK_DIR}/build -G Ninja
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix)
run("build the consumer" ${CMAKE_COMMAND} --build ${WORK_DIR}/build)
run("run the consumer" ${WORK_DIR}/build/tiny_cnn)

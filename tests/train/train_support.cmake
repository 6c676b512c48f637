# Shared by the train_chexnet test scripts: run it with ${common} plus arguments, compare files.
# Inputs: TRAIN (train_chexnet), and the caller's ${common} arguments.

# train(expected_rc args...): runs train_chexnet ${common} args...; "Killed" expects death by signal.
# Leaves its stdout in last_output and its stderr in last_error.
function(train expected_rc)
  execute_process(COMMAND ${TRAIN} ${common} ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  # A process killed by a signal has no exit status: CMake reports it as text ("Child killed").
  if(expected_rc STREQUAL "Killed" AND rc MATCHES "[Kk]illed")
  elseif(NOT "${rc}" STREQUAL "${expected_rc}")
    message(FATAL_ERROR "train_chexnet ${ARGN}: exit ${rc}, expected ${expected_rc}\n${out}\n${err}")
  endif()
  set(last_output "${out}" PARENT_SCOPE)
  set(last_error "${err}" PARENT_SCOPE)
endfunction()

# same_file(a b why): a and b must be byte-identical; `why` says what a difference would mean.
function(same_file a b why)
  execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files ${a} ${b} RESULT_VARIABLE differ)
  if(differ)
    message(FATAL_ERROR "${a} and ${b} differ: ${why}")
  endif()
endfunction()

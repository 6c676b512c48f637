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

# check_data_wait(log): every `step` and `epoch` line of the run's log.jsonl says how long it waited
# for the loader (data_wait_seconds): a number (JSON has no NaN or infinity: a non-finite value
# would be written as null), not negative; and the clock moved for at least one step.
function(check_data_wait log)
  file(STRINGS ${log} lines)
  set(steps 0)
  set(epochs 0)
  set(positive 0)
  foreach(line IN LISTS lines)
    string(JSON event GET "${line}" event)
    if(NOT event STREQUAL "step" AND NOT event STREQUAL "epoch")
      continue()
    endif()
    string(JSON type ERROR_VARIABLE missing TYPE "${line}" data_wait_seconds)
    if(missing OR NOT type STREQUAL "NUMBER")
      message(FATAL_ERROR "${log}: a ${event} line without a finite data_wait_seconds (${type}):\n${line}")
    endif()
    string(JSON wait GET "${line}" data_wait_seconds)
    if(wait MATCHES "^-")
      message(FATAL_ERROR "${log}: a negative data_wait_seconds:\n${line}")
    endif()
    if(NOT wait MATCHES "^0(\\.0*)?$")
      math(EXPR positive "${positive} + 1")
    endif()
    math(EXPR ${event}s "${${event}s} + 1")
  endforeach()
  if(steps EQUAL 0 OR epochs EQUAL 0 OR positive EQUAL 0)
    message(FATAL_ERROR "${log}: expected step and epoch lines with data_wait_seconds, some above 0; found "
                        "${steps} steps, ${epochs} epochs, ${positive} above 0")
  endif()
endfunction()

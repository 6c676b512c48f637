# One command-line case: runs COMMAND (a ;-list), then requires exit status EXPECT_EXIT and output
# (stdout and stderr together) matching EXPECT_REGEX.
#   cmake -DCOMMAND=... -DEXPECT_EXIT=2 -DEXPECT_REGEX=... -P run_cli_case.cmake
execute_process(COMMAND ${COMMAND} RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
string(JOIN " " shown ${COMMAND})
message(STATUS "ran: ${shown}\nexit status ${status}\nstdout:\n${out}\nstderr:\n${err}")
if(NOT status STREQUAL "${EXPECT_EXIT}")
  message(FATAL_ERROR "expected exit status ${EXPECT_EXIT}, got ${status}")
endif()
if(NOT "${out}${err}" MATCHES "${EXPECT_REGEX}")
  message(FATAL_ERROR "the output does not match: ${EXPECT_REGEX}")
endif()

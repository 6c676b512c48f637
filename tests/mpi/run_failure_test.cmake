# A rank that dies (SIGKILL) or stops answering ends the whole job with an error within 60 s,
# instead of leaving the other rank waiting forever in a collective.
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
set(common --demo --demo-images 130 --data ${WORK_DIR}/demo --arch tiny --image-size 32 --batch-size 16 --epochs 3
           --threads 1 --workers 1 --seed 7 --bootstrap 0 --log-interval 1000 --collective-timeout 10)
include(${CMAKE_CURRENT_LIST_DIR}/mpi_support.cmake)

mpi_train(fail 2 --out ${WORK_DIR}/killed --crash-after-step 3)
if(last_seconds GREATER 60 OR NOT last_output MATCHES "signal 9|[Kk]illed")
  message(FATAL_ERROR "a killed rank did not end the job with a clear error within 60 s (${last_seconds} s):\n${last_output}")
endif()

mpi_train(fail 2 --out ${WORK_DIR}/hung --hang-after-step 3)
if(last_seconds GREATER 60 OR NOT last_output MATCHES "did not complete within 10 s: another rank has probably died")
  message(FATAL_ERROR "a hung rank did not end the job with the timeout's error within 60 s (${last_seconds} s):\n${last_output}")
endif()
message(STATUS "failure test passed")

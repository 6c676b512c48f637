# 2 ranks: a run killed (SIGKILL of one rank) or interrupted (SIGINT, as Ctrl-C on mpirun) and
# resumed at 2 ranks ends with the same files, bit for bit, as one uninterrupted 2-rank run, with
# --sync-bn and without.
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
set(common --demo --demo-images 80 --data ${WORK_DIR}/demo --arch tiny --image-size 32 --batch-size 8 --epochs 2
           --checkpoint-every 3 --threads 1 --workers 1 --seed 7 --bootstrap 0 --log-interval 1000 --sync-bn)
include(${CMAKE_CURRENT_LIST_DIR}/mpi_support.cmake)
set(why "the resumed 2-rank run did not continue exactly")

mpi_train(0 2 --out ${WORK_DIR}/whole)
mpi_train(fail 2 --out ${WORK_DIR}/killed --crash-after-step 5)
mpi_train(0 2 --out ${WORK_DIR}/killed --resume)
same_file(${WORK_DIR}/whole/checkpoint.safetensors ${WORK_DIR}/killed/checkpoint.safetensors "${why}")
same_file(${WORK_DIR}/whole/best.safetensors ${WORK_DIR}/killed/best.safetensors "${why}")
same_file(${WORK_DIR}/whole/test_predictions.csv ${WORK_DIR}/killed/test_predictions.csv "${why}")

# SIGINT reaches both ranks; they stop after the same step, rank 0 writes one checkpoint.
mpi_train(fail 2 --out ${WORK_DIR}/interrupted --interrupt-after-step 4)
string(REGEX MATCHALL "checkpoint written at step 5" written "${last_output}")
list(LENGTH written count)
if(NOT count EQUAL 1)
  message(FATAL_ERROR "an interrupt did not write exactly one checkpoint at step 5:\n${last_output}")
endif()
mpi_train(0 2 --out ${WORK_DIR}/interrupted --resume)
same_file(${WORK_DIR}/whole/checkpoint.safetensors ${WORK_DIR}/interrupted/checkpoint.safetensors "${why}")
same_file(${WORK_DIR}/whole/best.safetensors ${WORK_DIR}/interrupted/best.safetensors "${why}")
# Without --sync-bn too (each rank's own BN statistics, rank 0's running statistics broadcast).
list(REMOVE_ITEM common --sync-bn)
mpi_train(0 2 --out ${WORK_DIR}/whole_plain)
mpi_train(fail 2 --out ${WORK_DIR}/killed_plain --crash-after-step 5)
mpi_train(0 2 --out ${WORK_DIR}/killed_plain --resume)
same_file(${WORK_DIR}/whole_plain/checkpoint.safetensors ${WORK_DIR}/killed_plain/checkpoint.safetensors "${why}")
same_file(${WORK_DIR}/whole_plain/test_predictions.csv ${WORK_DIR}/killed_plain/test_predictions.csv "${why}")
message(STATUS "mpi resume test passed")

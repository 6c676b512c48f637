# A disk that fills while a checkpoint is written (simulated with a file-size limit below the
# checkpoint's size, SIGXFSZ ignored so that the write fails with EFBIG as on a full disk): training
# stops with an error naming the file, the previous checkpoint is left byte-identical, no temporary
# file is left behind, and that checkpoint still resumes.
# Inputs: -DTRAIN=<train_chexnet> -DWORK_DIR=<scratch folder>
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
set(common --demo --demo-images 60 --data ${WORK_DIR}/demo --arch tiny --image-size 32 --batch-size 4 --epochs 2
           --checkpoint-every 2 --threads 2 --workers 2 --seed 7 --bootstrap 0 --log-interval 1000)
include(${CMAKE_CURRENT_LIST_DIR}/train_support.cmake)
set(run ${WORK_DIR}/run)

# Checkpoints at steps 2 and 4, then killed after step 5.
train("Killed" --out ${run} --crash-after-step 5)
file(COPY_FILE ${run}/checkpoint.safetensors ${WORK_DIR}/step4.safetensors)
file(SIZE ${run}/checkpoint.safetensors checkpoint_bytes)
# Half the checkpoint's size: the log (a few KB) still grows, the checkpoint cannot be written.
math(EXPR limit_kib "${checkpoint_bytes} / 2048")
if(NOT limit_kib GREATER 8)
  message(FATAL_ERROR "a ${checkpoint_bytes}-byte checkpoint leaves no room for the limit")
endif()

# Resumed under the limit: the step-6 checkpoint cannot be written.
find_program(BASH bash REQUIRED)
execute_process(COMMAND ${BASH} -c "trap '' XFSZ; ulimit -f ${limit_kib}; exec \"$@\"" train ${TRAIN} ${common}
                        --out ${run} --resume
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(rc EQUAL 0 OR NOT err MATCHES "checkpoint.safetensors")
  message(FATAL_ERROR "a checkpoint write on a full disk: exit ${rc}, expected an error naming the file\n${out}\n${err}")
endif()
same_file(${WORK_DIR}/step4.safetensors ${run}/checkpoint.safetensors "the failed write damaged the previous checkpoint")
file(GLOB leftovers ${run}/*.tmp* ${run}/.*tmp*)
if(leftovers)
  message(FATAL_ERROR "the failed write left temporary files: ${leftovers}")
endif()

# Space again: the kept checkpoint resumes to the end.
train(0 --out ${run} --resume)
message(STATUS "disk-full test passed: '${err}' and the step-4 checkpoint intact, then resumed to the end")

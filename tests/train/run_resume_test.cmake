# train_chexnet --resume continues exactly: runs killed with SIGKILL (twice, mid-epoch and in the
# second epoch) or stopped by SIGINT and resumed end with the same files, bit for bit, as one
# uninterrupted run: the checkpoint (model, Adam's moments, schedule, position) and best.safetensors.
# Tiny settings (a 4-layer DenseNet, 32-pixel images, 60 demo images) keep it to seconds.
# Inputs: -DTRAIN=<train_chexnet> -DWORK_DIR=<scratch folder>
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
set(common --demo --demo-images 60 --data ${WORK_DIR}/demo --arch tiny --image-size 32 --batch-size 4 --epochs 2
           --checkpoint-every 3 --threads 2 --workers 2 --seed 7 --bootstrap 0 --log-interval 1000)

include(${CMAKE_CURRENT_LIST_DIR}/train_support.cmake)
set(why "the resumed run did not continue exactly")

# The reference, uninterrupted (it also makes the demo set).
train(0 --out ${WORK_DIR}/whole)
if(NOT last_output MATCHES "test mean AUROC")
  message(FATAL_ERROR "the uninterrupted run did not evaluate on the test split:\n${last_output}")
endif()
foreach(f test_predictions.csv test_report.md test_report.json checkpoint.json log.jsonl)
  if(NOT EXISTS ${WORK_DIR}/whole/${f})
    message(FATAL_ERROR "the run did not write ${f}")
  endif()
endforeach()
# Each step's wait for the loader, and each epoch's total, are in the log.
check_data_wait(${WORK_DIR}/whole/log.jsonl)

# SIGKILL at step 5 (after the step-3 checkpoint), again at step 13 (second epoch), then to the end.
train("Killed" --out ${WORK_DIR}/killed --crash-after-step 5)
train("Killed" --out ${WORK_DIR}/killed --resume --crash-after-step 13)
train(0 --out ${WORK_DIR}/killed --resume)
same_file(${WORK_DIR}/whole/checkpoint.safetensors ${WORK_DIR}/killed/checkpoint.safetensors "${why}")
same_file(${WORK_DIR}/whole/best.safetensors ${WORK_DIR}/killed/best.safetensors "${why}")
same_file(${WORK_DIR}/whole/test_predictions.csv ${WORK_DIR}/killed/test_predictions.csv "${why}")

# Ctrl-C at step 8: a checkpoint is written and the exit status is 130; resuming ends the same.
train(130 --out ${WORK_DIR}/interrupted --interrupt-after-step 8)
if(NOT last_output MATCHES "checkpoint written at step 8")
  message(FATAL_ERROR "SIGINT did not stop with a checkpoint at step 8:\n${last_output}")
endif()
train(0 --out ${WORK_DIR}/interrupted --resume)
same_file(${WORK_DIR}/whole/checkpoint.safetensors ${WORK_DIR}/interrupted/checkpoint.safetensors "${why}")
same_file(${WORK_DIR}/whole/best.safetensors ${WORK_DIR}/interrupted/best.safetensors "${why}")

# A second run into the same folder without --resume is refused (it would mix two runs).
train(1 --out ${WORK_DIR}/whole)

# bf16 mixed precision resumes exactly too, from the same fp32 checkpoint file format; where the CPU
# has no bf16 unit, --precision bf16 falls back to fp32 with a note, and the comparison still holds.
train(0 --out ${WORK_DIR}/bf16_whole --precision bf16)
train("Killed" --out ${WORK_DIR}/bf16_killed --precision bf16 --crash-after-step 5)
train(0 --out ${WORK_DIR}/bf16_killed --precision bf16 --resume)
same_file(${WORK_DIR}/bf16_whole/checkpoint.safetensors ${WORK_DIR}/bf16_killed/checkpoint.safetensors
          "the resumed bf16 run did not continue exactly")
# The JSON header's text (the file starts with its binary length).
file(STRINGS ${WORK_DIR}/bf16_whole/checkpoint.safetensors header LIMIT_COUNT 1 REGEX "dtype")
if(header MATCHES "BF16" OR NOT header MATCHES "\"F32\"")
  message(FATAL_ERROR "a bf16 run's checkpoint is not all float32: ${header}")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files ${WORK_DIR}/whole/test_predictions.csv
                        ${WORK_DIR}/bf16_whole/test_predictions.csv RESULT_VARIABLE bf16_differs)
if(NOT last_output MATCHES "computing in fp32" AND NOT bf16_differs)
  message(FATAL_ERROR "the bf16 run predicted what the fp32 run did: bf16 did not run")
endif()
# Resuming in another precision would not repeat the run: refused, naming both.
train(1 --out ${WORK_DIR}/bf16_killed --resume --precision fp32)
if(NOT last_error MATCHES "precision=bf16")
  message(FATAL_ERROR "resuming a bf16 run in fp32 was not refused by name:\n${last_output}\n${last_error}")
endif()
message(STATUS "resume test passed: killed and interrupted runs (fp32 and bf16) ended bit-identical to the uninterrupted one")

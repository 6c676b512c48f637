# A NaN loss stops training with a message naming the step, exit status 3, and leaves the last good
# checkpoint and best model exactly as they were before the bad step; that checkpoint resumes.
# The reference is the same run killed (SIGKILL) right after the step before the NaN: both must
# leave identical files, since nothing may be written once the loss is not finite.
# Inputs: -DTRAIN=<train_chexnet> -DWORK_DIR=<scratch folder>
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
set(common --demo --demo-images 60 --data ${WORK_DIR}/demo --arch tiny --image-size 32 --batch-size 4 --epochs 2
           --checkpoint-every 4 --threads 2 --workers 2 --seed 7 --bootstrap 0 --log-interval 1000)
include(${CMAKE_CURRENT_LIST_DIR}/train_support.cmake)

# Step 14 is in the second epoch, so the first epoch's best model exists when the NaN comes.
train("Killed" --out ${WORK_DIR}/killed --crash-after-step 13)
train(3 --out ${WORK_DIR}/nan --nan-input-at-step 14)
if(NOT last_error MATCHES "the loss became NaN at step 14")
  message(FATAL_ERROR "no message naming the NaN loss at step 14:\n${last_output}\n${last_error}")
endif()
file(READ ${WORK_DIR}/nan/log.jsonl log)
if(NOT log MATCHES "\"event\":\"non_finite_loss\"")
  message(FATAL_ERROR "log.jsonl does not record the non-finite loss:\n${log}")
endif()
foreach(f checkpoint.safetensors checkpoint.json best.safetensors)
  if(NOT EXISTS ${WORK_DIR}/nan/${f})
    message(FATAL_ERROR "the NaN run left no ${f}")
  endif()
  same_file(${WORK_DIR}/killed/${f} ${WORK_DIR}/nan/${f} "the NaN step changed what was on disk")
endforeach()
if(EXISTS ${WORK_DIR}/nan/test_predictions.csv)
  message(FATAL_ERROR "the NaN run went on to evaluate on the test split")
endif()

# The kept checkpoint is a good one: resuming (without the poisoned input) runs to the end.
train(0 --out ${WORK_DIR}/nan --resume)
if(NOT last_output MATCHES "test mean AUROC")
  message(FATAL_ERROR "the resumed run did not finish:\n${last_output}")
endif()
message(STATUS "NaN test passed: stopped at step 14 with the step-13 state intact, and resumed to the end")

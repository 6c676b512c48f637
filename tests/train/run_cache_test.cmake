# --cache changes where pixels come from, not what they are: training with the image cache (built
# on the first run, reused by the second) ends with the same weights, bit for bit, as training
# that decodes every image every epoch.
# Inputs: -DTRAIN=<train_chexnet> -DWORK_DIR=<scratch folder>
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
set(common --demo --demo-images 60 --data ${WORK_DIR}/demo --arch tiny --image-size 32 --batch-size 4 --epochs 2
           --threads 2 --workers 2 --seed 7 --bootstrap 0 --log-interval 1000)
include(${CMAKE_CURRENT_LIST_DIR}/train_support.cmake)
set(why "training from the image cache did not see the pixels that decoding gives")

train(0 --out ${WORK_DIR}/decoded)
train(0 --out ${WORK_DIR}/cache_built --cache ${WORK_DIR}/cache)
if(NOT last_output MATCHES "building the image cache")
  message(FATAL_ERROR "the first --cache run did not build the cache:\n${last_output}")
endif()
train(0 --out ${WORK_DIR}/cache_reused --cache ${WORK_DIR}/cache)
# Fed from the memory-mapped cache, each step still records its wait for the loader.
check_data_wait(${WORK_DIR}/cache_reused/log.jsonl)
if(last_output MATCHES "building the image cache")
  message(FATAL_ERROR "the second --cache run rebuilt the cache instead of reusing it:\n${last_output}")
endif()
foreach(run cache_built cache_reused)
  foreach(f checkpoint.safetensors best.safetensors test_predictions.csv)
    same_file(${WORK_DIR}/decoded/${f} ${WORK_DIR}/${run}/${f} "${why} (${run})")
  endforeach()
endforeach()
message(STATUS "cache test passed: cached runs (built and reused) ended bit-identical to the decoding run")

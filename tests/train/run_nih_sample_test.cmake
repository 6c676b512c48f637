# train_chexnet on real NIH ChestX-ray14 files (../shared/data/nih-sample: 100 images in the
# dataset's own layout, official split lists): reads the label file, splits by patient, trains a
# few steps, evaluates on the test split and writes the report. Tiny model, 64 px: seconds.
# Inputs: -DTRAIN=<train_chexnet> -DDATA=<nih-sample folder> -DWORK_DIR=<scratch folder>
if(NOT EXISTS ${DATA}/Data_Entry_2017_v2020.csv)
  # ctest shows this test as skipped (SKIP_REGULAR_EXPRESSION): the real-data check did not run.
  message("NIH sample data not found at ${DATA}: the real-data training test did NOT run")
  return()
endif()
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
set(common --data ${DATA} --arch tiny --image-size 64 --batch-size 8 --max-steps 6 --threads 2 --workers 2
           --seed 3 --bootstrap 100 --log-interval 1000)
include(${CMAKE_CURRENT_LIST_DIR}/train_support.cmake)
foreach(split random official)
  train(0 --out ${WORK_DIR}/${split} --split ${split})
  foreach(pattern "[0-9]+ training images" "test mean AUROC")
    if(NOT last_output MATCHES "${pattern}")
      message(FATAL_ERROR "--split ${split}: no '${pattern}' in the output:\n${last_output}")
    endif()
  endforeach()
  file(STRINGS ${WORK_DIR}/${split}/test_predictions.csv rows)
  list(LENGTH rows lines)
  if(lines LESS 2)
    message(FATAL_ERROR "--split ${split}: test_predictions.csv has no rows")
  endif()
endforeach()
message(STATUS "NIH sample test passed: both splits trained and evaluated on real X-rays")

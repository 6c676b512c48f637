# The programs on DICOM files, end to end:
#   train_chexnet trains on a demo set rewritten as .dcm files (a folder of DICOM with its CSV), and
#   skips a truncated one by name;
#   chex predict gives the same probabilities for each .dcm as for the PNG of the same pixels
#   (the demo's 40 images, and the generated 12-bit MONOCHROME1 windowed image), and names and
#   skips the bad DICOM files (exit status 3); chex cam draws an overlay of a .dcm.
#   cmake -DCHEX=... -DTRAIN=... -DPYTHON=... -DSOURCE_DIR=tests/dicom -DCASES=... -DWORK_DIR=... -P run_dicom_cli_test.cmake
cmake_minimum_required(VERSION 3.25)
include(${CMAKE_CURRENT_LIST_DIR}/../support/cli_test.cmake)

file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
set(demo ${WORK_DIR}/demo)
set(dicom ${WORK_DIR}/demo-dicom)
run(ARGS ${CHEX} make-demo --out ${demo} --images 40 --size 96 --seed 5 EXPECT_RC 0 OUT out ERR err)
run(ARGS ${PYTHON} ${SOURCE_DIR}/demo_to_dicom.py ${demo} ${dicom} EXPECT_RC 0 OUT out ERR err)

# Training reads the .dcm files through the loader (two steps: this is about reading, not learning).
run(ARGS ${TRAIN} --data ${dicom} --arch tiny --image-size 96 --max-steps 2 --epochs 1 --batch-size 8 --bootstrap 10
         --threads 2 --strict --out ${WORK_DIR}/run EXPECT_RC 0 OUT out ERR err)
set(weights ${WORK_DIR}/run/best.safetensors)

# A truncated .dcm among them is skipped by name and counted, as a bad PNG is.
file(GLOB dcms ${dicom}/images/*.dcm)
list(GET dcms 0 victim)
get_filename_component(victim_name ${victim} NAME)
file(COPY_FILE ${CASES}/bad/truncated_in_pixels.dcm ${victim})
run(ARGS ${TRAIN} --data ${dicom} --arch tiny --image-size 96 --max-steps 2 --epochs 1 --batch-size 8 --bootstrap 10
         --threads 2 --out ${WORK_DIR}/run-skip EXPECT_RC 0 OUT out ERR err)
expect("${out}${err}" "skipping unreadable image '${victim_name}'")
expect("${out}${err}" "the DICOM file is truncated")
expect("${out}" "1 unreadable images were skipped")
get_filename_component(victim_stem ${victim} NAME_WE)
file(COPY_FILE ${demo}/images/${victim_stem}.png ${victim})  # a PNG under a .dcm name: read by its signature

# Probabilities per file name stem, from a predictions CSV.
function(read_predictions csv prefix)
  file(STRINGS ${csv} rows)
  list(POP_FRONT rows)
  foreach(row IN LISTS rows)
    string(FIND "${row}" "," comma)
    string(SUBSTRING "${row}" 0 ${comma} name)
    string(SUBSTRING "${row}" ${comma} -1 probabilities)
    get_filename_component(stem ${name} NAME_WE)
    set(${prefix}_${stem} "${probabilities}" PARENT_SCOPE)
  endforeach()
endfunction()

# The 40 demo images: DICOM and PNG predict the same, digit for digit.
run(ARGS ${CHEX} predict --weights ${weights} --image-size 96 --images ${dicom}/images --out ${WORK_DIR}/dcm.csv
         --threads 2 EXPECT_RC 0 OUT out ERR err)
expect("${out}" "predicted 40 of 40")
run(ARGS ${CHEX} predict --weights ${weights} --image-size 96 --images ${demo}/images --out ${WORK_DIR}/png.csv
         --threads 2 EXPECT_RC 0 OUT out ERR err)
read_predictions(${WORK_DIR}/dcm.csv dcm)
read_predictions(${WORK_DIR}/png.csv png)
file(GLOB pngs ${demo}/images/*.png)
foreach(png IN LISTS pngs)
  get_filename_component(stem ${png} NAME_WE)
  if(NOT DEFINED dcm_${stem} OR NOT "${dcm_${stem}}" STREQUAL "${png_${stem}}")
    message(FATAL_ERROR "${stem}: DICOM predicts '${dcm_${stem}}', PNG predicts '${png_${stem}}'")
  endif()
endforeach()

# A 12-bit MONOCHROME1 image with rescale and window, and the PNG of its pixels; the bad files are
# named on stderr and skipped.
file(GLOB bad ${CASES}/bad/*.dcm)
run(ARGS ${CHEX} predict --weights ${weights} --image-size 96 --out ${WORK_DIR}/same.csv --threads 2
         ${CASES}/same/same.dcm ${CASES}/same/same.png ${bad} EXPECT_RC 3 OUT out ERR err)
file(STRINGS ${WORK_DIR}/same.csv rows)
list(LENGTH rows n)
list(LENGTH bad bad_count)
if(NOT n EQUAL 3 OR bad_count LESS 8)
  message(FATAL_ERROR "expected a header and two rows, got ${n} lines (${bad_count} bad files):\n${err}")
endif()
list(GET rows 1 first)
list(GET rows 2 second)
string(FIND "${first}" "," at)
string(SUBSTRING "${first}" ${at} -1 first)
string(FIND "${second}" "," at)
string(SUBSTRING "${second}" ${at} -1 second)
if(NOT first STREQUAL second)
  message(FATAL_ERROR "same.dcm and same.png predict differently:\n${first}\n${second}")
endif()
foreach(file IN LISTS bad)
  expect("${err}" "skipped image '${file}'")
endforeach()
expect("${out}" "${bad_count} skipped")

# chex cam on a .dcm.
run(ARGS ${CHEX} cam --weights ${weights} --image-size 96 --out ${WORK_DIR}/cam ${CASES}/same/same.dcm
         EXPECT_RC 0 OUT out ERR err)
file(GLOB overlays ${WORK_DIR}/cam/same_*.png)
if(NOT overlays)
  message(FATAL_ERROR "chex cam wrote no overlay for same.dcm:\n${out}\n${err}")
endif()

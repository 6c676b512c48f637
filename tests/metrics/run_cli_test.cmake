# Command-line tests of `chex make-demo` and `chex eval`, end to end:
#   cmake -DCHEX=path/to/chex -DWORK_DIR=dir -P run_cli_test.cmake
# Makes a small demo set, writes predictions from its labels (positives 0.8 + a little, negatives
# 0.2 + a little: AUROC 1), evaluates them, and checks the table, the JSON and the error messages.
cmake_minimum_required(VERSION 3.25)

include(${CMAKE_CURRENT_LIST_DIR}/../support/cli_test.cmake)
set(RUN_PREFIX ${CHEX})

file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
set(demo ${WORK_DIR}/demo)

run(ARGS make-demo --help EXPECT_RC 0 OUT out ERR err)
expect("${out}" "usage: chex make-demo")
run(ARGS make-demo --out ${demo} --images 40 --size 64 --seed 3 EXPECT_RC 0 OUT out ERR err)
expect("${out}" "wrote ${demo}: 40 images")
foreach(f Data_Entry_2017_v2020.csv BBox_List_2017.csv train_val_list.txt test_list.txt)
  if(NOT EXISTS ${demo}/${f})
    message(FATAL_ERROR "make-demo did not write ${f}")
  endif()
endforeach()

# Predictions from the labels: a perfect ranking, with ties broken by the row number.
set(labels Atelectasis Cardiomegaly Effusion Infiltration Mass Nodule Pneumonia Pneumothorax Consolidation Edema
           Emphysema Fibrosis Pleural_Thickening Hernia)
set(header "Image Index")
foreach(l ${labels})
  string(APPEND header ",prob_${l}")
endforeach()
file(STRINGS ${demo}/Data_Entry_2017_v2020.csv rows)
list(POP_FRONT rows)
set(preds "${header}\n")
set(n 10)
foreach(row ${rows})
  string(REPLACE "," ";" fields "${row}")
  list(GET fields 0 image)
  list(GET fields 1 findings)
  string(REPLACE "|" ";" findings "${findings}")
  math(EXPR n "${n} + 1")
  set(line "${image}")
  foreach(l ${labels})
    if(l IN_LIST findings)
      string(APPEND line ",0.8${n}")
    else()
      string(APPEND line ",0.2${n}")
    endif()
  endforeach()
  string(APPEND preds "${line}\n")
endforeach()
file(WRITE ${WORK_DIR}/preds.csv "${preds}")

run(ARGS eval --help EXPECT_RC 0 OUT out ERR err)
expect("${out}" "usage: chex eval")
run(ARGS eval --preds ${WORK_DIR}/preds.csv --labels ${demo}/Data_Entry_2017_v2020.csv --bootstrap 200 --seed 1
         --json ${WORK_DIR}/eval.json EXPECT_RC 0 OUT out ERR err)
expect("${out}" "Evaluated 40 images")
expect("${out}" "| Cardiomegaly |")
expect("${out}" "| Atelectasis | 0 / 40 | undefined |")
expect("${out}" "**Mean AUROC** (7 of 14 labels) | | **1.0000**")
expect("${err}" "Atelectasis: no positives among the 40 images")
file(READ ${WORK_DIR}/eval.json json)
string(JSON mean GET "${json}" mean_auroc)
string(JSON nodule GET "${json}" auroc Nodule)
string(JSON hernia TYPE "${json}" auroc Hernia)
string(JSON ci_length LENGTH "${json}" auroc_ci Mass)
string(JSON threshold GET "${json}" thresholds Effusion)
string(JSON f1 GET "${json}" f1 Effusion)
if(NOT mean EQUAL 1 OR NOT nodule EQUAL 1 OR NOT hernia STREQUAL "NULL" OR NOT ci_length EQUAL 2 OR NOT f1 EQUAL 1)
  message(FATAL_ERROR "unexpected JSON: mean ${mean}, Nodule ${nodule}, Hernia ${hernia}, CI ${ci_length}, F1 ${f1}\n${json}")
endif()

# Thresholds from the JSON of a previous evaluation, and --images restricting to the test split.
run(ARGS eval --preds ${WORK_DIR}/preds.csv --labels ${demo}/Data_Entry_2017_v2020.csv --bootstrap 0
         --thresholds ${WORK_DIR}/eval.json --images ${demo}/test_list.txt EXPECT_RC 0 OUT out ERR err)
file(STRINGS ${demo}/test_list.txt test_images)
list(LENGTH test_images test_count)
expect("${out}" "Evaluated ${test_count} images.")

# Errors: they name the file and the line, and exit 1 (2 for command-line mistakes).
file(WRITE ${WORK_DIR}/bad_header.csv "Image Index,Atelectasis\nx.png,0.5\n")
run(ARGS eval --preds ${WORK_DIR}/bad_header.csv --labels ${demo}/Data_Entry_2017_v2020.csv EXPECT_RC 1 OUT out ERR err)
expect("${err}" "bad_header.csv:1: column 2 is 'Atelectasis'")
file(WRITE ${WORK_DIR}/stranger.csv "${header}\n")
file(APPEND ${WORK_DIR}/stranger.csv "nobody.png,0,0,0,0,0,0,0,0,0,0,0,0,0,0\n")
run(ARGS eval --preds ${WORK_DIR}/stranger.csv --labels ${demo}/Data_Entry_2017_v2020.csv EXPECT_RC 1 OUT out ERR err)
expect("${err}" "stranger.csv:2: image 'nobody.png' has predictions but no row in the label file")
file(WRITE ${WORK_DIR}/other_list.txt "nobody.png\n")
run(ARGS eval --preds ${WORK_DIR}/preds.csv --labels ${demo}/Data_Entry_2017_v2020.csv --images ${WORK_DIR}/other_list.txt
         EXPECT_RC 1 OUT out ERR err)
expect("${err}" "no image to evaluate")
run(ARGS eval --preds ${WORK_DIR}/preds.csv EXPECT_RC 2 OUT out ERR err)
expect("${err}" "needs --labels")
message(STATUS "chex make-demo and chex eval: all checks passed")

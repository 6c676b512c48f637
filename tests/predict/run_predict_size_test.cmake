# chex predict on a model that is not DenseNet-121 at 224: the 4-layer DenseNet train_chexnet --arch
# tiny makes, at the demo's 96 px, read from the weights as chex cam reads it; and the errors for
# a size or a file that cannot fit.
#   cmake -DCHEX=path/to/chex -DTRAIN=path/to/train_chexnet -DWORK_DIR=dir -P run_predict_size_test.cmake
cmake_minimum_required(VERSION 3.25)
include(${CMAKE_CURRENT_LIST_DIR}/../support/cli_test.cmake)

file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
set(demo ${WORK_DIR}/demo)
set(run ${WORK_DIR}/run)
run(ARGS ${CHEX} make-demo --out ${demo} --images 40 --size 96 --seed 5 EXPECT_RC 0 OUT out ERR err)
# Two steps are enough: the test is about shapes, not about what the model learnt.
run(ARGS ${TRAIN} --data ${demo} --arch tiny --image-size 96 --max-steps 2 --epochs 1 --batch-size 8 --bootstrap 10
         --threads 2 --out ${run} EXPECT_RC 0 OUT out ERR err)

run(ARGS ${CHEX} predict --weights ${run}/best.safetensors --image-size 96 --images ${demo}/images
         --out ${WORK_DIR}/preds.csv --threads 2 EXPECT_RC 0 OUT out ERR err)
expect("${out}" "predicted 40 of 40")
file(STRINGS ${WORK_DIR}/preds.csv rows)
list(LENGTH rows n)
if(NOT n EQUAL 41)
  message(FATAL_ERROR "expected a header and 40 rows in preds.csv, got ${n} lines")
endif()
list(GET rows 1 first)
string(REPLACE "," ";" fields "${first}")
list(LENGTH fields columns)
if(NOT columns EQUAL 15)
  message(FATAL_ERROR "expected the image and 14 probabilities, got: ${first}")
endif()
# The CSV is one chex eval reads.
run(ARGS ${CHEX} eval --preds ${WORK_DIR}/preds.csv --labels ${demo}/Data_Entry_2017_v2020.csv --bootstrap 10
         EXPECT_RC 0 OUT out ERR err)
expect("${out}" "Evaluated 40 images")

# Errors: a size the network cannot take, ten-crop at another size than 224, a file that is not a
# DenseNet's weights (the training state, not the model).
run(ARGS ${CHEX} predict --weights ${run}/best.safetensors --image-size 16 --out ${WORK_DIR}/o.csv ${demo}/images
         EXPECT_RC 2 OUT out ERR err)
expect("${err}" "--image-size must be an integer from 32")
run(ARGS ${CHEX} predict --weights ${run}/best.safetensors --image-size 96 --tta tencrop --out ${WORK_DIR}/o.csv x.png
         EXPECT_RC 2 OUT out ERR err)
expect("${err}" "--tta tencrop is Resize(256) + TenCrop(224), defined for 224-px models only")
run(ARGS ${CHEX} predict --weights ${run}/checkpoint.safetensors --out ${WORK_DIR}/o.csv
         ${demo}/images/00000001_000.png EXPECT_RC 1 OUT out ERR err)
expect("${err}" "is not a DenseNet's weights: it has no tensor 'features.conv0.weight'")
if(EXISTS ${WORK_DIR}/o.csv)
  message(FATAL_ERROR "a failed predict left o.csv behind")
endif()

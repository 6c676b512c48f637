# chex cam end to end:
#   cmake -DCHEX=chex -DTRAIN=train_chexnet -DPYTHON=python3 -DSOURCE_DIR=tests/cam -DWORK_DIR=dir -P run_cam_test.cmake
# A small demo set, a tiny DenseNet trained for one step (any 14-class weights will do), then maps
# for two demo images, a non-square JPEG and a broken file: outputs checked with Pillow, numpy and
# scipy, the broken file named and skipped (exit 3); the maps of a small torchvision DenseNet against
# PyTorch's; --class choices, Grad-CAM, usage errors.
cmake_minimum_required(VERSION 3.25)

include(${CMAKE_CURRENT_LIST_DIR}/../support/cli_test.cmake)

file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
set(demo ${WORK_DIR}/demo)
run(ARGS ${CHEX} make-demo --out ${demo} --images 20 --size 96 --seed 4 EXPECT_RC 0 OUT out ERR err)
run(ARGS ${TRAIN} --data ${demo} --arch tiny --image-size 64 --max-steps 1 --batch-size 4 --bootstrap 0
         --out ${WORK_DIR}/train EXPECT_RC 0 OUT out ERR err)
set(weights ${WORK_DIR}/train/best.safetensors)

file(GLOB demo_images ${demo}/images/*.png)
list(GET demo_images 0 first)
list(GET demo_images 1 second)
# A non-square original (and a JPEG): the overlay and the heatmap must keep its 150 x 100 size.
set(wide ${WORK_DIR}/wide.jpg)
# (No ';' in the code: CMake would split the argument there.)
run(ARGS ${PYTHON} -c "from PIL import Image\nImage.open('${first}').convert('L').resize((150, 100)).save('${wide}')"
    EXPECT_RC 0 OUT out ERR err)
file(WRITE ${WORK_DIR}/broken.png "not an image")

run(ARGS ${CHEX} cam --help EXPECT_RC 0 OUT out ERR err)
expect("${out}" "usage: chex cam")
expect("${out}" "not normalised")

set(out_all ${WORK_DIR}/all)
run(ARGS ${CHEX} cam --weights ${weights} --out ${out_all} --class all ${first} ${second} ${wide}
         ${WORK_DIR}/broken.png EXPECT_RC 3 OUT out ERR err)
expect("${err}" "skipped")
expect("${err}" "broken.png")
expect("${out}" "mapped 3 of 4")
run(ARGS ${PYTHON} ${SOURCE_DIR}/check_cam_outputs.py ${out_all} 42 ${first} ${second} ${wide}
    EXPECT_RC 0 OUT out ERR err)
message(STATUS "${out}")

# The heatmaps against PyTorch's CAM (torchvision's DenseNet, einsum, F.interpolate) of the same
# images at their original sizes (96 x 96 PNGs and the 150 x 100 JPEG).
set(ref ${WORK_DIR}/torch_ref)
run(ARGS ${PYTHON} ${SOURCE_DIR}/cam_reference.py make ${ref} ${first} ${wide} EXPECT_RC 0 OUT out ERR err)
run(ARGS ${CHEX} cam --weights ${ref}/weights.safetensors --out ${WORK_DIR}/torch_cmp --class all ${first} ${wide}
    EXPECT_RC 0 OUT out ERR err)
run(ARGS ${PYTHON} ${SOURCE_DIR}/cam_reference.py compare ${ref} ${WORK_DIR}/torch_cmp EXPECT_RC 0 OUT out ERR err)
message(STATUS "${out}")

# Default --class top3: three maps an image.
set(out_top ${WORK_DIR}/top3)
run(ARGS ${CHEX} cam --weights ${weights} --out ${out_top} ${first} ${wide} EXPECT_RC 0 OUT out ERR err)
run(ARGS ${PYTHON} ${SOURCE_DIR}/check_cam_outputs.py ${out_top} 6 ${first} ${wide} EXPECT_RC 0 OUT out ERR err)

# One class, by name, with Grad-CAM: ReLU'd maps.
set(out_grad ${WORK_DIR}/gradcam)
run(ARGS ${CHEX} cam --weights ${weights} --out ${out_grad} --class Pleural_Thickening --method gradcam
         --images ${demo}/images EXPECT_RC 0 OUT out ERR err)
run(ARGS ${PYTHON} ${SOURCE_DIR}/check_cam_outputs.py ${out_grad} 20 --nonnegative ${demo_images}
    EXPECT_RC 0 OUT out ERR err)

# Usage errors (status 2) and errors (status 1).
run(ARGS ${CHEX} cam --weights ${weights} --out ${WORK_DIR}/x --class Tumour ${first} EXPECT_RC 2 OUT out ERR err)
expect("${err}" "unknown --class 'Tumour': use top3, all, or one of Atelectasis, Cardiomegaly")
run(ARGS ${CHEX} cam --weights ${weights} --out ${WORK_DIR}/x --method lime ${first} EXPECT_RC 2 OUT out ERR err)
expect("${err}" "unknown CAM method 'lime'")
run(ARGS ${CHEX} cam --weights ${weights} --out ${WORK_DIR}/x --threshold 1.5 ${first} EXPECT_RC 2 OUT out ERR err)
expect("${err}" "--threshold must be a number in (0, 1]")
run(ARGS ${CHEX} cam --weights ${weights} --out ${WORK_DIR}/x EXPECT_RC 2 OUT out ERR err)
expect("${err}" "no images")
run(ARGS ${CHEX} cam --weights ${WORK_DIR}/nothing.safetensors --out ${WORK_DIR}/x ${first} EXPECT_RC 1 OUT out ERR err)
expect("${err}" "the weights file '${WORK_DIR}/nothing.safetensors' does not exist")
file(WRITE ${WORK_DIR}/garbage.safetensors "not safetensors")
run(ARGS ${CHEX} cam --weights ${WORK_DIR}/garbage.safetensors --out ${WORK_DIR}/x ${first} EXPECT_RC 1 OUT out ERR err)
expect("${err}" "safetensors file '${WORK_DIR}/garbage.safetensors'")
if(EXISTS ${WORK_DIR}/x)
  message(FATAL_ERROR "chex cam made its output folder although the weights were unusable")
endif()
run(ARGS ${PYTHON} ${SOURCE_DIR}/cam_reference.py not-densenet ${WORK_DIR}/linear.safetensors
    EXPECT_RC 0 OUT out ERR err)
run(ARGS ${CHEX} cam --weights ${WORK_DIR}/linear.safetensors --out ${WORK_DIR}/x ${first} EXPECT_RC 1 OUT out ERR err)
expect("${err}" "'${WORK_DIR}/linear.safetensors' is not a DenseNet's weights: it has no tensor")
run(ARGS ${CHEX} cam --weights ${weights} --out ${WORK_DIR}/x ${WORK_DIR}/broken.png EXPECT_RC 1 OUT out ERR err)
expect("${err}" "none of the 1 images could be read")
message(STATUS "chex cam: all checks passed")

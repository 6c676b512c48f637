# Installs chex into a fresh prefix, builds tests/consumer against it, and runs it; then runs the
# installed programs from the prefix alone (their RPATH must find libchex and libchexnet there).
# cmake -DCHEX_BUILD_DIR=... -DCONSUMER_SOURCE_DIR=... -DWORK_DIR=... -P run_consumer_test.cmake
file(REMOVE_RECURSE ${WORK_DIR})
function(run step)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  message(STATUS "${step}:\n${out}${err}")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "consumer test: '${step}' failed (exit ${rc})")
  endif()
  set(last_output "${out}${err}" PARENT_SCOPE)
endfunction()
function(expect pattern)
  string(FIND "${last_output}" "${pattern}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "consumer test: expected '${pattern}' in:\n${last_output}")
  endif()
endfunction()
run("install chex" ${CMAKE_COMMAND} --install ${CHEX_BUILD_DIR} --prefix ${WORK_DIR}/prefix)
run("configure the consumer" ${CMAKE_COMMAND} -S ${CONSUMER_SOURCE_DIR} -B ${WORK_DIR}/build -G Ninja
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix)
run("build the consumer" ${CMAKE_COMMAND} --build ${WORK_DIR}/build)
run("run the consumer" ${WORK_DIR}/build/tiny_cnn)

# The installed programs, run from the prefix with no build tree on their library path.
set(bin ${WORK_DIR}/prefix/bin)
foreach(program chex train_chexnet bench_densenet)
  if(NOT EXISTS ${bin}/${program})
    message(FATAL_ERROR "consumer test: cmake --install did not install ${program} in ${bin}")
  endif()
endforeach()
set(ENV{LD_LIBRARY_PATH} "")
run("installed chex --help" ${bin}/chex --help)
expect("usage: chex COMMAND")
run("installed train_chexnet --help" ${bin}/train_chexnet --help)
expect("usage: train_chexnet")
# A tiny model: 2 steps of the 4-layer DenseNet on a 40-image demo set at 64 px (well under a second).
run("installed chex make-demo" ${bin}/chex make-demo --out ${WORK_DIR}/demo --images 40 --size 64 --seed 3)
run("installed train_chexnet" ${bin}/train_chexnet --data ${WORK_DIR}/demo --arch tiny --image-size 64 --max-steps 2
    --epochs 1 --batch-size 8 --bootstrap 10 --threads 2 --out ${WORK_DIR}/run)
if(NOT EXISTS ${WORK_DIR}/run/best.safetensors)
  message(FATAL_ERROR "consumer test: the installed train_chexnet wrote no best.safetensors")
endif()
run("installed chex predict" ${bin}/chex predict --weights ${WORK_DIR}/run/best.safetensors --image-size 64
    --images ${WORK_DIR}/demo/images --out ${WORK_DIR}/preds.csv --threads 2)
expect("predicted 40 of 40")

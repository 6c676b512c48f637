# The errors a new user meets, from the real programs: each names the thing and the fix, shows no
# source file and no check expression, and shows them (the details) with --verbose or CHEX_DEBUG=1.
# Inputs: -DCHEX=<chex> -DTRAIN=<train_chexnet> -DWORK_DIR=<scratch folder>
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR}/no_labels/images)
set(checked 0)

# expect_error(EXIT n COMMAND program args... PHRASES text... [VERBOSE]): runs the command and
# requires exit status n, every phrase in stderr and nothing of the source. With VERBOSE the same
# command is run again with --verbose and with CHEX_DEBUG=1, and both must add the details.
function(expect_error)
  cmake_parse_arguments(E "VERBOSE" "EXIT" "COMMAND;PHRASES" ${ARGN})
  # CHEX_DEBUG is cleared: the plain message is checked even where the environment sets it.
  execute_process(COMMAND ${CMAKE_COMMAND} -E env --unset=CHEX_DEBUG ${E_COMMAND} RESULT_VARIABLE rc OUTPUT_VARIABLE out
                  ERROR_VARIABLE err)
  string(JOIN " " shown ${E_COMMAND})
  if(NOT rc EQUAL E_EXIT)
    message(FATAL_ERROR "${shown}: exit ${rc}, expected ${E_EXIT}\nstderr:\n${err}")
  endif()
  foreach(phrase IN LISTS E_PHRASES)
    string(FIND "${err}" "${phrase}" at)
    if(at EQUAL -1)
      message(FATAL_ERROR "${shown}: expected '${phrase}' in stderr:\n${err}")
    endif()
  endforeach()
  if(err MATCHES "\\.(cpp|h|cu|cuh)([^A-Za-z0-9_]|$)" OR err MATCHES "check failed" OR err MATCHES "details:")
    message(FATAL_ERROR "${shown}: the message shows the source without --verbose:\n${err}")
  endif()
  message(STATUS "${shown}\n  -> ${err}")
  if(E_VERBOSE)
    execute_process(COMMAND ${CMAKE_COMMAND} -E env --unset=CHEX_DEBUG ${E_COMMAND} --verbose
                    RESULT_VARIABLE rc_verbose ERROR_VARIABLE verbose)
    execute_process(COMMAND ${CMAKE_COMMAND} -E env CHEX_DEBUG=1 ${E_COMMAND} RESULT_VARIABLE rc_debug
                    ERROR_VARIABLE debug)
    foreach(text IN ITEMS "${verbose}" "${debug}")
      if(NOT text MATCHES "\n  details: (check failed: .*; )?at [a-z_]+\\.cpp:[0-9]+")
        message(FATAL_ERROR "${shown}: --verbose / CHEX_DEBUG=1 show no details:\n${text}")
      endif()
    endforeach()
    if(NOT rc_verbose EQUAL E_EXIT OR NOT rc_debug EQUAL E_EXIT)
      message(FATAL_ERROR "${shown}: --verbose or CHEX_DEBUG=1 changed the exit status")
    endif()
  endif()
  math(EXPR n "${checked} + 1")
  set(checked ${n} PARENT_SCOPE)
endfunction()

# A small data set and a tiny model to break in various ways.
execute_process(COMMAND ${CHEX} make-demo --out ${WORK_DIR}/demo --images 30 --size 64 RESULT_VARIABLE rc
                OUTPUT_QUIET)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "chex make-demo failed (${rc})")
endif()
execute_process(COMMAND ${TRAIN} --data ${WORK_DIR}/demo --arch tiny --image-size 32 --batch-size 4 --max-steps 1
                        --epochs 1 --bootstrap 0 --threads 2 --workers 0 --out ${WORK_DIR}/run
                RESULT_VARIABLE rc OUTPUT_QUIET ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "training the tiny model failed (${rc}):\n${err}")
endif()
set(weights ${WORK_DIR}/run/best.safetensors)
set(image ${WORK_DIR}/demo/images/00000001_000.png)

# Folders and files that are not there.
expect_error(EXIT 1 COMMAND ${TRAIN} --data ${WORK_DIR}/nowhere --out ${WORK_DIR}/o VERBOSE
             PHRASES "train_chexnet: error: the data folder '${WORK_DIR}/nowhere' does not exist; give --data"
                     "images/" "Data_Entry_2017_v2020.csv")
expect_error(EXIT 1 COMMAND ${TRAIN} --data ${WORK_DIR}/no_labels --out ${WORK_DIR}/o
             PHRASES "no label file in the data folder '${WORK_DIR}/no_labels'" "Data_Entry_2017_v2020.csv"
                     "download it beside images/")
expect_error(EXIT 1 COMMAND ${CHEX} predict --weights ${WORK_DIR}/absent.safetensors --out ${WORK_DIR}/p.csv ${image}
             PHRASES "chex: error: the weights file '${WORK_DIR}/absent.safetensors' does not exist")
expect_error(EXIT 1 COMMAND ${CHEX} localize --weights ${weights} --image-size 32 --data ${WORK_DIR}/demo
                            --bbox ${WORK_DIR}/absent.csv
             PHRASES "cannot open the box file '${WORK_DIR}/absent.csv': No such file or directory")
expect_error(EXIT 1 COMMAND ${TRAIN} --data ${WORK_DIR}/demo --out ${WORK_DIR}/never_run --resume
             PHRASES "--resume: there is no checkpoint at '${WORK_DIR}/never_run/checkpoint.safetensors'"
                     "leave out --resume to start a new run")

# Wrong formats: a label file with an unknown finding, an image that is not one.
file(COPY ${WORK_DIR}/demo/ DESTINATION ${WORK_DIR}/bad_label)
file(READ ${WORK_DIR}/bad_label/Data_Entry_2017_v2020.csv labels)
string(REGEX REPLACE "\n(00000001_000\\.png),[^,]*," "\n\\1,Pneumonitis," labels "${labels}")
file(WRITE ${WORK_DIR}/bad_label/Data_Entry_2017_v2020.csv "${labels}")
expect_error(EXIT 1 COMMAND ${TRAIN} --data ${WORK_DIR}/bad_label --out ${WORK_DIR}/o VERBOSE
             PHRASES "Data_Entry_2017_v2020.csv:2: 'Pneumonitis' is not one of the 14 ChestX-ray14 labels")
file(WRITE ${WORK_DIR}/not_an_image.png "text, not pixels")
expect_error(EXIT 3 COMMAND ${CHEX} predict --weights ${weights} --image-size 32 --out ${WORK_DIR}/p.csv
                            ${WORK_DIR}/not_an_image.png ${image}
             PHRASES "chex: warning: skipped image '${WORK_DIR}/not_an_image.png': not a PNG, JPEG or DICOM file")

# Wrong weights: a truncated file (an interrupted download), and another architecture's tensors.
find_program(HEAD head REQUIRED)
file(SIZE ${weights} size)
math(EXPR kept "${size} - 100")  # the header whole, the last tensor cut short
execute_process(COMMAND ${HEAD} -c ${kept} ${weights} OUTPUT_FILE ${WORK_DIR}/truncated.safetensors)
expect_error(EXIT 1 COMMAND ${CHEX} predict --weights ${WORK_DIR}/truncated.safetensors --image-size 32
                            --out ${WORK_DIR}/p.csv ${image} VERBOSE
             PHRASES "safetensors file '${WORK_DIR}/truncated.safetensors'" "the file is truncated or damaged"
                     "download it again")
expect_error(EXIT 1 COMMAND ${TRAIN} --data ${WORK_DIR}/demo --arch densenet121 --image-size 32 --max-steps 1
                            --pretrained ${weights} --out ${WORK_DIR}/o
             PHRASES "cannot load the weights in '${weights}'" "nothing was loaded"
                     "missing: features.denseblock4.denselayer16.conv2.weight"
                     "wrong shape: features.conv0.weight: [8, 3, 7, 7] in the state dict, [64, 3, 7, 7] in the model"
                     "Use weights of the same architecture")

# No GPU (or not that one), and output that cannot be written.
expect_error(EXIT 1 COMMAND ${CHEX} predict --weights ${weights} --out ${WORK_DIR}/p.csv --device cuda:7 ${image}
             PHRASES "chex: error: device cuda:7 requested, but" "use --device c")
expect_error(EXIT 1 COMMAND ${TRAIN} --data ${WORK_DIR}/demo --out /proc/chex_run
             PHRASES "train_chexnet: error: cannot create directories '/proc/chex_run': ")

# A full disk (a file-size limit, SIGXFSZ ignored, so that writes fail with EFBIG as on a full disk).
find_program(BASH bash REQUIRED)
set(limited ${BASH} -c "trap '' XFSZ && ulimit -f 16 && exec \"$@\"" train)
expect_error(EXIT 1 COMMAND ${limited} ${TRAIN} --data ${WORK_DIR}/demo --arch tiny --image-size 64 --max-steps 1
                            --cache ${WORK_DIR}/cache --out ${WORK_DIR}/o VERBOSE
             PHRASES "train_chexnet: error: writing the image cache failed (disk full?)" "train without --cache")

# Bad option values and unknown options.
expect_error(EXIT 1 COMMAND ${TRAIN} --data ${WORK_DIR}/demo --batch-size x
             PHRASES "train_chexnet: error: --batch-size needs a number, not 'x'")
expect_error(EXIT 1 COMMAND ${TRAIN} --data ${WORK_DIR}/demo --colour
             PHRASES "train_chexnet: error: unknown option '--colour' (see --help)")
expect_error(EXIT 2 COMMAND ${CHEX} cam --weights ${weights} --class Pneumonitis --out ${WORK_DIR}/cams ${image}
             PHRASES "chex: error: unknown --class 'Pneumonitis': use top3, all, or one of Atelectasis,"
                     "(see 'chex cam --help')")
expect_error(EXIT 1 COMMAND ${TRAIN} --data ${WORK_DIR}/demo --deterministic maybe
             PHRASES "train_chexnet: error: --deterministic takes on or off, not 'maybe'")
expect_error(EXIT 2 COMMAND ${CHEX} cam --weights ${weights} --deterministic yes --out ${WORK_DIR}/cams ${image}
             PHRASES "chex: error: --deterministic takes on or off, not 'yes'" "(see 'chex cam --help')")
# ... and the good values are taken: a one-step run says how its convolutions are chosen (on the
# CPU, deterministic whatever was asked).
execute_process(COMMAND ${TRAIN} --data ${WORK_DIR}/demo --arch tiny --image-size 32 --batch-size 4 --max-steps 1
                        --epochs 1 --bootstrap 0 --threads 2 --workers 0 --no-report --deterministic off
                        --out ${WORK_DIR}/nondeterministic
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0 OR NOT out MATCHES "convolutions on cpu: deterministic \\(the CPU always is; --deterministic changes nothing")
  message(FATAL_ERROR "train_chexnet --deterministic off: exit ${rc}, no convolution mode line:\n${out}\n${err}")
endif()

# Both programs document the switch.
foreach(program IN ITEMS "${TRAIN};--help" "${CHEX};--help" "${CHEX};predict;--help")
  execute_process(COMMAND ${program} OUTPUT_VARIABLE help)
  if(NOT help MATCHES "--verbose" OR NOT help MATCHES "CHEX_DEBUG=1")
    message(FATAL_ERROR "${program}: --help does not mention --verbose and CHEX_DEBUG=1:\n${help}")
  endif()
endforeach()
message(STATUS "${checked} error messages checked")

# On a GPU (label gpu): bench_kernels (-DBENCH=path) on a few DenseNet-121 cases of each kind, two
# repeats: every case must agree with cuDNN in both batch-norm modes (exit status 0), the persistent
# mode must have been timed for the training forward and the backward, and both totals printed.
execute_process(COMMAND ${BENCH} --repeats 2 --json ${WORK_DIR}/kernels.jsonl
                        --filter "^batch_norm.*\\[16, (64, 112|128, 7), |_pool.*\\[16, |sigmoid_bce \\[16,|concat_channels \\[16, 64,"
                RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT status EQUAL 0)
  message(FATAL_ERROR "bench_kernels exited with ${status}:\n${out}\n${err}")
endif()
foreach(total "training step" "inference pass")
  if(NOT out MATCHES "DenseNet-121 ${total} \\(batch 16, 224 px\\), summed over")
    message(FATAL_ERROR "no ${total} total:\n${out}")
  endif()
endforeach()
file(STRINGS ${WORK_DIR}/kernels.jsonl lines)
foreach(kernel batch_norm_forward_training batch_norm_backward)
  set(persistent 0)
  foreach(line IN LISTS lines)
    if(line MATCHES "\"kernel\": \"${kernel}\"" AND line MATCHES "\"cudnn_alternative\": \"SPATIAL_PERSISTENT\"")
      math(EXPR persistent "${persistent} + 1")
    endif()
  endforeach()
  if(persistent EQUAL 0)
    message(FATAL_ERROR "cuDNN's SPATIAL_PERSISTENT mode was not timed for ${kernel}:\n${out}")
  endif()
endforeach()
message(STATUS "${out}")

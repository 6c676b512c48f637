# bench_kernels --list (-DBENCH=path), which needs no GPU: the calls per DenseNet-121 training
# step / inference pass the cases stand for. By hand: 121 batch norms (norm0, two per dense layer
# of 6 + 12 + 24 + 16 = 58, three transitions, norm5), each run once backward per step and once in
# inference; forward in training, the 58 norm1s are applied with statistics from the moments the
# dense blocks keep (batch_norm_statistics_from_moments, 58), the other 63 are training forwards;
# the backward recomputes two BN + ReLU outputs per dense layer (batch_norm_apply, 116 + 58 = 174);
# no standalone ReLU. No case for the prefix-gradient additions (add_channels, one per layer), the
# statistics, or the moments (batch_norm_moments: each block's input, 4, and every layer's new
# channels but each block's last, 54).
execute_process(COMMAND ${BENCH} --list RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT status EQUAL 0)
  message(FATAL_ERROR "bench_kernels --list exited with ${status}:\n${out}${err}")
endif()
string(REPLACE "\n" ";" lines "${out}")
foreach(kernel batch_norm_forward_training batch_norm_backward batch_norm_forward_inference batch_norm_apply
               relu_forward relu_backward)
  set(step_${kernel} 0)
  set(infer_${kernel} 0)
endforeach()
foreach(line IN LISTS lines)
  if(line MATCHES "^([a-z_]+) .* ([0-9]+) +([0-9]+)$")
    set(kernel ${CMAKE_MATCH_1})
    if(DEFINED step_${kernel})
      math(EXPR step_${kernel} "${step_${kernel}} + ${CMAKE_MATCH_2}")
      math(EXPR infer_${kernel} "${infer_${kernel}} + ${CMAKE_MATCH_3}")
    endif()
  endif()
endforeach()
set(expected "63 0 121 0 0 121 174 0 0 0 0 0")
set(got "${step_batch_norm_forward_training} ${infer_batch_norm_forward_training} ${step_batch_norm_backward} ${infer_batch_norm_backward} ${step_batch_norm_forward_inference} ${infer_batch_norm_forward_inference} ${step_batch_norm_apply} ${infer_batch_norm_apply} ${step_relu_forward} ${infer_relu_forward} ${step_relu_backward} ${infer_relu_backward}")
# (forward training: step, inference; backward: step, inference; forward inference: step,
# inference; apply: step, inference; ReLU forward and backward: step, inference)
if(NOT got STREQUAL expected)
  message(FATAL_ERROR "calls per step/inference: expected ${expected}, got ${got}\n${out}")
endif()
set(unmeasured "add_channels 58 batch_norm_moments 58 batch_norm_statistics_from_moments 58")
if(NOT out MATCHES "not measured \\(calls per training step, no case\\): ${unmeasured}\n")
  message(FATAL_ERROR "expected the unmeasured calls ${unmeasured}, got:\n${out}")
endif()
message(STATUS "bench_kernels --list: 63 BN training forwards and 121 backwards per step, 174 applied, 121 in inference, no ReLU")

# 2 CPU ranks on a global batch of 16 (8 each) against one process on the same 16 images, 5 steps:
# with --sync-bn, against the plain process (batch norm over all 16); without it, against one
# process whose batch norms normalise each half of the batch on its own (--bn-groups 2), which is
# what each rank does. Weights within 1e-5, norm-relative (the ranks sum float gradients in
# another order; Adam turns a tiny gradient's rounding into a step of ~lr, hence not bit-equal).
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
set(common --demo --demo-images 130 --data ${WORK_DIR}/demo --arch tiny --image-size 32 --batch-size 16 --epochs 1
           --max-steps 5 --threads 1 --workers 1 --seed 7 --bootstrap 0 --log-interval 1000)
include(${CMAKE_CURRENT_LIST_DIR}/mpi_support.cmake)

mpi_train(0 0 --out ${WORK_DIR}/one_sync --sync-bn)  # also makes the demo set
# 10 kB buckets: the tiny model's gradients go in several all-reduces, most started mid-backward.
mpi_train(0 2 --out ${WORK_DIR}/two_sync --sync-bn --bucket-mb 0.01)
if(NOT last_output MATCHES "data-parallel: 2 ranks")
  message(FATAL_ERROR "the 2-rank run did not train data-parallel:\n${last_output}")
endif()
close_weights(${WORK_DIR}/one_sync/checkpoint.safetensors ${WORK_DIR}/two_sync/checkpoint.safetensors 1e-5
              "2 ranks with --sync-bn differ from 1 process on the global batch")

mpi_train(0 0 --out ${WORK_DIR}/one_ghost --bn-groups 2)
mpi_train(0 2 --out ${WORK_DIR}/two_plain --bucket-mb 0.01)
close_weights(${WORK_DIR}/one_ghost/checkpoint.safetensors ${WORK_DIR}/two_plain/checkpoint.safetensors 1e-5
              "2 ranks without --sync-bn differ from 1 process normalising each half-batch on its own")

# And the difference is real: without sync the 2 ranks are not the plain single process.
execute_process(COMMAND ${PYTHON} ${COMPARE} ${WORK_DIR}/one_sync/checkpoint.safetensors
                        ${WORK_DIR}/two_plain/checkpoint.safetensors 1e-5 RESULT_VARIABLE rc OUTPUT_QUIET)
if(NOT rc)
  message(FATAL_ERROR "2 ranks without --sync-bn equal 1 process with BN over all 16: the comparison cannot tell")
endif()

# A global batch that does not divide among the ranks is refused.
mpi_train(fail 2 --out ${WORK_DIR}/odd --batch-size 15)
if(NOT last_output MATCHES "does not divide among 2 ranks")
  message(FATAL_ERROR "an indivisible --batch-size did not give the expected error:\n${last_output}")
endif()

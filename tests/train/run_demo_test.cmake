# The README's main command (train_chexnet --demo: the synthetic NIH-layout set, DenseNet-121 on the
# CPU with the demo's defaults) must do what the README promises: a test-split mean AUROC of at
# least 0.9. The longest test (about 5 minutes on 2 cores); label demo.
# Inputs: -DTRAIN=<train_chexnet> -DWORK_DIR=<scratch folder>
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
set(common --demo --data ${WORK_DIR}/demo-data --out ${WORK_DIR}/run --log-interval 60)
include(${CMAKE_CURRENT_LIST_DIR}/train_support.cmake)
train(0)
message(STATUS "${last_output}")
file(READ ${WORK_DIR}/run/test_report.json report)
string(JSON mean_auroc GET "${report}" mean_auroc)
if(mean_auroc LESS 0.9)
  message(FATAL_ERROR "the demo's test mean AUROC is ${mean_auroc}, below the 0.9 the README promises")
endif()
message(STATUS "demo test passed: test mean AUROC ${mean_auroc} (at least 0.9)")

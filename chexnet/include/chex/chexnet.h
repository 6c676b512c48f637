#pragma once
// The CheXNet domain library's whole public API (chex::chexnet, libchexnet) in one include: the
// ChestX-ray14 data (label, box and split files, image decoding, transforms, the loader and its
// cache), the evaluation metrics and reports, and the synthetic thorax phantom with its demo
// dataset. It is built on the engine, whose API is chex/chex.h.
#include "chex/chex.h"
#include "chex/data/box_file.h"
#include "chex/data/class_weights.h"
#include "chex/data/image.h"
#include "chex/data/image_cache.h"
#include "chex/data/label_file.h"
#include "chex/data/labels.h"
#include "chex/data/loader.h"
#include "chex/data/nih_dataset.h"
#include "chex/data/resize.h"
#include "chex/data/splits.h"
#include "chex/data/training_input.h"
#include "chex/data/transforms.h"
#include "chex/demo/demo_dataset.h"
#include "chex/demo/phantom.h"
#include "chex/metrics/auroc.h"
#include "chex/metrics/bootstrap.h"
#include "chex/metrics/evaluation.h"
#include "chex/metrics/evaluation_inputs.h"
#include "chex/metrics/f1.h"
#include "chex/metrics/nih_label_file.h"
#include "chex/metrics/prediction_file.h"
#include "chex/metrics/report.h"
#include "chex/metrics/score_table.h"

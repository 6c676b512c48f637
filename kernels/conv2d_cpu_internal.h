#pragma once
// What the CPU convolution's files share (private to kernels/conv2d_*_cpu.cpp): the selector
// (conv2d_cpu.cpp) chooses the algorithm, the threading policy and the workspace, and calls the
// algorithms' per-sample pieces in conv2d_im2col_cpu.cpp, conv2d_shifted_cpu.cpp,
// conv2d_normalized_cpu.cpp and conv2d_winograd_cpu.cpp.
#include <omp.h>

#include <algorithm>
#include <cstdint>

#include "batchnorm.h"
#include "conv2d.h"

namespace chex::kernels::cpu::conv2d_detail {

// Below this many elements a parallel region costs more than it saves.
inline constexpr int64_t kParallelThreshold = 1 << 15;

// dst[i] = x'(src[i * stride]) for i in [0, count), x' being channel c of the input as the
// convolution reads it: as stored, or normalised (InputNormalization) when `norm` is set.
// Inline: the per-row read of every algorithm.
inline void read_channel(const InputNormalization* norm, int64_t c, const float* src, int64_t stride, float* dst,
                         int64_t count) {
  if (norm) {
    const float mean = norm->mean[c], scale = norm->invstd[c] * norm->gamma[c], beta = norm->beta[c];
#pragma omp simd
    for (int64_t i = 0; i < count; ++i) dst[i] = batch_norm_relu(src[i * stride], mean, scale, beta);
  } else if (stride == 1) {
    std::copy(src, src + count, dst);
  } else {
#pragma omp simd
    for (int64_t i = 0; i < count; ++i) dst[i] = src[i * stride];
  }
}

// ---- Threading (conv2d_cpu.cpp)

// With at least as many samples as threads, each thread takes whole samples (its own im2col and a
// single-threaded GEMM, which oneDNN runs inside a parallel region) rather than all threads
// splitting every per-sample GEMM: one fork/join per call instead of several per sample, and GEMMs
// on DenseNet's small late-block images (P = 49..196) are too small to split well. Batch 1 keeps the
// threads inside the GEMM. Called outside any parallel region by the entry points.
int sample_slots(const Conv2dGeometry& g);

struct SampleRange {
  int64_t begin, end;
};
// Contiguous, static share of the batch for the calling thread of the current team (the whole
// batch outside a parallel region).
SampleRange samples_of_this_thread(int64_t batch);

// Runs body() on `slots` threads, or directly on this thread when slots is 1. Not as
// `omp parallel if (slots > 1)`: a serialised region still counts as a nesting level, so each GEMM
// inside it opened a nested team, and libgomp creates (and ends) fresh threads for every nested
// team: hundreds of thread creations per batch-1 forward, which made 2 threads slower than one.
template <class Body>
void in_sample_slots(int slots, const Body& body) {
  if (slots > 1) {
#pragma omp parallel num_threads(slots)
    body();
  } else {
    body();
  }
}

// The calling thread's share of `columns` output columns, in multiples of 16 (a cache line of
// floats, so that no two threads write one line of a row).
struct ColumnRange {
  int64_t begin, end;
};
ColumnRange columns_of_this_thread(int64_t columns);

// ---- im2col + GEMM (conv2d_im2col_cpu.cpp)

// col[(c, kh, kw), (oh, ow)] = x'[c, oh * stride + kh - padding, ow * stride + kw - padding],
// zero outside the image. Rows are independent: each thread writes its own.
void im2col(const Conv2dGeometry& g, const float* image, float* col, const InputNormalization* norm);

// The adjoint of im2col: image = sum over the patches that cover each pixel. Each thread owns
// whole input channels, so no two threads touch one pixel and the summation order is fixed.
void col2im(const Conv2dGeometry& g, const float* col, float* image);

// ---- Shifted-tap GEMMs (conv2d_shifted_cpu.cpp)

struct PaddedGrid {
  int64_t hp, wp, columns;  // columns: the last valid output position on the grid, plus one
};
PaddedGrid padded_grid(const Conv2dGeometry& g);

// Floats per thread: the padded image and the output on the padded grid.
int64_t shifted_slot_size(const Conv2dGeometry& g);
// Floats per thread for the shifted weight gradient: the padded image, dy on the grid and the
// thread's sum of the taps' gradients.
int64_t shifted_weight_slot_size(const Conv2dGeometry& g);

// taps[(kh kW + kw), co, ci] = weight[co, ci, kh, kw]: one row-major C_out x C_in matrix per tap.
void split_taps(const Conv2dGeometry& g, const float* weight, float* taps);

// padded[c] = x'[c] with `padding` zeros around it, for one channel.
void pad_channel(const Conv2dGeometry& g, const PaddedGrid& grid, const float* image, float* padded, int64_t c,
                 const InputNormalization* norm);
// All the channels of one image.
void pad_image(const Conv2dGeometry& g, const PaddedGrid& grid, const float* image, float* padded,
               const InputNormalization* norm);

// out[c] = the valid columns of output channel c on the padded grid.
void grid_to_output(const Conv2dGeometry& g, const PaddedGrid& grid, const float* out_grid, float* out, int64_t c);

// Grid columns [begin, end) of one sample's output on the padded grid: the k^2 taps' GEMMs.
void shifted_taps_gemm(const Conv2dGeometry& g, const PaddedGrid& grid, const float* taps, const float* padded,
                       float* out_grid, int64_t begin, int64_t end);

// One sample's y [C_out, Ho Wo] from its padded image, through the grid buffer `out_grid`.
void shifted_forward_sample(const Conv2dGeometry& g, const float* taps, const float* padded, float* out_grid,
                            float* out);

// The weight gradient as shifted GEMMs (see conv2d_shifted_cpu.cpp).
void shifted_backward_weight(const Conv2dGeometry& g, const float* x, int64_t x_batch_stride,
                             const InputNormalization* norm, const float* dy, int64_t dy_batch_stride, float* dweight,
                             float* workspace);

// ---- 1x1 convolutions by tiles of columns, normalising the input (conv2d_normalized_cpu.cpp)

// Columns of a tile, and floats of a thread's tile buffer.
int64_t tile_columns(const Conv2dGeometry& g);
int64_t tile_size(const Conv2dGeometry& g);

// Columns [begin, end) of one sample's 1x1 output: one GEMM on the image, or tile by tile on x'.
void pointwise_forward(const Conv2dGeometry& g, const float* image, const InputNormalization* norm,
                       const float* weight, float* out, int64_t begin, int64_t end, float* tile);

// sum += dy_n [C_out, P] * x'_n^T [P, C_in] for a 1x1 convolution with a normalised input, tile by
// tile of columns (see pointwise_forward); overwrites sum when `overwrite`.
void normalized_pointwise_weight_sample(const Conv2dGeometry& g, const float* image, const InputNormalization& norm,
                                        const float* dy, float* sum, bool overwrite, float* tile);

}  // namespace chex::kernels::cpu::conv2d_detail

#include "conv2d_winograd.h"

#include <algorithm>

#include "batchnorm.h"
#include "gemm.h"

namespace chex::kernels::cpu::winograd {
namespace {

// The matrices of F(2x2, 3x3), with the interpolation points 0, 1, -1 (and infinity):
//   B^T = [1  0 -1  0]     G = [1    0    0  ]     A^T = [1  1  1  0]
//         [0  1  1  0]         [1/2  1/2  1/2]           [0  1 -1 -1]
//         [0 -1  1  0]         [1/2 -1/2  1/2]
//         [0  1  0 -1]         [0    0    1  ]
// Each transform below applies one of them to both sides of a small matrix, written out.
constexpr int64_t kPositions = 16;  // xi = 4 i + j over the 4x4 transformed tile

// The distance between the 16 position matrices of V, M or dy's transform, a matrix of `size`
// floats each: one cache line more than the matrix, rounded to lines. The transforms read or write
// all 16 at once, and at a distance of a multiple of 4 KiB (128 x 784 floats at 56 px is 98 pages)
// their lines fall into the same L1 sets and evict one another (the input transform ran several
// times slower that way).
int64_t position_stride(int64_t size) { return (size + 15) / 16 * 16 + 16; }

// Runs body.operator()<W>(first) over the indices [0, count) in whole vectors of W = 16 (or 8 for
// fewer than 16), the last vector overlapping the one before it where count is not a multiple of W,
// so that no index runs in a scalar remainder loop: with GCC's remainder, a 28-tile row spent most
// of its time in the last 4 tiles. Each body below writes a pure function of what it reads, and
// reads nothing it writes, so an index done twice gets the same value twice.
template <class Body>
void in_whole_vectors(int64_t count, const Body& body) {
  if (count >= 16) {
    for (int64_t first = 0; first + 16 <= count; first += 16) body.template operator()<16>(first);
    if (count % 16 != 0) body.template operator()<16>(count - 16);
  } else if (count >= 8) {
    body.template operator()<8>(0);
    if (count > 8) body.template operator()<8>(count - 8);
  } else {
    for (int64_t first = 0; first < count; ++first) body.template operator()<1>(first);
  }
}

// An image's 2x2 output tiles, `rows` x `cols` of them (the last row or column may hang over an odd
// edge). Tile (ti, tj) reads the 4x4 block of the zero-padded input at rows 2 ti - 1 .. 2 ti + 2 and
// columns 2 tj - 1 .. 2 tj + 2 of the image.
struct Tiles {
  int64_t rows, cols;
  int64_t count() const { return rows * cols; }
};
Tiles tiles_of(const Conv2dGeometry& g) { return {(g.out_height + 1) / 2, (g.out_width + 1) / 2}; }

// A padded input row as the tiles read it, split by the parity of its columns so that a tile's
// four columns are contiguous across tiles (no shuffles in the transform): even[k] = x'(2k - 1),
// odd[k] = x'(2k), k in [0, cols], zero outside the image.
struct SplitRow {
  const float* even;
  const float* odd;
};

// One channel read as the convolution reads it (as stored, or normalised: InputNormalization, the
// same formula as batch_norm_apply with ReLU) into `padded`, (2 rows + 2) x 2 (cols + 1) with its
// zero border, then split by parity into `even` and `odd`, each (2 rows + 2) x (cols + 1). The
// planes' rows are contiguous, so the split is one vector loop over the whole channel.
void split_channel(const Conv2dGeometry& g, const Tiles& tiles, const float* plane, int64_t c,
                   const InputNormalization* norm, float* padded, float* even, float* odd) {
  const int64_t n = tiles.cols + 1, width = 2 * n, height = 2 * tiles.rows + 2;
  std::fill(padded, padded + width, 0.f);
  std::fill(padded + (g.height + 1) * width, padded + height * width, 0.f);
  const float mean = norm ? norm->mean[c] : 0.f, scale = norm ? norm->invstd[c] * norm->gamma[c] : 1.f;
  const float beta = norm ? norm->beta[c] : 0.f;
  for (int64_t h = 0; h < g.height; ++h) {
    const float* src = plane + h * g.width;
    float* row = padded + (h + 1) * width;
    row[0] = 0.f;
    std::fill(row + 1 + g.width, row + width, 0.f);
    if (norm) {
      in_whole_vectors(g.width, [&]<int kWidth>(int64_t first) {
#pragma omp simd
        for (int64_t w = first; w < first + kWidth; ++w) row[1 + w] = batch_norm_relu(src[w], mean, scale, beta);
      });
    } else {
      std::copy(src, src + g.width, row + 1);
    }
  }
  in_whole_vectors(height * n, [&]<int kWidth>(int64_t first) {
#pragma omp simd
    for (int64_t i = first; i < first + kWidth; ++i) {
      even[i] = padded[2 * i];
      odd[i] = padded[2 * i + 1];
    }
  });
}

// Floats of transform_input's scratch: the padded channel and its two halves.
int64_t split_scratch_size(const Tiles& tiles) { return 4 * (2 * tiles.rows + 2) * (tiles.cols + 1); }

// v[xi, c, t] = (B^T d B)_xi for the 4x4 block d of tile t in channel c, straight from the image
// through split_channel.
void transform_input(const Conv2dGeometry& g, const Tiles& tiles, const float* image, const InputNormalization* norm,
                     int64_t channels, float* v, float* scratch) {
  const int64_t count = tiles.count(), xi_stride = position_stride(channels * count), n = tiles.cols + 1;
  float* padded = scratch;
  float* even = padded + 2 * (2 * tiles.rows + 2) * n;
  float* odd = even + (2 * tiles.rows + 2) * n;
  auto split_row = [&](int64_t r) { return SplitRow{even + r * n, odd + r * n}; };  // padded row r
  for (int64_t c = 0; c < channels; ++c) {
    split_channel(g, tiles, image + c * g.in_plane(), c, norm, padded, even, odd);
    float* vc = v + c * count;
    for (int64_t ti = 0; ti < tiles.rows; ++ti) {
      const SplitRow r0 = split_row(2 * ti), r1 = split_row(2 * ti + 1), r2 = split_row(2 * ti + 2),
                     r3 = split_row(2 * ti + 3);
      float* out = vc + ti * tiles.cols;
      in_whole_vectors(tiles.cols, [&]<int kWidth>(int64_t first) {
#pragma omp simd
      for (int64_t tj = first; tj < first + kWidth; ++tj) {
        // B^T on the rows (per column of the block: even[tj], odd[tj], even[tj + 1], odd[tj + 1]) ...
        const float a0 = r0.even[tj] - r2.even[tj], a1 = r0.odd[tj] - r2.odd[tj];
        const float a2 = r0.even[tj + 1] - r2.even[tj + 1], a3 = r0.odd[tj + 1] - r2.odd[tj + 1];
        const float b0 = r1.even[tj] + r2.even[tj], b1 = r1.odd[tj] + r2.odd[tj];
        const float b2 = r1.even[tj + 1] + r2.even[tj + 1], b3 = r1.odd[tj + 1] + r2.odd[tj + 1];
        const float c0 = r2.even[tj] - r1.even[tj], c1 = r2.odd[tj] - r1.odd[tj];
        const float c2 = r2.even[tj + 1] - r1.even[tj + 1], c3 = r2.odd[tj + 1] - r1.odd[tj + 1];
        const float d0 = r1.even[tj] - r3.even[tj], d1 = r1.odd[tj] - r3.odd[tj];
        const float d2 = r1.even[tj + 1] - r3.even[tj + 1], d3 = r1.odd[tj + 1] - r3.odd[tj + 1];
        // ... then B on the columns.
        const float rows[4][4] = {{a0, a1, a2, a3}, {b0, b1, b2, b3}, {c0, c1, c2, c3}, {d0, d1, d2, d3}};
        for (int64_t i = 0; i < 4; ++i) {
          out[(4 * i + 0) * xi_stride + tj] = rows[i][0] - rows[i][2];
          out[(4 * i + 1) * xi_stride + tj] = rows[i][1] + rows[i][2];
          out[(4 * i + 2) * xi_stride + tj] = rows[i][2] - rows[i][1];
          out[(4 * i + 3) * xi_stride + tj] = rows[i][1] - rows[i][3];
        }
      }
      });
    }
  }
}

// out[co] = A^T m A for every tile, m[xi] = M[xi, co, t]; the overhanging row or column of an odd
// edge is dropped. `rows` holds one row of tiles' two output rows.
void transform_output(const Conv2dGeometry& g, const Tiles& tiles, const float* m, float* out, float* rows) {
  const int64_t count = tiles.count(), xi_stride = position_stride(g.out_channels * count), row_size = 2 * tiles.cols;
  for (int64_t co = 0; co < g.out_channels; ++co) {
    const float* mc = m + co * count;
    float* plane = out + co * g.out_plane();
    for (int64_t ti = 0; ti < tiles.rows; ++ti) {
      const float* at = mc + ti * tiles.cols;
      in_whole_vectors(tiles.cols, [&]<int kWidth>(int64_t first) {
#pragma omp simd
      for (int64_t tj = first; tj < first + kWidth; ++tj) {
        float s0[4], s1[4];  // A^T on the rows
        for (int64_t k = 0; k < 4; ++k) {
          const float a = at[k * xi_stride + tj], b = at[(4 + k) * xi_stride + tj];
          const float c = at[(8 + k) * xi_stride + tj], d = at[(12 + k) * xi_stride + tj];
          s0[k] = a + b + c;
          s1[k] = b - c - d;
        }
        rows[2 * tj] = s0[0] + s0[1] + s0[2];  // then A on the columns
        rows[2 * tj + 1] = s0[1] - s0[2] - s0[3];
        rows[row_size + 2 * tj] = s1[0] + s1[1] + s1[2];
        rows[row_size + 2 * tj + 1] = s1[1] - s1[2] - s1[3];
      }
      });
      for (int64_t r = 0; r < 2 && 2 * ti + r < g.out_height; ++r)
        std::copy(rows + r * row_size, rows + r * row_size + g.out_width, plane + (2 * ti + r) * g.out_width);
    }
  }
}

// grid[p, co] = dy[co] at position p = h (2 cols) + w of the tiles' 2 rows x 2 cols of outputs,
// zero where they overhang the image. Channels last, so that transform_dy loads and stores whole
// vectors of channels; filled 16 channels at a time, each position's 16 values one gather from 16
// sequential streams (as conv2d_cpu.cpp's pad_image_channels_last).
void dy_to_tile_grid(const Conv2dGeometry& g, const Tiles& tiles, const float* dy, float* grid) {
  constexpr int64_t kBlock = 16;
  const int64_t width = 2 * tiles.cols, height = 2 * tiles.rows, channels = g.out_channels, plane = g.out_plane();
  for (int64_t h = 0; h < height; ++h) {
    if (h >= g.out_height) {
      std::fill(grid + h * width * channels, grid + (h + 1) * width * channels, 0.f);
    } else if (width > g.out_width) {
      std::fill(grid + (h * width + g.out_width) * channels, grid + (h + 1) * width * channels, 0.f);
    }
  }
  for (int64_t c0 = 0; c0 < channels; c0 += kBlock) {
    const int64_t nc = std::min(kBlock, channels - c0);
    for (int64_t h = 0; h < g.out_height; ++h)
      for (int64_t w = 0; w < g.out_width; ++w) {
        const float* at = dy + c0 * plane + h * g.out_width + w;
        float* dst = grid + (h * width + w) * channels + c0;
#pragma omp simd
        for (int64_t c = 0; c < nc; ++c) dst[c] = at[c * plane];
      }
  }
}

// d[xi, t, co] = (A dy_t A^T)_xi for the 2x2 block dy_t of tile t: tile-major, so that the weight
// gradient's GEMMs read both operands untransposed (oneDNN runs N x N clearly faster than N x T).
void transform_dy(const Conv2dGeometry& g, const Tiles& tiles, const float* grid, float* d) {
  const int64_t width = 2 * tiles.cols, count = tiles.count();
  const int64_t channels = g.out_channels, xi_stride = position_stride(count * channels);
  for (int64_t ti = 0; ti < tiles.rows; ++ti)
    for (int64_t tj = 0; tj < tiles.cols; ++tj) {
      const float* e00 = grid + (2 * ti * width + 2 * tj) * channels;
      const float* e01 = e00 + channels;
      const float* e10 = e00 + width * channels;
      const float* e11 = e10 + channels;
      float* out = d + (ti * tiles.cols + tj) * channels;
#pragma omp simd
      for (int64_t co = 0; co < channels; ++co) {
        const float a0 = e00[co], a1 = e01[co], b0 = e10[co], b1 = e11[co];
        const float r[4][2] = {{a0, a1}, {a0 + b0, a1 + b1}, {a0 - b0, a1 - b1}, {-b0, -b1}};  // A on the rows
        for (int64_t i = 0; i < 4; ++i) {  // then A^T on the columns
          out[(4 * i + 0) * xi_stride + co] = r[i][0];
          out[(4 * i + 1) * xi_stride + co] = r[i][0] + r[i][1];
          out[(4 * i + 2) * xi_stride + co] = r[i][0] - r[i][1];
          out[(4 * i + 3) * xi_stride + co] = -r[i][1];
        }
      }
    }
}

}  // namespace

// From 16 x 16 up. Smaller images have rows of fewer than 8 tiles, which the transforms (whole
// vectors along a row of tiles) run scalar. Measured at DenseNet's 128 -> 32 (forward and both
// gradients), Winograd wins from 16 px up and lost at 14 px (docs/performance.md).
bool applies(const Conv2dGeometry& g) {
  return g.kernel_h == 3 && g.kernel_w == 3 && g.stride == 1 && g.padding == 1 && g.out_height >= 16 &&
         g.out_width >= 16;
}

int64_t kernel_size(const Conv2dGeometry& g) { return kPositions * position_stride(g.out_channels * g.in_channels); }

// u[xi, co, ci] = (G g G^T)_xi for the 3x3 kernel g = weight[co, ci].
void transform_kernel(const Conv2dGeometry& g, const float* weight, float* u) {
  const int64_t pairs = g.out_channels * g.in_channels, xi_stride = position_stride(pairs);
  for (int64_t i = 0; i < pairs; ++i) {
    const float* w = weight + i * 9;
    float t[4][3];  // G g
    for (int64_t s = 0; s < 3; ++s) {
      t[0][s] = w[s];
      t[1][s] = 0.5f * (w[s] + w[3 + s] + w[6 + s]);
      t[2][s] = 0.5f * (w[s] - w[3 + s] + w[6 + s]);
      t[3][s] = w[6 + s];
    }
    for (int64_t r = 0; r < 4; ++r) {  // then G^T on the right
      u[(4 * r + 0) * xi_stride + i] = t[r][0];
      u[(4 * r + 1) * xi_stride + i] = 0.5f * (t[r][0] + t[r][1] + t[r][2]);
      u[(4 * r + 2) * xi_stride + i] = 0.5f * (t[r][0] - t[r][1] + t[r][2]);
      u[(4 * r + 3) * xi_stride + i] = t[r][2];
    }
  }
}

// V, M, then one buffer for the input transform's scratch and, later, the output transform's rows.
int64_t forward_slot_size(const Conv2dGeometry& g) {
  const Tiles tiles = tiles_of(g);
  const int64_t count = tiles.count();
  return kPositions * (position_stride(g.in_channels * count) + position_stride(g.out_channels * count)) +
         std::max(4 * tiles.cols, split_scratch_size(tiles));
}

void forward_sample(const Conv2dGeometry& g, const float* u, const float* image, const InputNormalization* norm,
                    float* out, float* slot) {
  const Tiles tiles = tiles_of(g);
  const int64_t count = tiles.count(), ci = g.in_channels, co = g.out_channels;
  const int64_t u_stride = position_stride(co * ci), v_stride = position_stride(ci * count);
  const int64_t m_stride = position_stride(co * count);
  float* v = slot;
  float* m = v + kPositions * v_stride;
  float* rows = m + kPositions * m_stride;  // also the input transform's scratch
  transform_input(g, tiles, image, norm, ci, v, rows);
  for (int64_t xi = 0; xi < kPositions; ++xi)
    sgemm(false, false, co, count, ci, 1.f, u + xi * u_stride, ci, v + xi * v_stride, count, 0.f, m + xi * m_stride,
          count);
  transform_output(g, tiles, m, out, rows);
}

// The sum of dU, the input transform's scratch, V, dy on the tiles' grid, and dy's transform.
int64_t weight_gradient_slot_size(const Conv2dGeometry& g) {
  const Tiles tiles = tiles_of(g);
  const int64_t count = tiles.count();
  return kernel_size(g) + split_scratch_size(tiles) + kPositions * position_stride(g.in_channels * count) +
         4 * g.out_channels * count + kPositions * position_stride(g.out_channels * count);
}

void weight_gradient_sample(const Conv2dGeometry& g, const float* image, const InputNormalization* norm,
                            const float* dy, bool first, float* slot) {
  const Tiles tiles = tiles_of(g);
  const int64_t count = tiles.count(), ci = g.in_channels, co = g.out_channels;
  const int64_t v_stride = position_stride(ci * count), d_stride = position_stride(co * count);
  float* sum = slot;
  float* scratch = sum + kernel_size(g);
  float* v = scratch + split_scratch_size(tiles);
  float* dy_grid = v + kPositions * v_stride;
  float* d = dy_grid + 4 * co * count;
  transform_input(g, tiles, image, norm, ci, v, scratch);
  dy_to_tile_grid(g, tiles, dy, dy_grid);
  transform_dy(g, tiles, dy_grid, d);
  // dU_xi^T [C_in, C_out] += V_xi [C_in, T] d_xi [T, C_out].
  for (int64_t xi = 0; xi < kPositions; ++xi)
    sgemm(false, false, ci, co, count, 1.f, v + xi * v_stride, count, d + xi * d_stride, co, first ? 0.f : 1.f,
          sum + xi * position_stride(ci * co), co);
}

void weight_gradient_finish(const Conv2dGeometry& g, const float* workspace, int slots, float* dweight) {
  const int64_t ci = g.in_channels, co = g.out_channels, slot_size = weight_gradient_slot_size(g);
  const int64_t xi_stride = position_stride(ci * co);
  for (int64_t c = 0; c < ci; ++c)
    for (int64_t o = 0; o < co; ++o) {
      float du[4][4];
      for (int64_t xi = 0; xi < kPositions; ++xi) {
        float total = 0.f;
        for (int s = 0; s < slots; ++s) total += workspace[s * slot_size + xi * xi_stride + c * co + o];
        du[xi / 4][xi % 4] = total;
      }
      float t[3][4];  // G^T dU
      for (int64_t j = 0; j < 4; ++j) {
        t[0][j] = du[0][j] + 0.5f * (du[1][j] + du[2][j]);
        t[1][j] = 0.5f * (du[1][j] - du[2][j]);
        t[2][j] = 0.5f * (du[1][j] + du[2][j]) + du[3][j];
      }
      float* w = dweight + (o * ci + c) * 9;
      for (int64_t r = 0; r < 3; ++r) {  // then G on the right
        w[3 * r + 0] = t[r][0] + 0.5f * (t[r][1] + t[r][2]);
        w[3 * r + 1] = 0.5f * (t[r][1] - t[r][2]);
        w[3 * r + 2] = 0.5f * (t[r][1] + t[r][2]) + t[r][3];
      }
    }
}

}  // namespace chex::kernels::cpu::winograd

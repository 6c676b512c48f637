#pragma once
// What bench_kernels measures: a Case is one kernel at one shape, our launcher and its cuDNN
// counterpart over the same inputs, each writing its own outputs. Families of cases (one file
// each, bench_cases_<family>.cpp) register factories, so that --filter can skip a case before any
// memory is allocated for it.
#include <cuda_runtime_api.h>
#include <cudnn.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "chex/kernel_calls.h"
#include "kernels/queue.h"
#include "models/densenet_shapes.h"

namespace chex::bench {

// Device floats, freed on scope exit (cudaMalloc: the bench owns the whole device).
class DeviceArray {
 public:
  explicit DeviceArray(int64_t n);
  ~DeviceArray();
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  float* get() const { return data_; }
  int64_t size() const { return n_; }
  void upload(const std::vector<float>& host) const;  // synchronous
  std::vector<float> download() const;                // synchronous
  size_t bytes = 0;

 private:
  float* data_ = nullptr;
  int64_t n_ = 0;
};

// The device, its stream, a cuDNN handle on that stream, and the L2-flush buffer.
struct Bench {
  explicit Bench(int device);
  ~Bench();
  Bench(const Bench&) = delete;
  Bench& operator=(const Bench&) = delete;
  int device = 0;
  std::string name;
  int64_t l2_bytes = 0;
  cudaStream_t stream = nullptr;
  cudnnHandle_t cudnn = nullptr;
  DeviceArray flush;  // 2x the L2 cache, zeros: reading it evicts what the previous run left there
  DeviceArray sink;   // where the flush's read kernel may write its one value
  // Where our kernels are launched (kernels/queue.h).
  chex::kernels::Queue queue() const { return {device, stream}; }
};

class Case {
 public:
  virtual ~Case() = default;
  virtual void ours() = 0;   // enqueue our kernel(s) on the bench stream
  virtual void cudnn() = 0;  // enqueue the cuDNN counterpart
  // Runs both once and returns the largest |ours - cuDNN| / max(1, |cuDNN|) over every output.
  virtual double difference() = 0;
  // A second cuDNN counterpart where cuDNN has a faster mode for the same work (batch norm's
  // CUDNN_BATCHNORM_SPATIAL_PERSISTENT); `alternative` names it, empty where there is none (or
  // cuDNN refused it for this case). The headline speed-up is against the faster of the two.
  std::string alternative;
  virtual void cudnn_alternative() {}
  virtual double alternative_difference() { return 0; }  // as difference(), against the alternative
  double bytes = 0;          // moved by our kernel, counted on paper (see the README)
  double tolerance = 1e-4;

 protected:
  // difference() of a case with one output: runs both once and compares `ours_out` with `theirs_out`.
  double compare_one_output(const DeviceArray& ours_out, const DeviceArray& theirs_out);
};

struct CaseFactory {
  std::string kernel;  // e.g. "batch_norm_forward_training"
  std::string shape;   // e.g. "[16, 64, 112, 112]"
  bool densenet = true;  // a DenseNet-121 shape, or the large shape
  std::function<std::unique_ptr<Case>(Bench&)> make;
  // The kernel call of a DenseNet-121 pass this case times (models::densenet_kernel_calls): the
  // totals weight the case by how often a training step / an inference pass makes that call,
  // divided by `calls_per_run` (sigmoid_bce times the loss and its gradient in one run, which the
  // step computes in two calls). Empty kernel: the case stands for no call (the large shape).
  KernelCall counted_as;
  int64_t calls_per_run = 1;
};

// Every case, in family order; DenseNet-121 shapes at `batch`, then the large shape.
std::vector<CaseFactory> case_factories(int64_t batch);

// --- helpers for the families ---
std::vector<float> random_values(int64_t n, uint32_t seed, float low = -2.f, float high = 2.f);
double max_scaled_difference(const std::vector<float>& a, const std::vector<float>& b);
std::string shape_text(std::initializer_list<int64_t> dims);
// The analysis' shape of a batch norm / global pooling call ([N, C, H*W]) and of a pooling call
// ([N, C, H, W]), for CaseFactory::counted_as.
KernelCall image_call(const char* kernel, const models::MapShape& s);
KernelCall map_call(const char* kernel, const models::MapShape& s);
// The large shape every family is also measured at: [64, 128, 112, 112] (411 MB of floats).
constexpr int64_t kLargeBatch = 64, kLargeChannels = 128, kLargeSize = 112;

// A packed 4-d float tensor descriptor [n, c, h, w] for the cuDNN side, destroyed on scope exit.
class Desc4 {
 public:
  Desc4(int64_t n, int64_t c, int64_t h, int64_t w);
  ~Desc4();
  Desc4(const Desc4&) = delete;
  Desc4& operator=(const Desc4&) = delete;
  cudnnTensorDescriptor_t get() const { return desc_; }

 private:
  cudnnTensorDescriptor_t desc_ = nullptr;
};

// Families, one file each (bench_cases_<family>.cpp).
void add_batchnorm_cases(std::vector<CaseFactory>& out, int64_t batch);
void add_pooling_cases(std::vector<CaseFactory>& out, int64_t batch);
void add_loss_cases(std::vector<CaseFactory>& out, int64_t batch);
void add_concat_cases(std::vector<CaseFactory>& out, int64_t batch);
void add_relu_cases(std::vector<CaseFactory>& out, int64_t batch);

}  // namespace chex::bench

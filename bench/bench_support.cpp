// DeviceArray, Bench and the helpers shared by the case families (bench_cases.h).
#include <algorithm>
#include <cmath>
#include <random>
#include <sstream>

#include "bench/bench_cases.h"
#include "chex/cuda_check.h"

namespace chex::bench {

DeviceArray::DeviceArray(int64_t n) : bytes(sizeof(float) * static_cast<size_t>(n)), n_(n) {
  if (n > 0) CHEX_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&data_), bytes));
}
DeviceArray::~DeviceArray() { cudaFree(data_); }

void DeviceArray::upload(const std::vector<float>& host) const {
  CHEX_CHECK(static_cast<int64_t>(host.size()) == n_, "upload: ", host.size(), " values for ", n_);
  CHEX_CUDA_CHECK(cudaMemcpy(data_, host.data(), bytes, cudaMemcpyHostToDevice));
}

std::vector<float> DeviceArray::download() const {
  std::vector<float> host(static_cast<size_t>(n_));
  CHEX_CUDA_CHECK(cudaDeviceSynchronize());
  CHEX_CUDA_CHECK(cudaMemcpy(host.data(), data_, bytes, cudaMemcpyDeviceToHost));
  return host;
}

namespace {
int64_t l2_size(int device) {
  int bytes = 0;
  CHEX_CUDA_CHECK(cudaDeviceGetAttribute(&bytes, cudaDevAttrL2CacheSize, device));
  return bytes;
}
}  // namespace

Bench::Bench(int index)
    : device(index), l2_bytes(l2_size(index)), flush(std::max<int64_t>(2 * l2_size(index) / 4, 1 << 20)), sink(4) {
  cudaDeviceProp prop{};
  CHEX_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
  name = prop.name;
  CHEX_CUDA_CHECK(cudaSetDevice(device));
  CHEX_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  CHEX_CUDNN_CHECK(cudnnCreate(&cudnn));
  CHEX_CUDNN_CHECK(cudnnSetStream(cudnn, stream));
  CHEX_CUDA_CHECK(cudaMemset(flush.get(), 0, flush.bytes));
  CHEX_CUDA_CHECK(cudaDeviceSynchronize());
}

Bench::~Bench() {
  cudnnDestroy(cudnn);
  cudaStreamDestroy(stream);
}

Desc4::Desc4(int64_t n, int64_t c, int64_t h, int64_t w) {
  CHEX_CUDNN_CHECK(cudnnCreateTensorDescriptor(&desc_));
  CHEX_CUDNN_CHECK(cudnnSetTensor4dDescriptor(desc_, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, static_cast<int>(n),
                                              static_cast<int>(c), static_cast<int>(h), static_cast<int>(w)));
}
Desc4::~Desc4() { cudnnDestroyTensorDescriptor(desc_); }

std::vector<float> random_values(int64_t n, uint32_t seed, float low, float high) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(low, high);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = dist(gen);
  return v;
}

double max_scaled_difference(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return INFINITY;
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = std::fabs(static_cast<double>(a[i]) - b[i]) / std::max(1.0, std::fabs(static_cast<double>(b[i])));
    worst = std::max(worst, std::isnan(d) ? INFINITY : d);
  }
  return worst;
}

double Case::compare_one_output(const DeviceArray& ours_out, const DeviceArray& theirs_out) {
  ours();
  cudnn();
  return max_scaled_difference(ours_out.download(), theirs_out.download());
}

KernelCall image_call(const char* kernel, const models::MapShape& s) {
  return {kernel, {s.batch, s.channels, s.height * s.width}};
}
KernelCall map_call(const char* kernel, const models::MapShape& s) {
  return {kernel, {s.batch, s.channels, s.height, s.width}};
}

std::string shape_text(std::initializer_list<int64_t> dims) {
  std::ostringstream out;
  out << '[';
  bool first = true;
  for (int64_t d : dims) {
    out << (first ? "" : ", ") << d;
    first = false;
  }
  out << ']';
  return out.str();
}

}  // namespace chex::bench

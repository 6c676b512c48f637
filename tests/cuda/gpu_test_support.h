#pragma once
// What the kernels' GPU tests (label gpu, chex_kernel_gpu_tests) share: the check that a GPU is
// there, and device copies of host vectors.
#include <catch2/catch.hpp>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>
#include <vector>

namespace chex::testing {

inline void check_cuda(cudaError_t status) {
  INFO(cudaGetErrorString(status));
  REQUIRE(status == cudaSuccess);
}

inline void require_gpu() {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  INFO("this test needs a GPU; there is none here (" << cudaGetErrorString(status) << "): ctest -LE gpu");
  REQUIRE((status == cudaSuccess && count > 0));
}

// A device copy of a host vector, read back after the queue has run.
template <typename T>
class DeviceVector {
 public:
  explicit DeviceVector(const std::vector<T>& host) : size_(host.size()) {
    check_cuda(cudaMalloc(&data_, std::max<size_t>(1, size_ * sizeof(T))));
    check_cuda(cudaMemcpy(data_, host.data(), size_ * sizeof(T), cudaMemcpyHostToDevice));
  }
  ~DeviceVector() { cudaFree(data_); }
  DeviceVector(const DeviceVector&) = delete;
  DeviceVector& operator=(const DeviceVector&) = delete;
  T* get() const { return data_; }
  void clear() const { check_cuda(cudaMemset(data_, 0, size_ * sizeof(T))); }
  std::vector<T> read() const {
    check_cuda(cudaDeviceSynchronize());
    std::vector<T> host(size_);
    check_cuda(cudaMemcpy(host.data(), data_, size_ * sizeof(T), cudaMemcpyDeviceToHost));
    return host;
  }

 private:
  size_t size_;
  T* data_ = nullptr;
};

}  // namespace chex::testing

// DataParallel and convert_sync_batch_norm (chex/distributed.h).
#include <chrono>

#include "chex/autograd.h"
#include "chex/distributed.h"
#include "chex/error.h"
#include "chex/nn/layers.h"
#include "chex/ops.h"

namespace chex::distributed {
namespace {

class Stopwatch {
 public:
  explicit Stopwatch(double& total) : total_(total), start_(std::chrono::steady_clock::now()) {}
  ~Stopwatch() { total_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count(); }

 private:
  double& total_;
  std::chrono::steady_clock::time_point start_;
};

// Broadcasts each tensor from rank 0 in place (contiguous leaves; chex's parameters and buffers).
void broadcast_tensors(Communicator& comm, const nn::NamedTensors& tensors) {
  for (const auto& [name, t] : tensors) {
    CHEX_CHECK(t.is_contiguous(), "DataParallel: '", name, "' is not contiguous");
    comm.broadcast(t.raw_data(), static_cast<size_t>(t.numel()) * sizeof(float), 0, t.device());
  }
}

}  // namespace

void convert_sync_batch_norm(nn::Module& model, std::shared_ptr<Communicator> comm) {
  CHEX_CHECK(comm != nullptr, "convert_sync_batch_norm: no communicator");
  for (auto& [name, module] : model.named_modules())
    if (auto* bn = dynamic_cast<nn::BatchNorm2d*>(module)) bn->set_sync(comm);
}

DataParallel::DataParallel(nn::Module& model, std::shared_ptr<Communicator> comm, DataParallelOptions options)
    : model_(model), comm_(std::move(comm)), options_(options) {
  CHEX_CHECK(comm_ != nullptr, "DataParallel: no communicator");
  CHEX_CHECK(options_.bucket_bytes >= sizeof(float), "DataParallel: bucket_bytes must hold at least one float");
  broadcast_state();
}

void DataParallel::broadcast_state() {
  if (comm_->size() == 1) return;
  Stopwatch watch(communication_seconds_);
  broadcast_tensors(*comm_, model_.named_parameters());
  broadcast_tensors(*comm_, model_.named_buffers());
}

void DataParallel::broadcast_buffers() {
  if (comm_->size() == 1) return;
  Stopwatch watch(communication_seconds_);
  broadcast_tensors(*comm_, model_.named_buffers());
}

Tensor DataParallel::forward(const Tensor& input) {
  if (options_.broadcast_buffers && model_.is_training()) broadcast_buffers();
  return model_(input);
}

// Each bucket: the gradients packed into one flat tensor on their device, one all-reduce, scaled by
// the rank's weight, unpacked. Packing costs a copy of each gradient but makes ~360 small messages a few
// large ones, which is what the interconnect's bandwidth needs.
void DataParallel::synchronize_gradients(double weight) {
  if (comm_->size() == 1) return;
  Stopwatch watch(communication_seconds_);
  NoGradGuard no_grad;
  std::vector<Tensor> params = model_.parameters();
  const float factor = weight >= 0 ? static_cast<float>(weight) : 1.f / static_cast<float>(comm_->size());
  size_t i = params.size();
  while (i > 0) {
    // The next bucket: parameters from the back, on one device, up to bucket_bytes (at least one).
    std::vector<Tensor> bucket;
    int64_t numel = 0;
    const Device device = params[i - 1].device();
    while (i > 0 && params[i - 1].device() == device &&
           (bucket.empty() || static_cast<size_t>(numel + params[i - 1].numel()) * sizeof(float) <= options_.bucket_bytes)) {
      Tensor& p = params[--i];
      if (!p.grad().defined()) p.set_grad(Tensor::zeros(p.shape(), p.device()));  // every rank sends the same sizes
      numel += p.numel();
      bucket.push_back(p);
    }
    Tensor flat = Tensor::empty({numel}, device);
    int64_t offset = 0;
    for (const Tensor& p : bucket) {
      flat.narrow(0, offset, p.numel()).copy_(p.grad().reshape({p.numel()}));
      offset += p.numel();
    }
    flat = ops::scale(flat, factor);  // before the sum, so that unequal weights are possible
    comm_->all_reduce_sum(flat.data(), static_cast<size_t>(numel), device);
    offset = 0;
    for (const Tensor& p : bucket) {
      p.grad().copy_(flat.narrow(0, offset, p.numel()).reshape(p.shape()));
      offset += p.numel();
    }
  }
}

}  // namespace chex::distributed

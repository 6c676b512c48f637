// DataParallel and convert_sync_batch_norm (chex/distributed.h).
#include <chrono>
#include <functional>

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

// Tensors taken from the back in buckets of at most `bucket_bytes` (at least one tensor each), on
// one device, each packed into one flat tensor for `exchange`, then unpacked: ~360 small messages
// become a few large ones, which is what an interconnect's bandwidth needs.
void for_each_bucket(std::vector<Tensor> tensors, size_t bucket_bytes, const std::function<void(Tensor&)>& exchange) {
  size_t i = tensors.size();
  while (i > 0) {
    std::vector<Tensor> bucket;
    int64_t numel = 0;
    const Device device = tensors[i - 1].device();
    while (i > 0 && tensors[i - 1].device() == device &&
           (bucket.empty() || static_cast<size_t>(numel + tensors[i - 1].numel()) * sizeof(float) <= bucket_bytes)) {
      numel += tensors[i - 1].numel();
      bucket.push_back(tensors[--i]);
    }
    Tensor flat = Tensor::empty({numel}, device);
    int64_t offset = 0;
    for (const Tensor& t : bucket) {
      flat.narrow(0, offset, t.numel()).copy_(t.reshape({t.numel()}));
      offset += t.numel();
    }
    exchange(flat);
    offset = 0;
    for (const Tensor& t : bucket) {
      t.copy_(flat.narrow(0, offset, t.numel()).reshape(t.shape()));
      offset += t.numel();
    }
  }
}

// Rank 0's values of the tensors to every rank, in place.
void broadcast_tensors(Communicator& comm, const nn::NamedTensors& named, size_t bucket_bytes) {
  std::vector<Tensor> tensors;
  for (const auto& [name, t] : named) tensors.push_back(t);
  for_each_bucket(std::move(tensors), bucket_bytes, [&](Tensor& flat) {
    comm.broadcast(flat.raw_data(), static_cast<size_t>(flat.numel()) * sizeof(float), 0, flat.device());
  });
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
  broadcast_tensors(*comm_, model_.named_parameters(), options_.bucket_bytes);
  broadcast_tensors(*comm_, model_.named_buffers(), options_.bucket_bytes);
}

void DataParallel::broadcast_buffers() {
  if (comm_->size() == 1) return;
  Stopwatch watch(communication_seconds_);
  broadcast_tensors(*comm_, model_.named_buffers(), options_.bucket_bytes);
}

Tensor DataParallel::forward(const Tensor& input) {
  if (options_.broadcast_buffers && model_.is_training()) broadcast_buffers();
  return model_(input);
}

// In reverse parameter order (the order backward finishes them), each bucket scaled by this rank's
// weight, then summed over the ranks.
void DataParallel::synchronize_gradients(double weight) {
  if (comm_->size() == 1) return;
  Stopwatch watch(communication_seconds_);
  NoGradGuard no_grad;
  const float factor = weight >= 0 ? static_cast<float>(weight) : 1.f / static_cast<float>(comm_->size());
  std::vector<Tensor> grads;
  for (const Tensor& p : model_.parameters()) {
    if (!p.grad().defined()) p.set_grad(Tensor::zeros(p.shape(), p.device()));  // every rank sends the same sizes
    grads.push_back(p.grad());
  }
  for_each_bucket(std::move(grads), options_.bucket_bytes, [&](Tensor& flat) {
    flat = ops::scale(flat, factor);  // before the sum, so that unequal weights are possible
    comm_->all_reduce_sum(flat.data(), static_cast<size_t>(flat.numel()), flat.device());
  });
}

}  // namespace chex::distributed

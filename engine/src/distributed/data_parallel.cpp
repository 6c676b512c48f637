// DataParallel and convert_sync_batch_norm (chex/distributed.h).
#include <chrono>
#include <functional>
#include <unordered_map>

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

// Buckets of indices into `tensors`, taken from the back (the order a backward finishes
// parameters), each on one device and of at most `bucket_bytes` (at least one tensor): ~360 small
// messages become a few large ones, which is what an interconnect's bandwidth needs.
std::vector<std::vector<size_t>> cut_buckets(const std::vector<Tensor>& tensors, size_t bucket_bytes) {
  std::vector<std::vector<size_t>> buckets;
  for (size_t i = tensors.size(); i > 0;) {
    std::vector<size_t> bucket;
    size_t bytes = 0;
    const Device device = tensors[i - 1].device();
    while (i > 0 && tensors[i - 1].device() == device &&
           (bucket.empty() || bytes + static_cast<size_t>(tensors[i - 1].numel()) * sizeof(float) <= bucket_bytes)) {
      --i;
      bucket.push_back(i);
      bytes += static_cast<size_t>(tensors[i].numel()) * sizeof(float);
    }
    buckets.push_back(std::move(bucket));
  }
  return buckets;
}

// The bucket's tensors, one after the other in one flat tensor on their device, and back.
Tensor pack(const std::vector<Tensor>& tensors, const std::vector<size_t>& bucket) {
  int64_t numel = 0;
  for (size_t i : bucket) numel += tensors[i].numel();
  Tensor flat = Tensor::empty({numel}, tensors[bucket.front()].device());
  int64_t offset = 0;
  for (size_t i : bucket) {
    flat.narrow(0, offset, tensors[i].numel()).copy_(tensors[i].reshape({tensors[i].numel()}));
    offset += tensors[i].numel();
  }
  return flat;
}
void unpack(const Tensor& flat, const std::vector<Tensor>& tensors, const std::vector<size_t>& bucket) {
  int64_t offset = 0;
  for (size_t i : bucket) {
    tensors[i].copy_(flat.narrow(0, offset, tensors[i].numel()).reshape(tensors[i].shape()));
    offset += tensors[i].numel();
  }
}

// Rank 0's values of the tensors to every rank, in place.
void broadcast_tensors(Communicator& comm, const nn::NamedTensors& named, size_t bucket_bytes) {
  std::vector<Tensor> tensors;
  for (const auto& [name, t] : named) tensors.push_back(t);
  for (const std::vector<size_t>& bucket : cut_buckets(tensors, bucket_bytes)) {
    const Tensor flat = pack(tensors, bucket);
    comm.broadcast(flat.raw_data(), static_cast<size_t>(flat.numel()) * sizeof(float), 0, flat.device());
    unpack(flat, tensors, bucket);
  }
}

// The gradients of params[i] for i in `which` (at the same positions; the others undefined), zeros
// where a parameter has none, so that every rank sends the same.
std::vector<Tensor> gradients(const std::vector<Tensor>& params, const std::vector<size_t>& which) {
  std::vector<Tensor> grads(params.size());
  for (size_t i : which) {
    const Tensor& p = params[i];
    if (!p.grad().defined()) p.set_grad(Tensor::zeros(p.shape(), p.device()));
    grads[i] = p.grad();
  }
  return grads;
}
std::vector<size_t> all_of(const std::vector<Tensor>& params) {
  std::vector<size_t> which(params.size());
  for (size_t i = 0; i < which.size(); ++i) which[i] = i;
  return which;
}

struct Bucket {
  std::vector<size_t> params;  // indices into the parameter list, in reverse order
  int64_t waiting = 0;         // gradient accumulations still to come
  Tensor flat;
  std::unique_ptr<PendingCollective> pending;
};

}  // namespace

// The state of one backward(): the buckets (cut_buckets of the parameters),
// the accumulations each parameter still expects, and the next bucket to start. Buckets start in
// their order only (a ready bucket waits for the ones before it), so that every rank issues the
// same collectives in the same order whatever the backward's timing.
struct DataParallel::Overlap {
  std::vector<Tensor> params;
  std::unordered_map<const TensorImpl*, size_t> index;
  std::vector<int64_t> uses;      // per parameter: accumulations still to come
  std::vector<size_t> bucket_of;  // per parameter
  std::vector<Bucket> buckets;
  size_t next_to_start = 0;
  float scale = 1;
};

DataParallel::~DataParallel() = default;

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
  const std::vector<Tensor> params = model_.parameters();
  const std::vector<Tensor> grads = gradients(params, all_of(params));
  for (const std::vector<size_t>& bucket : cut_buckets(grads, options_.bucket_bytes)) {
    const Tensor flat = ops::scale(pack(grads, bucket), factor);  // before the sum: unequal weights are possible
    comm_->all_reduce_sum(flat.data(), static_cast<size_t>(flat.numel()), flat.device());
    unpack(flat, grads, bucket);
  }
}

void DataParallel::backward(const Tensor& loss, double scale) {
  CHEX_CHECK(!overlap_, "DataParallel::backward twice without finish_gradients() in between");
  if (comm_->size() == 1) {
    loss.backward();
    return;
  }
  auto o = std::make_unique<Overlap>();
  o->params = model_.parameters();
  o->scale = scale >= 0 ? static_cast<float>(scale) : 1.f / static_cast<float>(comm_->size());
  const size_t n = o->params.size();
  o->uses.assign(n, 0);
  o->bucket_of.assign(n, 0);
  for (size_t i = 0; i < n; ++i) o->index.emplace(o->params[i].impl(), i);
  for (const Tensor& leaf : leaf_accumulations(loss))
    if (auto it = o->index.find(leaf.impl()); it != o->index.end()) ++o->uses[it->second];
  for (std::vector<size_t>& indices : cut_buckets(o->params, options_.bucket_bytes)) {
    Bucket b;
    for (size_t i : indices) {
      b.waiting += o->uses[i];
      o->bucket_of[i] = o->buckets.size();
    }
    b.params = std::move(indices);
    o->buckets.push_back(std::move(b));
  }

  // Packs and starts the buckets that are complete, in order.
  auto start_ready = [this, &o](bool all) {
    NoGradGuard no_grad;
    while (o->next_to_start < o->buckets.size() && (all || o->buckets[o->next_to_start].waiting == 0)) {
      Bucket& b = o->buckets[o->next_to_start++];
      b.flat = ops::scale(pack(gradients(o->params, b.params), b.params), o->scale);
      b.pending = comm_->start_all_reduce_sum(b.flat.data(), static_cast<size_t>(b.flat.numel()), b.flat.device());
    }
  };
  {
    Stopwatch watch(communication_seconds_);
    start_ready(false);  // buckets whose parameters the loss does not reach
  }
  {
    GradientAccumulatedHookGuard hook([&](const Tensor& leaf) {
      const auto it = o->index.find(leaf.impl());
      if (it == o->index.end()) return;
      Stopwatch watch(communication_seconds_);
      if (o->uses[it->second] > 0) {
        --o->uses[it->second];
        --o->buckets[o->bucket_of[it->second]].waiting;
      }
      start_ready(false);
      for (size_t k = 0; k < o->next_to_start; ++k)
        if (o->buckets[k].pending) o->buckets[k].pending->progress();
    });
    loss.backward();
  }
  Stopwatch watch(communication_seconds_);
  start_ready(true);  // anything left (a parameter used but not reached, say)
  overlap_ = std::move(o);
}

void DataParallel::finish_gradients(double divisor) {
  if (comm_->size() == 1) return;
  CHEX_CHECK(overlap_, "DataParallel::finish_gradients without backward() before it");
  CHEX_CHECK(divisor > 0, "DataParallel::finish_gradients: the divisor must be positive, got ", divisor);
  Stopwatch watch(communication_seconds_);
  NoGradGuard no_grad;
  const std::unique_ptr<Overlap> o = std::move(overlap_);
  const std::vector<Tensor> grads = gradients(o->params, all_of(o->params));
  for (Bucket& b : o->buckets) {
    b.pending->wait();
    unpack(divisor == 1 ? b.flat : ops::scale(b.flat, static_cast<float>(1.0 / divisor)), grads, b.params);
  }
}

}  // namespace chex::distributed

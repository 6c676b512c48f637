#include "ranks.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <unordered_map>

#include "chex/data/labels.h"
#include "chex/error.h"

namespace chex::train {
namespace {

template <class T>
void put(std::string& out, const T& value) {
  out.append(reinterpret_cast<const char*>(&value), sizeof value);
}
template <class T>
T take(const std::string& in, size_t& at) {
  CHEX_CHECK(at + sizeof(T) <= in.size(), "internal: truncated predictions from another rank");
  T value;
  std::memcpy(&value, in.data() + at, sizeof value);
  at += sizeof value;
  return value;
}

}  // namespace

StepAgreement agree_on_step(distributed::Communicator& comm, int64_t images, float loss, bool stop, int64_t batch) {
  const auto n = static_cast<double>(images);
  double sums[4] = {n, n * static_cast<double>(loss), stop ? 1.0 : 0.0, static_cast<double>(batch)};
  comm.all_reduce_sum(sums, 4);
  CHEX_CHECK(sums[3] == static_cast<double>(batch) * comm.size(), "rank ", comm.rank(), " is at batch ", batch + 1,
             " but the ranks disagree (a rank's share of a batch was all unreadable images?); rerun with --strict "
             "to see which");
  return {static_cast<int64_t>(sums[0]), sums[1] / sums[0], sums[2] > 0};
}

SplitPredictions gather_predictions(distributed::Communicator& comm, const SplitPredictions& mine,
                                    const std::vector<data::Sample>& split) {
  if (comm.size() == 1) return mine;
  const size_t k = data::kNumLabels;
  std::string bytes;
  put(bytes, static_cast<uint64_t>(mine.images.size()));
  put(bytes, std::isnan(mine.mean_loss) ? 0.0 : mine.mean_loss * static_cast<double>(mine.images.size()));
  for (size_t i = 0; i < mine.images.size(); ++i) {
    put(bytes, static_cast<uint32_t>(mine.images[i].size()));
    bytes += mine.images[i];
    bytes.append(reinterpret_cast<const char*>(&mine.probabilities[i * k]), k * sizeof(float));
    bytes.append(reinterpret_cast<const char*>(&mine.truth[i * k]), k);
  }
  SplitPredictions all;
  double loss_sum = 0;
  for (const std::string& part : comm.all_gather(bytes)) {
    size_t at = 0;
    const auto count = take<uint64_t>(part, at);
    loss_sum += take<double>(part, at);
    for (uint64_t i = 0; i < count; ++i) {
      const auto length = take<uint32_t>(part, at);
      all.images.push_back(part.substr(at, length));
      at += length;
      for (size_t c = 0; c < k; ++c) all.probabilities.push_back(take<float>(part, at));
      for (size_t c = 0; c < k; ++c) all.truth.push_back(take<uint8_t>(part, at));
    }
  }
  // Back into the split's order, which one process would have produced.
  std::unordered_map<std::string, size_t> position;
  for (size_t i = 0; i < split.size(); ++i) position.emplace(split[i].image, i);
  std::vector<size_t> order(all.images.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return position.at(all.images[a]) < position.at(all.images[b]);
  });
  SplitPredictions out;
  for (size_t i : order) {
    out.images.push_back(all.images[i]);
    out.probabilities.insert(out.probabilities.end(), all.probabilities.begin() + static_cast<std::ptrdiff_t>(i * k),
                             all.probabilities.begin() + static_cast<std::ptrdiff_t>((i + 1) * k));
    out.truth.insert(out.truth.end(), all.truth.begin() + static_cast<std::ptrdiff_t>(i * k),
                     all.truth.begin() + static_cast<std::ptrdiff_t>((i + 1) * k));
  }
  out.mean_loss = out.images.empty() ? std::numeric_limits<double>::quiet_NaN()
                                     : loss_sum / static_cast<double>(out.images.size());
  return out;
}

}  // namespace chex::train

// An outside project using the installed chex: a tiny CNN trained a few steps on random data with
// the engine (chex::chex), scored with the CheXNet domain library (chex::chexnet). Exits non-zero
// unless the loss goes down and the domain library answers.
#include <chex/chex.h>
#include <chex/chexnet.h>

#include <array>
#include <cstdint>
#include <cstdio>

int main() {
  using namespace chex;
  manual_seed(3);
  Generator gen(4);
  auto model = std::make_shared<nn::Sequential>();
  model->push_back(std::make_shared<nn::Conv2d>(3, 8, 3, 1, 1));
  model->push_back(std::make_shared<nn::BatchNorm2d>(8));
  model->push_back(std::make_shared<nn::ReLU>());
  model->push_back(std::make_shared<nn::MaxPool2d>(3, 2, 1));
  model->push_back(std::make_shared<nn::GlobalAvgPool>());
  model->push_back(std::make_shared<nn::Linear>(8, 4));
  optim::Adam adam(model->parameters(), {.lr = 1e-2});

  const Tensor images = Tensor::randn({8, 3, 16, 16}, gen);
  const Tensor labels = Tensor::uniform({8, 4}, gen, 0.f, 1.f);  // soft targets are fine
  float first = 0, last = 0;
  for (int step = 0; step < 20; ++step) {
    Tensor loss = ops::bce_with_logits((*model)(images), labels);
    adam.zero_grad();
    loss.backward();
    adam.step();
    (step == 0 ? first : last) = loss.item();
  }
  std::printf("tiny_cnn: loss %.4f -> %.4f over 20 Adam steps (%zu parameter tensors)\n", first, last,
              model->parameters().size());

  // libchexnet: a ChestX-ray14 label's index and an AUROC (one of four pairs misranked: 0.75).
  const std::optional<int> hernia = data::label_index("Hernia");
  const std::array<double, 4> scores = {0.1, 0.4, 0.35, 0.8};
  const std::array<uint8_t, 4> truth = {0, 0, 1, 1};
  const std::optional<double> area = metrics::auroc(scores, truth);
  std::printf("tiny_cnn: chexnet: 'Hernia' is label %d of %d, AUROC %.2f\n", hernia.value_or(-1), data::kNumLabels,
              area.value_or(-1.0));
  const bool chexnet_ok = hernia == 13 && area == 0.75;
  return last < first && chexnet_ok ? 0 : 1;
}

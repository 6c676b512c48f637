// Training curves from log.jsonl: the training and validation loss and the validation mean AUROC per
// epoch, with the epochs after which the learning rate was divided marked.
#include <algorithm>
#include <cmath>
#include <sstream>

#include "chex/report/svg.h"
#include "sections.h"

namespace chex::report::detail {
namespace {

void mark_lr_drops(SvgPlot& plot, const std::vector<TrainingEpoch>& epochs) {
  for (const auto& e : epochs)
    if (e.next_lr < e.lr) plot.vertical_rule(e.epoch + 0.5, kVermillion, "lr ÷ " + format_number(e.lr / e.next_lr, 0));
}

}  // namespace

std::string training_section(const ReportInputs& in) {
  std::ostringstream out;
  out << "<section id=\"training\"><h2>Training</h2>\n";
  if (!in.training || in.training->empty()) {
    out << "<p class=\"note\">" << (in.training ? "The training log has no finished epoch." : "No training log (log.jsonl) at hand: these are predictions only.")
        << "</p></section>\n";
    return out.str();
  }
  const auto& epochs = *in.training;
  const double last = std::max(2, epochs.back().epoch);
  double low = INFINITY, high = -INFINITY;
  Points train, val, auroc;
  for (const auto& e : epochs) {
    for (const double v : {e.train_loss, e.val_loss})
      if (std::isfinite(v)) low = std::min(low, v), high = std::max(high, v);
    if (std::isfinite(e.train_loss)) train.emplace_back(e.epoch, e.train_loss);
    if (std::isfinite(e.val_loss)) val.emplace_back(e.epoch, e.val_loss);
    if (e.val_mean_auroc) auroc.emplace_back(e.epoch, *e.val_mean_auroc);
  }
  if (!std::isfinite(low)) low = 0, high = 1;
  const double pad = std::max(0.05 * (high - low), 1e-3);
  // Ticks at whole epochs (at most about ten of them); the frame spans half an epoch either side.
  Axis epoch_axis{0.5, last + 0.5, "epoch", 1, {}, 0};
  const int every = static_cast<int>(std::ceil(last / 10));
  for (int e = 1; e <= last; e += every) epoch_axis.tick_values.push_back(e);
  SvgPlot loss(440, 300, epoch_axis, nice_axis(std::max(0.0, low - pad), high + pad, "loss"), "Loss");
  loss.line(train, kBlue, 2, false, "class=\"train-loss\"");
  loss.line(val, kOrange, 2, false, "class=\"val-loss\"");
  for (const auto& [x, y] : train) loss.marker(x, y, kBlue, "epoch " + format_number(x, 0) + ": training loss " + format_number(y, 4));
  for (const auto& [x, y] : val) loss.marker(x, y, kOrange, "epoch " + format_number(x, 0) + ": validation loss " + format_number(y, 4));
  mark_lr_drops(loss, epochs);
  double auroc_low = 1;
  for (const auto& [x, y] : auroc) auroc_low = std::min(auroc_low, y);
  SvgPlot val_auroc(440, 300, epoch_axis, nice_axis(std::max(0.0, auroc_low - 0.02), 1.0, "mean AUROC"),
                    "Validation mean AUROC");
  val_auroc.line(auroc, kGreen, 2, false, "class=\"val-auroc\"");
  for (const auto& [x, y] : auroc) val_auroc.marker(x, y, kGreen, "epoch " + format_number(x, 0) + ": " + format_number(y, 4));
  mark_lr_drops(val_auroc, epochs);
  out << "<p class=\"note\">" << epochs.size() << (epochs.size() == 1 ? " epoch" : " epochs") << " from log.jsonl"
      << (std::any_of(epochs.begin(), epochs.end(), [](const TrainingEpoch& e) { return e.next_lr < e.lr; })
              ? "; red dashed rules: the learning rate was divided after that epoch (validation loss plateau)"
              : "; the learning rate was never divided")
      << ".</p><div class=\"grid\"><figure class=\"plot\">"
      << loss.str() << legend_html({{"training", kBlue}, {"validation", kOrange}}) << "</figure><figure class=\"plot\">" << val_auroc.str() << "</figure></div></section>\n";
  return out.str();
}

}  // namespace chex::report::detail

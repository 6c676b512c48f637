#pragma once
// Small inline-SVG line plots for the HTML report: a frame with ticks and axis labels, polylines,
// markers and vertical rules, in data coordinates. The plot area is the <rect class="frame">; its
// corners are the axes' ranges (x min at its left edge, y min at its bottom edge), and the <svg>
// carries data-x-range and data-y-range, so a test can map drawn coordinates back to data.
#include <string>
#include <utility>
#include <vector>

namespace chex::report {

struct Axis {
  double min = 0, max = 1;
  std::string label;
  int ticks = 5;  // intervals between labelled ticks
  std::vector<double> tick_values = {};  // instead of `ticks` evenly spaced ones, where given
  int tick_digits = -1;  // decimals of the tick labels (-1: as many as the spacing needs)
};

// An axis over [low, high] widened to round ticks: a step of 1, 2 or 5 times a power of ten giving
// about `ticks` intervals, the ends on multiples of it.
Axis nice_axis(double low, double high, const std::string& label, int ticks = 5);

using Points = std::vector<std::pair<double, double>>;

class SvgPlot {
 public:
  // `title` may have a second line after a '\n' (drawn smaller, not bold).
  SvgPlot(int width, int height, Axis x, Axis y, const std::string& title);

  // A polyline through `points`; points closer than a third of a pixel to the last one drawn are
  // skipped (a 25,000-image ROC curve stays a few kilobytes). `attributes` is added to the <path>
  // verbatim (e.g. class and data- attributes).
  void line(const Points& points, const std::string& colour, double width = 2, bool dashed = false,
            const std::string& attributes = "");
  // A filled circle with a tooltip.
  void marker(double x, double y, const std::string& colour, const std::string& tooltip,
              const std::string& attributes = "");
  // A vertical rule across the plot with a small label at its top.
  void vertical_rule(double x, const std::string& colour, const std::string& label);
  std::string str() const;

  double px(double x) const;
  double py(double y) const;

 private:
  int width_, height_;
  Axis x_, y_;
  double left_, top_, plot_width_, plot_height_;
  std::string body_;
};

// Text with &, <, >, " and ' escaped for HTML and SVG.
std::string escape(const std::string& text);
// A number with `digits` decimals ("–" for NaN).
std::string format_number(double value, int digits);
// A legend for under a plot (outside it, so that it never hides data): a short line in each colour
// (dashed where marked) and its label, as HTML.
struct LegendEntry {
  std::string label, colour;
  bool dashed = false;
};
std::string legend_html(const std::vector<LegendEntry>& entries);

}  // namespace chex::report

#include "chex/report/svg.h"

#include <cmath>
#include <cstdio>
#include <sstream>

namespace chex::report {
namespace {

std::string coordinate(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f", v);
  return text;
}

// The axis's tick values and their labels' decimals (as few as the spacing needs).
std::vector<double> tick_values(const Axis& a, int& digits) {
  const double step = (a.max - a.min) / a.ticks;
  digits = a.tick_digits >= 0 ? a.tick_digits
                              : (step >= 1 ? 0 : std::min(4, static_cast<int>(std::ceil(-std::log10(step) - 1e-9))));
  if (!a.tick_values.empty()) return a.tick_values;
  std::vector<double> values;
  for (int i = 0; i <= a.ticks; ++i) values.push_back(a.min + i * step);
  return values;
}

}  // namespace

std::string escape(const std::string& text) {
  std::string out;
  for (const char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string format_number(double value, int digits) {
  if (std::isnan(value)) return "–";
  char text[48];
  std::snprintf(text, sizeof text, "%.*f", digits, value);
  return text;
}

Axis nice_axis(double low, double high, const std::string& label, int ticks) {
  if (!(high > low)) high = low + 1;
  const double rough = (high - low) / ticks, power = std::pow(10.0, std::floor(std::log10(rough)));
  double step = 10 * power;
  for (const double m : {1.0, 2.0, 5.0})
    if (m * power >= rough) {
      step = m * power;
      break;
    }
  Axis axis;
  axis.min = std::floor(low / step + 1e-9) * step;
  axis.max = std::ceil(high / step - 1e-9) * step;
  axis.ticks = std::max(1, static_cast<int>(std::lround((axis.max - axis.min) / step)));
  axis.label = label;
  axis.tick_digits = std::max(0, static_cast<int>(-std::floor(std::log10(step) + 1e-9)));
  return axis;
}

std::string legend_html(const std::vector<LegendEntry>& entries) {
  std::string html = "<figcaption class=\"legend\">";
  for (const LegendEntry& e : entries)
    html += "<span><svg width=\"22\" height=\"8\" aria-hidden=\"true\"><line x1=\"0\" y1=\"4\" x2=\"22\" y2=\"4\" stroke=\"" +
            e.colour + "\" stroke-width=\"2\"" + (e.dashed ? " stroke-dasharray=\"4 3\"" : "") + "/></svg> " +
            escape(e.label) + "</span>";
  return html + "</figcaption>";
}

SvgPlot::SvgPlot(int width, int height, Axis x, Axis y, const std::string& title)
    : width_(width), height_(height), x_(std::move(x)), y_(std::move(y)) {
  // A title of two lines ("name\nnumbers"): the second in plain type.
  const std::size_t newline = title.find('\n');
  left_ = 46;
  top_ = newline == std::string::npos ? 26 : 38;
  plot_width_ = width - left_ - 12;
  plot_height_ = height - top_ - 40;
  std::ostringstream b;
  b << "<text x=\"" << width / 2 << "\" y=\"15\" text-anchor=\"middle\" class=\"plot-title\">"
    << escape(title.substr(0, newline)) << "</text>\n";
  if (newline != std::string::npos)
    b << "<text x=\"" << width / 2 << "\" y=\"29\" text-anchor=\"middle\" class=\"plot-subtitle\">"
      << escape(title.substr(newline + 1)) << "</text>\n";
  int digits = 0;
  for (const double v : tick_values(x_, digits)) {
    b << "<line class=\"grid\" x1=\"" << coordinate(px(v)) << "\" y1=\"" << coordinate(top_) << "\" x2=\""
      << coordinate(px(v)) << "\" y2=\"" << coordinate(top_ + plot_height_) << "\"/>"
      << "<text x=\"" << coordinate(px(v)) << "\" y=\"" << coordinate(top_ + plot_height_ + 14)
      << "\" text-anchor=\"middle\" class=\"tick\">" << format_number(v, digits) << "</text>\n";
  }
  for (const double v : tick_values(y_, digits)) {
    b << "<line class=\"grid\" x1=\"" << coordinate(left_) << "\" y1=\"" << coordinate(py(v)) << "\" x2=\""
      << coordinate(left_ + plot_width_) << "\" y2=\"" << coordinate(py(v)) << "\"/>"
      << "<text x=\"" << coordinate(left_ - 4) << "\" y=\"" << coordinate(py(v) + 4)
      << "\" text-anchor=\"end\" class=\"tick\">" << format_number(v, digits) << "</text>\n";
  }
  b << "<text x=\"" << coordinate(left_ + plot_width_ / 2) << "\" y=\"" << height - 6
    << "\" text-anchor=\"middle\" class=\"axis-label\">" << escape(x_.label) << "</text>\n";
  b << "<text transform=\"translate(12 " << coordinate(top_ + plot_height_ / 2)
    << ") rotate(-90)\" text-anchor=\"middle\" class=\"axis-label\">" << escape(y_.label) << "</text>\n";
  body_ = b.str();
}

double SvgPlot::px(double x) const { return left_ + (x - x_.min) / (x_.max - x_.min) * plot_width_; }
double SvgPlot::py(double y) const { return top_ + plot_height_ - (y - y_.min) / (y_.max - y_.min) * plot_height_; }

void SvgPlot::line(const Points& points, const std::string& colour, double width, bool dashed,
                   const std::string& attributes) {
  if (points.empty()) return;
  std::string d;
  double last_x = 0, last_y = 0;
  for (std::size_t i = 0; i < points.size(); ++i) {
    const double x = px(points[i].first), y = py(points[i].second);
    const bool far = std::hypot(x - last_x, y - last_y) >= 1.0 / 3.0;
    if (i == 0 || i + 1 == points.size() || far) {
      d += (i == 0 ? "M" : " L") + coordinate(x) + " " + coordinate(y);
      last_x = x;
      last_y = y;
    }
  }
  body_ += "<path d=\"" + d + "\" fill=\"none\" stroke=\"" + colour + "\" stroke-width=\"" + coordinate(width) + "\"" +
           (dashed ? " stroke-dasharray=\"5 4\"" : "") + (attributes.empty() ? "" : " " + attributes) + "/>\n";
}

void SvgPlot::marker(double x, double y, const std::string& colour, const std::string& tooltip,
                     const std::string& attributes) {
  body_ += "<circle cx=\"" + coordinate(px(x)) + "\" cy=\"" + coordinate(py(y)) + "\" r=\"5\" fill=\"" + colour +
           "\" stroke=\"#fff\" stroke-width=\"1.5\"" + (attributes.empty() ? "" : " " + attributes) + "><title>" +
           escape(tooltip) + "</title></circle>\n";
}

void SvgPlot::vertical_rule(double x, const std::string& colour, const std::string& label) {
  body_ += "<line x1=\"" + coordinate(px(x)) + "\" y1=\"" + coordinate(top_) + "\" x2=\"" + coordinate(px(x)) +
           "\" y2=\"" + coordinate(top_ + plot_height_) + "\" stroke=\"" + colour +
           "\" stroke-width=\"1.5\" stroke-dasharray=\"3 3\"/><text x=\"" + coordinate(px(x) + 3) + "\" y=\"" +
           coordinate(top_ + 10) + "\" class=\"tick\" fill=\"" + colour + "\">" + escape(label) + "</text>\n";
}

std::string SvgPlot::str() const {
  std::ostringstream out;
  out.precision(17);
  out << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width_ << "\" height=\"" << height_
      << "\" viewBox=\"0 0 " << width_ << " " << height_ << "\" data-x-range=\"" << x_.min << " " << x_.max
      << "\" data-y-range=\"" << y_.min << " " << y_.max << "\" role=\"img\">\n"
      << "<rect class=\"frame\" x=\"" << coordinate(left_) << "\" y=\"" << coordinate(top_) << "\" width=\""
      << coordinate(plot_width_) << "\" height=\"" << coordinate(plot_height_) << "\" fill=\"#fff\" stroke=\"#888\"/>\n"
      << body_ << "</svg>";
  return out.str();
}

}  // namespace chex::report

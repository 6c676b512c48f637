#include "models/cam_overlay.h"

#include <algorithm>
#include <cctype>
#include <cmath>

#include "chex/error.h"

namespace chex::models {
namespace {

// A 5 x 7 bitmap font, drawn for this file: '#' is ink. One glyph per character it supports.
struct Glyph {
  char c;
  const char* rows[7];
};
constexpr Glyph kFont[] = {
    {'A', {".###.", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"}},
    {'B', {"####.", "#...#", "#...#", "####.", "#...#", "#...#", "####."}},
    {'C', {".###.", "#...#", "#....", "#....", "#....", "#...#", ".###."}},
    {'D', {"####.", "#...#", "#...#", "#...#", "#...#", "#...#", "####."}},
    {'E', {"#####", "#....", "#....", "####.", "#....", "#....", "#####"}},
    {'F', {"#####", "#....", "#....", "####.", "#....", "#....", "#...."}},
    {'G', {".###.", "#...#", "#....", "#.###", "#...#", "#...#", ".####"}},
    {'H', {"#...#", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"}},
    {'I', {".###.", "..#..", "..#..", "..#..", "..#..", "..#..", ".###."}},
    {'J', {"..###", "...#.", "...#.", "...#.", "...#.", "#..#.", ".##.."}},
    {'K', {"#...#", "#..#.", "#.#..", "##...", "#.#..", "#..#.", "#...#"}},
    {'L', {"#....", "#....", "#....", "#....", "#....", "#....", "#####"}},
    {'M', {"#...#", "##.##", "#.#.#", "#.#.#", "#...#", "#...#", "#...#"}},
    {'N', {"#...#", "#...#", "##..#", "#.#.#", "#..##", "#...#", "#...#"}},
    {'O', {".###.", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."}},
    {'P', {"####.", "#...#", "#...#", "####.", "#....", "#....", "#...."}},
    {'Q', {".###.", "#...#", "#...#", "#...#", "#.#.#", "#..#.", ".##.#"}},
    {'R', {"####.", "#...#", "#...#", "####.", "#.#..", "#..#.", "#...#"}},
    {'S', {".####", "#....", "#....", ".###.", "....#", "....#", "####."}},
    {'T', {"#####", "..#..", "..#..", "..#..", "..#..", "..#..", "..#.."}},
    {'U', {"#...#", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."}},
    {'V', {"#...#", "#...#", "#...#", "#...#", "#...#", ".#.#.", "..#.."}},
    {'W', {"#...#", "#...#", "#...#", "#.#.#", "#.#.#", "#.#.#", ".#.#."}},
    {'X', {"#...#", "#...#", ".#.#.", "..#..", ".#.#.", "#...#", "#...#"}},
    {'Y', {"#...#", "#...#", ".#.#.", "..#..", "..#..", "..#..", "..#.."}},
    {'Z', {"#####", "....#", "...#.", "..#..", ".#...", "#....", "#####"}},
    {'0', {".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###."}},
    {'1', {"..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."}},
    {'2', {".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####"}},
    {'3', {"#####", "...#.", "..#..", "...#.", "....#", "#...#", ".###."}},
    {'4', {"...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#."}},
    {'5', {"#####", "#....", "####.", "....#", "....#", "#...#", ".###."}},
    {'6', {"..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###."}},
    {'7', {"#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..."}},
    {'8', {".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###."}},
    {'9', {".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##.."}},
    {' ', {".....", ".....", ".....", ".....", ".....", ".....", "....."}},
    {'_', {".....", ".....", ".....", ".....", ".....", ".....", "#####"}},
    {'.', {".....", ".....", ".....", ".....", ".....", ".##..", ".##.."}},
    {':', {".....", ".##..", ".##..", ".....", ".##..", ".##..", "....."}},
    {'%', {"##...", "##..#", "...#.", "..#..", ".#...", "#..##", "...##"}},
    {'(', {"...#.", "..#..", ".#...", ".#...", ".#...", "..#..", "...#."}},
    {')', {".#...", "..#..", "...#.", "...#.", "...#.", "..#..", ".#..."}},
    {'-', {".....", ".....", ".....", "#####", ".....", ".....", "....."}},
    {'?', {".###.", "#...#", "....#", "...#.", "..#..", ".....", "..#.."}},
};
constexpr int kGlyphWidth = 5, kGlyphHeight = 7, kAdvance = 6;  // one blank column between letters

const Glyph& glyph(char c) {
  const char upper = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (const Glyph& g : kFont)
    if (g.c == upper) return g;
  return kFont[std::size(kFont) - 1];  // '?'
}

void fill_rect(data::Image& image, int x0, int y0, int x1, int y1, Rgb colour) {
  x0 = std::max(x0, 0), y0 = std::max(y0, 0), x1 = std::min(x1, image.width), y1 = std::min(y1, image.height);
  for (int y = y0; y < y1; ++y)
    for (int x = x0; x < x1; ++x)
      for (int c = 0; c < 3; ++c) image.row(y)[x * 3 + c] = colour[static_cast<size_t>(c)];
}

}  // namespace

Rgb viridis(float t) {
  // Five of viridis's colours at 0, 1/4, 1/2, 3/4 and 1: #440154 #3b528b #21918c #5ec962 #fde725.
  static constexpr float kAnchors[5][3] = {
      {0x44, 0x01, 0x54}, {0x3b, 0x52, 0x8b}, {0x21, 0x91, 0x8c}, {0x5e, 0xc9, 0x62}, {0xfd, 0xe7, 0x25}};
  t = std::isfinite(t) ? std::clamp(t, 0.f, 1.f) : 0.f;
  const float s = t * 4.f;
  const int i = std::min(static_cast<int>(s), 3);
  const float f = s - static_cast<float>(i);
  Rgb out{};
  for (int c = 0; c < 3; ++c)
    out[static_cast<size_t>(c)] =
        static_cast<uint8_t>(std::lround((1.f - f) * kAnchors[i][c] + f * kAnchors[i + 1][c]));
  return out;
}

int text_width(const std::string& text, int scale) {
  return text.empty() ? 0 : (static_cast<int>(text.size()) * kAdvance - 1) * scale;
}

void draw_text(data::Image& image, int x, int y, int scale, const std::string& text, Rgb colour) {
  CHEX_CHECK(scale >= 1, "draw_text: scale ", scale);
  const int margin = 2 * scale;
  fill_rect(image, x - margin, y - margin, x + text_width(text, scale) + margin, y + kGlyphHeight * scale + margin,
            {0, 0, 0});
  for (size_t i = 0; i < text.size(); ++i) {
    const Glyph& g = glyph(text[i]);
    const int left = x + static_cast<int>(i) * kAdvance * scale;
    for (int r = 0; r < kGlyphHeight; ++r)
      for (int col = 0; col < kGlyphWidth; ++col)
        if (g.rows[r][col] == '#')
          fill_rect(image, left + col * scale, y + r * scale, left + (col + 1) * scale, y + (r + 1) * scale, colour);
  }
}

void draw_box_outline(data::Image& image, const Box& box, int thickness, Rgb colour) {
  const int x0 = static_cast<int>(std::floor(box.x)), y0 = static_cast<int>(std::floor(box.y));
  const int x1 = static_cast<int>(std::ceil(box.x + box.w)), y1 = static_cast<int>(std::ceil(box.y + box.h));
  fill_rect(image, x0, y0, x1, y0 + thickness, colour);
  fill_rect(image, x0, y1 - thickness, x1, y1, colour);
  fill_rect(image, x0, y0, x0 + thickness, y1, colour);
  fill_rect(image, x1 - thickness, y0, x1, y1, colour);
}

data::Image render_cam_overlay(const data::Image& radiograph, const Heatmap& heatmap, const std::string& caption,
                               const Box* box, float max_alpha) {
  CHEX_CHECK(heatmap.width == radiograph.width && heatmap.height == radiograph.height &&
                 heatmap.values.size() == static_cast<size_t>(heatmap.width) * heatmap.height,
             "render_cam_overlay: a ", heatmap.width, " x ", heatmap.height, " heatmap over a ", radiograph.width,
             " x ", radiograph.height, " image");
  data::Image out = data::make_image(radiograph.width, radiograph.height);
  const auto [lo_it, hi_it] = std::minmax_element(heatmap.values.begin(), heatmap.values.end());
  const float lo = *lo_it, range = *hi_it - *lo_it;
  for (int y = 0; y < out.height; ++y) {
    const uint8_t* in = radiograph.row(y);
    uint8_t* px = out.row(y);
    for (int x = 0; x < out.width; ++x) {
      const float grey = (in[x * 3] + in[x * 3 + 1] + in[x * 3 + 2]) / 3.f;
      const float t = range > 0 ? (heatmap.at(x, y) - lo) / range : 0.f;
      const Rgb colour = viridis(t);
      const float alpha = max_alpha * t;
      for (int c = 0; c < 3; ++c)
        px[x * 3 + c] =
            static_cast<uint8_t>(std::lround((1.f - alpha) * grey + alpha * colour[static_cast<size_t>(c)]));
    }
  }
  // Sizes relative to the image: readable on a 256-pixel demo image and on a 3000-pixel radiograph.
  const int shorter = std::min(out.width, out.height);
  if (box != nullptr) draw_box_outline(out, *box, std::clamp(shorter / 256, 2, 4), {255, 64, 64});
  const int scale = std::max(1, shorter / 200);
  draw_text(out, 3 * scale, 3 * scale, scale, caption, {255, 255, 255});
  return out;
}

}  // namespace chex::models

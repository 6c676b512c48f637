#pragma once
// CAM overlays: the grey radiograph with a heatmap in a perceptual colour map blended over it, a
// caption (class and probability) in a small bitmap font, and the predicted box outlined.
#include <array>
#include <cstdint>
#include <string>

#include "chex/data/image.h"
#include "models/cam.h"

namespace chex::models {

using Rgb = std::array<uint8_t, 3>;

// Viridis-like: linear interpolation between five of viridis's colours (dark purple, blue, teal,
// green, yellow); t in [0, 1], clamped. Perceptually ordered, readable in greyscale and by most
// colour-blind readers.
Rgb viridis(float t);

// Draws `text` with its top-left corner at (x, y), each font pixel a `scale` x `scale` square, on a
// dark rectangle so that it reads over any background. Letters are drawn upper-case; characters
// the font lacks (it has A-Z, 0-9 and " _.:%()-") are drawn as '?'. Clipped to the image.
void draw_text(data::Image& image, int x, int y, int scale, const std::string& text, Rgb colour);
// The width in pixels draw_text uses for `text` (without the backing margin).
int text_width(const std::string& text, int scale);
// A rectangle's outline, `thickness` pixels inside the box, clipped to the image.
void draw_box_outline(data::Image& image, const Box& box, int thickness, Rgb colour);

// The overlay at the radiograph's size: each pixel's grey (the mean of R, G, B) blended with the
// colour of the heatmap scaled to 0..1, with opacity growing with the heat (up to `max_alpha`), so
// that the cold parts show the radiograph. `heatmap` must have the radiograph's size. `box` is
// outlined when given.
data::Image render_cam_overlay(const data::Image& radiograph, const Heatmap& heatmap, const std::string& caption,
                               const Box* box, float max_alpha = 0.6f);

}  // namespace chex::models

#pragma once
/// Image outputs: a grid of a batch of images (GAN samples, predictions) and boxes with labels
/// drawn on a picture (the multi-digit reader's debug image), saved as PNG with Cairo.
///
///   utils::save_image_grid("samples.png", fake.view({64, 1, 28, 28}), 8);   // values in [0, 1]
///   utils::GridOptions o;  o.value_range = {{-1, 1}};  o.labels = names;    // tanh output, labels
///   utils::save_image_grid("pred.png", x, o);
///   utils::draw_boxes("debug.png", rgb, w, h, {{10, 20, 40, 60, "7 (0.99)"}});
///
/// Needs Cairo (<cairo.h>, link -lcairo / `ember::cairo`); not part of ember.hpp.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ember/core/error.hpp"
#include "ember/core/tensor.hpp"
#include "ember/ops/factory.hpp"
#include "ember/utils/canvas.hpp"
#include "ember/utils/metrics.hpp"

namespace ember::utils {

/// How save_image_grid / make_grid lay out and map a batch. Defaults follow torchvision's
/// make_grid (8 per row, 2 px of black padding, values taken as [0, 1]).
struct GridOptions {
  int nrow = 8;                                     ///< images per row
  int padding = 2;                                  ///< pixels between and around images
  double pad_value = 0.0;                           ///< grey level of the padding, in [0, 1]
  bool normalize = false;                           ///< map the batch's min..max to 0..1
  std::optional<std::pair<double, double>> value_range;  ///< map lo..hi to 0..1 (e.g. {-1, 1})
  int scale = 0;                                    ///< integer upscaling; 0: auto (small images get bigger)
  std::vector<std::string> labels;                  ///< optional text under each image
  std::vector<Color> label_colors;                  ///< optional colour per label (e.g. red = wrong)
};

namespace detail {

// The batch as host floats mapped to [0, 1], with its shape (N, C, H, W).
struct HostBatch {
  std::vector<float> v;
  int64_t n, c, h, w;
};

inline HostBatch host_batch(const Tensor& images, const GridOptions& o, const char* op) {
  EMBER_CHECK(images.dim() == 4 || images.dim() == 3, op, ": expected images [N, C, H, W] or [N, H, W], got ",
              images.sizes());
  HostBatch b;
  b.n = images.size(0);
  b.c = images.dim() == 4 ? images.size(1) : 1;
  b.h = images.size(-2);
  b.w = images.size(-1);
  EMBER_CHECK(b.c == 1 || b.c == 3, op, ": images must have 1 or 3 channels, got ", b.c, " (shape ", images.sizes(),
              ")");
  EMBER_CHECK(b.n > 0 && b.h > 0 && b.w > 0, op, ": empty batch ", images.sizes());
  EMBER_CHECK(o.nrow > 0 && o.padding >= 0, op, ": nrow must be positive and padding non-negative");
  b.v = to_vector<float>(images);
  double lo = 0, hi = 1;
  if (o.value_range) {
    std::tie(lo, hi) = *o.value_range;
  } else if (o.normalize) {
    auto [mn, mx] = std::minmax_element(b.v.begin(), b.v.end());
    lo = *mn;
    hi = *mx;
  }
  double span = hi > lo ? hi - lo : 1.0;
  for (float& x : b.v) x = static_cast<float>(std::clamp((x - lo) / span, 0.0, 1.0));
  return b;
}

inline uint8_t to_byte(double v) { return static_cast<uint8_t>(std::lround(std::clamp(v, 0.0, 1.0) * 255.0)); }

}  // namespace detail

/// Tiles a batch [N, C, H, W] (C = 1 or 3) into one float image [C, H', W'] in [0, 1], like
/// torchvision.utils.make_grid: `nrow` images per row, `padding` pixels of `pad_value` between
/// and around them.
inline Tensor make_grid(const Tensor& images, const GridOptions& o = {}) {
  auto b = detail::host_batch(images, o, "make_grid");
  int64_t cols = std::min<int64_t>(o.nrow, b.n), rows = (b.n + cols - 1) / cols, p = o.padding;
  int64_t gh = rows * (b.h + p) + p, gw = cols * (b.w + p) + p;
  std::vector<float> g(static_cast<size_t>(b.c * gh * gw), static_cast<float>(o.pad_value));
  for (int64_t i = 0; i < b.n; ++i) {
    int64_t y0 = p + (i / cols) * (b.h + p), x0 = p + (i % cols) * (b.w + p);
    for (int64_t c = 0; c < b.c; ++c) {
      for (int64_t y = 0; y < b.h; ++y) {
        const float* src = &b.v[static_cast<size_t>(((i * b.c + c) * b.h + y) * b.w)];
        std::copy(src, src + b.w, &g[static_cast<size_t>((c * gh + y0 + y) * gw + x0)]);
      }
    }
  }
  return tensor<float>(g, Shape{b.c, gh, gw});
}

/// Saves a batch [N, C, H, W] as a PNG grid (see GridOptions), with optional labels under the
/// images. Layout: image i sits at column i % nrow, row i / nrow; with scale s and a label strip
/// of height L, the PNG is (pad + cols*(W*s + pad)) × (pad + rows*(H*s + L + pad)).
inline void save_image_grid(const std::filesystem::path& path, const Tensor& images, const GridOptions& o) {
  auto b = detail::host_batch(images, o, "save_image_grid");
  EMBER_CHECK(o.labels.empty() || static_cast<int64_t>(o.labels.size()) == b.n, "save_image_grid: ", o.labels.size(),
              " labels for ", b.n, " images");
  int64_t s = o.scale > 0 ? o.scale : std::max<int64_t>(1, 64 / std::max(b.h, b.w));
  int64_t cols = std::min<int64_t>(o.nrow, b.n), rows = (b.n + cols - 1) / cols, p = o.padding;
  int64_t cw = b.w * s, ch = b.h * s;
  double fs = std::clamp(static_cast<double>(cw) * 0.2, 9.0, 16.0);
  int64_t lh = o.labels.empty() ? 0 : static_cast<int64_t>(std::ceil(fs * 1.5));
  int64_t gw = p + cols * (cw + p), gh = p + rows * (ch + lh + p);
  EMBER_CHECK(gw <= 32767 && gh <= 32767, "save_image_grid: a ", gw, "x", gh,
              " grid is too large for a PNG canvas; use fewer images or a smaller scale");

  // Pixels first (exact bytes), then the text over the label strips.
  uint8_t pad = detail::to_byte(o.pad_value);
  std::vector<uint8_t> rgb(static_cast<size_t>(gw * gh * 3), pad);
  for (int64_t i = 0; i < b.n; ++i) {
    int64_t y0 = p + (i / cols) * (ch + lh + p), x0 = p + (i % cols) * (cw + p);
    for (int64_t y = 0; y < ch; ++y) {
      for (int64_t x = 0; x < cw; ++x) {
        uint8_t* dst = &rgb[static_cast<size_t>(((y0 + y) * gw + x0 + x) * 3)];
        for (int64_t k = 0; k < 3; ++k) {
          int64_t c = b.c == 1 ? 0 : k;
          dst[k] = detail::to_byte(b.v[static_cast<size_t>(((i * b.c + c) * b.h + y / s) * b.w + x / s)]);
        }
      }
    }
  }
  Canvas canvas(static_cast<int>(gw), static_cast<int>(gh));
  canvas.put_pixels(rgb.data(), static_cast<int>(gw), static_cast<int>(gh), 3);
  Color text = o.pad_value < 0.5 ? kWhite : kBlack;
  for (size_t i = 0; i < o.labels.size(); ++i) {
    auto ii = static_cast<int64_t>(i);
    double cx = static_cast<double>(p + (ii % cols) * (cw + p)) + static_cast<double>(cw) / 2;
    double cy = static_cast<double>(p + (ii / cols) * (ch + lh + p) + ch) + static_cast<double>(lh) / 2;
    Font f{fs};
    double tw = text_width(canvas.cr(), o.labels[i], f);
    if (tw > static_cast<double>(cw + p)) f.size = std::max(6.0, f.size * static_cast<double>(cw + p) / tw);
    draw_text(canvas.cr(), cx, cy, o.labels[i], f, i < o.label_colors.size() ? o.label_colors[i] : text, HAlign::Center,
              VAlign::Middle);
  }
  canvas.save_png(path);
}

/// Same with the common arguments spelled out (torchvision's save_image(x, path, nrow, padding)).
inline void save_image_grid(const std::filesystem::path& path, const Tensor& images, int nrow = 8, int padding = 2,
                            std::vector<std::string> labels = {}) {
  GridOptions o;
  o.nrow = nrow;
  o.padding = padding;
  o.labels = std::move(labels);
  save_image_grid(path, images, o);
}

/// A rectangle with a caption, in pixel coordinates of the image it is drawn on.
struct Box {
  double x = 0, y = 0, w = 0, h = 0;
  std::string label;
  std::optional<Color> color;  ///< unset: matplotlib's colour cycle by box index
};

/// Options of draw_boxes; zero sizes scale with the image (a 2000×1500 photo gets thicker lines
/// and bigger text than a 300×100 crop).
struct BoxOptions {
  double line_width = 0;
  double font_size = 0;
  std::string title;  ///< optional banner at the top-left, e.g. the digits read: "1234"
};

/// Draws `boxes` (outline + label on a filled tab above the box, or inside it at the top edge)
/// on an 8-bit image (row-major; channels 1 grey, 3 RGB or 4 RGBA over white) and saves a PNG.
inline void draw_boxes(const std::filesystem::path& path, const std::vector<uint8_t>& pixels, int width, int height,
                       const std::vector<Box>& boxes, int channels = 3, const BoxOptions& opts = {}) {
  EMBER_CHECK(width > 0 && height > 0 && (channels == 1 || channels == 3 || channels == 4) &&
                  pixels.size() == static_cast<size_t>(width) * height * channels,
              "draw_boxes: buffer of ", pixels.size(), " bytes does not hold a ", width, "x", height, "x", channels,
              " image");
  Canvas canvas(width, height);
  canvas.put_pixels(pixels.data(), width, height, channels);
  cairo_t* cr = canvas.cr();
  double side = std::min(width, height);
  double lw = opts.line_width > 0 ? opts.line_width : std::max(2.0, side / 250.0);
  double fs = opts.font_size > 0 ? opts.font_size : std::clamp(side / 25.0, 10.0, 64.0);
  for (size_t i = 0; i < boxes.size(); ++i) {
    const Box& bx = boxes[i];
    // Strong colours that stand out on paper, red first.
    static constexpr size_t kOrder[] = {3, 0, 2, 1, 4, 6, 9};
    Color c = bx.color.value_or(palette(kOrder[i % std::size(kOrder)]));
    set_color(cr, c);
    cairo_set_line_width(cr, lw);
    cairo_rectangle(cr, bx.x, bx.y, bx.w, bx.h);
    cairo_stroke(cr);
    if (bx.label.empty()) continue;
    Font f{fs, true};
    double tw = text_width(cr, bx.label, f), th = fs * 1.3;
    double tx = bx.x - lw / 2, ty = bx.y - lw / 2 - th;
    if (ty < 0) ty = bx.y + lw / 2;                       // no room above: inside the top edge
    tx = std::clamp(tx, 0.0, std::max(0.0, width - tw - fs * 0.6));
    cairo_rectangle(cr, tx, ty, tw + fs * 0.6, th);
    set_color(cr, c);
    cairo_fill(cr);
    draw_text(cr, tx + fs * 0.3, ty + th / 2, bx.label, f, c.luminance() < 0.6 ? kWhite : kBlack, HAlign::Left,
              VAlign::Middle);
  }
  if (!opts.title.empty()) {
    Font f{fs * 1.2, true};
    double tw = text_width(cr, opts.title, f), th = f.size * 1.5;
    cairo_rectangle(cr, 0, 0, tw + f.size, th);
    set_color(cr, Color{0, 0, 0, 0.7});
    cairo_fill(cr);
    draw_text(cr, f.size / 2, th / 2, opts.title, f, kWhite, HAlign::Left, VAlign::Middle);
  }
  canvas.save_png(path);
}

}  // namespace ember::utils

#pragma once
// Test data for test_vision.cpp: digit images (real MNIST test digits when the data set is on
// this machine, synthetic pen-like strokes otherwise), strings of digits composed from them with
// known boxes, rendered in several styles (clean paper, light on dark, low-contrast grey paper,
// a photo-like gradient with a shadow), and a synthetic 2000 x 1500 "phone photo".
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "ember/vision/vision.hpp"

namespace vision_data {

using ember::vision::Box;
using ember::vision::GrayImage;

// Portable uniform numbers (std:: distributions differ between standard libraries).
struct Rng {
  std::mt19937 gen;
  explicit Rng(uint32_t seed) : gen(seed) {}
  double uniform(double a = 0.0, double b = 1.0) { return a + (b - a) * (gen() / 4294967296.0); }
  int integer(int a, int b) { return a + static_cast<int>(uniform() * (b - a + 1)) % (b - a + 1); }
  double normal() {  // Box-Muller
    double u1 = std::max(uniform(), 1e-12), u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
};

// A digit image: ink in [0,1] (1 = ink), any size, with its label.
struct Digit {
  GrayImage ink;
  int label = 0;
};

// ---- MNIST test digits (optional) -------------------------------------------------------------

// Where the MNIST data set lives on these machines, relative to the source tree or the cwd.
inline std::string mnist_dir() {
  std::vector<std::string> dirs;
#ifdef EMBER_SOURCE_DIR
  dirs.push_back(std::string(EMBER_SOURCE_DIR) + "/../shared/data/mnist");
#endif
  dirs.push_back("../shared/data/mnist");
  dirs.push_back("/work/shared/data/mnist");
  for (const auto& d : dirs)
    if (std::ifstream(d + "/t10k-images-idx3-ubyte.gz").good()) return d;
  return "";
}

// Reads a gzipped file through `gzip -dc` (the test binary does not link zlib).
inline std::vector<uint8_t> gunzip(const std::string& path) {
  std::vector<uint8_t> out;
  std::string cmd = "gzip -dc '" + path + "' 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  uint8_t buf[1 << 16];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.insert(out.end(), buf, buf + n);
  pclose(p);
  return out;
}

inline uint32_t be32(const uint8_t* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}

// The first `count` MNIST test digits (28 x 28, ink = pixel / 255), or {} when unavailable.
inline std::vector<Digit> load_mnist_test(int count) {
  std::vector<Digit> out;
  const std::string dir = mnist_dir();
  if (dir.empty()) return out;
  auto imgs = gunzip(dir + "/t10k-images-idx3-ubyte.gz");
  auto labs = gunzip(dir + "/t10k-labels-idx1-ubyte.gz");
  if (imgs.size() < 16 || labs.size() < 8 || be32(imgs.data()) != 2051 || be32(labs.data()) != 2049) return out;
  const int n = static_cast<int>(std::min<uint32_t>(be32(imgs.data() + 4), be32(labs.data() + 4)));
  if (imgs.size() < 16 + size_t(n) * 784 || labs.size() < 8 + size_t(n)) return out;
  for (int i = 0; i < std::min(n, count); ++i) {
    Digit d{GrayImage(28, 28), labs[8 + i]};
    for (int k = 0; k < 784; ++k) d.ink.data[k] = imgs[16 + size_t(i) * 784 + k] / 255.f;
    out.push_back(std::move(d));
  }
  return out;
}

// ---- synthetic pen strokes ----------------------------------------------------------------------

using Polyline = std::vector<std::array<double, 2>>;

// Each digit as polylines in a unit box (x right, y down).
inline std::vector<Polyline> digit_strokes(int d) {
  auto ellipse = [](double cx, double cy, double rx, double ry, double t0 = 0, double t1 = 6.2832) {
    Polyline p;
    for (int k = 0; k <= 24; ++k) {
      double t = t0 + (t1 - t0) * k / 24;
      p.push_back({cx + rx * std::cos(t), cy + ry * std::sin(t)});
    }
    return p;
  };
  switch (d) {
    case 0: return {ellipse(0.5, 0.5, 0.42, 0.49)};
    case 1: return {{{0.3, 0.22}, {0.6, 0.0}, {0.6, 1.0}}};
    case 2: return {{{0.1, 0.25}, {0.25, 0.05}, {0.5, 0.0}, {0.75, 0.05}, {0.9, 0.25}, {0.85, 0.45}, {0.05, 1.0}, {0.95, 1.0}}};
    case 3: return {{{0.1, 0.1}, {0.4, 0.0}, {0.8, 0.05}, {0.85, 0.25}, {0.45, 0.45}, {0.9, 0.65}, {0.85, 0.9}, {0.5, 1.0}, {0.1, 0.9}}};
    case 4: return {{{0.7, 1.0}, {0.7, 0.0}, {0.05, 0.7}, {0.95, 0.7}}};
    case 5: return {{{0.9, 0.0}, {0.15, 0.0}, {0.1, 0.45}, {0.5, 0.38}, {0.85, 0.55}, {0.88, 0.8}, {0.6, 1.0}, {0.1, 0.92}}};
    case 6: return {{{0.8, 0.05}, {0.5, 0.0}, {0.2, 0.25}, {0.1, 0.65}, {0.25, 0.95}, {0.6, 1.0}, {0.85, 0.8}, {0.75, 0.55}, {0.4, 0.5}, {0.15, 0.65}}};
    case 7: return {{{0.05, 0.0}, {0.95, 0.0}, {0.4, 1.0}}};
    case 8: return {ellipse(0.5, 0.26, 0.32, 0.25), ellipse(0.5, 0.74, 0.4, 0.26)};
    default: return {ellipse(0.5, 0.3, 0.38, 0.29), {{0.88, 0.3}, {0.8, 1.0}}};
  }
}

// Draws anti-aliased thick polylines into `ink` (max-composited): `width` is the pen width in px.
inline void draw_polyline(GrayImage& ink, const Polyline& pts, double width) {
  const double r = width / 2;
  for (size_t k = 0; k + 1 < pts.size(); ++k) {
    const double ax = pts[k][0], ay = pts[k][1], bx = pts[k + 1][0], by = pts[k + 1][1];
    const int x0 = std::max(0, int(std::floor(std::min(ax, bx) - r - 1))), x1 = std::min(ink.width - 1, int(std::ceil(std::max(ax, bx) + r + 1)));
    const int y0 = std::max(0, int(std::floor(std::min(ay, by) - r - 1))), y1 = std::min(ink.height - 1, int(std::ceil(std::max(ay, by) + r + 1)));
    const double dx = bx - ax, dy = by - ay, len2 = std::max(dx * dx + dy * dy, 1e-12);
    for (int y = y0; y <= y1; ++y)
      for (int x = x0; x <= x1; ++x) {
        const double px = x + 0.5, py = y + 0.5;
        const double t = std::clamp(((px - ax) * dx + (py - ay) * dy) / len2, 0.0, 1.0);
        const double d = std::hypot(px - ax - t * dx, py - ay - t * dy);
        const float cov = float(std::clamp(r + 0.5 - d, 0.0, 1.0));
        ink(x, y) = std::max(ink(x, y), cov);
      }
  }
}

// Draws digit `d` with its box at (x, y), size w x h, jittering the control points like a hand.
inline void draw_digit(GrayImage& ink, int d, double x, double y, double w, double h, double pen, Rng& rng,
                       double jitter = 0.04) {
  for (auto line : digit_strokes(d)) {
    for (auto& p : line) {
      p[0] = x + w * std::clamp(p[0] + jitter * rng.normal(), 0.0, 1.0);
      p[1] = y + h * std::clamp(p[1] + jitter * rng.normal(), 0.0, 1.0);
    }
    draw_polyline(ink, line, pen);
  }
}

// Synthetic stand-ins for MNIST test digits: 28 x 28, ~20 px tall, pen 2.5 px.
inline std::vector<Digit> synthetic_digits(int count, uint32_t seed) {
  Rng rng(seed);
  std::vector<Digit> out;
  for (int i = 0; i < count; ++i) {
    Digit dg{GrayImage(28, 28), i % 10};
    draw_digit(dg.ink, dg.label, 8 + rng.uniform(-1, 1), 4, 12 + rng.uniform(-1, 1), 20, 2.5, rng);
    out.push_back(std::move(dg));
  }
  return out;
}

// MNIST when present, synthetic otherwise; `real` tells which.
inline std::vector<Digit> digit_source(int count, bool& real) {
  auto d = load_mnist_test(count);
  real = !d.empty();
  return real ? d : synthetic_digits(count, 7);
}

// ---- transforms and composition -----------------------------------------------------------------

// Bounding box of the pixels with ink > thr.
inline Box ink_box(const GrayImage& ink, float thr = 0.3f) {
  Box b{ink.width, ink.height, 0, 0};
  for (int y = 0; y < ink.height; ++y)
    for (int x = 0; x < ink.width; ++x)
      if (ink(x, y) > thr) b.x0 = std::min(b.x0, x), b.y0 = std::min(b.y0, y), b.x1 = std::max(b.x1, x + 1), b.y1 = std::max(b.y1, y + 1);
  return b.empty() ? Box{} : b;
}

// 3 x 3 grey dilation (thicken, op = max) or erosion (thin, op = min).
inline GrayImage morph3(const GrayImage& src, bool grow) {
  GrayImage out(src.width, src.height);
  for (int y = 0; y < src.height; ++y)
    for (int x = 0; x < src.width; ++x) {
      float v = src(x, y);
      for (int dy = -1; dy <= 1; ++dy)
        for (int dx = -1; dx <= 1; ++dx) {
          int nx = x + dx, ny = y + dy;
          float n = (nx < 0 || ny < 0 || nx >= src.width || ny >= src.height) ? 0.f : src(nx, ny);
          v = grow ? std::max(v, n) : std::min(v, n);
        }
      out(x, y) = v;
    }
  return out;
}

// The digit scaled so its ink box is `height` px tall, rotated by `degrees`, thickened (stroke > 0,
// number of 3x3 dilations) or thinned (stroke < 0), tightly cropped with a 2 px margin.
inline GrayImage transform_digit(const GrayImage& src, double height, double degrees, int stroke) {
  Box b = ink_box(src, 0.1f);
  if (b.empty()) return GrayImage(1, 1);
  const double s = height / b.height();
  const double a = degrees * 3.141592653589793 / 180, ca = std::cos(a), sa = std::sin(a);
  const double cx = 0.5 * (b.x0 + b.x1), cy = 0.5 * (b.y0 + b.y1);
  const double hw = 0.5 * b.width() * s, hh = 0.5 * b.height() * s;
  const double ow = std::abs(ca) * hw + std::abs(sa) * hh + 4, oh = std::abs(sa) * hw + std::abs(ca) * hh + 4;
  GrayImage out(int(std::ceil(2 * ow)), int(std::ceil(2 * oh)));
  for (int y = 0; y < out.height; ++y)
    for (int x = 0; x < out.width; ++x) {
      const double dx = x + 0.5 - ow, dy = y + 0.5 - oh;
      const double ux = (ca * dx + sa * dy) / s + cx - 0.5, uy = (-sa * dx + ca * dy) / s + cy - 0.5;
      const int x0 = int(std::floor(ux)), y0 = int(std::floor(uy));
      const double fx = ux - x0, fy = uy - y0;
      auto at = [&](int px, int py) { return (px < 0 || py < 0 || px >= src.width || py >= src.height) ? 0.f : src(px, py); };
      out(x, y) = float((1 - fy) * ((1 - fx) * at(x0, y0) + fx * at(x0 + 1, y0)) + fy * ((1 - fx) * at(x0, y0 + 1) + fx * at(x0 + 1, y0 + 1)));
    }
  for (int k = 0; k < stroke; ++k) out = morph3(out, true);
  for (int k = 0; k < -stroke; ++k) out = morph3(out, false);
  Box t = ink_box(out, 0.1f);
  if (t.empty()) return out;
  return ember::vision::crop(out, {t.x0 - 2, t.y0 - 2, t.x1 + 2, t.y1 + 2});
}

enum class Style { Clean, LightOnDark, LowContrast, Photo };

// A composed image and what is in it.
struct Scene {
  GrayImage image;
  std::vector<Box> boxes;   // ground truth, left to right
  std::vector<int> labels;
  Style style = Style::Clean;
  int touching = 0;         // pairs placed overlapping by 1-3 px
};

// Paper brightness at (x, y): a gradient plus a soft shadow (photo style), or flat.
struct Paper {
  double base = 0.9, gx = 0, gy = 0, shadow = 0, sx = 0, sy = 0, sr = 1;
  double at(double x, double y) const {
    double v = base + gx * x + gy * y;
    if (shadow > 0) {
      const double d = std::hypot(x - sx, y - sy) / sr;
      v *= 1 - shadow / (1 + std::exp((d - 1) * 6));  // soft-edged disc
    }
    return v;
  }
};

// Turns an ink map into an image of the given style, with Gaussian noise of `noise` sigma.
inline GrayImage render(const GrayImage& ink, Style style, Rng& rng, double noise) {
  GrayImage img(ink.width, ink.height);
  Paper paper;
  double contrast = 0.85;
  if (style == Style::LowContrast) paper.base = 0.6, contrast = 0.35;
  if (style == Style::Photo) {
    paper.base = rng.uniform(0.55, 0.8);
    paper.gx = rng.uniform(-0.2, 0.2) / ink.width;
    paper.gy = rng.uniform(-0.15, 0.15) / ink.height;
    paper.shadow = rng.uniform(0.25, 0.45);
    paper.sx = rng.uniform(0, ink.width);
    paper.sy = rng.uniform(0, ink.height);
    paper.sr = rng.uniform(0.3, 0.7) * std::max(ink.width, ink.height);
    contrast = rng.uniform(0.5, 0.8);
  }
  for (int y = 0; y < ink.height; ++y)
    for (int x = 0; x < ink.width; ++x) {
      double v;
      const double p = paper.at(x, y), k = ink(x, y);
      if (style == Style::LightOnDark) v = 0.12 + 0.8 * k;
      else v = p * (1 - contrast * k);
      img(x, y) = float(std::clamp(v + noise * rng.normal(), 0.0, 1.0));
    }
  return img;
}

// A string of 3-8 digits drawn from `pool` with varied height, spacing, stroke, rotation,
// touching pairs, vertical jitter; rendered in `style`.
inline Scene compose(const std::vector<Digit>& pool, Rng& rng, Style style) {
  Scene sc;
  sc.style = style;
  const int n = rng.integer(3, 8);
  const double h = rng.uniform(22, 64);
  std::vector<GrayImage> parts;
  for (int i = 0; i < n; ++i) {
    const Digit& d = pool[size_t(rng.integer(0, int(pool.size()) - 1))];
    const double hi = h * rng.uniform(0.9, 1.1);
    int stroke = 0;
    const double r = rng.uniform();
    if (r < 0.2) stroke = 1;
    else if (r < 0.3 && h > 40) stroke = 2;
    else if (r < 0.4 && h > 40) stroke = -1;
    parts.push_back(transform_digit(d.ink, hi, rng.uniform(-10, 10), stroke));
    sc.labels.push_back(d.label);
  }
  // Layout: x positions with gaps; a touching pair overlaps the 2 px crop margins plus 1-3 px.
  std::vector<int> xs, ys;
  const int margin = int(h * 0.6) + 4;
  int x = margin, maxh = 0;
  for (int i = 0; i < n; ++i) {
    if (i > 0) {
      const bool touch = rng.uniform() < 0.12;
      const int gap = touch ? -4 - rng.integer(1, 3) : int(rng.uniform(0.12, 0.6) * h);
      sc.touching += touch;
      x += gap;
    }
    xs.push_back(x);
    x += parts[size_t(i)].width;
    maxh = std::max(maxh, parts[size_t(i)].height);
  }
  const int W = x + margin, Ht = maxh + 2 * margin + int(0.2 * h);
  GrayImage ink(W, Ht);
  for (int i = 0; i < n; ++i) {
    const auto& p = parts[size_t(i)];
    const int y = margin + int(rng.uniform(0, 0.2) * h) + (maxh - p.height) / 2;
    for (int py = 0; py < p.height; ++py)
      for (int px = 0; px < p.width; ++px) ink(xs[size_t(i)] + px, y + py) = std::max(ink(xs[size_t(i)] + px, y + py), p(px, py));
    Box b = ink_box(p, 0.3f);
    sc.boxes.push_back({b.x0 + xs[size_t(i)], b.y0 + y, b.x1 + xs[size_t(i)], b.y1 + y});
  }
  const double noise = style == Style::Clean ? 0.0 : rng.uniform(0.01, 0.04);
  sc.image = render(ink, style, rng, noise);
  return sc;
}

// A synthetic phone photo of a pen-written number: grey paper with a gradient, a soft shadow,
// thin (4-6 px) pen strokes of digits 150-260 px tall, sensor noise. Default 2000 x 1500.
inline Scene phone_photo(const std::string& digits, uint32_t seed, int width = 2000, int height = 1500,
                         double noise = 0.02) {
  Rng rng(seed);
  Scene sc;
  sc.style = Style::Photo;
  GrayImage ink(width, height);
  const double h = rng.uniform(150, 260) * width / 2000.0, pen = rng.uniform(4, 6) * width / 2000.0;
  const double w = 0.6 * h, gap = 0.35 * h;
  double x = 0.5 * (width - digits.size() * (w + gap) + gap);
  const double y = rng.uniform(0.3, 0.5) * height;
  for (char c : digits) {
    const int d = c - '0';
    const double dw = d == 1 ? 0.5 * w : w, dy = y + rng.uniform(-0.05, 0.05) * h;
    GrayImage one(width, height);
    draw_digit(one, d, x, dy, dw, h, pen, rng, 0.03);
    for (size_t i = 0; i < ink.size(); ++i) ink.data[i] = std::max(ink.data[i], one.data[i]);
    sc.boxes.push_back(ink_box(one, 0.3f));
    sc.labels.push_back(d);
    x += w + gap;
  }
  Paper paper;
  paper.base = rng.uniform(0.6, 0.75);
  paper.gx = 0.15 / width;
  paper.gy = -0.1 / height;
  paper.shadow = 0.4;
  paper.sx = width * 0.8;
  paper.sy = height * 0.2;
  paper.sr = 0.45 * width;
  sc.image = GrayImage(width, height);
  for (int yy = 0; yy < height; ++yy)
    for (int xx = 0; xx < width; ++xx)
      sc.image(xx, yy) = float(std::clamp(paper.at(xx, yy) * (1 - 0.7 * ink(xx, yy)) + noise * rng.normal(), 0.0, 1.0));
  return sc;
}

// Writes an 8-bit binary PGM (for looking at a scene while debugging).
inline void write_pgm(const std::string& path, const GrayImage& img) {
  std::ofstream f(path, std::ios::binary);
  f << "P5\n" << img.width << " " << img.height << "\n255\n";
  auto bytes = ember::vision::to_u8(img);
  f.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

}  // namespace vision_data

#pragma once
/// vision::GrayImage (float luminance, 0 = black, 1 = white), vision::Mask (binary image) and
/// vision::Box, with the conversions the digit reader needs: 8-bit grey/RGB/RGBA buffers in
/// (alpha composited over white), area-averaging resize, crop.
///
/// Example:
/// ```
///   auto img = ember::io::read_image("photo.png");            // io::Image {width, height, channels, data}
///   auto gray = ember::vision::from_image(img);               // any struct with those four members
///   auto half = ember::vision::resize_area(gray, gray.width / 2, gray.height / 2);
/// ```
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "ember/core/error.hpp"

namespace ember::vision {

/// A single-channel float image, row-major, values in [0, 1] (0 = black, 1 = white).
struct GrayImage {
  int width = 0;
  int height = 0;
  std::vector<float> data;

  GrayImage() = default;
  /// A `width` x `height` image filled with `fill`.
  GrayImage(int w, int h, float fill = 0.f) : width(w), height(h) {
    EMBER_CHECK(w >= 0 && h >= 0, "vision::GrayImage: negative size ", w, "x", h);
    data.assign(static_cast<size_t>(w) * static_cast<size_t>(h), fill);
  }
  float& operator()(int x, int y) { return data[static_cast<size_t>(y) * width + x]; }
  float operator()(int x, int y) const { return data[static_cast<size_t>(y) * width + x]; }
  bool empty() const { return width == 0 || height == 0; }
  size_t size() const { return data.size(); }
};

/// A binary image (1 = set), row-major; the digit reader's "ink" map.
struct Mask {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> data;

  Mask() = default;
  Mask(int w, int h, uint8_t fill = 0) : width(w), height(h) {
    EMBER_CHECK(w >= 0 && h >= 0, "vision::Mask: negative size ", w, "x", h);
    data.assign(static_cast<size_t>(w) * static_cast<size_t>(h), fill);
  }
  uint8_t& operator()(int x, int y) { return data[static_cast<size_t>(y) * width + x]; }
  uint8_t operator()(int x, int y) const { return data[static_cast<size_t>(y) * width + x]; }
  bool empty() const { return width == 0 || height == 0; }
  /// Number of set pixels.
  size_t count() const {
    size_t n = 0;
    for (uint8_t v : data) n += v != 0;
    return n;
  }
};

/// An axis-aligned box, half-open: pixels x0 <= x < x1, y0 <= y < y1.
struct Box {
  int x0 = 0, y0 = 0, x1 = 0, y1 = 0;
  int width() const { return x1 - x0; }
  int height() const { return y1 - y0; }
  long long area() const { return static_cast<long long>(std::max(0, width())) * std::max(0, height()); }
  bool empty() const { return x1 <= x0 || y1 <= y0; }
  /// The smallest box holding both.
  Box united(const Box& o) const {
    if (empty()) return o;
    if (o.empty()) return *this;
    return {std::min(x0, o.x0), std::min(y0, o.y0), std::max(x1, o.x1), std::max(y1, o.y1)};
  }
  friend bool operator==(const Box&, const Box&) = default;
};

/// Intersection over union of two boxes (0 when either is empty).
inline double iou(const Box& a, const Box& b) {
  const int ix = std::min(a.x1, b.x1) - std::max(a.x0, b.x0);
  const int iy = std::min(a.y1, b.y1) - std::max(a.y0, b.y0);
  if (ix <= 0 || iy <= 0) return 0.0;
  const double inter = static_cast<double>(ix) * iy;
  return inter / (static_cast<double>(a.area()) + static_cast<double>(b.area()) - inter);
}

/// Converts an interleaved 8-bit buffer with 1 (grey), 2 (grey + alpha), 3 (RGB) or 4 (RGBA)
/// channels to luminance (Rec. 601 weights). Transparent pixels are composited over white, as a
/// viewer shows a drawing exported with a transparent background; if that leaves no contrast but
/// the alpha channel itself carries the drawing (light strokes on a transparent background), the
/// image is composited over black instead so the strokes stay visible.
inline GrayImage from_interleaved_u8(const uint8_t* pixels, int width, int height, int channels) {
  EMBER_CHECK(width >= 0 && height >= 0, "vision::from_interleaved_u8: negative size ", width, "x", height);
  EMBER_CHECK(channels >= 1 && channels <= 4, "vision::from_interleaved_u8: expected 1, 2, 3 or 4 channels, got ",
              channels);
  GrayImage out(width, height);
  const size_t n = out.size();
  EMBER_CHECK(n == 0 || pixels != nullptr, "vision::from_interleaved_u8: null pixel buffer for a ", width, "x",
              height, " image");
  const bool has_alpha = channels == 2 || channels == 4;
  std::vector<float> color(n), alpha(n, 1.f);
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* p = pixels + i * channels;
    float l = channels >= 3 ? (0.299f * p[0] + 0.587f * p[1] + 0.114f * p[2]) / 255.f : p[0] / 255.f;
    color[i] = l;
    if (has_alpha) alpha[i] = p[channels - 1] / 255.f;
  }
  auto composite = [&](float backdrop) {
    float lo = 1.f, hi = 0.f;
    for (size_t i = 0; i < n; ++i) {
      out.data[i] = alpha[i] * color[i] + (1.f - alpha[i]) * backdrop;
      lo = std::min(lo, out.data[i]);
      hi = std::max(hi, out.data[i]);
    }
    return hi - lo;
  };
  const float contrast = composite(1.f);
  if (has_alpha && contrast < 0.1f) {
    float amin = 1.f, amax = 0.f;
    for (float a : alpha) amin = std::min(amin, a), amax = std::max(amax, a);
    if (amax - amin > 0.5f) composite(0.f);
  }
  return out;
}

/// An 8-bit single-channel buffer (0 = black) as a GrayImage.
inline GrayImage from_gray_u8(const uint8_t* pixels, int width, int height) {
  return from_interleaved_u8(pixels, width, height, 1);
}

/// Any image struct with `width`, `height`, `channels` and an 8-bit `data` vector
/// (io::Image from ember/io/image.hpp) as a GrayImage.
template <typename Image>
GrayImage from_image(const Image& img) {
  const size_t need = static_cast<size_t>(img.width) * static_cast<size_t>(img.height) *
                      static_cast<size_t>(img.channels);
  EMBER_CHECK(img.data.size() >= need, "vision::from_image: ", img.width, "x", img.height, "x", img.channels,
              " image needs ", need, " bytes, got ", img.data.size());
  return from_interleaved_u8(img.data.data(), static_cast<int>(img.width), static_cast<int>(img.height),
                             static_cast<int>(img.channels));
}

/// The image as 8-bit grey, values clamped to [0, 1] and rounded.
inline std::vector<uint8_t> to_u8(const GrayImage& img) {
  std::vector<uint8_t> out(img.size());
  for (size_t i = 0; i < out.size(); ++i)
    out[i] = static_cast<uint8_t>(std::lround(std::clamp(img.data[i], 0.f, 1.f) * 255.f));
  return out;
}

/// 1 - v for every pixel (white-on-black <-> black-on-white).
inline GrayImage invert(GrayImage img) {
  for (float& v : img.data) v = 1.f - v;
  return img;
}

namespace detail {
// Weights of source cells [i, i+1) overlapping the target interval [a, b) along one axis.
struct Span {
  int first = 0;
  std::vector<float> w;
};
inline std::vector<Span> area_spans(int src, int dst) {
  std::vector<Span> spans(static_cast<size_t>(dst));
  const double scale = static_cast<double>(src) / dst;
  for (int j = 0; j < dst; ++j) {
    const double a = j * scale, b = (j + 1) * scale;
    int i0 = static_cast<int>(std::floor(a)), i1 = std::min(src, static_cast<int>(std::ceil(b)));
    spans[j].first = i0;
    for (int i = i0; i < i1; ++i) {
      const double w = std::min<double>(b, i + 1) - std::max<double>(a, i);
      spans[j].w.push_back(static_cast<float>(std::max(0.0, w) / scale));
    }
  }
  return spans;
}
// Linear interpolation weights (pixel centres aligned) for upscaling along one axis.
inline std::vector<Span> linear_spans(int src, int dst) {
  std::vector<Span> spans(static_cast<size_t>(dst));
  const double scale = static_cast<double>(src) / dst;
  for (int j = 0; j < dst; ++j) {
    double s = std::clamp((j + 0.5) * scale - 0.5, 0.0, static_cast<double>(src - 1));
    int i0 = std::min(static_cast<int>(s), src - 1);
    int i1 = std::min(i0 + 1, src - 1);
    float f = static_cast<float>(s - i0);
    spans[j].first = i0;
    spans[j].w = i1 == i0 ? std::vector<float>{1.f} : std::vector<float>{1.f - f, f};
  }
  return spans;
}
}  // namespace detail

/// Resizes to `new_width` x `new_height`. Each axis that shrinks averages the source area under
/// each target pixel (so thin pen strokes of a big photo fade instead of vanishing, and the
/// result is anti-aliased like MNIST's digits); each axis that grows interpolates linearly.
inline GrayImage resize_area(const GrayImage& src, int new_width, int new_height) {
  EMBER_CHECK(new_width >= 0 && new_height >= 0, "vision::resize_area: negative target size ", new_width, "x",
              new_height);
  GrayImage out(new_width, new_height);
  if (out.empty()) return out;
  EMBER_CHECK(!src.empty(), "vision::resize_area: cannot resize an empty image to ", new_width, "x", new_height);
  auto xs = new_width <= src.width ? detail::area_spans(src.width, new_width)
                                   : detail::linear_spans(src.width, new_width);
  auto ys = new_height <= src.height ? detail::area_spans(src.height, new_height)
                                     : detail::linear_spans(src.height, new_height);
  // Separable: rows first into a temporary new_width x src.height image, then columns.
  std::vector<float> tmp(static_cast<size_t>(new_width) * src.height);
  for (int y = 0; y < src.height; ++y) {
    const float* row = &src.data[static_cast<size_t>(y) * src.width];
    for (int x = 0; x < new_width; ++x) {
      const auto& s = xs[x];
      float acc = 0.f;
      for (size_t k = 0; k < s.w.size(); ++k) acc += s.w[k] * row[s.first + k];
      tmp[static_cast<size_t>(y) * new_width + x] = acc;
    }
  }
  for (int y = 0; y < new_height; ++y) {
    const auto& s = ys[y];
    for (int x = 0; x < new_width; ++x) {
      float acc = 0.f;
      for (size_t k = 0; k < s.w.size(); ++k) acc += s.w[k] * tmp[static_cast<size_t>(s.first + k) * new_width + x];
      out(x, y) = acc;
    }
  }
  return out;
}

/// The part of `img` inside `box` (clipped to the image).
inline GrayImage crop(const GrayImage& img, Box box) {
  box.x0 = std::clamp(box.x0, 0, img.width);
  box.x1 = std::clamp(box.x1, box.x0, img.width);
  box.y0 = std::clamp(box.y0, 0, img.height);
  box.y1 = std::clamp(box.y1, box.y0, img.height);
  GrayImage out(box.width(), box.height());
  for (int y = 0; y < out.height; ++y)
    for (int x = 0; x < out.width; ++x) out(x, y) = img(box.x0 + x, box.y0 + y);
  return out;
}

}  // namespace ember::vision

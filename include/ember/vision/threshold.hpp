#pragma once
/// Binarisation for photos of writing: a large-scale background estimate (removes uneven light,
/// shadows, grey paper), automatic polarity (dark ink on light paper or light on dark), Otsu's
/// threshold on the flattened "ink strength" with a noise floor, and hysteresis so faint parts
/// of thin pen strokes stay attached to the strokes.
///
/// Example:
/// ```
///   auto bin = ember::vision::binarize(gray);          // BinarizeOptions{} = automatic everything
///   if (bin.ink.count() == 0) std::cout << "no ink\n";
/// ```
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "ember/vision/components.hpp"
#include "ember/vision/gray_image.hpp"

namespace ember::vision {

/// Which way the ink differs from the paper.
enum class Polarity { Auto, DarkOnLight, LightOnDark };

/// Otsu's threshold of `values` over [lo, hi] with `bins` histogram bins: the level that
/// maximises the between-class variance. Returns lo for constant input.
inline float otsu_threshold(const std::vector<float>& values, float lo = 0.f, float hi = 1.f, int bins = 256) {
  EMBER_CHECK(bins >= 2 && hi > lo, "vision::otsu_threshold: need bins >= 2 and hi > lo, got bins=", bins, " lo=", lo,
              " hi=", hi);
  std::vector<double> hist(static_cast<size_t>(bins), 0.0);
  for (float v : values) {
    int b = static_cast<int>((v - lo) / (hi - lo) * bins);
    hist[static_cast<size_t>(std::clamp(b, 0, bins - 1))] += 1.0;
  }
  const double total = static_cast<double>(values.size());
  if (total == 0) return lo;
  double sum_all = 0;
  for (int b = 0; b < bins; ++b) sum_all += b * hist[b];
  double w0 = 0, sum0 = 0, best = -1;
  int best_b = 0;
  for (int b = 0; b < bins - 1; ++b) {
    w0 += hist[b];
    sum0 += b * hist[b];
    const double w1 = total - w0;
    if (w0 == 0 || w1 == 0) continue;
    const double m0 = sum0 / w0, m1 = (sum_all - sum0) / w1;
    const double between = w0 * w1 * (m0 - m1) * (m0 - m1);
    if (between > best) best = between, best_b = b;
  }
  return best < 0 ? lo : lo + (hi - lo) * static_cast<float>(best_b + 1) / bins;
}

namespace detail {
inline float median_of(std::vector<float>& v) {
  if (v.empty()) return 0.f;
  auto mid = v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2);
  std::nth_element(v.begin(), mid, v.end());
  return *mid;
}
}  // namespace detail

/// The paper's brightness at every pixel, whatever the ink: medians of `cell` x `cell` tiles,
/// a 5 x 5 median over the tile grid (so a tile full of a thick stroke takes its neighbours'
/// value), then bilinear interpolation between tile centres. Ink is a minority of the pixels at
/// the scale of five tiles, so the median ignores it whether it is darker or lighter than the
/// paper; gradients and soft shadows wider than a tile are followed. `cell <= 0` picks 1/24 of
/// the longer side (at least 8 px).
inline GrayImage estimate_background(const GrayImage& img, int cell = 0) {
  if (img.empty()) return img;
  if (cell <= 0) cell = std::max(8, std::max(img.width, img.height) / 24);
  const int gw = (img.width + cell - 1) / cell, gh = (img.height + cell - 1) / cell;
  std::vector<float> tile(static_cast<size_t>(gw) * gh), buf;
  for (int ty = 0; ty < gh; ++ty)
    for (int tx = 0; tx < gw; ++tx) {
      buf.clear();
      for (int y = ty * cell; y < std::min(img.height, (ty + 1) * cell); ++y)
        for (int x = tx * cell; x < std::min(img.width, (tx + 1) * cell); ++x) buf.push_back(img(x, y));
      tile[static_cast<size_t>(ty) * gw + tx] = detail::median_of(buf);
    }
  std::vector<float> smooth(tile.size());
  for (int ty = 0; ty < gh; ++ty)
    for (int tx = 0; tx < gw; ++tx) {
      buf.clear();
      for (int y = std::max(0, ty - 2); y <= std::min(gh - 1, ty + 2); ++y)
        for (int x = std::max(0, tx - 2); x <= std::min(gw - 1, tx + 2); ++x) buf.push_back(tile[y * gw + x]);
      smooth[static_cast<size_t>(ty) * gw + tx] = detail::median_of(buf);
    }
  GrayImage bg(img.width, img.height);
  for (int y = 0; y < img.height; ++y) {
    const float fy = std::clamp((y + 0.5f) / cell - 0.5f, 0.f, static_cast<float>(gh - 1));
    const int y0 = static_cast<int>(fy), y1 = std::min(y0 + 1, gh - 1);
    const float ay = fy - y0;
    for (int x = 0; x < img.width; ++x) {
      const float fx = std::clamp((x + 0.5f) / cell - 0.5f, 0.f, static_cast<float>(gw - 1));
      const int x0 = static_cast<int>(fx), x1 = std::min(x0 + 1, gw - 1);
      const float ax = fx - x0;
      const float top = smooth[y0 * gw + x0] * (1 - ax) + smooth[y0 * gw + x1] * ax;
      const float bot = smooth[y1 * gw + x0] * (1 - ax) + smooth[y1 * gw + x1] * ax;
      bg(x, y) = top * (1 - ay) + bot * ay;
    }
  }
  return bg;
}

/// Options of binarize().
struct BinarizeOptions {
  /// Ink darker or lighter than the paper; Auto decides from the image.
  Polarity polarity = Polarity::Auto;
  /// Smallest ink strength (relative contrast to the paper, 0..1) that can count as ink: an
  /// image whose strongest marks are fainter holds no ink.
  float min_contrast = 0.12f;
  /// The threshold is at least this many noise standard deviations.
  float noise_sigmas = 4.f;
  /// Hysteresis: pixels above low_ratio * threshold join the ink when connected to it.
  float low_ratio = 0.5f;
  /// Background tile size in pixels (0 = automatic, see estimate_background).
  int background_cell = 0;
};

/// What binarize() found.
struct Binarization {
  Mask ink;                        ///< 1 = ink
  GrayImage strength;              ///< ink strength: relative contrast to the local paper, 0..1
  Polarity polarity = Polarity::DarkOnLight;  ///< the decided polarity
  float threshold = 0.f;           ///< on `strength`
  float noise_sigma = 0.f;         ///< robust noise estimate of the flattened image
};

/// Separates ink from paper; see the header comment for the method. Works on any size, from a
/// single pixel (no ink) to a downscaled phone photo.
inline Binarization binarize(const GrayImage& img, const BinarizeOptions& opt = {}) {
  Binarization out;
  out.ink = Mask(img.width, img.height);
  out.strength = GrayImage(img.width, img.height);
  if (img.empty()) return out;
  const GrayImage bg = estimate_background(img, opt.background_cell);
  const size_t n = img.size();
  std::vector<float> diff(n), absdiff(n);
  for (size_t i = 0; i < n; ++i) diff[i] = img.data[i] - bg.data[i], absdiff[i] = std::abs(diff[i]);
  // Median absolute deviation: the paper's noise, untouched by the (minority) ink.
  out.noise_sigma = std::max(1.4826f * detail::median_of(absdiff), 0.004f);
  // Polarity: the side with more mass in its tail beyond the noise is the ink (the minority
  // class after thresholding is ink, and the paper sits at zero after flattening).
  Polarity pol = opt.polarity;
  if (pol == Polarity::Auto) {
    const float t = std::max(opt.noise_sigmas * out.noise_sigma, 0.5f * opt.min_contrast);
    double dark = 0, light = 0;
    for (float d : diff) {
      if (d < -t) dark += -d;
      else if (d > t) light += d;
    }
    pol = light > dark ? Polarity::LightOnDark : Polarity::DarkOnLight;
  }
  out.polarity = pol;
  // Ink strength relative to the local paper: a stroke in a shadow has less absolute contrast
  // than the same stroke in the light, but the same relative contrast.
  float smax = 0.f, sigma_s = 0.f;
  for (size_t i = 0; i < n; ++i) {
    const float b = bg.data[i];
    const float s = pol == Polarity::DarkOnLight ? -diff[i] / std::max(b, 0.1f) : diff[i] / std::max(1.f - b, 0.1f);
    out.strength.data[i] = std::clamp(s, 0.f, 1.f);
    smax = std::max(smax, out.strength.data[i]);
  }
  {
    float b = 0;
    for (float v : bg.data) b += v;
    b /= static_cast<float>(n);
    sigma_s = out.noise_sigma / std::max(pol == Polarity::DarkOnLight ? b : 1.f - b, 0.1f);
  }
  const float floor = std::max(opt.noise_sigmas * sigma_s, opt.min_contrast);
  if (smax < floor) {
    out.threshold = floor;
    return out;  // nothing stands out of the paper: no ink
  }
  // Otsu on the strengths above the noise: zero-strength paper would otherwise dominate.
  std::vector<float> candidates;
  for (float s : out.strength.data)
    if (s > 0.5f * floor) candidates.push_back(s);
  const float otsu = otsu_threshold(candidates, 0.f, std::max(smax, 1e-3f), 256);
  out.threshold = std::max({floor, std::min(otsu, 0.6f * smax)});
  // Hysteresis: keep weak pixels only where they connect to strong ones.
  const float low = std::max(opt.low_ratio * out.threshold, 0.5f * floor);
  Mask weak(img.width, img.height);
  for (size_t i = 0; i < n; ++i) weak.data[i] = out.strength.data[i] > low;
  const Labeling lab = connected_components(weak, 8);
  std::vector<uint8_t> keep(lab.components.size(), 0);
  for (size_t i = 0; i < n; ++i)
    if (lab.labels[i] >= 0 && out.strength.data[i] > out.threshold) keep[static_cast<size_t>(lab.labels[i])] = 1;
  for (size_t i = 0; i < n; ++i) out.ink.data[i] = lab.labels[i] >= 0 && keep[static_cast<size_t>(lab.labels[i])];
  return out;
}

}  // namespace ember::vision

#pragma once
/// Connected components (8- or 4-connectivity) of a vision::Mask, a chamfer distance transform,
/// dilation/erosion by a disc built on it, and a stroke-width estimate.
///
/// Example:
/// ```
///   auto lab = ember::vision::connected_components(mask);   // 8-connectivity
///   for (const auto& c : lab.components) std::cout << c.area << " px at x=" << c.box.x0 << "\n";
///   double w = ember::vision::stroke_width(mask);            // ~ pen width in pixels
/// ```
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "ember/vision/gray_image.hpp"

namespace ember::vision {

/// One connected component: bounding box, pixel count and centroid (pixel centres at +0.5).
struct Component {
  int label = 0;
  Box box;
  long long area = 0;
  double cx = 0.0, cy = 0.0;
};

/// Per-pixel component labels (-1 for background) and the components, in raster order of
/// their first pixel.
struct Labeling {
  int width = 0;
  int height = 0;
  std::vector<int> labels;
  std::vector<Component> components;
  int operator()(int x, int y) const { return labels[static_cast<size_t>(y) * width + x]; }
};

/// Labels the set pixels of `mask` into connected components. `connectivity` is 8 (diagonal
/// neighbours connect, the default: thin handwritten strokes often touch only at corners) or 4.
/// Iterative flood fill, so a component the size of the image does not overflow the stack.
inline Labeling connected_components(const Mask& mask, int connectivity = 8) {
  EMBER_CHECK(connectivity == 4 || connectivity == 8, "vision::connected_components: connectivity must be 4 or 8, got ",
              connectivity);
  Labeling out;
  out.width = mask.width;
  out.height = mask.height;
  out.labels.assign(mask.data.size(), -1);
  std::vector<int> stack;
  const int w = mask.width, h = mask.height;
  for (int y0 = 0; y0 < h; ++y0) {
    for (int x0 = 0; x0 < w; ++x0) {
      const size_t i0 = static_cast<size_t>(y0) * w + x0;
      if (!mask.data[i0] || out.labels[i0] >= 0) continue;
      Component c;
      c.label = static_cast<int>(out.components.size());
      c.box = {x0, y0, x0 + 1, y0 + 1};
      double sx = 0, sy = 0;
      out.labels[i0] = c.label;
      stack.assign(1, static_cast<int>(i0));
      while (!stack.empty()) {
        const int i = stack.back();
        stack.pop_back();
        const int x = i % w, y = i / w;
        ++c.area;
        sx += x + 0.5;
        sy += y + 0.5;
        c.box.x0 = std::min(c.box.x0, x);
        c.box.x1 = std::max(c.box.x1, x + 1);
        c.box.y0 = std::min(c.box.y0, y);
        c.box.y1 = std::max(c.box.y1, y + 1);
        for (int dy = -1; dy <= 1; ++dy) {
          const int ny = y + dy;
          if (ny < 0 || ny >= h) continue;
          for (int dx = -1; dx <= 1; ++dx) {
            if ((dx == 0 && dy == 0) || (connectivity == 4 && dx != 0 && dy != 0)) continue;
            const int nx = x + dx;
            if (nx < 0 || nx >= w) continue;
            const size_t j = static_cast<size_t>(ny) * w + nx;
            if (mask.data[j] && out.labels[j] < 0) {
              out.labels[j] = c.label;
              stack.push_back(static_cast<int>(j));
            }
          }
        }
      }
      c.cx = sx / static_cast<double>(c.area);
      c.cy = sy / static_cast<double>(c.area);
      out.components.push_back(c);
    }
  }
  return out;
}

/// Chamfer (1, sqrt 2) distance from every pixel to the nearest pixel whose mask value is
/// `target` (0 for those pixels). Pixels outside the image count as background (value 0), so
/// with target = 0 a set pixel on the border is at distance 1. Returns +inf where no target exists.
inline std::vector<float> distance_transform(const Mask& mask, uint8_t target) {
  const int w = mask.width, h = mask.height;
  const float inf = std::numeric_limits<float>::infinity();
  const float d1 = 1.f, d2 = std::sqrt(2.f);
  const bool border_is_target = target == 0;
  std::vector<float> d(mask.data.size(), inf);
  auto at = [&](int x, int y) -> float {
    if (x < 0 || y < 0 || x >= w || y >= h) return border_is_target ? 0.f : inf;
    return d[static_cast<size_t>(y) * w + x];
  };
  for (size_t i = 0; i < d.size(); ++i)
    if ((mask.data[i] != 0) == (target != 0)) d[i] = 0.f;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      float& v = d[static_cast<size_t>(y) * w + x];
      if (v == 0.f) continue;
      v = std::min({v, at(x - 1, y) + d1, at(x, y - 1) + d1, at(x - 1, y - 1) + d2, at(x + 1, y - 1) + d2});
    }
  for (int y = h - 1; y >= 0; --y)
    for (int x = w - 1; x >= 0; --x) {
      float& v = d[static_cast<size_t>(y) * w + x];
      if (v == 0.f) continue;
      v = std::min({v, at(x + 1, y) + d1, at(x, y + 1) + d1, at(x + 1, y + 1) + d2, at(x - 1, y + 1) + d2});
    }
  return d;
}

/// Dilation by a disc of radius `r` pixels (r <= 0 returns the mask unchanged).
inline Mask dilate(const Mask& mask, float r) {
  if (r <= 0.f) return mask;
  auto d = distance_transform(mask, 1);
  Mask out(mask.width, mask.height);
  for (size_t i = 0; i < d.size(); ++i) out.data[i] = d[i] <= r + 1e-4f;
  return out;
}

/// Erosion by a disc of radius `r` pixels: keeps pixels farther than `r` from the background.
inline Mask erode(const Mask& mask, float r) {
  if (r <= 0.f) return mask;
  auto d = distance_transform(mask, 0);
  Mask out(mask.width, mask.height);
  for (size_t i = 0; i < d.size(); ++i) out.data[i] = d[i] > r + 1e-4f;
  return out;
}

/// Mean stroke width in pixels, 2 * area / perimeter (perimeter = ink/background pixel edges,
/// the image border included): a stroke of width w and length L >> w has area wL and perimeter
/// ~2L. Returns 0 for an empty mask.
inline double stroke_width(const Mask& mask) {
  long long area = 0, perimeter = 0;
  const int w = mask.width, h = mask.height;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      if (!mask(x, y)) continue;
      ++area;
      perimeter += (x == 0 || !mask(x - 1, y)) + (x == w - 1 || !mask(x + 1, y)) + (y == 0 || !mask(x, y - 1)) +
                   (y == h - 1 || !mask(x, y + 1));
    }
  return perimeter == 0 ? 0.0 : 2.0 * static_cast<double>(area) / static_cast<double>(perimeter);
}

}  // namespace ember::vision

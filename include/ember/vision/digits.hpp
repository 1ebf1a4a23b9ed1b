#pragma once
/// Finding handwritten digits in an image and framing each one as MNIST did: the reusable part
/// of `mnist_cnn read` / `predict`.
///
/// Pipeline of segment_digits():
///  1. size: downscale big photos (area averaging, so thin pen strokes fade rather than vanish);
///  2. binarize(): background flattening, automatic polarity, Otsu + noise floor + hysteresis;
///  3. connected components (8-connectivity); specks small next to the largest mark are dropped;
///  4. broken strokes merged (pieces of one digit overlap horizontally and nearly touch; an open
///     4 or a 7 whose bar floats overlap a little, within a digit's width);
///  5. touching digits split at vertical-projection minima into round(width / typical width) parts,
///     every part nearly as tall as a digit; marks too narrow for that (two digits whose boxes
///     overlap, merged as pieces of one) split along a winding top-to-bottom path that crosses no ink;
///  6. lines found by vertical position, digits ordered line by line, left to right;
///  7. mnist_frame(): stroke width normalised towards MNIST's, the digit fitted in 20 x 20
///     (aspect kept, anti-aliased) and placed in 28 x 28 with its centre of mass at the centre.
///
/// Example:
/// ```
///   auto gray = ember::vision::from_image(ember::io::read_image(path));
///   auto digits = ember::vision::segment_digits(gray);
///   if (digits.empty()) std::cout << "no digits found\n";
///   for (auto& d : digits) { /* d.image: 28x28, white digit on black, [0,1]; d.box: where */ }
/// ```
#include <algorithm>
#include <array>
#include <cmath>
#include <functional>
#include <map>
#include <numeric>
#include <vector>

#include "ember/vision/components.hpp"
#include "ember/vision/gray_image.hpp"
#include "ember/vision/threshold.hpp"

namespace ember::vision {

/// Options of segment_digits() and mnist_frame().
struct SegmentOptions {
  /// Images whose longer side exceeds this are downscaled first (a 2000 x 1500 phone photo
  /// becomes 1000 x 750: pen strokes stay >= 2 px, and everything after runs 4x faster).
  int max_side = 1000;
  /// Binarisation (polarity, minimum contrast, ...).
  BinarizeOptions binarize;
  /// Merge pieces of one digit broken apart by a faint stroke.
  bool merge_broken = true;
  /// Split components much wider than a digit (touching digits).
  bool split_touching = true;
  /// Thicken thin pen strokes / thin fat marker strokes towards MNIST's stroke width.
  bool normalize_stroke = true;
  /// Target stroke width (stroke_width(), pixels at the 28 x 28 scale) of the digit before
  /// anti-aliasing. MNIST's test digits binarised at 0.5 measure 1.9 on average; MNIST digits
  /// re-framed by this pipeline with 2.4 measure 2.2 and thin pen strokes 1.8.
  double target_stroke = 2.4;
  /// Marks smaller than this in the working image (pixels of height) are not digits.
  int min_digit_height = 6;
  /// Components with fewer pixels than this fraction of the largest one are specks.
  double speck_ratio = 0.03;
  /// Marks lower than this fraction of the typical digit height are dropped (dirt, dots, dashes).
  double min_height_ratio = 0.35;
  /// Recognition-driven splitting (segment_digits with a classifier), in log-probability units:
  /// the cost of a cut per stroke width of ink it crosses ...
  double cut_cost = 1.0;
  /// ... and of each digit (two digits must explain a mark better than one by this much).
  double digit_cost = 0.25;
  /// Weight of the prior on each class's aspect ratio (a "4" twice as wide as tall is two digits).
  double shape_weight = 1.0;
  /// The search overrides the geometric rules' segmentation of a mark only when it scores this
  /// much higher (log-probability units).
  double override_margin = 1.0;
};

/// Probabilities of the digits 0-9 for each MNIST-framed 28 x 28 crop (white digit on black,
/// values in [0, 1]): a trained network's softmax. segment_digits() passes every candidate piece
/// of an image in one call, so a network can classify them as one batch.
using DigitClassifier = std::function<std::vector<std::array<float, 10>>(const std::vector<GrayImage>&)>;

/// One digit found in the image.
struct DigitCrop {
  Box box;          ///< where, in the input image's pixel coordinates
  GrayImage image;  ///< 28 x 28, MNIST convention: white digit (1) on black (0)
  int line = 0;     ///< text line, 0 = top
  /// The classifier's probabilities of 0-9 for `image` when segment_digits() was given one
  /// (all zero otherwise).
  std::array<float, 10> probs{};
};

/// Frames one digit as MNIST did: `digit` is the digit's ink (any size; only its set pixels
/// count), fitted so the larger side of its bounding box is 20 px (aspect ratio kept,
/// area-averaged, so edges are anti-aliased), then placed in a 28 x 28 image with its centre of
/// mass at (14, 14). With `opt.normalize_stroke`, strokes are first thickened or thinned towards
/// `opt.target_stroke` at the 20 px scale. An empty mask gives a black image.
inline GrayImage mnist_frame(const Mask& digit, const SegmentOptions& opt = {}) {
  constexpr int kBox = 20, kSide = 28, kOver = 4;  // work at 4x the final scale for the morphology
  GrayImage out(kSide, kSide, 0.f);
  const Labeling lab = connected_components(digit, 8);
  if (lab.components.empty()) return out;
  Box bb = lab.components[0].box;
  for (const auto& c : lab.components) bb = bb.united(c.box);
  // 1. The tight crop at kOver times the final scale, binary again after resampling.
  GrayImage crop_f(bb.width(), bb.height());
  for (int y = 0; y < bb.height(); ++y)
    for (int x = 0; x < bb.width(); ++x) crop_f(x, y) = digit(bb.x0 + x, bb.y0 + y) ? 1.f : 0.f;
  const int big = kBox * kOver;
  const double f = static_cast<double>(big) / std::max(bb.width(), bb.height());
  const int hw = std::max(1, static_cast<int>(std::lround(bb.width() * f)));
  const int hh = std::max(1, static_cast<int>(std::lround(bb.height() * f)));
  const GrayImage hi_f = resize_area(crop_f, hw, hh);
  // Pad so a dilation has room.
  const int pad = 3 * kOver;
  Mask hi(hw + 2 * pad, hh + 2 * pad);
  for (int y = 0; y < hh; ++y)
    for (int x = 0; x < hw; ++x) hi(x + pad, y + pad) = hi_f(x, y) >= 0.5f;
  if (hi.count() == 0) {  // a sliver thinner than half a pixel at this scale: keep its skeleton
    for (int y = 0; y < hh; ++y)
      for (int x = 0; x < hw; ++x) hi(x + pad, y + pad) = hi_f(x, y) > 0.f;
  }
  // 2. Stroke width towards the target.
  if (opt.normalize_stroke) {
    const double sw = stroke_width(hi), target = opt.target_stroke * kOver;
    if (sw > 0 && sw < 0.8 * target) {
      hi = dilate(hi, static_cast<float>((target - sw) / 2));
    } else if (sw > 1.3 * target) {
      // Thin a fat marker stroke, but never so far that the digit falls apart or mostly vanishes.
      const size_t before = hi.count();
      const size_t parts = connected_components(hi, 8).components.size();
      for (double r = (sw - target) / 2; r >= 1.0; r *= 0.6) {
        Mask e = erode(hi, static_cast<float>(r));
        if (e.count() >= before / 3 && connected_components(e, 8).components.size() <= parts) {
          hi = std::move(e);
          break;
        }
      }
    }
  }
  // 3. Fit the (possibly grown) ink into kBox x kBox, area-averaged.
  const Labeling lab2 = connected_components(hi, 8);
  Box b2 = lab2.components[0].box;
  for (const auto& c : lab2.components) b2 = b2.united(c.box);
  GrayImage hb(b2.width(), b2.height());
  for (int y = 0; y < b2.height(); ++y)
    for (int x = 0; x < b2.width(); ++x) hb(x, y) = hi(b2.x0 + x, b2.y0 + y) ? 1.f : 0.f;
  const double g = static_cast<double>(kBox) / std::max(b2.width(), b2.height());
  const int fw = std::clamp(static_cast<int>(std::lround(b2.width() * g)), 1, kBox);
  const int fh = std::clamp(static_cast<int>(std::lround(b2.height() * g)), 1, kBox);
  const GrayImage small = resize_area(hb, fw, fh);
  // 4. Centre of mass to (14, 14), as MNIST (integer shift, pixel centres at +0.5).
  double m = 0, mx = 0, my = 0;
  for (int y = 0; y < fh; ++y)
    for (int x = 0; x < fw; ++x) {
      const double v = small(x, y);
      m += v, mx += v * (x + 0.5), my += v * (y + 0.5);
    }
  if (m <= 0) return out;
  const int ox = static_cast<int>(std::lround(kSide / 2.0 - mx / m));
  const int oy = static_cast<int>(std::lround(kSide / 2.0 - my / m));
  for (int y = 0; y < fh; ++y)
    for (int x = 0; x < fw; ++x) {
      const int tx = x + ox, ty = y + oy;
      if (tx >= 0 && ty >= 0 && tx < kSide && ty < kSide) out(tx, ty) = std::clamp(small(x, y), 0.f, 1.f);
    }
  return out;
}

namespace detail {
struct DigitGroup {
  std::vector<int> labels;  // components in the group
  Box box;
  long long area = 0;
  // After a split: the part's columns [cut_lo[r], cut_hi[r]) in row cut_y0 + r (working-image
  // coordinates); empty for a whole group. Per row, so a cut can wind between overlapping digits.
  int cut_y0 = 0;
  std::vector<int> cut_lo, cut_hi;
  // Chosen by the recognition-driven search: the piece's ink (box-sized), its framing and class
  // probabilities. Empty for the geometric path, which derives them from labels and cuts.
  Mask mask;
  GrayImage frame;
  std::array<float, 10> probs{};
  bool owns(int x, int y) const {
    if (cut_lo.empty()) return true;
    const int r = y - cut_y0;
    return r >= 0 && r < static_cast<int>(cut_lo.size()) && x >= cut_lo[r] && x < cut_hi[r];
  }
};

inline double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
  return v[v.size() / 2];
}

// The group's ink inside `box` (working-image coordinates), restricted to its columns after a split.
inline Mask group_mask(const Labeling& lab, const DigitGroup& g, const Box& box) {
  Mask m(box.width(), box.height());
  std::vector<uint8_t> member(lab.components.size(), 0);
  for (int l : g.labels) member[static_cast<size_t>(l)] = 1;
  for (int y = box.y0; y < box.y1; ++y)
    for (int x = box.x0; x < box.x1; ++x) {
      const int l = lab(x, y);
      if (l >= 0 && member[static_cast<size_t>(l)]) m(x - box.x0, y - box.y0) = 1;
    }
  return m;
}

inline Box tight_box(const Mask& m, int ox, int oy) {
  Box b{m.width, m.height, 0, 0};
  for (int y = 0; y < m.height; ++y)
    for (int x = 0; x < m.width; ++x)
      if (m(x, y)) b.x0 = std::min(b.x0, x), b.y0 = std::min(b.y0, y), b.x1 = std::max(b.x1, x + 1),
                   b.y1 = std::max(b.y1, y + 1);
  if (b.empty()) return {};
  return {b.x0 + ox, b.y0 + oy, b.x1 + ox, b.y1 + oy};
}

// Splits a mark wider than a digit into touching digits, or returns it whole. Cuts go at
// vertical-projection minima near multiples of width / n; a split is accepted only when every
// cut crosses a single stroke (two touching digits meet at one point; a cut through a 0 or an 8
// crosses two) and every part is nearly as tall as a digit (a cut through a 7's long bar leaves
// a short part).
// The top-to-bottom path through `m` that crosses the least ink, moving at most one column per
// row, within the middle 60 % of the columns: where two digits whose boxes overlap can be told
// apart (no straight column passes between a 9's stem and the 8 it leans on, a winding path
// does). `xs[y]` is the path's column in row y; returns the ink pixels it crosses.
// `lo`/`hi` bound the columns (clamped to [1, w - 1]); by default the middle 60 %.
inline double least_ink_path(const Mask& m, std::vector<int>& xs, int lo = -1, int hi = -1) {
  const int w = m.width, h = m.height;
  const int xl = std::max(1, lo >= 0 ? lo : static_cast<int>(std::lround(0.2 * w)));
  const int xr = std::min(w - 1, hi >= 0 ? hi : static_cast<int>(std::lround(0.8 * w)));
  xs.assign(static_cast<size_t>(h), w / 2);
  if (xr < xl || h == 0) return 1e30;
  const int n = xr - xl + 1;
  std::vector<double> cost(static_cast<size_t>(n) * h);
  std::vector<int8_t> step(static_cast<size_t>(n) * h, 0);
  for (int y = 0; y < h; ++y)
    for (int i = 0; i < n; ++i) {
      double best = 0;
      if (y > 0) {
        best = 1e30;
        for (int d = -1; d <= 1; ++d) {
          if (i + d < 0 || i + d >= n) continue;
          const double c = cost[static_cast<size_t>(y - 1) * n + i + d] + 0.05 * std::abs(d);  // prefer straight
          if (c < best) best = c, step[static_cast<size_t>(y) * n + i] = static_cast<int8_t>(d);
        }
      }
      cost[static_cast<size_t>(y) * n + i] = best + m(xl + i, y);
    }
  int i = 0;
  for (int k = 1; k < n; ++k)
    if (cost[static_cast<size_t>(h - 1) * n + k] < cost[static_cast<size_t>(h - 1) * n + i]) i = k;
  double ink = 0;
  for (int y = h - 1; y >= 0; --y) {
    xs[static_cast<size_t>(y)] = xl + i;
    ink += m(xl + i, y);
    i += step[static_cast<size_t>(y) * n + i];
  }
  return ink;
}

inline std::vector<DigitGroup> split_group(const Labeling& lab, const DigitGroup& g, double W, double H, double sw) {
  const double w = g.box.width(), h = g.box.height();
  if (w < 1.2 * W || w < 0.8 * h) return {g};
  const Mask m = group_mask(lab, g, g.box);
  const double min_part_h = 0.78 * std::max(H, 0.8 * h);
  // Two parts on either side of per-row cut columns, each tall and wide enough to be a digit.
  auto two_parts = [&](const std::vector<int>& xs) -> std::vector<DigitGroup> {
    std::vector<DigitGroup> out;
    for (int side = 0; side < 2; ++side) {
      DigitGroup p = g;
      p.cut_y0 = g.box.y0;
      p.cut_lo.resize(static_cast<size_t>(m.height));
      p.cut_hi.resize(static_cast<size_t>(m.height));
      Mask pm(m.width, m.height);
      for (int y = 0; y < m.height; ++y) {
        const int a = side == 0 ? 0 : xs[y], b = side == 0 ? xs[y] : m.width;
        p.cut_lo[y] = g.box.x0 + a;
        p.cut_hi[y] = g.box.x0 + b;
        for (int x = a; x < b; ++x) pm(x, y) = m(x, y);
      }
      p.box = tight_box(pm, g.box.x0, g.box.y0);
      if (p.box.empty() || p.box.height() < min_part_h || p.box.width() < 0.15 * H) return {};
      out.push_back(p);
    }
    return out;
  };
  if (w < 1.45 * W || w < 0.9 * h) {
    // Narrower than two typical digits: only a winding cut that crosses (almost) no ink splits
    // it, i.e. two digits whose boxes overlap were merged as pieces of one. A cut through even
    // one stroke here splits more single wide digits (0, 2, 4) than it separates touching pairs.
    std::vector<int> xs;
    if (least_ink_path(m, xs) > 0.5 * sw) return {g};
    auto parts = two_parts(xs);
    return parts.empty() ? std::vector<DigitGroup>{g} : parts;
  }
  std::vector<int> profile(static_cast<size_t>(m.width), 0), runs(static_cast<size_t>(m.width), 0);
  for (int x = 0; x < m.width; ++x)
    for (int y = 0; y < m.height; ++y) {
      profile[x] += m(x, y);
      runs[x] += m(x, y) && (y == 0 || !m(x, y - 1));
    }
  for (int n = std::max(2, static_cast<int>(std::lround(w / W))); n >= 2; --n) {
    const double step = w / n;
    std::vector<int> cuts{0};
    bool ok = true;
    for (int k = 1; k < n && ok; ++k) {
      const double c = k * step;
      int best = -1;
      double best_cost = 1e30;
      const int lo = std::max(cuts.back() + 1, static_cast<int>(c - 0.4 * step));
      const int hi = std::min(m.width - 1, static_cast<int>(c + 0.4 * step));
      for (int x = lo; x <= hi; ++x) {
        const double cost = 4.0 * sw * runs[x] + profile[x] + 0.5 * sw * std::abs(x - c) / step;
        if (cost < best_cost) best_cost = cost, best = x;
      }
      ok = best >= 0 && (runs[best] <= 1 || profile[best] <= 1.5 * sw);
      cuts.push_back(best);
    }
    if (!ok) continue;
    cuts.push_back(m.width);
    std::vector<DigitGroup> out;
    for (size_t k = 0; k + 1 < cuts.size() && ok; ++k) {
      DigitGroup p = g;
      p.cut_y0 = g.box.y0;
      p.cut_lo.assign(static_cast<size_t>(m.height), g.box.x0 + cuts[k]);
      p.cut_hi.assign(static_cast<size_t>(m.height), g.box.x0 + cuts[k + 1]);
      Mask pm(m.width, m.height);
      for (int y = 0; y < m.height; ++y)
        for (int x = cuts[k]; x < cuts[k + 1]; ++x) pm(x, y) = m(x, y);
      p.box = tight_box(pm, g.box.x0, g.box.y0);
      ok = !p.box.empty() && p.box.height() >= min_part_h && p.box.width() >= 0.15 * H;
      out.push_back(p);
    }
    if (ok) return out;
  }
  return {g};
}

// ---- recognition-driven splitting ---------------------------------------------------------------

// Aspect ratio (ink box width / height) of MNIST's 60k training digits binarised at 0.5, per
// class: log of the median and the spread of log(aspect) (interquartile range / 1.35).
inline constexpr std::array<double, 10> kAspectMedian = {0.90, 0.40, 0.90, 0.80, 0.80, 0.90, 0.70, 0.75, 0.70, 0.65};
inline constexpr std::array<double, 10> kAspectP25 = {0.80, 0.25, 0.80, 0.70, 0.65, 0.75, 0.60, 0.65, 0.60, 0.60};
inline constexpr std::array<double, 10> kAspectP75 = {1.00, 0.55, 1.11, 0.90, 0.90, 1.11, 0.80, 0.85, 0.85, 0.75};

// Log prior of a digit of class `c` having this aspect ratio, up to a constant: Gaussian in
// log(aspect) near the median, linear beyond two spreads (the data's tails are heavy).
inline double aspect_log_prior(int c, double aspect) {
  const double sigma = (std::log(kAspectP75[c]) - std::log(kAspectP25[c])) / 1.35;
  double z = (std::log(std::max(aspect, 1e-3)) - std::log(kAspectMedian[c])) / sigma;
  if (z < 0) z *= 0.5;
  z = std::abs(z);
  return z <= 2 ? -0.5 * z * z : -(2 * z - 2);
}

// A top-to-bottom cut through a mark: in row y, columns < xs[y] are left of it (mark-local).
struct Cut {
  std::vector<int> xs;
  double ink = 0;   // ink pixels the cut runs through
  double mean = 0;  // mean column
};

inline Cut make_cut(const Mask& m, std::vector<int> xs) {
  Cut c;
  for (int y = 0; y < m.height; ++y) {
    int& x = xs[static_cast<size_t>(y)];
    x = std::clamp(x, 0, m.width);
    if (x > 0 && x < m.width) c.ink += m(x, y);
    c.mean += x;
  }
  c.mean /= std::max(1, m.height);
  c.xs = std::move(xs);
  return c;
}

// Candidate cuts through mark `m`: at the minima of the vertical projection, each straight, as
// the least-ink winding path near it, and slanted (the gap between two slanted digits is slanted).
// Sorted by mean column, the mark's left and right edges first and last.
inline std::vector<Cut> candidate_cuts(const Mask& m, double W, double H, double sw, int max_positions) {
  const int w = m.width, h = m.height;
  std::vector<Cut> cuts;
  cuts.push_back(make_cut(m, std::vector<int>(static_cast<size_t>(h), 0)));
  std::vector<double> cost(static_cast<size_t>(w), 0.0);
  for (int x = 0; x < w; ++x)
    for (int y = 0; y < h; ++y) cost[x] += m(x, y) + (m(x, y) && (y == 0 || !m(x, y - 1))) * 2.0 * sw;
  const int margin = std::max(1, static_cast<int>(std::lround(0.1 * H)));
  std::vector<int> minima;
  for (int x = margin; x <= w - margin; ++x)
    if ((x == 0 || cost[x] <= cost[x - 1]) && (x + 1 >= w || cost[x] <= cost[x + 1])) minima.push_back(x);
  std::stable_sort(minima.begin(), minima.end(), [&](int a, int b) { return cost[a] < cost[b]; });
  std::vector<int> pos;
  for (int x : minima) {
    if (static_cast<int>(pos.size()) >= max_positions) break;
    bool far = true;
    for (int p : pos) far = far && std::abs(p - x) >= 0.12 * H;
    if (far) pos.push_back(x);
  }
  std::vector<int> xs;
  if (least_ink_path(m, xs) < 0.5 * sw) cuts.push_back(make_cut(m, xs));  // between overlapping boxes
  for (int x : pos) {
    cuts.push_back(make_cut(m, std::vector<int>(static_cast<size_t>(h), x)));
    least_ink_path(m, xs, static_cast<int>(std::lround(x - 0.3 * W)), static_cast<int>(std::lround(x + 0.3 * W)));
    cuts.push_back(make_cut(m, xs));
    Cut best_slant;
    best_slant.ink = 1e30;
    for (double slope : {-0.35, -0.18, 0.18, 0.35}) {
      for (int y = 0; y < h; ++y) xs[static_cast<size_t>(y)] = static_cast<int>(std::lround(x + slope * (y - 0.5 * h)));
      Cut c = make_cut(m, xs);
      if (c.ink < best_slant.ink) best_slant = std::move(c);
    }
    cuts.push_back(std::move(best_slant));
  }
  cuts.push_back(make_cut(m, std::vector<int>(static_cast<size_t>(h), w)));
  std::sort(cuts.begin() + 1, cuts.end() - 1, [](const Cut& a, const Cut& b) { return a.mean < b.mean; });
  cuts.erase(std::unique(cuts.begin(), cuts.end(), [](const Cut& a, const Cut& b) { return a.xs == b.xs; }), cuts.end());
  return cuts;
}

// The ink of `m` between cuts a and b, as a mask the size of its bounding box (`box`, mark-local).
// Small pieces of a neighbour that a cut sliced off are dropped. False when the cuts cross or
// nothing is left.
inline bool piece_between(const Mask& m, const Cut& a, const Cut& b, bool cut_a, bool cut_b, Mask& out, Box& box) {
  const int w = m.width, h = m.height;
  Mask pm(w, h);
  for (int y = 0; y < h; ++y) {
    const int lo = a.xs[static_cast<size_t>(y)], hi = b.xs[static_cast<size_t>(y)];
    if (lo > hi) return false;
    for (int x = lo; x < hi; ++x) pm(x, y) = m(x, y);
  }
  if (cut_a || cut_b) {
    const Labeling lab = connected_components(pm, 8);
    if (lab.components.size() > 1) {
      long long big = 0;
      for (const auto& c : lab.components) big = std::max(big, c.area);
      std::vector<uint8_t> touches(lab.components.size(), 0);
      for (int y = 0; y < h; ++y) {
        const int lo = a.xs[static_cast<size_t>(y)], hi = b.xs[static_cast<size_t>(y)];
        if (cut_a && lo < w && lab(lo, y) >= 0) touches[static_cast<size_t>(lab(lo, y))] = 1;
        if (cut_b && hi > 0 && lab(hi - 1, y) >= 0) touches[static_cast<size_t>(lab(hi - 1, y))] = 1;
      }
      for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
          const int l = lab(x, y);
          if (l >= 0 && touches[static_cast<size_t>(l)] && lab.components[static_cast<size_t>(l)].area * 8 < big) pm(x, y) = 0;
        }
    }
  }
  box = tight_box(pm, 0, 0);
  if (box.empty()) return false;
  out = Mask(box.width(), box.height());
  for (int y = box.y0; y < box.y1; ++y)
    for (int x = box.x0; x < box.x1; ++x) out(x - box.x0, y - box.y0) = pm(x, y);
  return true;
}

// One mark's search space: candidate cuts and the pieces between pairs of them.
struct MarkSearch {
  const DigitGroup* group = nullptr;
  std::vector<Cut> cuts;
  struct Piece {
    int a = 0, b = 0;  // cuts on the left and right
    Box box;           // working-image coordinates
    Mask mask;
    size_t crop = 0;   // index into the batch sent to the classifier
  };
  std::vector<Piece> pieces;
  // The geometric rules' segmentation (split_group), its crops and the ink its cuts go through.
  std::vector<DigitGroup> geometric;
  std::vector<size_t> geometric_crops;
  double geometric_cut_ink = 0;
};

// The cuts the search considers in mark `m` (its ink, box-sized): candidate_cuts() when the mark
// is wide enough to hold two digits (at least 0.7 of a digit height), else only its edges.
inline std::vector<Cut> mark_cuts(const Mask& m, double W, double H, double sw, bool split_touching) {
  const double w = m.width, h = m.height;
  if (split_touching && w >= 0.7 * std::max(H, h)) return candidate_cuts(m, W, H, sw, w < 1.5 * W ? 4 : 8);
  std::vector<Cut> cuts;
  cuts.push_back(make_cut(m, std::vector<int>(static_cast<size_t>(m.height), 0)));
  cuts.push_back(make_cut(m, std::vector<int>(static_cast<size_t>(m.height), m.width)));
  return cuts;
}

// The pieces between pairs of `cuts` that could be one digit (the whole mark always; otherwise
// no wider than two typical digits, nearly as tall as the mark), with mark-local boxes and
// masks; `crop` is left 0. Shared by segment_digits() and the training pieces of
// vision/reading_pieces.hpp, so the classifier learns on exactly what the search shows it.
inline std::vector<MarkSearch::Piece> mark_pieces(const Mask& m, const std::vector<Cut>& cuts, double W, double H) {
  std::vector<MarkSearch::Piece> pieces;
  const int last = static_cast<int>(cuts.size()) - 1;
  const double min_h = 0.6 * std::max(H, 0.8 * m.height);
  for (int a = 0; a < last; ++a)
    for (int b = a + 1; b <= last; ++b) {
      const bool whole = a == 0 && b == last;
      const double span = cuts[static_cast<size_t>(b)].mean - cuts[static_cast<size_t>(a)].mean;
      if (!whole && (span > 2.0 * W || span < 0.1 * H)) continue;
      MarkSearch::Piece piece{a, b, {}, {}, 0};
      if (!piece_between(m, cuts[static_cast<size_t>(a)], cuts[static_cast<size_t>(b)], a > 0, b < last, piece.mask,
                         piece.box))
        continue;
      if (!whole && (piece.box.height() < min_h || piece.box.width() < 0.08 * H)) continue;
      pieces.push_back(std::move(piece));
    }
  return pieces;
}

// A piece's score as one digit: its best class's log-probability plus that class's aspect prior,
// minus the digit cost.
inline double piece_score(const std::array<float, 10>& pr, const Box& box, const SegmentOptions& opt) {
  const double aspect = static_cast<double>(box.width()) / std::max(1, box.height());
  double score = -1e300;
  for (int c = 0; c < 10; ++c)
    score = std::max(score, std::log(std::max(pr[static_cast<size_t>(c)], 1e-6f)) + opt.shape_weight * aspect_log_prior(c, aspect));
  return score - opt.digit_cost;
}

// Picks the segmentation of one mark that maximises the joint score: per digit, the best class's
// log-probability plus its aspect prior, minus the digit cost; minus the cost of the ink cut
// through. A dynamic programme over the cuts, left to right.
inline std::vector<DigitGroup> best_segmentation(const MarkSearch& s, const std::vector<GrayImage>& frames,
                                                 const std::vector<std::array<float, 10>>& probs, double sw,
                                                 const SegmentOptions& opt, double& best_score) {
  const int n = static_cast<int>(s.cuts.size());
  std::vector<double> best(static_cast<size_t>(n), -1e300);
  std::vector<int> from(static_cast<size_t>(n), -1);
  best[0] = 0;
  std::vector<std::vector<int>> into(static_cast<size_t>(n));  // pieces ending at each cut
  for (size_t k = 0; k < s.pieces.size(); ++k) into[static_cast<size_t>(s.pieces[k].b)].push_back(static_cast<int>(k));
  for (int j = 1; j < n; ++j)
    for (int k : into[static_cast<size_t>(j)]) {
      const auto& p = s.pieces[static_cast<size_t>(k)];
      if (best[static_cast<size_t>(p.a)] <= -1e299) continue;
      const auto& pr = probs[p.crop];
      double score = piece_score(pr, p.box, opt);
      if (p.a > 0) score -= opt.cut_cost * s.cuts[static_cast<size_t>(p.a)].ink / sw;
      if (best[static_cast<size_t>(p.a)] + score > best[static_cast<size_t>(j)]) {
        best[static_cast<size_t>(j)] = best[static_cast<size_t>(p.a)] + score;
        from[static_cast<size_t>(j)] = k;
      }
    }
  std::vector<DigitGroup> out;
  for (int j = n - 1; j > 0 && from[static_cast<size_t>(j)] >= 0;) {
    const auto& p = s.pieces[static_cast<size_t>(from[static_cast<size_t>(j)])];
    DigitGroup g = *s.group;
    g.box = p.box;
    g.mask = p.mask;
    g.frame = frames[p.crop];
    g.probs = probs[p.crop];
    out.push_back(std::move(g));
    j = p.a;
  }
  std::reverse(out.begin(), out.end());
  best_score = best[static_cast<size_t>(n - 1)];
  return out;
}
}  // namespace detail

/// Finds the digits in `image` (any size, either polarity) and returns them framed as MNIST
/// digits, ordered line by line, left to right. An image without ink (blank, uniform, noise
/// only, too small) gives an empty vector.
///
/// With a `classify` callback, touching digits are split by recognition instead of geometric
/// rules alone: each mark wide enough for two digits is cut at every plausible place (straight,
/// winding and slanted cuts at projection minima), every piece is classified, and the
/// segmentation that maximises the sum of the pieces' log-probabilities plus a per-class aspect
/// prior, minus the ink cut through and a per-digit cost, is chosen; each crop then carries its
/// `probs`. The callback keeps vision/ independent of nn/.
inline std::vector<DigitCrop> segment_digits(const GrayImage& image, const SegmentOptions& opt = {},
                                             const DigitClassifier& classify = {}) {
  EMBER_CHECK(image.data.size() == static_cast<size_t>(image.width) * static_cast<size_t>(image.height),
              "vision::segment_digits: image is ", image.width, "x", image.height, " but holds ", image.data.size(),
              " pixels");
  EMBER_CHECK(opt.max_side >= 16, "vision::segment_digits: max_side must be >= 16, got ", opt.max_side);
  std::vector<DigitCrop> result;
  if (image.empty()) return result;
  // 1. Working size.
  const int longer = std::max(image.width, image.height);
  const double scale = longer > opt.max_side ? static_cast<double>(opt.max_side) / longer : 1.0;
  GrayImage work = scale < 1.0 ? resize_area(image, std::max(1, static_cast<int>(std::lround(image.width * scale))),
                                             std::max(1, static_cast<int>(std::lround(image.height * scale))))
                               : image;
  const double sx = static_cast<double>(image.width) / work.width, sy = static_cast<double>(image.height) / work.height;
  // 2-3. Ink and components.
  const Binarization bin = binarize(work, opt.binarize);
  const Labeling lab = connected_components(bin.ink, 8);
  if (lab.components.empty()) return result;
  long long max_area = 0;
  for (const auto& c : lab.components) max_area = std::max(max_area, c.area);
  const long long min_area = std::max<long long>(4, static_cast<long long>(opt.speck_ratio * max_area));
  std::vector<detail::DigitGroup> groups;
  for (const auto& c : lab.components)
    if (c.area >= min_area) groups.push_back({{c.label}, c.box, c.area, 0, {}, {}, {}, {}, {}});
  if (groups.empty()) return result;
  // Typical digit height: the median height of the substantial marks.
  auto typical_height = [&] {
    std::vector<double> hs;
    long long big = 0;
    for (const auto& g : groups) big = std::max(big, g.area);
    for (const auto& g : groups)
      if (g.area * 5 >= big) hs.push_back(g.box.height());
    return detail::median(hs);
  };
  double H = typical_height();
  // 4. Merge broken strokes: pieces that overlap horizontally by half the narrower one and are
  // vertically close, as long as the union is not much taller than a digit.
  if (opt.merge_broken) {
    for (bool changed = true; changed;) {
      changed = false;
      for (size_t i = 0; i < groups.size() && !changed; ++i)
        for (size_t j = i + 1; j < groups.size() && !changed; ++j) {
          const Box &a = groups[i].box, &b = groups[j].box;
          const int ov = std::min(a.x1, b.x1) - std::max(a.x0, b.x0);
          const int gap = std::max(a.y0, b.y0) - std::min(a.y1, b.y1);
          const Box u = a.united(b);
          // Overlap: by half the narrower piece, or (a 4 or 7 broken where the bar meets the
          // upright) by a little when the union is no wider than a digit.
          const bool overlap = ov >= 0.5 * std::min(a.width(), b.width()) ||
                               (ov >= 0.15 * std::min(a.width(), b.width()) && ov >= 2 && u.width() <= 1.1 * H);
          const bool close = gap <= 0.3 * H && u.height() <= 1.35 * H;
          // A small fragment (a bar or a piece of a broken stroke) beside or above a digit,
          // nearly touching it.
          const auto& small = a.height() < b.height() ? a : b;
          const int dx = std::max(0, -ov), dy = std::max(0, gap);
          const bool fragment = small.height() < 0.5 * H && small.width() < 0.8 * H && std::max(dx, dy) <= 0.15 * H &&
                                u.width() <= 1.1 * H && u.height() <= 1.25 * H;
          if ((overlap && close) || fragment) {
            groups[i].labels.insert(groups[i].labels.end(), groups[j].labels.begin(), groups[j].labels.end());
            groups[i].box = u;
            groups[i].area += groups[j].area;
            groups.erase(groups.begin() + static_cast<std::ptrdiff_t>(j));
            changed = true;
          }
        }
    }
    H = typical_height();
  }
  // Drop marks too small to be digits.
  std::erase_if(groups, [&](const detail::DigitGroup& g) {
    return g.box.height() < std::max<double>(opt.min_digit_height, opt.min_height_ratio * H) &&
           g.box.width() < std::max<double>(opt.min_digit_height, opt.min_height_ratio * H);
  });
  std::erase_if(groups, [&](const detail::DigitGroup& g) { return g.box.height() < opt.min_digit_height * 0.5; });
  if (groups.empty()) return result;
  H = typical_height();
  // 5. Split touching digits. Typical width: from the widths of the marks of digit height that are not
  // narrow 1s, bounded to handwriting's usual aspect ratios (so a string whose digits all touch
  // still splits).
  std::vector<detail::DigitGroup> parts;
  std::vector<double> ws;
  for (const auto& g : groups)
    if (g.box.height() >= 0.6 * H && g.box.width() >= 0.35 * g.box.height()) ws.push_back(g.box.width());
  std::sort(ws.begin(), ws.end());
  const double W = std::clamp(ws.empty() ? 0.7 * H : ws[(ws.size() - 1) / 2], 0.5 * H, 0.85 * H);
  const double sw = std::max(1.0, stroke_width(bin.ink));
  if (classify) {
    // Recognition-driven: every mark wide enough to hold two digits is cut every plausible way,
    // all pieces of the image go to the classifier in one batch, and per mark the segmentation
    // with the best joint score wins (detail::best_segmentation).
    std::vector<detail::MarkSearch> searches(groups.size());
    std::vector<GrayImage> frames;
    // (the geometric segmentation is framed and scored too, as the default to beat)
    for (size_t i = 0; i < groups.size(); ++i) {
      const auto& g = groups[i];
      auto& s = searches[i];
      s.group = &g;
      const Mask m = detail::group_mask(lab, g, g.box);
      s.cuts = detail::mark_cuts(m, W, H, sw, opt.split_touching);
      s.geometric = opt.split_touching ? detail::split_group(lab, g, W, H, sw) : std::vector<detail::DigitGroup>{g};
      for (size_t k = 0; k < s.geometric.size(); ++k) {
        const auto& p = s.geometric[k];
        Mask pm = detail::group_mask(lab, p, p.box);
        for (int y = 0; y < pm.height; ++y)
          for (int x = 0; x < pm.width; ++x)
            if (!p.owns(p.box.x0 + x, p.box.y0 + y)) pm(x, y) = 0;
        if (k > 0)
          for (size_t r = 0; r < p.cut_lo.size(); ++r) {
            const int x = p.cut_lo[r], y = p.cut_y0 + static_cast<int>(r);
            if (x >= g.box.x0 && x < g.box.x1) s.geometric_cut_ink += m(x - g.box.x0, y - g.box.y0);
          }
        s.geometric_crops.push_back(frames.size());
        frames.push_back(mnist_frame(pm, opt));
      }
      s.pieces = detail::mark_pieces(m, s.cuts, W, H);
      for (auto& piece : s.pieces) {
        piece.box = {piece.box.x0 + g.box.x0, piece.box.y0 + g.box.y0, piece.box.x1 + g.box.x0, piece.box.y1 + g.box.y0};
        piece.crop = frames.size();
        frames.push_back(mnist_frame(piece.mask, opt));
      }
    }
    const auto probs = classify(frames);
    EMBER_CHECK(probs.size() == frames.size(), "vision::segment_digits: the classifier returned ", probs.size(),
                " probability vectors for ", frames.size(), " crops");
    for (auto& s : searches) {
      double best_score = -1e300;
      auto best = detail::best_segmentation(s, frames, probs, sw, opt, best_score);
      double geo_score = -opt.cut_cost * s.geometric_cut_ink / sw;
      for (size_t k = 0; k < s.geometric.size(); ++k) {
        auto& p = s.geometric[k];
        const size_t c = s.geometric_crops[k];
        geo_score += detail::piece_score(probs[c], p.box, opt);
        p.frame = frames[c];
        p.probs = probs[c];
        p.mask = Mask(1, 1, 1);  // marks it as framed and classified
      }
      if (best.empty() || best_score <= geo_score + opt.override_margin) best = std::move(s.geometric);
      parts.insert(parts.end(), std::make_move_iterator(best.begin()), std::make_move_iterator(best.end()));
    }
  } else if (opt.split_touching) {
    for (auto& g : groups) {
      auto split = detail::split_group(lab, g, W, H, sw);
      parts.insert(parts.end(), split.begin(), split.end());
    }
  } else {
    parts = groups;
  }
  // 6. Lines: sorted by vertical centre, a new line starts where the centre jumps by more than
  // 0.6 digit heights from the current line's mean.
  std::vector<size_t> order(parts.size());
  std::iota(order.begin(), order.end(), size_t{0});
  auto cy = [&](size_t i) { return 0.5 * (parts[i].box.y0 + parts[i].box.y1); };
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return cy(a) < cy(b); });
  std::vector<int> line_of(parts.size(), 0);
  int line = 0;
  double line_sum = 0, line_n = 0;
  for (size_t k = 0; k < order.size(); ++k) {
    const double c = cy(order[k]);
    if (line_n > 0 && c - line_sum / line_n > 0.6 * H) ++line, line_sum = 0, line_n = 0;
    line_of[order[k]] = line;
    line_sum += c, line_n += 1;
  }
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (line_of[a] != line_of[b]) return line_of[a] < line_of[b];
    return parts[a].box.x0 + parts[a].box.x1 < parts[b].box.x0 + parts[b].box.x1;
  });
  // 7. Frame each digit.
  for (size_t i : order) {
    const auto& p = parts[i];
    DigitCrop d;
    d.box = {std::clamp(static_cast<int>(std::floor(p.box.x0 * sx)), 0, image.width),
             std::clamp(static_cast<int>(std::floor(p.box.y0 * sy)), 0, image.height),
             std::clamp(static_cast<int>(std::ceil(p.box.x1 * sx)), 0, image.width),
             std::clamp(static_cast<int>(std::ceil(p.box.y1 * sy)), 0, image.height)};
    if (!p.mask.empty()) {  // chosen by the recognition-driven search: already framed and classified
      d.image = p.frame;
      d.probs = p.probs;
    } else {
      Mask m = detail::group_mask(lab, p, p.box);
      for (int y = 0; y < m.height; ++y)
        for (int x = 0; x < m.width; ++x)
          if (!p.owns(p.box.x0 + x, p.box.y0 + y)) m(x, y) = 0;
      d.image = mnist_frame(m, opt);
    }
    d.line = line_of[i];
    result.push_back(std::move(d));
  }
  return result;
}

}  // namespace ember::vision

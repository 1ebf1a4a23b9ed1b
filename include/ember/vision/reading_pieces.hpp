#pragma once
/// Training examples for a digit classifier that also knows "this is not one digit": the pieces
/// that segment_digits()'s recognition-driven search shows the classifier, made from labelled
/// single digits (MNIST's training set) with known ground truth.
///
/// Why: the search picks the cuts of a mark whose pieces the classifier reads most confidently.
/// A network trained on single digits only is confident on half a 0 (`(` read as 6) and on two
/// squeezed digits (`13` read as 8), so the search cannot tell a good cut from a bad one. An
/// 11th class, kNotOneDigit, trained on exactly those pieces, takes that probability away.
///
/// Each "mark" is one digit or two digits drawn touching or overlapping (a crossing stroke, as
/// a 7's bar running into a 1), at a random height, slant, rotation, width and stroke width
/// (threshold of the up-sampled digit). The mark is cut like segment_digits() cuts it
/// (detail::mark_cuts / detail::mark_pieces), and each piece is labelled from the ink it holds:
///  - nearly all of one digit and almost nothing of the other: that digit (these re-framed,
///    binarised, re-stroked digits are also the augmentation `read` needs);
///  - clearly less than one digit, or a good share of both: kNotOneDigit;
///  - in between (ambiguous): dropped.
/// Every piece is framed by mnist_frame(), as segment_digits() frames it.
///
/// Example:
/// ```
///   auto digit = [&](int64_t i) { return std::pair{image_of(i), label_of(i)}; };  // 28 x 28, ink = 1
///   auto pieces = ember::vision::reading_pieces(60000, digit, 10000, /*seed=*/1);
///   for (auto& p : pieces) { /* p.image: 28 x 28 framed crop, p.label: 0-9 or kNotOneDigit */ }
/// ```
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include "ember/core/error.hpp"
#include "ember/core/parallel.hpp"
#include "ember/vision/digits.hpp"

namespace ember::vision {

/// The label of a piece that is not one digit (a part of a digit, two digits, a digit and a
/// part of its neighbour).
inline constexpr int kNotOneDigit = 10;

/// Options of reading_pieces().
struct ReadingPiecesOptions {
  /// Fraction of marks made of two touching digits (the others are one digit, whose halves are
  /// the negatives of a wide 0, 2 or 4).
  double pair_fraction = 0.7;
  /// Digit height in pixels of the working image (segment_digits() sees 20-130 px digits).
  double min_height = 22, max_height = 72;
  /// At most this many kNotOneDigit pieces and this many single-digit pieces per mark (a mark
  /// yields tens of pieces, most of them not one digit).
  int rejects_per_mark = 3;
  int digits_per_mark = 2;
  /// Framing (stroke normalisation, as in `read`).
  SegmentOptions segment;
};

/// One training example: a framed 28 x 28 crop (white on black, [0, 1]) and its label.
struct LabeledCrop {
  GrayImage image;
  int label = 0;
};

namespace detail {

// splitmix64: a small, seedable generator; each mark has its own, so the pieces do not depend
// on the number of threads.
struct PieceRng {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform(double lo = 0, double hi = 1) { return lo + (hi - lo) * static_cast<double>(next() >> 11) * 0x1.0p-53; }
  int64_t integer(int64_t n) { return static_cast<int64_t>(next() % static_cast<uint64_t>(std::max<int64_t>(n, 1))); }
};

// The ink of a 28 x 28 digit (ink = 1) scaled to `height` px, `width_scale` times as wide,
// rotated by `degrees` and sheared by `shear`, bilinear, set where >= `threshold` (a low
// threshold thickens the stroke, a high one thins it). Tightly cropped.
inline Mask render_digit_mask(const GrayImage& src, double height, double width_scale, double degrees, double shear,
                              double threshold) {
  Box b{src.width, src.height, 0, 0};
  for (int y = 0; y < src.height; ++y)
    for (int x = 0; x < src.width; ++x)
      if (src(x, y) > 0.1f) b.x0 = std::min(b.x0, x), b.y0 = std::min(b.y0, y), b.x1 = std::max(b.x1, x + 1), b.y1 = std::max(b.y1, y + 1);
  if (b.empty()) return {};
  const double s = height / b.height(), sxs = s * width_scale;
  const double a = degrees * 3.141592653589793 / 180, ca = std::cos(a), sa = std::sin(a);
  const double cx = 0.5 * (b.x0 + b.x1), cy = 0.5 * (b.y0 + b.y1);
  // Forward map (source offset u, v from the centre): x = ca*(sxs*u + shear*s*v) - sa*s*v, y = sa*(...) + ca*s*v.
  const double m00 = ca * sxs, m01 = ca * shear * s - sa * s, m10 = sa * sxs, m11 = sa * shear * s + ca * s;
  const double det = m00 * m11 - m01 * m10;
  const double hw = 0.5 * b.width() + 1, hh = 0.5 * b.height() + 1;
  const double ow = std::abs(m00) * hw + std::abs(m01) * hh + 2, oh = std::abs(m10) * hw + std::abs(m11) * hh + 2;
  Mask out(static_cast<int>(std::ceil(2 * ow)), static_cast<int>(std::ceil(2 * oh)));
  auto at = [&](int px, int py) { return (px < 0 || py < 0 || px >= src.width || py >= src.height) ? 0.f : src(px, py); };
  for (int y = 0; y < out.height; ++y)
    for (int x = 0; x < out.width; ++x) {
      const double dx = x + 0.5 - ow, dy = y + 0.5 - oh;
      const double u = (m11 * dx - m01 * dy) / det + cx - 0.5, v = (-m10 * dx + m00 * dy) / det + cy - 0.5;
      const int x0 = static_cast<int>(std::floor(u)), y0 = static_cast<int>(std::floor(v));
      const double fx = u - x0, fy = v - y0;
      const double val = (1 - fy) * ((1 - fx) * at(x0, y0) + fx * at(x0 + 1, y0)) + fy * ((1 - fx) * at(x0, y0 + 1) + fx * at(x0 + 1, y0 + 1));
      out(x, y) = val >= threshold;
    }
  const Box t = tight_box(out, 0, 0);
  if (t.empty()) return {};
  Mask crop(t.width(), t.height());
  for (int y = t.y0; y < t.y1; ++y)
    for (int x = t.x0; x < t.x1; ++x) crop(x - t.x0, y - t.y0) = out(x, y);
  return crop;
}

// One mark (one or two digits) cut like segment_digits() cuts it; appends its labelled pieces.
inline void mark_examples(const std::function<std::pair<GrayImage, int>(int64_t)>& digit, int64_t num_digits,
                          PieceRng& rng, const ReadingPiecesOptions& opt, std::vector<LabeledCrop>& out) {
  const bool pair = rng.uniform() < opt.pair_fraction;
  const double h = rng.uniform(opt.min_height, opt.max_height);
  const double slant = rng.uniform(-0.25, 0.25);
  std::vector<Mask> inks;
  std::vector<int> labels;
  for (int k = 0; k < (pair ? 2 : 1); ++k) {
    auto [img, label] = digit(rng.integer(num_digits));
    EMBER_CHECK(label >= 0 && label <= 9, "vision::reading_pieces: digit label ", label, " is outside 0..9");
    Mask m = render_digit_mask(img, h * rng.uniform(0.9, 1.1), rng.uniform(0.8, 1.25), rng.uniform(-10, 10),
                               slant + rng.uniform(-0.08, 0.08), rng.uniform(0.25, 0.65));
    if (m.empty() || m.count() < 8) return;
    inks.push_back(std::move(m));
    labels.push_back(label);
  }
  // Layout: the second digit overlaps the first by 0-35 % of the narrower width (boxes that
  // touch, strokes that cross), shifted up or down a little.
  int bx = 0, ya = 0, yb = 0;
  if (pair) {
    const int ov = static_cast<int>(std::lround(rng.uniform(0.0, 0.35) * std::min(inks[0].width, inks[1].width)));
    bx = inks[0].width - ov;
    const int d = static_cast<int>(std::lround(rng.uniform(-0.12, 0.12) * h));
    ya = std::max(0, -d), yb = std::max(0, d);
  }
  const int cw = pair ? std::max(inks[0].width, bx + inks[1].width) : inks[0].width;
  const int ch = pair ? std::max(ya + inks[0].height, yb + inks[1].height) : inks[0].height;
  Mask a(cw, ch), b(cw, ch), m(cw, ch);
  for (int y = 0; y < inks[0].height; ++y)
    for (int x = 0; x < inks[0].width; ++x)
      if (inks[0](x, y)) a(x, y + ya) = m(x, y + ya) = 1;
  if (pair)
    for (int y = 0; y < inks[1].height; ++y)
      for (int x = 0; x < inks[1].width; ++x)
        if (inks[1](x, y)) b(x + bx, y + yb) = m(x + bx, y + yb) = 1;
  // A pair that does not touch is two marks for segment_digits, never one piece.
  if (pair && connected_components(m, 8).components.size() > 1) return;
  const Box mb = tight_box(m, 0, 0);
  if (mb.empty()) return;
  // Digit height and width as segment_digits() estimates them from the whole image.
  const double H = h, W = std::clamp(pair ? 0.5 * (inks[0].width + inks[1].width) : inks[0].width, 0.5 * H, 0.85 * H);
  const double sw = std::max(1.0, stroke_width(m));
  const auto cuts = mark_cuts(m, W, H, sw, true);
  const auto pieces = mark_pieces(m, cuts, W, H);
  const double na = static_cast<double>(a.count()), nb = pair ? static_cast<double>(b.count()) : 1.0;
  std::vector<size_t> rejects, singles;
  std::vector<int> single_label;
  for (size_t k = 0; k < pieces.size(); ++k) {
    const auto& p = pieces[k];
    double ia = 0, ib = 0;
    for (int y = 0; y < p.mask.height; ++y)
      for (int x = 0; x < p.mask.width; ++x)
        if (p.mask(x, y)) ia += a(p.box.x0 + x, p.box.y0 + y), ib += b(p.box.x0 + x, p.box.y0 + y);
    const double fa = ia / na, fb = pair ? ib / nb : 0.0;
    if (fa >= 0.9 && fb <= 0.08) {
      singles.push_back(k), single_label.push_back(labels[0]);
    } else if (pair && fb >= 0.9 && fa <= 0.08) {
      singles.push_back(k), single_label.push_back(labels[1]);
    } else if (std::max(fa, fb) <= 0.75 || std::min(fa, fb) >= 0.2) {
      rejects.push_back(k);
    }
  }
  auto take = [&](std::vector<size_t> idx, int n, const std::vector<int>* lab) {
    for (int t = 0; t < n && !idx.empty(); ++t) {
      const size_t j = static_cast<size_t>(rng.integer(static_cast<int64_t>(idx.size())));
      const size_t k = idx[j];
      int label = kNotOneDigit;
      if (lab) {
        const auto pos = static_cast<size_t>(std::find(singles.begin(), singles.end(), k) - singles.begin());
        label = (*lab)[pos];
      }
      out.push_back({mnist_frame(pieces[k].mask, opt.segment), label});
      idx.erase(idx.begin() + static_cast<std::ptrdiff_t>(j));
    }
  };
  take(rejects, opt.rejects_per_mark, nullptr);
  take(singles, opt.digits_per_mark, &single_label);
}

}  // namespace detail

/// Labelled pieces of `marks` synthetic marks made from `num_digits` single digits:
/// `digit(i)` returns digit i's 28 x 28 image (ink = 1, as MNIST's pixels / 255) and its label
/// 0-9, and must be safe to call from several threads. Deterministic for a seed, whatever the
/// number of threads; each mark yields up to rejects_per_mark + digits_per_mark crops.
inline std::vector<LabeledCrop> reading_pieces(int64_t num_digits,
                                               const std::function<std::pair<GrayImage, int>(int64_t)>& digit,
                                               int64_t marks, uint64_t seed, const ReadingPiecesOptions& opt = {}) {
  EMBER_CHECK(num_digits > 0, "vision::reading_pieces: no digits to make pieces from");
  EMBER_CHECK(marks >= 0, "vision::reading_pieces: marks must be >= 0, got ", marks);
  EMBER_CHECK(opt.min_height >= 8 && opt.max_height >= opt.min_height, "vision::reading_pieces: digit heights [",
              opt.min_height, ", ", opt.max_height, "] must satisfy 8 <= min <= max");
  std::vector<std::vector<LabeledCrop>> per_mark(static_cast<size_t>(marks));
  parallel_for(0, marks, 16, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      detail::PieceRng rng{seed * 0x100000001B3ull + static_cast<uint64_t>(i) * 0x9E3779B97F4A7C15ull};
      detail::mark_examples(digit, num_digits, rng, opt, per_mark[static_cast<size_t>(i)]);
    }
  });
  std::vector<LabeledCrop> out;
  for (auto& v : per_mark) out.insert(out.end(), std::make_move_iterator(v.begin()), std::make_move_iterator(v.end()));
  return out;
}

}  // namespace ember::vision

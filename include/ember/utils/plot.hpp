#pragma once
/// Line plots and heatmaps as PNG files, drawn with Cairo (antialiased lines, real text).
///
///   utils::plot_training_curves("curves.png", train_loss, test_loss, train_acc, test_acc);
///
///   utils::LinePlot p("Learning rate", "step", "lr");
///   p.add("cosine", steps, lrs).add("step", steps, lrs2);
///   p.save_png("lr.png");
///
///   utils::plot_confusion_matrix("confusion.png", cm, {"0", "1", ...});
///
/// Needs Cairo (<cairo.h>, link -lcairo / `ember::cairo`); not part of ember.hpp.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <numbers>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ember/core/error.hpp"
#include "ember/utils/canvas.hpp"
#include "ember/utils/metrics.hpp"

namespace ember::utils {

// ---------------------------------------------------------------------------------------------
// Axis ticks
// ---------------------------------------------------------------------------------------------

/// Tick positions for the range [lo, hi]: multiples of a "nice" step (1, 2, 2.5 or 5 times a
/// power of ten) giving about `target` ticks, all inside the range. `integer` keeps the step at
/// 1 or more (epochs).
inline std::vector<double> nice_ticks(double lo, double hi, int target = 6, bool integer = false) {
  std::vector<double> ticks;
  if (!(std::isfinite(lo) && std::isfinite(hi)) || hi < lo) return ticks;
  if (hi == lo) return {lo};
  double raw = (hi - lo) / std::max(target, 1);
  double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = 10 * mag;
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0}) {
    if (m * mag >= raw * 0.999) {
      step = m * mag;
      break;
    }
  }
  if (integer) step = std::max(1.0, std::round(step));
  // k * step, rounded through a power of ten so 3 * 0.2 is the double nearest 0.6 (as the
  // literal 0.6 is), not 0.6000000000000001.
  double p10 = std::pow(10.0, std::clamp(2.0 - std::floor(std::log10(step)), 0.0, 22.0));
  for (double k = std::ceil(lo / step - 1e-9); k * step <= hi + step * 1e-9; k += 1) {
    double v = std::round(k * step * p10) / p10;
    ticks.push_back(v == 0 ? 0.0 : v);  // no "-0"
    if (ticks.size() > 1000) break;
  }
  return ticks;
}

/// Labels of `ticks` with just enough decimals to tell neighbours apart ("0.25", "1", "1e+06").
inline std::vector<std::string> tick_labels(const std::vector<double>& ticks) {
  std::vector<std::string> out;
  if (ticks.empty()) return out;
  double step = ticks.size() > 1 ? std::fabs(ticks[1] - ticks[0]) : std::max(std::fabs(ticks[0]), 1.0);
  double amax = 0;
  for (double t : ticks) amax = std::max(amax, std::fabs(t));
  bool sci = amax >= 1e6 || (amax > 0 && amax < 1e-4);
  int decimals = 0;
  if (!sci) {
    while (decimals < 10) {  // smallest number of decimals that prints every tick exactly
      double scale = std::pow(10.0, decimals);
      bool exact = true;
      for (double t : ticks) exact = exact && std::fabs(std::round(t * scale) - t * scale) < 1e-6 * std::max(1.0, step * scale);
      if (exact) break;
      ++decimals;
    }
  }
  for (double t : ticks) {
    char buf[48];
    if (sci) {
      std::snprintf(buf, sizeof buf, "%.3g", t);
    } else {
      std::snprintf(buf, sizeof buf, "%.*f", decimals, t);
    }
    out.emplace_back(buf);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// LinePlot
// ---------------------------------------------------------------------------------------------

/// How one series is drawn. Unset colour: the next colour of matplotlib's cycle.
struct SeriesStyle {
  std::optional<Color> color;
  double line_width = 2.0;
  bool dashed = false;
  /// Dots on the data points; unset: only when the series has at most 30 points.
  std::optional<bool> markers;
};

/// A plot of named (x, y) series with axes, nice ticks, a grid, a title, axis labels and a legend.
/// NaN values break a line (a missing epoch). Draw it alone with save_png, or as one panel of a
/// figure with draw() / save_plots().
class LinePlot {
 public:
  struct Series {
    std::string name;
    std::vector<double> x, y;
    SeriesStyle style;
  };

  LinePlot() = default;
  explicit LinePlot(std::string title, std::string xlabel = "", std::string ylabel = "")
      : title_(std::move(title)), xlabel_(std::move(xlabel)), ylabel_(std::move(ylabel)) {}

  LinePlot& title(std::string s) { title_ = std::move(s); return *this; }
  LinePlot& xlabel(std::string s) { xlabel_ = std::move(s); return *this; }
  LinePlot& ylabel(std::string s) { ylabel_ = std::move(s); return *this; }
  /// Fixes the x range instead of fitting the data.
  LinePlot& xlim(double lo, double hi) { xlim_ = {lo, hi}; return *this; }
  /// Fixes the y range instead of fitting the data.
  LinePlot& ylim(double lo, double hi) { ylim_ = {lo, hi}; return *this; }
  /// Shows or hides the legend (shown by default when a series has a name).
  LinePlot& legend(bool show) { legend_ = show; return *this; }

  /// Adds a series with explicit x values.
  LinePlot& add(std::string name, std::vector<double> x, std::vector<double> y, SeriesStyle style = {}) {
    EMBER_CHECK(x.size() == y.size(), "LinePlot::add: series '", name, "' has ", x.size(), " x values and ", y.size(),
                " y values");
    if (!style.color) style.color = palette(series_.size());
    series_.push_back({std::move(name), std::move(x), std::move(y), style});
    return *this;
  }
  /// Adds a series at x = 1, 2, ..., n (epochs).
  LinePlot& add(std::string name, std::vector<double> y, SeriesStyle style = {}) {
    std::vector<double> x(y.size());
    for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<double>(i + 1);
    return add(std::move(name), std::move(x), std::move(y), style);
  }

  const std::vector<Series>& series() const { return series_; }

  /// Draws the plot into the rectangle (x, y, w, h) of `cr`; text scales with the rectangle.
  void draw(cairo_t* cr, double x0, double y0, double w, double h) const {
    const double fs = std::clamp(std::min(w, h) / 30.0, 9.0, 22.0);
    const Font tick_font{fs * 0.85}, label_font{fs}, title_font{fs * 1.2, true}, legend_font{fs * 0.9};
    const Color text = Color::hex(0x222222), frame = Color::hex(0x444444), grid = Color::hex(0xdddddd);

    auto [xr, yr] = ranges();
    bool integer_x = all_integral_x();
    auto xticks = nice_ticks(xr.first, xr.second, std::max(2, static_cast<int>(w / (fs * 6))), integer_x);
    auto yticks = nice_ticks(yr.first, yr.second, std::max(2, static_cast<int>(h / (fs * 4))));
    auto xlab = tick_labels(xticks), ylab = tick_labels(yticks);

    // Margins from what is around the axes.
    double ytick_w = 0;
    for (const auto& s : ylab) ytick_w = std::max(ytick_w, text_width(cr, s, tick_font));
    double left = fs * 0.8 + ytick_w + fs * 0.6 + (ylabel_.empty() ? 0 : label_font.size * 1.6);
    double right = fs * 1.2;
    double top = title_.empty() ? fs * 1.0 : title_font.size * 2.2;
    double bottom = fs * 0.6 + tick_font.size * 1.6 + (xlabel_.empty() ? fs * 0.4 : label_font.size * 1.8);
    double px = x0 + left, py = y0 + top, pw = w - left - right, ph = h - top - bottom;
    if (pw < 10 || ph < 10) return;  // too small to draw anything useful

    auto sx = [&](double v) { return px + (v - xr.first) / (xr.second - xr.first) * pw; };
    auto sy = [&](double v) { return py + ph - (v - yr.first) / (yr.second - yr.first) * ph; };

    // Grid and ticks. Lines sit on half pixels so 1-px strokes stay sharp.
    cairo_set_line_width(cr, 1.0);
    set_color(cr, grid);
    for (double t : xticks) {
      double X = std::round(sx(t)) + 0.5;
      cairo_move_to(cr, X, py);
      cairo_line_to(cr, X, py + ph);
    }
    for (double t : yticks) {
      double Y = std::round(sy(t)) + 0.5;
      cairo_move_to(cr, px, Y);
      cairo_line_to(cr, px + pw, Y);
    }
    cairo_stroke(cr);
    set_color(cr, frame);
    for (size_t i = 0; i < xticks.size(); ++i) {
      double X = std::round(sx(xticks[i])) + 0.5;
      cairo_move_to(cr, X, py + ph);
      cairo_line_to(cr, X, py + ph + fs * 0.35);
      draw_text(cr, X, py + ph + fs * 0.5, xlab[i], tick_font, text, HAlign::Center, VAlign::Top);
    }
    for (size_t i = 0; i < yticks.size(); ++i) {
      double Y = std::round(sy(yticks[i])) + 0.5;
      cairo_move_to(cr, px, Y);
      cairo_line_to(cr, px - fs * 0.35, Y);
      draw_text(cr, px - fs * 0.5, Y, ylab[i], tick_font, text, HAlign::Right, VAlign::Middle);
    }
    cairo_stroke(cr);

    // Series, clipped to the axes.
    cairo_save(cr);
    cairo_rectangle(cr, px, py, pw, ph);
    cairo_clip(cr);
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
    cairo_set_line_cap(cr, CAIRO_LINE_CAP_ROUND);
    for (const auto& s : series_) {
      set_color(cr, *s.style.color);
      cairo_set_line_width(cr, s.style.line_width);
      if (s.style.dashed) {
        double d[] = {s.style.line_width * 3, s.style.line_width * 2};
        cairo_set_dash(cr, d, 2, 0);
      } else {
        cairo_set_dash(cr, nullptr, 0, 0);
      }
      bool pen = false;
      for (size_t i = 0; i < s.x.size(); ++i) {
        if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) {
          pen = false;
          continue;
        }
        (pen ? cairo_line_to : cairo_move_to)(cr, sx(s.x[i]), sy(s.y[i]));
        pen = true;
      }
      cairo_stroke(cr);
      cairo_set_dash(cr, nullptr, 0, 0);
      if (s.style.markers.value_or(s.x.size() <= 30)) {
        for (size_t i = 0; i < s.x.size(); ++i) {
          if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
          cairo_new_sub_path(cr);
          cairo_arc(cr, sx(s.x[i]), sy(s.y[i]), s.style.line_width * 1.8, 0, 2 * std::numbers::pi);
        }
        cairo_fill(cr);
      }
    }
    cairo_restore(cr);

    // Frame, title, axis labels.
    set_color(cr, frame);
    cairo_set_line_width(cr, 1.0);
    cairo_rectangle(cr, std::round(px) + 0.5, std::round(py) + 0.5, std::round(pw), std::round(ph));
    cairo_stroke(cr);
    draw_text(cr, px + pw / 2, y0 + title_font.size * 0.6, title_, title_font, text, HAlign::Center, VAlign::Top);
    draw_text(cr, px + pw / 2, y0 + h - fs * 0.5, xlabel_, label_font, text, HAlign::Center, VAlign::Bottom);
    draw_text(cr, x0 + fs * 0.6, py + ph / 2, ylabel_, label_font, text, HAlign::Center, VAlign::Top, -std::numbers::pi / 2);

    if (legend_) draw_legend(cr, px, py, pw, ph, legend_font, text, sx, sy);
  }

  /// Saves the plot alone as a `width`×`height` PNG.
  void save_png(const std::filesystem::path& path, int width = 800, int height = 500) const {
    Canvas canvas(width, height);
    draw(canvas.cr(), 0, 0, width, height);
    canvas.save_png(path);
  }

 private:
  using Range = std::pair<double, double>;

  bool all_integral_x() const {
    for (const auto& s : series_) {
      for (double v : s.x) {
        if (std::isfinite(v) && v != std::round(v)) return false;
      }
    }
    return true;
  }

  // Data limits with matplotlib's 5 % margins, or the fixed limits.
  std::pair<Range, Range> ranges() const {
    double inf = std::numeric_limits<double>::infinity();
    Range x{inf, -inf}, y{inf, -inf};
    for (const auto& s : series_) {
      for (size_t i = 0; i < s.x.size(); ++i) {
        if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
        x = {std::min(x.first, s.x[i]), std::max(x.second, s.x[i])};
        y = {std::min(y.first, s.y[i]), std::max(y.second, s.y[i])};
      }
    }
    auto pad = [](Range r) -> Range {
      if (r.first > r.second) return {0, 1};  // no data
      if (r.first == r.second) {
        double d = r.first == 0 ? 1 : std::fabs(r.first) * 0.1;
        return {r.first - d, r.second + d};
      }
      double m = (r.second - r.first) * 0.05;
      return {r.first - m, r.second + m};
    };
    return {xlim_ ? *xlim_ : pad(x), ylim_ ? *ylim_ : pad(y)};
  }

  // The legend goes in the corner that covers the fewest data points (matplotlib's "best").
  template <typename SX, typename SY>
  void draw_legend(cairo_t* cr, double px, double py, double pw, double ph, const Font& font, const Color& text,
                   const SX& sx, const SY& sy) const {
    std::vector<const Series*> named;
    for (const auto& s : series_) {
      if (!s.name.empty()) named.push_back(&s);
    }
    if (named.empty()) return;
    double line_len = font.size * 2.0, gap = font.size * 0.5, row_h = font.size * 1.5;
    double tw = 0;
    for (const auto* s : named) tw = std::max(tw, text_width(cr, s->name, font));
    double lw = gap * 3 + line_len + tw, lh = row_h * static_cast<double>(named.size()) + gap;
    double inset = font.size * 0.6;
    struct Spot {
      double x, y;
    };
    const Spot spots[] = {{px + pw - lw - inset, py + inset},        // upper right
                          {px + inset, py + inset},                  // upper left
                          {px + inset, py + ph - lh - inset},        // lower left
                          {px + pw - lw - inset, py + ph - lh - inset},  // lower right
                          {px + pw - lw - inset, py + (ph - lh) / 2}};   // centre right
    size_t best = 0, best_hits = std::numeric_limits<size_t>::max();
    for (size_t k = 0; k < std::size(spots); ++k) {
      size_t hits = 0;
      for (const auto& s : series_) {
        // Sample each segment so a line crossing the box counts even without a point inside.
        for (size_t i = 0; i < s.x.size(); ++i) {
          size_t j = i + 1 < s.x.size() ? i + 1 : i;
          for (int t = 0; t < 8; ++t) {
            double X = sx(s.x[i] + (s.x[j] - s.x[i]) * t / 8.0), Y = sy(s.y[i] + (s.y[j] - s.y[i]) * t / 8.0);
            hits += X >= spots[k].x && X <= spots[k].x + lw && Y >= spots[k].y && Y <= spots[k].y + lh;
          }
        }
      }
      if (hits < best_hits) best = k, best_hits = hits;
    }
    double lx = spots[best].x, ly = spots[best].y;
    cairo_rectangle(cr, lx, ly, lw, lh);
    set_color(cr, Color{1, 1, 1, 0.85});
    cairo_fill_preserve(cr);
    set_color(cr, Color::hex(0xcccccc));
    cairo_set_line_width(cr, 1.0);
    cairo_stroke(cr);
    for (size_t i = 0; i < named.size(); ++i) {
      double cy = ly + gap / 2 + row_h * (static_cast<double>(i) + 0.5);
      const auto& st = named[i]->style;
      set_color(cr, *st.color);
      cairo_set_line_width(cr, st.line_width);
      if (st.dashed) {
        double d[] = {st.line_width * 3, st.line_width * 2};
        cairo_set_dash(cr, d, 2, 0);
      }
      cairo_move_to(cr, lx + gap, cy);
      cairo_line_to(cr, lx + gap + line_len, cy);
      cairo_stroke(cr);
      cairo_set_dash(cr, nullptr, 0, 0);
      draw_text(cr, lx + gap * 2 + line_len, cy, named[i]->name, font, text, HAlign::Left, VAlign::Middle);
    }
  }

  std::string title_, xlabel_, ylabel_;
  std::optional<Range> xlim_, ylim_;
  bool legend_ = true;
  std::vector<Series> series_;
};

/// Saves several plots as panels of one PNG, `ncols` per row, each `panel_width`×`panel_height`.
inline void save_plots(const std::filesystem::path& path, const std::vector<LinePlot>& plots, int ncols = 2,
                       int panel_width = 600, int panel_height = 450) {
  EMBER_CHECK(!plots.empty() && ncols > 0, "save_plots: need at least one plot and ncols > 0");
  int cols = std::min<int>(ncols, static_cast<int>(plots.size()));
  int rows = (static_cast<int>(plots.size()) + cols - 1) / cols;
  Canvas canvas(cols * panel_width, rows * panel_height);
  for (size_t i = 0; i < plots.size(); ++i) {
    int r = static_cast<int>(i) / cols, c = static_cast<int>(i) % cols;
    plots[i].draw(canvas.cr(), c * panel_width, r * panel_height, panel_width, panel_height);
  }
  canvas.save_png(path);
}

/// The tutorial's figure: loss (left) and accuracy (right) per epoch, train and test, in one PNG
/// (like the original's two matplotlib subplots). An empty vector leaves that curve out.
inline void plot_training_curves(const std::filesystem::path& path, const std::vector<double>& train_loss,
                                 const std::vector<double>& test_loss, const std::vector<double>& train_acc,
                                 const std::vector<double>& test_acc, int width = 1200, int height = 450) {
  LinePlot loss("Loss", "Epoch", "Loss"), acc("Accuracy", "Epoch", "Accuracy");
  SeriesStyle train, test;
  train.color = palette(0);
  test.color = palette(1);
  if (!train_loss.empty()) loss.add("Train", train_loss, train);
  if (!test_loss.empty()) loss.add("Test", test_loss, test);
  if (!train_acc.empty()) acc.add("Train", train_acc, train);
  if (!test_acc.empty()) acc.add("Test", test_acc, test);
  save_plots(path, {loss, acc}, 2, width / 2, height);
}

// ---------------------------------------------------------------------------------------------
// Confusion matrix heatmap
// ---------------------------------------------------------------------------------------------

/// matplotlib's "Blues" colour map at t in [0, 1] (piecewise linear through its 9 anchors).
inline Color blues(double t) {
  static constexpr uint32_t kAnchors[] = {0xf7fbff, 0xdeebf7, 0xc6dbef, 0x9ecae1, 0x6baed6,
                                          0x4292c6, 0x2171b5, 0x08519c, 0x08306b};
  t = std::clamp(std::isfinite(t) ? t : 0.0, 0.0, 1.0) * 8;
  int i = std::min(static_cast<int>(t), 7);
  double f = t - i;
  Color a = Color::hex(kAnchors[i]), b = Color::hex(kAnchors[i + 1]);
  return {a.r + (b.r - a.r) * f, a.g + (b.g - a.g) * f, a.b + (b.b - a.b) * f, 1};
}

namespace detail {

/// Shade in [0, 1] of a confusion-matrix cell: log(1 + count) / log(1 + row total). Relative to
/// the row, so a rare class looks like a common one; logarithmic, so a handful of mistakes next
/// to a thousand correct answers still shows (linear shading leaves them white).
inline double cell_shade(int64_t count, int64_t row_total) {
  return row_total > 0 ? std::log1p(static_cast<double>(count)) / std::log1p(static_cast<double>(row_total)) : 0.0;
}

}  // namespace detail

/// Saves a K×K confusion matrix (row-major counts, rows = true class) as a heatmap with the
/// count in each cell, shaded by detail::cell_shade; text is white on dark cells.
inline void plot_confusion_matrix(const std::filesystem::path& path, const std::vector<int64_t>& counts,
                                  int64_t num_classes, const std::vector<std::string>& class_names = {},
                                  const std::string& title = "Confusion matrix") {
  const int64_t k = num_classes;
  EMBER_CHECK(k > 0 && static_cast<int64_t>(counts.size()) == k * k, "plot_confusion_matrix: ", counts.size(),
              " counts do not form a ", k, "x", k, " matrix");
  EMBER_CHECK(class_names.empty() || static_cast<int64_t>(class_names.size()) == k, "plot_confusion_matrix: ",
              class_names.size(), " class names for ", k, " classes");
  auto name = [&](int64_t i) { return class_names.empty() ? std::to_string(i) : class_names[static_cast<size_t>(i)]; };

  const double cell = std::clamp(640.0 / static_cast<double>(k), 28.0, 80.0);
  const double fs = std::clamp(cell * 0.3, 9.0, 16.0);
  const Font tick_font{fs}, label_font{fs * 1.1}, title_font{fs * 1.3, true};
  const Color text = Color::hex(0x222222);

  // Measure the labels on a scratch surface to size the margins.
  Canvas scratch(1, 1);
  double name_w = 0;
  for (int64_t i = 0; i < k; ++i) name_w = std::max(name_w, text_width(scratch.cr(), name(i), tick_font));
  bool rotate_x = name_w > cell * 0.9;  // long names read bottom-to-top under the columns
  double left = fs * 1.0 + label_font.size * 1.6 + name_w + fs * 0.6;
  double top = title_font.size * 2.4;
  double bottom = fs * 0.6 + (rotate_x ? name_w : tick_font.size * 1.4) + label_font.size * 2.0;
  double right = fs * 1.5;
  // A title wider than a small matrix (2 classes) widens the picture instead of being cut off.
  const double title_w = text_width(scratch.cr(), title, title_font);
  int width = static_cast<int>(std::ceil(std::max(left + cell * k + right, title_w + 2 * fs)));
  int height = static_cast<int>(std::ceil(top + cell * k + bottom));
  const double title_x = std::clamp(left + cell * k / 2, title_w / 2 + fs, static_cast<double>(width) - title_w / 2 - fs);

  Canvas canvas(width, height);
  cairo_t* cr = canvas.cr();
  for (int64_t r = 0; r < k; ++r) {
    int64_t row_sum = 0;
    for (int64_t c = 0; c < k; ++c) row_sum += counts[static_cast<size_t>(r * k + c)];
    for (int64_t c = 0; c < k; ++c) {
      int64_t v = counts[static_cast<size_t>(r * k + c)];
      Color fill = blues(detail::cell_shade(v, row_sum));
      double x = left + cell * c, y = top + cell * r;
      cairo_rectangle(cr, x, y, cell, cell);
      set_color(cr, fill);
      cairo_fill(cr);
      std::string s = std::to_string(v);
      Font f = tick_font;
      double tw = text_width(cr, s, f);
      if (tw > cell * 0.9) f.size *= cell * 0.9 / tw;  // shrink big counts to fit their cell
      draw_text(cr, x + cell / 2, y + cell / 2, s, f, fill.luminance() < 0.5 ? kWhite : kBlack, HAlign::Center,
                VAlign::Middle);
    }
  }
  set_color(cr, Color::hex(0x444444));
  cairo_set_line_width(cr, 1.0);
  cairo_rectangle(cr, std::round(left) + 0.5, std::round(top) + 0.5, std::round(cell * k), std::round(cell * k));
  cairo_stroke(cr);
  for (int64_t i = 0; i < k; ++i) {
    double c = left + cell * (static_cast<double>(i) + 0.5);
    if (rotate_x) {
      draw_text(cr, c, top + cell * k + fs * 0.5, name(i), tick_font, text, HAlign::Right, VAlign::Middle, -std::numbers::pi / 2);
    } else {
      draw_text(cr, c, top + cell * k + fs * 0.5, name(i), tick_font, text, HAlign::Center, VAlign::Top);
    }
    draw_text(cr, left - fs * 0.5, top + cell * (static_cast<double>(i) + 0.5), name(i), tick_font, text, HAlign::Right,
              VAlign::Middle);
  }
  draw_text(cr, title_x, title_font.size * 0.7, title, title_font, text, HAlign::Center, VAlign::Top);
  draw_text(cr, left + cell * k / 2, height - fs * 0.6, "Predicted label", label_font, text, HAlign::Center,
            VAlign::Bottom);
  draw_text(cr, fs * 0.8, top + cell * k / 2, "True label", label_font, text, HAlign::Center, VAlign::Top, -std::numbers::pi / 2);
  canvas.save_png(path);
}

/// Same, from a ConfusionMatrix.
inline void plot_confusion_matrix(const std::filesystem::path& path, const ConfusionMatrix& cm,
                                  const std::vector<std::string>& class_names = {},
                                  const std::string& title = "Confusion matrix") {
  plot_confusion_matrix(path, cm.counts(), cm.num_classes(), class_names, title);
}

}  // namespace ember::utils

#pragma once
/// The Cairo drawing surface behind utils' PNG outputs (plots, image grids, annotated images):
/// an RAII canvas, colours, text helpers and an atomic PNG write.
///
/// Only utils/plot.hpp and utils/image_grid.hpp include this header; ember.hpp does not, so the
/// core never needs Cairo. A program that uses them links cairo (CMake: `ember::cairo`).
#include <cairo.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <unistd.h>

#include "ember/core/error.hpp"

namespace ember::utils {

/// An RGBA colour with components in [0, 1].
struct Color {
  double r = 0, g = 0, b = 0, a = 1;
  /// From 0xRRGGBB.
  static constexpr Color hex(uint32_t rgb, double alpha = 1.0) {
    return {((rgb >> 16) & 0xFF) / 255.0, ((rgb >> 8) & 0xFF) / 255.0, (rgb & 0xFF) / 255.0, alpha};
  }
  /// Perceived brightness (ITU-R BT.601), to pick black or white text over a fill.
  constexpr double luminance() const { return 0.299 * r + 0.587 * g + 0.114 * b; }
};

inline constexpr Color kWhite{1, 1, 1, 1};
inline constexpr Color kBlack{0, 0, 0, 1};

/// matplotlib's default colour cycle ("tab10"), so the curves look like the original figures.
inline Color palette(size_t i) {
  static constexpr uint32_t kTab10[] = {0x1f77b4, 0xff7f0e, 0x2ca02c, 0xd62728, 0x9467bd,
                                        0x8c564b, 0xe377c2, 0x7f7f7f, 0xbcbd22, 0x17becf};
  return Color::hex(kTab10[i % 10]);
}

/// Sets the source colour of `cr`.
inline void set_color(cairo_t* cr, const Color& c) { cairo_set_source_rgba(cr, c.r, c.g, c.b, c.a); }

/// Horizontal and vertical anchoring of text relative to the point given to draw_text.
enum class HAlign { Left, Center, Right };
enum class VAlign { Top, Middle, Baseline, Bottom };

/// Font of the text helpers: a sans-serif face through fontconfig (DejaVu Sans on Debian).
struct Font {
  double size = 12;
  bool bold = false;
};

inline void select_font(cairo_t* cr, const Font& f) {
  cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL,
                         f.bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, f.size);
}

/// Width of `text` in pixels with font `f`.
inline double text_width(cairo_t* cr, const std::string& text, const Font& f) {
  select_font(cr, f);
  cairo_text_extents_t ext;
  cairo_text_extents(cr, text.c_str(), &ext);
  return ext.x_advance;
}

/// Draws `text` anchored at (x, y), rotated by `angle` radians around the anchor (-pi/2: reads
/// bottom to top, for a y-axis label). Alignment uses the font's ascent/descent, not the glyphs'
/// ink, so labels of one row line up whatever their letters.
inline void draw_text(cairo_t* cr, double x, double y, const std::string& text, const Font& f, const Color& c,
                      HAlign ha = HAlign::Left, VAlign va = VAlign::Baseline, double angle = 0) {
  if (text.empty()) return;
  select_font(cr, f);
  cairo_text_extents_t ext;
  cairo_text_extents(cr, text.c_str(), &ext);
  cairo_font_extents_t fe;
  cairo_font_extents(cr, &fe);
  double dx = ha == HAlign::Left ? 0 : ha == HAlign::Center ? -ext.x_advance / 2 : -ext.x_advance;
  double dy = 0;
  switch (va) {
    case VAlign::Top: dy = fe.ascent; break;
    case VAlign::Middle: dy = (fe.ascent - fe.descent) / 2; break;
    case VAlign::Baseline: dy = 0; break;
    case VAlign::Bottom: dy = -fe.descent; break;
  }
  cairo_save(cr);
  cairo_translate(cr, x, y);
  cairo_rotate(cr, angle);
  cairo_move_to(cr, dx, dy);
  set_color(cr, c);
  cairo_show_text(cr, text.c_str());
  cairo_restore(cr);
}

/// An ARGB32 image surface and its drawing context, antialiased, freed on destruction.
///
///   utils::Canvas canvas(800, 500);               // white
///   cairo_t* cr = canvas.cr();  ...draw...
///   canvas.save_png("plot.png");
class Canvas {
 public:
  Canvas(int width, int height, const Color& background = kWhite) {
    EMBER_CHECK(width > 0 && height > 0 && width <= 32767 && height <= 32767, "Canvas: invalid size ", width, "x",
                height, " (each side must be in 1..32767)");
    surface_ = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, width, height);
    EMBER_CHECK(cairo_surface_status(surface_) == CAIRO_STATUS_SUCCESS, "Canvas: cannot create a ", width, "x",
                height, " surface: ", cairo_status_to_string(cairo_surface_status(surface_)));
    cr_ = cairo_create(surface_);
    cairo_set_antialias(cr_, CAIRO_ANTIALIAS_BEST);
    set_color(cr_, background);
    cairo_paint(cr_);
  }
  Canvas(const Canvas&) = delete;
  Canvas& operator=(const Canvas&) = delete;
  ~Canvas() {
    cairo_destroy(cr_);
    cairo_surface_destroy(surface_);
  }

  cairo_t* cr() const { return cr_; }
  cairo_surface_t* surface() const { return surface_; }
  int width() const { return cairo_image_surface_get_width(surface_); }
  int height() const { return cairo_image_surface_get_height(surface_); }

  /// Writes opaque pixels directly (row-major, `channels` = 1 grey, 3 RGB or 4 RGBA; RGBA is
  /// composited over the canvas's current content) at (x0, y0). Faster and exact compared with
  /// painting a pattern, which the image grid's tests rely on.
  void put_pixels(const uint8_t* pixels, int w, int h, int channels, int x0 = 0, int y0 = 0) {
    EMBER_CHECK(channels == 1 || channels == 3 || channels == 4, "Canvas::put_pixels: channels must be 1, 3 or 4, got ",
                channels);
    cairo_surface_flush(surface_);
    unsigned char* data = cairo_image_surface_get_data(surface_);
    int stride = cairo_image_surface_get_stride(surface_);
    for (int y = 0; y < h; ++y) {
      int ty = y0 + y;
      if (ty < 0 || ty >= height()) continue;
      auto* row = reinterpret_cast<uint32_t*>(data + static_cast<ptrdiff_t>(ty) * stride);
      for (int x = 0; x < w; ++x) {
        int tx = x0 + x;
        if (tx < 0 || tx >= width()) continue;
        const uint8_t* p = pixels + (static_cast<size_t>(y) * w + x) * channels;
        uint32_t r = p[0], g = channels == 1 ? p[0] : p[1], b = channels == 1 ? p[0] : p[2];
        if (channels == 4 && p[3] != 255) {  // "over" the existing (opaque) pixel
          uint32_t a = p[3], old = row[tx];
          auto mix = [a](uint32_t src, uint32_t dst) { return (src * a + dst * (255 - a) + 127) / 255; };
          r = mix(r, (old >> 16) & 0xFF);
          g = mix(g, (old >> 8) & 0xFF);
          b = mix(b, old & 0xFF);
        }
        row[tx] = 0xFF000000u | (r << 16) | (g << 8) | b;
      }
    }
    cairo_surface_mark_dirty(surface_);
  }

  /// Writes the canvas as a PNG through a temporary file and a rename (a reader never sees half a
  /// file); creates missing parent directories. Throws ember::Error naming the path on failure.
  void save_png(const std::filesystem::path& path) const {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (path.has_parent_path()) fs::create_directories(path.parent_path(), ec);
    fs::path tmp = path;
    tmp += ".tmp." + std::to_string(::getpid());
    cairo_surface_flush(surface_);
    cairo_status_t st = cairo_surface_write_to_png(surface_, tmp.c_str());
    if (st != CAIRO_STATUS_SUCCESS) {
      fs::remove(tmp, ec);
      EMBER_CHECK(false, "save_png: cannot write '", path.string(), "': ", cairo_status_to_string(st));
    }
    fs::rename(tmp, path, ec);
    if (ec) {
      fs::remove(tmp, ec);
      EMBER_CHECK(false, "save_png: cannot rename the temporary file to '", path.string(), "': ", ec.message());
    }
  }

 private:
  cairo_surface_t* surface_ = nullptr;
  cairo_t* cr_ = nullptr;
};

/// Saves an 8-bit image buffer (row-major; 1 = grey, 3 = RGB, 4 = RGBA over white) as a PNG.
inline void save_png(const std::filesystem::path& path, const std::vector<uint8_t>& pixels, int width, int height,
                     int channels = 3) {
  EMBER_CHECK(width > 0 && height > 0 && pixels.size() == static_cast<size_t>(width) * height * channels,
              "save_png: buffer of ", pixels.size(), " bytes does not hold a ", width, "x", height, "x", channels,
              " image");
  Canvas canvas(width, height);
  canvas.put_pixels(pixels.data(), width, height, channels);
  canvas.save_png(path);
}

}  // namespace ember::utils

#pragma once
/// The geometric and colour operations of torchvision.transforms.functional on 8-bit images
/// (io::Image, interleaved channels), with the semantics torchvision has on PIL images — which is
/// what the cat/dog tutorial's `ImageFolder` feeds its transforms — so a recipe written for
/// PyTorch gives the same pictures here:
///   resize          PIL's bilinear with antialiasing when shrinking (io::resize_bilinear);
///                   an int size sets the shorter side, as torchvision's Resize(150)
///   crop            out-of-image parts filled with 0 (PIL's crop)
///   center_crop     torchvision's rounding (Python's round, ties to even), 0-padding when larger
///   hflip
///   rotate          PIL's Image.rotate about the centre, same size, nearest neighbour, `fill`
///   adjust_brightness / adjust_contrast / adjust_saturation   PIL's ImageEnhance: a blend with a
///                   black / mean-grey / greyscale image, truncated to 8 bits as PIL does
///   adjust_hue      PIL's HSV round trip with the hue byte shifted (torchvision's F_pil.adjust_hue)
/// Every function returns a new image. tests/golden/make_image_golden.py writes what PIL and
/// torchvision produce for each of them; tests/test_image_ops.cpp compares.
///
/// Example:
/// ```
///   using namespace ember;
///   io::Image img = io::read_image("cat.jpg", 3);
///   io::Image small = vision::resize(img, 150);            // shorter side 150
///   io::Image tile = vision::center_crop(small, 150, 150);
/// ```
#include <algorithm>
#include <cfenv>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <vector>

#include "ember/core/error.hpp"
#include "ember/io/image.hpp"

namespace ember::vision {

namespace detail {
inline void check_rgb_like(const io::Image& img, const char* op) {
  EMBER_CHECK(img.width > 0 && img.height > 0 && img.channels >= 1 && img.channels <= 4 &&
                  img.data.size() == static_cast<size_t>(img.width) * img.height * img.channels,
              op, ": expected a non-empty 8-bit image, got ", img.width, "x", img.height, " with ", img.channels,
              " channel(s) and ", img.data.size(), " bytes");
}
/// Python's round(): to nearest, ties to even (used by torchvision for crop offsets and sizes).
inline int64_t round_half_even(double v) {
  double r = std::nearbyint(v);  // the default rounding mode is to nearest, ties to even
  return static_cast<int64_t>(r);
}
/// PIL's 8-bit luma ("L" from "RGB"): ITU-R 601-2 weights in 16-bit fixed point.
inline uint8_t pil_luma(int r, int g, int b) { return static_cast<uint8_t>((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16); }
/// PIL's Image.blend(a, b, alpha) for one byte: a + alpha * (b - a), clipped and truncated.
inline uint8_t pil_blend(int a, int b, double alpha) {
  const double v = static_cast<float>(a + alpha * (b - a));
  if (v <= 0.0) return 0;
  if (v >= 255.0) return 255;
  return static_cast<uint8_t>(v);
}
/// Colour channels of an image (alpha is left alone by the colour adjustments).
inline int color_channels(const io::Image& img) { return img.channels == 2 || img.channels == 4 ? img.channels - 1 : img.channels; }
}  // namespace detail

// ---- geometry ------------------------------------------------------------------------------------

/// The height x width region whose top-left corner is (top, left); parts outside the image are 0.
inline io::Image crop(const io::Image& img, int64_t top, int64_t left, int64_t height, int64_t width) {
  detail::check_rgb_like(img, "crop");
  EMBER_CHECK(height > 0 && width > 0 && height <= (1 << 24) && width <= (1 << 24), "crop: size must be positive, got ",
              height, "x", width);
  io::Image out = io::Image::filled(static_cast<int>(width), static_cast<int>(height), img.channels, 0);
  const int C = img.channels;
  const int64_t x0 = std::max<int64_t>(0, -left), x1 = std::min<int64_t>(width, img.width - left);
  for (int64_t y = 0; y < height; ++y) {
    const int64_t sy = top + y;
    if (sy < 0 || sy >= img.height || x0 >= x1) continue;
    std::copy_n(&img.data[(static_cast<size_t>(sy) * img.width + static_cast<size_t>(left + x0)) * C],
                static_cast<size_t>(x1 - x0) * C, &out.data[(static_cast<size_t>(y) * width + static_cast<size_t>(x0)) * C]);
  }
  return out;
}

/// The central height x width region (torchvision's center_crop: offsets round((H - h) / 2) with
/// Python's rounding; an image smaller than the crop is first padded with 0 on all sides).
inline io::Image center_crop(const io::Image& img, int64_t height, int64_t width) {
  detail::check_rgb_like(img, "center_crop");
  EMBER_CHECK(height > 0 && width > 0, "center_crop: size must be positive, got ", height, "x", width);
  if (height > img.height || width > img.width) {
    // torchvision pads (h - H) // 2 on top/left and the rest on bottom/right, then crops.
    const int64_t pl = width > img.width ? (width - img.width) / 2 : 0;
    const int64_t pt = height > img.height ? (height - img.height) / 2 : 0;
    const int64_t pw = std::max<int64_t>(width, img.width), ph = std::max<int64_t>(height, img.height);
    io::Image padded = crop(img, -pt, -pl, ph, pw);
    return center_crop(padded, height, width);
  }
  const int64_t top = detail::round_half_even((img.height - height) / 2.0);
  const int64_t left = detail::round_half_even((img.width - width) / 2.0);
  return crop(img, top, left, height, width);
}

/// The output size of torchvision's Resize(size) for one int: the shorter side becomes `size`,
/// the longer int(size * long / short) (truncated, as torchvision computes it).
inline std::pair<int64_t, int64_t> resized_shape(int64_t height, int64_t width, int64_t size) {
  EMBER_CHECK(size > 0, "resize: size must be positive, got ", size);
  const int64_t shorter = std::min(height, width), longer = std::max(height, width);
  const int64_t new_long = static_cast<int64_t>(static_cast<double>(size) * static_cast<double>(longer) /
                                                static_cast<double>(shorter));
  return height <= width ? std::pair{size, new_long} : std::pair{new_long, size};
}

namespace detail {
/// One pass of PIL's bilinear resampling along rows (horizontal = true) or columns, in PIL's
/// integer arithmetic: tent weights over pixel centres, widened by the shrink factor,
/// normalised, turned into 22-bit fixed point, accumulated with rounding and clipped to a byte.
inline io::Image pil_resample_pass(const io::Image& in, int out_size, bool horizontal) {
  constexpr int kBits = 22;  // PIL's PRECISION_BITS for 8-bit images
  const int in_size = horizontal ? in.width : in.height, C = in.channels;
  const double scale = static_cast<double>(in_size) / out_size;
  const double filterscale = std::max(scale, 1.0), support = filterscale;
  const int ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  std::vector<int> lo(static_cast<size_t>(out_size)), cnt(static_cast<size_t>(out_size));
  std::vector<int32_t> k(static_cast<size_t>(out_size) * ksize, 0);
  std::vector<double> w(static_cast<size_t>(ksize));
  for (int o = 0; o < out_size; ++o) {
    const double centre = (o + 0.5) * scale;
    const int xmin = std::max(0, static_cast<int>(centre - support + 0.5));
    const int xmax = std::min(in_size, static_cast<int>(centre + support + 0.5)) - xmin;
    double ww = 0;
    for (int x = 0; x < xmax; ++x) {
      const double t = std::abs((x + xmin - centre + 0.5) / filterscale);
      w[static_cast<size_t>(x)] = t < 1.0 ? 1.0 - t : 0.0;
      ww += w[static_cast<size_t>(x)];
    }
    for (int x = 0; x < xmax; ++x) {
      const double kv = ww != 0.0 ? w[static_cast<size_t>(x)] / ww : 0.0;
      k[static_cast<size_t>(o) * ksize + x] = static_cast<int32_t>(kv < 0 ? -0.5 + kv * (1 << kBits) : 0.5 + kv * (1 << kBits));
    }
    lo[static_cast<size_t>(o)] = xmin;
    cnt[static_cast<size_t>(o)] = std::max(xmax, 0);
  }
  const int W = horizontal ? out_size : in.width, H = horizontal ? in.height : out_size;
  io::Image out = io::Image::filled(W, H, C);
  auto clip8 = [](int64_t v) { return static_cast<uint8_t>(std::clamp<int64_t>(v >> kBits, 0, 255)); };
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x) {
      const int o = horizontal ? x : y;
      const int32_t* kk = &k[static_cast<size_t>(o) * ksize];
      for (int c = 0; c < C; ++c) {
        int64_t acc = int64_t{1} << (kBits - 1);
        for (int t = 0; t < cnt[static_cast<size_t>(o)]; ++t) {
          const int s = lo[static_cast<size_t>(o)] + t;
          const size_t src = horizontal ? (static_cast<size_t>(y) * in.width + s) : (static_cast<size_t>(s) * in.width + x);
          acc += static_cast<int64_t>(in.data[src * C + c]) * kk[t];
        }
        out.data[(static_cast<size_t>(y) * W + x) * C + c] = clip8(acc);
      }
    }
  return out;
}
}  // namespace detail

/// Resizes to height x width with PIL's bilinear filter (antialiased when shrinking), in PIL's
/// integer arithmetic, horizontal pass first: the same bytes as torchvision's Resize on a PIL
/// image. Images with alpha go through io::resize_bilinear (premultiplied, float), within 1 level.
inline io::Image resize(const io::Image& img, int64_t height, int64_t width) {
  detail::check_rgb_like(img, "resize");
  EMBER_CHECK(height > 0 && width > 0 && height <= (1 << 16) && width <= (1 << 16), "resize: size must be in [1, 65536], got ",
              height, "x", width);
  if (height == img.height && width == img.width) return img;
  if (img.channels == 2 || img.channels == 4) return io::resize_bilinear(img, static_cast<int>(width), static_cast<int>(height));
  io::Image out = width != img.width ? detail::pil_resample_pass(img, static_cast<int>(width), true) : img;
  if (height != img.height) out = detail::pil_resample_pass(out, static_cast<int>(height), false);
  return out;
}

/// Resizes so the shorter side is `size` (torchvision's Resize(int)).
inline io::Image resize(const io::Image& img, int64_t size) {
  detail::check_rgb_like(img, "resize");
  auto [h, w] = resized_shape(img.height, img.width, size);
  return resize(img, h, w);
}

/// crop then resize (torchvision's resized_crop, RandomResizedCrop's second half).
inline io::Image resized_crop(const io::Image& img, int64_t top, int64_t left, int64_t height, int64_t width,
                              int64_t out_height, int64_t out_width) {
  return resize(crop(img, top, left, height, width), out_height, out_width);
}

/// Mirror left-right.
inline io::Image hflip(const io::Image& img) {
  detail::check_rgb_like(img, "hflip");
  io::Image out = img;
  const int C = img.channels, W = img.width;
  for (int y = 0; y < img.height; ++y)
    for (int x = 0; x < W; ++x)
      std::copy_n(&img.data[(static_cast<size_t>(y) * W + x) * C], C, &out.data[(static_cast<size_t>(y) * W + (W - 1 - x)) * C]);
  return out;
}

/// Rotates counter-clockwise by `degrees` about the image centre, keeping the size (corners
/// are cut off, uncovered areas get `fill`), nearest-neighbour sampling: PIL's Image.rotate as
/// torchvision's RandomRotation calls it. `fill` applies to every channel (alpha included).
inline io::Image rotate(const io::Image& img, double degrees, uint8_t fill = 0) {
  detail::check_rgb_like(img, "rotate");
  EMBER_CHECK(std::isfinite(degrees), "rotate: the angle must be finite, got ", degrees);
  const int C = img.channels, W = img.width, H = img.height;
  double angle = std::fmod(degrees, 360.0);
  if (angle < 0) angle += 360.0;
  if (angle == 0.0) return img;
  // PIL's inverse affine map output -> input: rotation by +angle about (W/2, H/2), with its
  // matrix entries rounded to 15 decimals (which makes 90/180/270 exact).
  const double rad = -angle * std::numbers::pi / 180.0;
  auto r15 = [](double v) { return std::round(v * 1e15) / 1e15; };
  const double a = r15(std::cos(rad)), b = r15(std::sin(rad)), d = r15(-std::sin(rad)), e = r15(std::cos(rad));
  const double cx = W / 2.0, cy = H / 2.0;
  const double c = a * -cx + b * -cy + cx, f = d * -cx + e * -cy + cy;
  io::Image out = io::Image::filled(W, H, C, fill);
  // PIL samples at pixel centres in 16.16 fixed point, stepping along rows and columns, and
  // floors (an arithmetic shift): the same integers give the same pixels at the edges.
  auto fix = [](double v) { return static_cast<int64_t>(std::floor(v * 65536.0 + 0.5)); };
  const int64_t a0 = fix(a), a1 = fix(b), a3 = fix(d), a4 = fix(e);
  int64_t rx = fix(c + a * 0.5 + b * 0.5), ry = fix(f + d * 0.5 + e * 0.5);
  for (int y = 0; y < H; ++y, rx += a1, ry += a4) {
    int64_t xx = rx, yy = ry;
    for (int x = 0; x < W; ++x, xx += a0, yy += a3) {
      const int64_t xi = xx >> 16, yi = yy >> 16;
      if (xi >= 0 && xi < W && yi >= 0 && yi < H)
        std::copy_n(&img.data[(static_cast<size_t>(yi) * W + static_cast<size_t>(xi)) * C], C,
                    &out.data[(static_cast<size_t>(y) * W + x) * C]);
    }
  }
  return out;
}

// ---- colour ----------------------------------------------------------------------------------------

/// factor * image (PIL's ImageEnhance.Brightness: a blend with black). factor >= 0.
inline io::Image adjust_brightness(const io::Image& img, double factor) {
  detail::check_rgb_like(img, "adjust_brightness");
  EMBER_CHECK(factor >= 0 && std::isfinite(factor), "adjust_brightness: factor must be non-negative, got ", factor);
  io::Image out = img;
  const int C = img.channels, cc = detail::color_channels(img);
  for (size_t p = 0; p < out.data.size(); p += C)
    for (int k = 0; k < cc; ++k) out.data[p + k] = detail::pil_blend(0, img.data[p + k], factor);
  return out;
}

/// Blend with the image's mean grey level (PIL's ImageEnhance.Contrast). factor >= 0.
inline io::Image adjust_contrast(const io::Image& img, double factor) {
  detail::check_rgb_like(img, "adjust_contrast");
  EMBER_CHECK(factor >= 0 && std::isfinite(factor), "adjust_contrast: factor must be non-negative, got ", factor);
  const int C = img.channels, cc = detail::color_channels(img);
  double sum = 0;
  for (size_t p = 0; p < img.data.size(); p += C)
    sum += cc >= 3 ? detail::pil_luma(img.data[p], img.data[p + 1], img.data[p + 2]) : img.data[p];
  const int mean = static_cast<int>(sum / (static_cast<double>(img.width) * img.height) + 0.5);
  io::Image out = img;
  for (size_t p = 0; p < out.data.size(); p += C)
    for (int k = 0; k < cc; ++k) out.data[p + k] = detail::pil_blend(mean, img.data[p + k], factor);
  return out;
}

/// Blend with the image's greyscale version (PIL's ImageEnhance.Color). Grey images are returned
/// as they are. factor >= 0.
inline io::Image adjust_saturation(const io::Image& img, double factor) {
  detail::check_rgb_like(img, "adjust_saturation");
  EMBER_CHECK(factor >= 0 && std::isfinite(factor), "adjust_saturation: factor must be non-negative, got ", factor);
  if (detail::color_channels(img) < 3) return img;
  io::Image out = img;
  const int C = img.channels;
  for (size_t p = 0; p < out.data.size(); p += C) {
    const int l = detail::pil_luma(img.data[p], img.data[p + 1], img.data[p + 2]);
    for (int k = 0; k < 3; ++k) out.data[p + k] = detail::pil_blend(l, img.data[p + k], factor);
  }
  return out;
}

/// Shifts the hue by `factor` of a turn, factor in [-0.5, 0.5]: PIL's 8-bit HSV round trip with
/// the hue byte advanced by int(factor * 255) modulo 256 (torchvision's adjust_hue on PIL images).
/// Grey images are returned as they are.
inline io::Image adjust_hue(const io::Image& img, double factor) {
  detail::check_rgb_like(img, "adjust_hue");
  EMBER_CHECK(factor >= -0.5 && factor <= 0.5, "adjust_hue: factor must lie in [-0.5, 0.5], got ", factor);
  if (detail::color_channels(img) < 3) return img;
  const int shift = static_cast<int>(factor * 255.0);  // truncated, as numpy's uint8 cast does
  io::Image out = img;
  const int C = img.channels;
  auto clip8 = [](int v) { return static_cast<uint8_t>(std::clamp(v, 0, 255)); };
  for (size_t p = 0; p < out.data.size(); p += C) {
    const int r = img.data[p], g = img.data[p + 1], b = img.data[p + 2];
    // RGB -> HSV as PIL's rgb2hsv (float arithmetic, truncated to bytes).
    const int maxc = std::max({r, g, b}), minc = std::min({r, g, b});
    uint8_t h = 0, s = 0;
    const uint8_t v = static_cast<uint8_t>(maxc);
    if (maxc != minc) {
      const float cr = static_cast<float>(maxc - minc);
      const float sf = cr / static_cast<float>(maxc);
      const float rc = static_cast<float>(maxc - r) / cr, gc = static_cast<float>(maxc - g) / cr,
                  bc = static_cast<float>(maxc - b) / cr;
      // Mixed float/double exactly as PIL's C code, so rounding at the byte boundaries agrees.
      float hf = r == maxc ? bc - gc : g == maxc ? static_cast<float>(2.0 + rc - bc) : static_cast<float>(4.0 + gc - rc);
      hf = static_cast<float>(std::fmod(hf / 6.0 + 1.0, 1.0));
      h = clip8(static_cast<int>(hf * 255.0));
      s = clip8(static_cast<int>(sf * 255.0));
    }
    h = static_cast<uint8_t>((h + shift) & 0xFF);
    // HSV -> RGB as PIL's hsv2rgb.
    if (s == 0) {
      out.data[p] = out.data[p + 1] = out.data[p + 2] = v;
      continue;
    }
    const int i = static_cast<int>(std::floor(static_cast<float>(h) * 6.0 / 255.0));
    const float fr = static_cast<float>(static_cast<float>(h) * 6.0 / 255.0 - static_cast<float>(i));
    const float fs = static_cast<float>(s / 255.0);
    const double vd = v;
    const uint8_t up = clip8(static_cast<int>(std::round(vd * (1.0 - fs))));
    const uint8_t uq = clip8(static_cast<int>(std::round(vd * (1.0 - fs * fr))));
    const uint8_t ut = clip8(static_cast<int>(std::round(vd * (1.0 - fs * (1.0 - fr)))));
    uint8_t rgb[3];
    switch (i % 6) {
      case 0: rgb[0] = v, rgb[1] = ut, rgb[2] = up; break;
      case 1: rgb[0] = uq, rgb[1] = v, rgb[2] = up; break;
      case 2: rgb[0] = up, rgb[1] = v, rgb[2] = ut; break;
      case 3: rgb[0] = up, rgb[1] = uq, rgb[2] = v; break;
      case 4: rgb[0] = ut, rgb[1] = up, rgb[2] = v; break;
      default: rgb[0] = v, rgb[1] = up, rgb[2] = uq; break;
    }
    std::copy_n(rgb, 3, &out.data[p]);
  }
  return out;
}

}  // namespace ember::vision

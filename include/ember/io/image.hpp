#pragma once
/// 8-bit images: reading any format stb_image decodes (PNG, JPEG, BMP, GIF, TGA, PSD, HDR, PIC,
/// PNM — by content, so a PNG named photo.jpg still loads), writing PNG/JPEG/BMP/TGA (atomically),
/// channel conversions, conversion to and from [C, H, W] float tensors, and resizing.
///
/// Alpha rule (what a drawing exported with a transparent background turns into): dropping alpha
/// composites the image over a background, out = (a·c + (255 − a)·bg) / 255. Background::White and
/// ::Black force one; Background::Auto (the default) picks the one that contrasts with the visible
/// content: it takes the alpha-weighted mean luma of all pixels, and composites over WHITE unless
/// that mean is ≥ 128 (light ink), then over BLACK; a fully transparent image goes over white.
/// So dark strokes on a transparent background stay dark on white, light strokes stay light on
/// black, and transparent pixels (often stored as RGB 0,0,0) never turn into black ink.
/// Grayscale is ITU-R BT.601 luma, Y = 0.299 R + 0.587 G + 0.114 B, rounded.
///
/// stb: every translation unit compiles its own private (static) copy of stb_image and
/// stb_image_write, so there is nothing to link and no one-definition clash with Debian's libstb
/// or another copy in the program. If a translation unit includes <stb/stb_image.h> (or
/// stb_image_write.h) before this header, Ember uses those declarations and the program must link
/// their implementation (e.g. -lstb) itself.
///
/// Example:
/// ```
///   ember::io::Image img = ember::io::read_image("digits.jpg", 1);       // grayscale
///   img = ember::io::resize_bilinear(img, img.width / 4, img.height / 4);
///   ember::Tensor x = ember::io::image_to_tensor(img);                    // [1, H, W] in [0, 1]
///   ember::io::write_png("small.png", ember::io::tensor_to_image(x));
/// ```
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

// ---- stb_image / stb_image_write, private per translation unit ---------------------------------
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpragmas"
#pragma GCC diagnostic ignored "-Wunknown-warning-option"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wtype-limits"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wconversion"
#pragma GCC diagnostic ignored "-Wsign-conversion"
#pragma GCC diagnostic ignored "-Wold-style-cast"
#pragma GCC diagnostic ignored "-Wcast-qual"
#pragma GCC diagnostic ignored "-Wdouble-promotion"
#pragma GCC diagnostic ignored "-Wuseless-cast"
#pragma GCC diagnostic ignored "-Wzero-as-null-pointer-constant"
#pragma GCC diagnostic ignored "-Wmisleading-indentation"
#pragma GCC diagnostic ignored "-Wduplicated-branches"
#pragma GCC diagnostic ignored "-Wstringop-overflow"
#pragma GCC diagnostic ignored "-Wcomma"
#endif
#ifndef STBI_INCLUDE_STB_IMAGE_H
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#include <stb/stb_image.h>
#undef STB_IMAGE_IMPLEMENTATION
#endif
#ifndef INCLUDE_STB_IMAGE_WRITE_H
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>
#undef STB_IMAGE_WRITE_IMPLEMENTATION
#endif
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

#include "ember/core/error.hpp"
#include "ember/core/parallel.hpp"
#include "ember/core/tensor.hpp"
#include "ember/io/atomic_file.hpp"
#include "ember/ops/copy.hpp"
#include "ember/ops/factory.hpp"

namespace ember::io {

/// An 8-bit image, row-major with interleaved channels: data[(y * width + x) * channels + c].
/// channels: 1 gray, 2 gray + alpha, 3 RGB, 4 RGBA.
struct Image {
  int width = 0;
  int height = 0;
  int channels = 0;
  std::vector<uint8_t> data;

  /// A width × height image with every byte set to `value`.
  static Image filled(int width, int height, int channels, uint8_t value = 0) {
    EMBER_CHECK(width >= 0 && height >= 0 && channels >= 1 && channels <= 4, "Image: invalid size ", width, "x",
                height, " with ", channels, " channel(s)");
    return Image{width, height, channels,
                 std::vector<uint8_t>(static_cast<size_t>(width) * static_cast<size_t>(height) * channels, value)};
  }
  bool empty() const { return width == 0 || height == 0; }
  uint8_t& at(int x, int y, int c = 0) { return data[index(x, y, c)]; }
  uint8_t at(int x, int y, int c = 0) const { return data[index(x, y, c)]; }

 private:
  size_t index(int x, int y, int c) const {
    return (static_cast<size_t>(y) * static_cast<size_t>(width) + static_cast<size_t>(x)) * channels + c;
  }
};

/// What transparent pixels are composited over when alpha is dropped (see the header comment).
enum class Background { Auto, White, Black };

namespace detail {

inline void check_image(const Image& img, const char* op) {
  EMBER_CHECK(img.channels >= 1 && img.channels <= 4, op, ": images have 1 to 4 channels, got ", img.channels);
  EMBER_CHECK(img.width >= 0 && img.height >= 0, op, ": negative image size ", img.width, "x", img.height);
  EMBER_CHECK(img.data.size() == static_cast<size_t>(img.width) * static_cast<size_t>(img.height) * img.channels,
              op, ": a ", img.width, "x", img.height, "x", img.channels, " image needs ",
              static_cast<size_t>(img.width) * static_cast<size_t>(img.height) * img.channels, " bytes, data has ",
              img.data.size());
}

/// BT.601 luma of 8-bit RGB, rounded to nearest.
inline uint8_t luma(int r, int g, int b) { return static_cast<uint8_t>((299 * r + 587 * g + 114 * b + 500) / 1000); }

/// (a·c + (255 − a)·bg) / 255, rounded.
inline uint8_t over(int c, int a, int bg) { return static_cast<uint8_t>((a * c + (255 - a) * bg + 127) / 255); }

/// The background value (0 or 255) that the Auto rule picks for `img` (which has alpha).
inline int auto_background(const Image& img) {
  const int n = img.channels;
  double weight = 0, sum = 0;
  const size_t pixels = static_cast<size_t>(img.width) * static_cast<size_t>(img.height);
  for (size_t i = 0; i < pixels; ++i) {
    const uint8_t* p = &img.data[i * n];
    int a = p[n - 1];
    int y = n == 2 ? p[0] : luma(p[0], p[1], p[2]);
    weight += a;
    sum += static_cast<double>(a) * y;
  }
  if (weight == 0) return 255;
  return sum / weight >= 128.0 ? 0 : 255;
}

inline int background_value(const Image& img, Background bg) {
  if (bg == Background::White) return 255;
  if (bg == Background::Black) return 0;
  return auto_background(img);
}

}  // namespace detail

/// Converts between 1 (gray), 2 (gray + alpha), 3 (RGB) and 4 (RGBA) channels: dropping alpha
/// composites over `bg`, dropping color takes BT.601 luma, adding color replicates gray, and
/// adding alpha makes every pixel opaque.
inline Image convert_channels(const Image& img, int channels, Background bg = Background::Auto) {
  detail::check_image(img, "convert_channels");
  EMBER_CHECK(channels >= 1 && channels <= 4, "convert_channels: channels must be 1 to 4, got ", channels);
  if (channels == img.channels) return img;
  const int n = img.channels;
  const bool src_alpha = n == 2 || n == 4, dst_alpha = channels == 2 || channels == 4;
  const int back = src_alpha && !dst_alpha ? detail::background_value(img, bg) : 255;
  Image out = Image::filled(img.width, img.height, channels);
  const int64_t pixels = static_cast<int64_t>(img.width) * img.height;
  parallel_for(0, pixels, kGrainSize / 4, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const uint8_t* p = &img.data[static_cast<size_t>(i) * n];
      uint8_t* q = &out.data[static_cast<size_t>(i) * channels];
      int r = p[0], g = n >= 3 ? p[1] : p[0], bl = n >= 3 ? p[2] : p[0];
      int a = src_alpha ? p[n - 1] : 255;
      if (src_alpha && !dst_alpha) {
        r = detail::over(r, a, back);
        g = detail::over(g, a, back);
        bl = detail::over(bl, a, back);
      }
      if (channels <= 2) {
        q[0] = n <= 2 ? static_cast<uint8_t>(r) : detail::luma(r, g, bl);
      } else {
        q[0] = static_cast<uint8_t>(r);
        q[1] = static_cast<uint8_t>(g);
        q[2] = static_cast<uint8_t>(bl);
      }
      if (dst_alpha) q[channels - 1] = static_cast<uint8_t>(a);
    }
  });
  return out;
}

/// One channel of BT.601 luma, alpha composited over `bg` first.
inline Image to_grayscale(const Image& img, Background bg = Background::Auto) { return convert_channels(img, 1, bg); }

/// Drops the alpha channel (if any) by compositing over `bg`: 2 → 1 and 4 → 3 channels.
inline Image remove_alpha(const Image& img, Background bg = Background::Auto) {
  detail::check_image(img, "remove_alpha");
  return img.channels == 2 || img.channels == 4 ? convert_channels(img, img.channels - 1, bg) : img;
}

namespace detail {

/// Largest image decode_image accepts: 200 megapixels and 20,000 pixels a side (a 108 MP phone
/// photo is 12,000 x 9,000). stb allocates the whole decoded image (and for some formats several
/// copies) at once, so a 100-byte PNG header that announces 10^5 x 10^5 pixels must be refused
/// from its header, before stb allocates anything.
inline constexpr uint64_t kMaxImagePixels = 200'000'000;
inline constexpr int kMaxImageSide = 20'000;

/// The EXIF orientation (1-8; 1 = as stored) of a JPEG, from the Orientation tag (0x0112) of IFD0
/// in its APP1 "Exif" segment; 1 when there is none or the data is malformed (every read is
/// bounds-checked: the bytes are untrusted).
inline int jpeg_exif_orientation(const uint8_t* p, size_t n) {
  if (n < 4 || p[0] != 0xFF || p[1] != 0xD8) return 1;
  size_t i = 2;
  while (i + 4 <= n) {
    if (p[i] != 0xFF) return 1;
    const uint8_t marker = p[i + 1];
    if (marker == 0xFF) {  // fill byte
      ++i;
      continue;
    }
    if (marker == 0xDA || marker == 0xD9) return 1;  // start of scan / end of image: no EXIF before it
    const size_t len = (size_t{p[i + 2]} << 8) | p[i + 3];
    if (len < 2 || i + 2 + len > n) return 1;
    const uint8_t* seg = p + i + 4;
    const size_t seglen = len - 2;
    if (marker == 0xE1 && seglen >= 14 && std::memcmp(seg, "Exif\0\0", 6) == 0) {
      const uint8_t* t = seg + 6;  // TIFF header
      const size_t tn = seglen - 6;
      const bool le = t[0] == 'I' && t[1] == 'I';
      if (!le && !(t[0] == 'M' && t[1] == 'M')) return 1;
      auto u16 = [&](size_t o) -> uint32_t { return le ? (t[o] | (t[o + 1] << 8)) : ((t[o] << 8) | t[o + 1]); };
      auto u32 = [&](size_t o) -> uint64_t { return le ? (uint64_t{u16(o)} | (uint64_t{u16(o + 2)} << 16)) : ((uint64_t{u16(o)} << 16) | u16(o + 2)); };
      if (u16(2) != 42) return 1;
      const uint64_t ifd = u32(4);
      if (ifd + 2 > tn) return 1;
      const uint32_t count = u16(static_cast<size_t>(ifd));
      for (uint32_t k = 0; k < count; ++k) {
        const uint64_t e = ifd + 2 + uint64_t{k} * 12;
        if (e + 12 > tn) return 1;
        if (u16(static_cast<size_t>(e)) == 0x0112) {
          const uint32_t v = u16(static_cast<size_t>(e) + 8);  // SHORT, left-justified in the value field
          return v >= 1 && v <= 8 ? static_cast<int>(v) : 1;
        }
      }
      return 1;
    }
    i += 2 + len;
  }
  return 1;
}

/// `img` as it should be displayed for EXIF orientation `o` (PIL's ImageOps.exif_transpose):
/// 2 mirror, 3 rotate 180, 4 flip, 5 transpose, 6 rotate 90 clockwise, 7 transverse, 8 rotate 90
/// counter-clockwise.
inline Image apply_exif_orientation(const Image& img, int o) {
  if (o <= 1 || o > 8) return img;
  const int W = img.width, H = img.height, C = img.channels;
  const bool swap = o >= 5;
  Image out = Image::filled(swap ? H : W, swap ? W : H, C);
  for (int y = 0; y < out.height; ++y)
    for (int x = 0; x < out.width; ++x) {
      int sx = x, sy = y;
      switch (o) {
        case 2: sx = W - 1 - x; break;
        case 3: sx = W - 1 - x, sy = H - 1 - y; break;
        case 4: sy = H - 1 - y; break;
        case 5: sx = y, sy = x; break;
        case 6: sx = y, sy = H - 1 - x; break;
        case 7: sx = W - 1 - y, sy = H - 1 - x; break;
        case 8: sx = W - 1 - y, sy = x; break;
      }
      std::memcpy(&out.data[(static_cast<size_t>(y) * out.width + x) * C], &img.data[(static_cast<size_t>(sy) * W + sx) * C],
                  static_cast<size_t>(C));
    }
  return out;
}

/// Refuses JPEG Huffman tables with more than 256 codes. Debian's stb_image (2.27) sums the 16
/// code counts of a DHT segment without a bound and writes that many entries into 257-byte tables:
/// a heap overflow on a crafted file (found by tests/fuzz/fuzz_image; fixed upstream in 2.28).
/// Segments are walked by their lengths up to the first scan; after it (entropy data, and the
/// segments between progressive scans) every FF C4 up to EOI is checked, which covers whatever
/// stb may take for a marker. Returns the offset of a bad table, or 0 when there is none.
inline size_t find_bad_jpeg_dht(const uint8_t* p, size_t n) {
  // stb reads a marker as 0xFF, any number of 0xFF fill bytes, then the code: the SOI may come
  // after padding (a variant found by fuzz_image that slipped past a check of bytes 0-1 only).
  size_t soi = 0;
  while (soi < n && p[soi] == 0xFF) ++soi;
  if (n < 4 || soi == 0 || soi >= n || p[soi] != 0xD8) return 0;
  auto byte = [&](size_t j) { return j < n ? int{p[j]} : 0; };  // stb reads 0 past the end
  auto dht_bad = [&](size_t at) {  // at: the FF of FF C4
    long len = (long{byte(at + 2)} << 8 | byte(at + 3)) - 2;
    size_t i = at + 4;
    while (len > 0 && i < n) {
      const int q = byte(i);
      if ((q >> 4) > 1 || (q & 15) > 3) return false;  // stb rejects this table itself
      int count = 0;
      for (int k = 1; k <= 16; ++k) count += byte(i + k);
      if (count > 256) return true;
      i += 17 + static_cast<size_t>(count);
      len -= 17 + count;
    }
    return false;
  };
  size_t i = soi + 1;
  while (i + 4 <= n) {  // header segments: FF xx LEN LEN payload
    if (p[i] != 0xFF) { ++i; continue; }  // stb skips padding between segments byte by byte
    const uint8_t m = p[i + 1];
    if (m == 0xFF) { ++i; continue; }  // fill byte
    if (m == 0xD8 || (m >= 0xD0 && m <= 0xD7) || m == 0x01) { i += 2; continue; }
    if (m == 0xD9) return 0;
    if (m == 0xC4 && dht_bad(i)) return i;
    const size_t len = size_t{p[i + 2]} << 8 | p[i + 3];
    if (m == 0xDA) { i += 2 + len; break; }
    i += 2 + len;
  }
  for (; i + 1 < n; ++i) {
    if (p[i] != 0xFF) continue;
    if (p[i + 1] == 0xD9) return 0;
    if (p[i + 1] == 0xC4 && dht_bad(i)) return i;
  }
  return 0;
}

/// Refuses PNM (P5/P6) headers with a number above INT_MAX: stb_image 2.27 accumulates the width,
/// height and maxval digits in an int without a bound (signed overflow, undefined behaviour; found
/// by tests/fuzz/fuzz_image). Mirrors stb's header scan: whitespace, '#' comments to end of line.
inline bool pnm_header_overflows(const uint8_t* p, size_t n) {
  if (n < 2 || p[0] != 'P' || (p[1] != '5' && p[1] != '6')) return false;
  size_t i = 2;
  auto space = [](uint8_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'; };
  for (int field = 0; field < 3; ++field) {
    for (;;) {  // whitespace and comments
      while (i < n && space(p[i])) ++i;
      if (i >= n || p[i] != '#') break;
      while (i < n && p[i] != '\n' && p[i] != '\r') ++i;
    }
    int64_t value = 0;
    for (; i < n && p[i] >= '0' && p[i] <= '9'; ++i) {
      value = value * 10 + (p[i] - '0');
      if (value > INT32_MAX / 10) return true;  // stb's next step (or this one) would overflow
    }
  }
  return false;
}

/// Refuses PNG chunks longer than the rest of the file: stb_image 2.27 grows its IDAT buffer to the
/// announced chunk length before reading it, so a 60-byte PNG made it allocate 1.1 GB (found by
/// tests/fuzz/fuzz_image). Returns the offset of such a chunk, or 0.
inline size_t find_oversized_png_chunk(const uint8_t* p, size_t n) {
  static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
  if (n < 8 || std::memcmp(p, sig, 8) != 0) return 0;
  for (size_t i = 8; i + 8 <= n;) {
    const uint64_t len = uint64_t{p[i]} << 24 | uint64_t{p[i + 1]} << 16 | uint64_t{p[i + 2]} << 8 | p[i + 3];
    if (len > n - i - 8) return i;  // data (and its CRC) cannot fit in what is left
    if (std::memcmp(p + i + 4, "IEND", 4) == 0) return 0;
    i += 12 + static_cast<size_t>(len);
  }
  return 0;
}

/// A PNG with its zero-length IDAT chunks removed, or empty when it has none. stb 2.27 copies each
/// IDAT's data into a buffer it allocates on the first non-empty one: an empty first IDAT is a
/// memcpy to a null pointer (undefined behaviour, found by tests/fuzz/fuzz_image). Dropping empty
/// IDATs changes nothing else: a PNG's image data is the concatenation of its IDATs.
inline std::vector<uint8_t> without_empty_png_idat(const uint8_t* p, size_t n) {
  static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
  if (n < 8 || std::memcmp(p, sig, 8) != 0) return {};
  bool found = false;
  for (size_t i = 8; i + 12 <= n;) {
    const uint64_t len = uint64_t{p[i]} << 24 | uint64_t{p[i + 1]} << 16 | uint64_t{p[i + 2]} << 8 | p[i + 3];
    if (len == 0 && std::memcmp(p + i + 4, "IDAT", 4) == 0) found = true;
    if (len > n - i - 12 || std::memcmp(p + i + 4, "IEND", 4) == 0) break;
    i += 12 + static_cast<size_t>(len);
  }
  if (!found) return {};
  std::vector<uint8_t> out(p, p + 8);
  size_t i = 8;
  for (; i + 12 <= n;) {
    const uint64_t len = uint64_t{p[i]} << 24 | uint64_t{p[i + 1]} << 16 | uint64_t{p[i + 2]} << 8 | p[i + 3];
    if (len > n - i - 12) break;
    const bool empty_idat = len == 0 && std::memcmp(p + i + 4, "IDAT", 4) == 0;
    if (!empty_idat) out.insert(out.end(), p + i, p + i + 12 + len);
    i += 12 + static_cast<size_t>(len);
  }
  out.insert(out.end(), p + i, p + n);  // whatever follows (a cut chunk): stb reports it
  return out;
}

/// Why stb must not parse these bytes, or "" when it may: the header bugs of stb 2.27 that the
/// checks above catch (a JPEG Huffman table of more than 256 codes, a PNM size beyond 2^31).
/// Every stb call on untrusted bytes, stbi_info included, goes behind it: decode_image and
/// ImageFolder's scan.
inline std::string stb_header_hazard(const uint8_t* p, size_t n) {
  if (size_t at = find_bad_jpeg_dht(p, n))
    return "corrupt JPEG: a Huffman table (DHT) at byte " + std::to_string(at) + " declares more than 256 codes";
  if (pnm_header_overflows(p, n)) return "corrupt PNM header: a size or maximum value beyond 2^31";
  return {};
}

}  // namespace detail

/// Decodes an image file held in memory; `source` names it in errors. desired_channels 0 keeps
/// the file's channels, 1–4 converts with convert_channels (and `bg` for alpha). A JPEG's EXIF
/// orientation is applied (the image comes out upright, as a photo viewer shows it). Images above
/// 20,000 pixels a side or 200 megapixels, or whose decoded size is above max_allocation_bytes(),
/// are refused from their header, before any pixel memory is allocated.
inline Image decode_image(const void* bytes, size_t size, int desired_channels = 0,
                          Background bg = Background::Auto, const std::string& source = "<memory>") {
  EMBER_CHECK(desired_channels >= 0 && desired_channels <= 4, "read_image: desired_channels must be 0 to 4, got ",
              desired_channels);
  EMBER_CHECK(size > 0, "read_image: '", source, "' is empty (0 bytes)");
  EMBER_CHECK(size <= static_cast<size_t>(INT32_MAX), "read_image: '", source, "' is too large (", size, " bytes)");
  const auto* in = static_cast<const stbi_uc*>(bytes);
  // Before stbi_info too: it parses the JPEG header, DHT segments included.
  if (std::string why = detail::stb_header_hazard(in, size); !why.empty())
    EMBER_FAIL("read_image: cannot decode '", source, "': ", why);
  if (size_t at = detail::find_oversized_png_chunk(in, size)) {
    EMBER_FAIL("read_image: cannot decode '", source, "': corrupt or truncated PNG: the chunk at byte ", at,
               " is longer than the rest of the file");
  }
  const std::vector<uint8_t> repaired = detail::without_empty_png_idat(in, size);
  if (!repaired.empty()) {
    in = repaired.data();
    size = repaired.size();
  }
  int w = 0, h = 0, n = 0;
  if (stbi_info_from_memory(in, static_cast<int>(size), &w, &h, &n)) {
    const uint64_t pixels = static_cast<uint64_t>(w) * static_cast<uint64_t>(h);
    EMBER_CHECK(w <= detail::kMaxImageSide && h <= detail::kMaxImageSide && pixels <= detail::kMaxImagePixels &&
                    pixels * 4 <= max_allocation_bytes(),
                "read_image: '", source, "' announces ", w, "x", h, " pixels with ", n, " channel(s), above the limit of ",
                detail::kMaxImageSide, " pixels a side, ", detail::kMaxImagePixels / 1'000'000, " megapixels and ",
                format_bytes(max_allocation_bytes()), " per image; refused before decoding");
  }
  w = h = n = 0;
  // Always decode the file's own channels: stb's conversions drop alpha without compositing.
  stbi_uc* px = stbi_load_from_memory(in, static_cast<int>(size), &w, &h, &n, 0);
  if (px == nullptr) {
    const char* why = stbi_failure_reason();
    EMBER_FAIL("read_image: cannot decode '", source, "': ", why ? why : "unknown error",
               " (not an image, a corrupt or truncated file, or a format stb_image does not read; it reads PNG, "
               "JPEG, BMP, GIF, TGA, PSD, HDR, PIC, PNM)");
  }
  Image img{w, h, n, std::vector<uint8_t>(px, px + static_cast<size_t>(w) * static_cast<size_t>(h) * n)};
  stbi_image_free(px);
  // Phone cameras store the sensor's rows and record how the phone was held: show it upright.
  img = detail::apply_exif_orientation(img, detail::jpeg_exif_orientation(in, size));
  return desired_channels == 0 ? img : convert_channels(img, desired_channels, bg);
}

/// Reads an image file (format detected from the content, not the extension).
inline Image read_image(const std::string& path, int desired_channels = 0, Background bg = Background::Auto) {
  std::error_code ec;
  EMBER_CHECK(std::filesystem::exists(path, ec), "read_image: '", path, "' does not exist");
  EMBER_CHECK(!std::filesystem::is_directory(path, ec), "read_image: '", path, "' is a directory, not an image");
  std::ifstream f(path, std::ios::binary);
  EMBER_CHECK(f.is_open(), "read_image: cannot open '", path, "': ", detail::errno_text(errno));
  std::vector<char> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EMBER_CHECK(!f.bad(), "read_image: reading '", path, "' failed");
  return decode_image(bytes.data(), bytes.size(), desired_channels, bg, path);
}

namespace detail {
inline void append_bytes(void* ctx, void* data, int size) {
  static_cast<std::string*>(ctx)->append(static_cast<const char*>(data), static_cast<size_t>(size));
}
template <typename Encode>
void write_encoded(const std::string& path, const Image& img, const char* op, const char* format, Encode encode) {
  check_image(img, op);
  EMBER_CHECK(!img.empty(), op, ": '", path, "': can't write an empty ", img.width, "x", img.height, " image");
  std::string buf;
  EMBER_CHECK(encode(buf) != 0, op, ": '", path, "': stb_image_write failed to encode ", format);
  write_file_atomic(path, op, [&](FileWriter& w) { w.write(buf); });
}
}  // namespace detail

/// Writes a PNG (lossless; keeps 1–4 channels including alpha).
inline void write_png(const std::string& path, const Image& img) {
  detail::write_encoded(path, img, "write_png", "PNG", [&](std::string& buf) {
    return stbi_write_png_to_func(detail::append_bytes, &buf, img.width, img.height, img.channels, img.data.data(),
                                  img.width * img.channels);
  });
}

/// Writes a baseline JPEG (quality 1–100); alpha is composited over `bg` first (JPEG has none).
inline void write_jpg(const std::string& path, const Image& img, int quality = 90, Background bg = Background::Auto) {
  EMBER_CHECK(quality >= 1 && quality <= 100, "write_jpg: quality must be 1 to 100, got ", quality);
  detail::check_image(img, "write_jpg");
  Image rgb = remove_alpha(img, bg);
  detail::write_encoded(path, rgb, "write_jpg", "JPEG", [&](std::string& buf) {
    return stbi_write_jpg_to_func(detail::append_bytes, &buf, rgb.width, rgb.height, rgb.channels, rgb.data.data(),
                                  quality);
  });
}

/// Writes an uncompressed BMP: 24-bit, or 32-bit when there is alpha (BMP has no gray + alpha
/// format, so such images are written as RGBA rather than losing their alpha).
inline void write_bmp(const std::string& path, const Image& img) {
  detail::check_image(img, "write_bmp");
  const Image& src = img.channels == 2 ? convert_channels(img, 4) : img;
  detail::write_encoded(path, src, "write_bmp", "BMP", [&](std::string& buf) {
    return stbi_write_bmp_to_func(detail::append_bytes, &buf, src.width, src.height, src.channels, src.data.data());
  });
}

/// Writes an RLE-compressed TGA.
inline void write_tga(const std::string& path, const Image& img) {
  detail::write_encoded(path, img, "write_tga", "TGA", [&](std::string& buf) {
    return stbi_write_tga_to_func(detail::append_bytes, &buf, img.width, img.height, img.channels, img.data.data());
  });
}

/// Writes PNG, JPEG (.jpg/.jpeg), BMP or TGA, chosen by the extension (case-insensitive).
inline void write_image(const std::string& path, const Image& img) {
  std::string ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (ext == ".png") return write_png(path, img);
  if (ext == ".jpg" || ext == ".jpeg") return write_jpg(path, img);
  if (ext == ".bmp") return write_bmp(path, img);
  if (ext == ".tga") return write_tga(path, img);
  EMBER_FAIL("write_image: '", path, "': unknown extension '", ext, "' (use .png, .jpg, .jpeg, .bmp or .tga)");
}

/// The image as a float32 [C, H, W] CPU tensor with values in [0, 1] (byte / 255).
inline Tensor image_to_tensor(const Image& img) {
  detail::check_image(img, "image_to_tensor");
  const int64_t C = img.channels, H = img.height, W = img.width;
  Tensor t = make_tensor({C, H, W}, kFloat32, kCPU);
  float* out = t.data_ptr<float>();
  parallel_for(0, H, std::max<int64_t>(1, kGrainSize / std::max<int64_t>(1, W * C)), [&](int64_t b, int64_t e) {
    for (int64_t y = b; y < e; ++y)
      for (int64_t x = 0; x < W; ++x)
        for (int64_t c = 0; c < C; ++c)
          out[(c * H + y) * W + x] = static_cast<float>(img.data[static_cast<size_t>((y * W + x) * C + c)]) / 255.0f;
  });
  return t;
}

/// The inverse of image_to_tensor: a [C, H, W] (C = 1..4) or [H, W] tensor, floating point with
/// values in [0, 1] (clamped, scaled by 255 and rounded) or uint8 (taken as is), on any device.
inline Image tensor_to_image(const Tensor& t) {
  EMBER_CHECK(t.defined(), "tensor_to_image: undefined tensor");
  EMBER_CHECK(t.dim() == 2 || (t.dim() == 3 && t.size(0) >= 1 && t.size(0) <= 4), "tensor_to_image: expected a [C, H, W] "
              "tensor with C = 1..4 or an [H, W] tensor, got shape ", t.sizes());
  EMBER_CHECK(t.is_floating_point() || t.dtype() == kUInt8, "tensor_to_image: expected a floating-point tensor in "
              "[0, 1] or a uint8 tensor, got ", t.dtype());
  const int64_t C = t.dim() == 3 ? t.size(0) : 1, H = t.size(-2), W = t.size(-1);
  EMBER_CHECK(H <= INT32_MAX && W <= INT32_MAX, "tensor_to_image: image too large: ", t.sizes());
  Image img = Image::filled(static_cast<int>(W), static_cast<int>(H), static_cast<int>(C));
  Tensor src = t.detach().to(kCPU);
  if (t.dtype() == kUInt8) {
    src = src.contiguous();
    const uint8_t* p = src.data_ptr<uint8_t>();
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < H * W; ++i) img.data[static_cast<size_t>(i * C + c)] = p[c * H * W + i];
    return img;
  }
  src = src.to(kFloat32).contiguous();
  const float* p = src.data_ptr<float>();
  for (int64_t c = 0; c < C; ++c)
    for (int64_t i = 0; i < H * W; ++i) {
      float v = p[c * H * W + i];
      v = std::isnan(v) ? 0.0f : std::clamp(v, 0.0f, 1.0f);
      img.data[static_cast<size_t>(i * C + c)] = static_cast<uint8_t>(std::lround(v * 255.0f));
    }
  return img;
}

namespace detail {
/// Filter taps of a 1-D resize from n to m samples: a tent (linear) kernel over pixel centres,
/// widened by the shrink factor when shrinking, so every source pixel contributes (area-weighted
/// averaging) instead of being skipped; taps outside the image are dropped and weights renormalised.
struct ResizeTaps {
  std::vector<int> first, count;
  std::vector<float> weights;  ///< count[i] weights for output i, at offset i * stride
  int stride = 0;
};
inline ResizeTaps resize_taps(int n, int m) {
  ResizeTaps t;
  const double scale = static_cast<double>(n) / m;
  const double support = std::max(1.0, scale);
  t.stride = static_cast<int>(std::ceil(support)) * 2 + 2;
  t.first.resize(static_cast<size_t>(m));
  t.count.resize(static_cast<size_t>(m));
  t.weights.assign(static_cast<size_t>(m) * t.stride, 0.0f);
  for (int i = 0; i < m; ++i) {
    const double centre = (i + 0.5) * scale;
    int lo = std::max(0, static_cast<int>(std::floor(centre - support)));
    int hi = std::min(n, static_cast<int>(std::ceil(centre + support)) + 1);
    double sum = 0;
    std::vector<double> w;
    for (int j = lo; j < hi; ++j) w.push_back(std::max(0.0, 1.0 - std::abs(j + 0.5 - centre) / support));
    while (!w.empty() && w.back() == 0.0) w.pop_back();
    size_t skip = 0;
    while (skip < w.size() && w[skip] == 0.0) ++skip;
    for (size_t k = skip; k < w.size(); ++k) sum += w[k];
    t.first[static_cast<size_t>(i)] = lo + static_cast<int>(skip);
    t.count[static_cast<size_t>(i)] = static_cast<int>(w.size() - skip);
    for (size_t k = skip; k < w.size(); ++k)
      t.weights[static_cast<size_t>(i) * t.stride + (k - skip)] = static_cast<float>(w[k] / sum);
  }
  return t;
}
}  // namespace detail

/// Resizes to width × height with bilinear interpolation (pixel centres, as PyTorch's
/// align_corners=False). When shrinking, the kernel widens with the shrink factor (like PIL's
/// antialiased bilinear), averaging every source pixel: a 2-pixel pen stroke on a 2000×1500 photo
/// stays visible at 200×150 instead of vanishing between samples. Alpha is premultiplied while
/// filtering so transparent pixels do not bleed their color into the edges.
inline Image resize_bilinear(const Image& img, int width, int height) {
  detail::check_image(img, "resize_bilinear");
  EMBER_CHECK(width > 0 && height > 0, "resize_bilinear: target size must be positive, got ", width, "x", height);
  EMBER_CHECK(!img.empty(), "resize_bilinear: can't resize an empty ", img.width, "x", img.height, " image");
  const int C = img.channels, W0 = img.width, H0 = img.height;
  const bool alpha = C == 2 || C == 4;
  // Source as float, alpha premultiplied.
  std::vector<float> src(img.data.size());
  for (size_t i = 0; i < src.size(); ++i) src[i] = img.data[i];
  if (alpha)
    for (size_t p = 0; p < src.size(); p += C)
      for (int c = 0; c < C - 1; ++c) src[p + c] *= src[p + C - 1] / 255.0f;
  auto tx = detail::resize_taps(W0, width), ty = detail::resize_taps(H0, height);
  // Horizontal pass: H0 rows of `width` pixels.
  std::vector<float> mid(static_cast<size_t>(H0) * width * C);
  parallel_for(0, H0, 16, [&](int64_t b, int64_t e) {
    for (int64_t y = b; y < e; ++y)
      for (int x = 0; x < width; ++x) {
        const float* w = &tx.weights[static_cast<size_t>(x) * tx.stride];
        for (int c = 0; c < C; ++c) {
          float acc = 0;
          for (int k = 0; k < tx.count[x]; ++k)
            acc += w[k] * src[(static_cast<size_t>(y) * W0 + tx.first[x] + k) * C + c];
          mid[(static_cast<size_t>(y) * width + x) * C + c] = acc;
        }
      }
  });
  Image out = Image::filled(width, height, C);
  parallel_for(0, height, 16, [&](int64_t b, int64_t e) {
    std::vector<float> px(static_cast<size_t>(C));
    for (int64_t y = b; y < e; ++y) {
      const float* w = &ty.weights[static_cast<size_t>(y) * ty.stride];
      for (int x = 0; x < width; ++x) {
        for (int c = 0; c < C; ++c) {
          float acc = 0;
          for (int k = 0; k < ty.count[y]; ++k)
            acc += w[k] * mid[(static_cast<size_t>(ty.first[y] + k) * width + x) * C + c];
          px[c] = acc;
        }
        if (alpha) {
          float a = px[C - 1];
          for (int c = 0; c < C - 1; ++c) px[c] = a > 0 ? px[c] * 255.0f / a : 0.0f;
        }
        for (int c = 0; c < C; ++c)
          out.data[(static_cast<size_t>(y) * width + x) * C + c] =
              static_cast<uint8_t>(std::lround(std::clamp(px[c], 0.0f, 255.0f)));
      }
    }
  });
  return out;
}

}  // namespace ember::io

#include <doctest/doctest.h>

#include "ember/ember.hpp"
#include "ember/io/io.hpp"
#include "fault_injection.hpp"

#include <filesystem>
#include <fstream>
#include <iostream>

using namespace ember;
using io::Background;
using io::Image;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    static int counter = 0;
    path = fs::temp_directory_path() / ("ember_test_image_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}
void spit(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

/// A deterministic image using every byte value across its channels.
Image pattern(int w, int h, int c) {
  Image img = Image::filled(w, h, c);
  for (size_t i = 0; i < img.data.size(); ++i) img.data[i] = static_cast<uint8_t>((i * 97 + i / 7) % 256);
  return img;
}

/// Smooth content (JPEG-friendly): gradients per channel.
Image gradient(int w, int h) {
  Image img = Image::filled(w, h, 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      img.at(x, y, 0) = static_cast<uint8_t>(255 * x / (w - 1));
      img.at(x, y, 1) = static_cast<uint8_t>(255 * y / (h - 1));
      img.at(x, y, 2) = static_cast<uint8_t>(128 + 60 * std::sin(x * 0.05));
    }
  return img;
}

Image from_pixels(int w, int h, int c, std::vector<int> v) {
  Image img = Image::filled(w, h, c);
  REQUIRE(v.size() == img.data.size());
  for (size_t i = 0; i < v.size(); ++i) img.data[i] = static_cast<uint8_t>(v[i]);
  return img;
}

bool same(const Image& a, const Image& b) {
  return a.width == b.width && a.height == b.height && a.channels == b.channels && a.data == b.data;
}

}  // namespace

TEST_CASE("image: PNG, BMP and TGA round trips are exact for 1-4 channels") {
  TempDir dir;
  for (int c = 1; c <= 4; ++c) {
    INFO("channels = " << c);
    Image img = pattern(37, 23, c);
    io::write_png(dir / "a.png", img);
    CHECK(same(io::read_image(dir / "a.png"), img));
    io::write_tga(dir / "a.tga", img);
    CHECK(same(io::read_image(dir / "a.tga", c), img));
    // BMP has no gray formats: gray comes back as RGB with equal channels.
    io::write_bmp(dir / "a.bmp", img);
    Image bmp = io::read_image(dir / "a.bmp");
    CHECK(same(io::convert_channels(bmp, c), img));
  }
  io::write_image(dir / "b.PNG", pattern(5, 4, 3));
  CHECK(same(io::read_image(dir / "b.PNG"), pattern(5, 4, 3)));
  CHECK_THROWS_WITH_AS(io::write_image(dir / "b.gif", pattern(5, 4, 3)), doctest::Contains("unknown extension '.gif'"),
                       ember::Error);
}

TEST_CASE("image: JPEG round trip is close, and alpha is composited before JPEG encoding") {
  TempDir dir;
  Image img = gradient(64, 48);
  io::write_jpg(dir / "g.jpg", img, 95);
  Image back = io::read_image(dir / "g.jpg");
  REQUIRE(back.width == 64);
  REQUIRE(back.height == 48);
  REQUIRE(back.channels == 3);
  double err = 0;
  for (size_t i = 0; i < img.data.size(); ++i) err += std::abs(int(img.data[i]) - int(back.data[i]));
  CHECK(err / static_cast<double>(img.data.size()) < 3.0);

  // Black ink on a transparent background whose hidden color is black: written as JPEG, the
  // background must come back white, not black.
  Image rgba = Image::filled(32, 32, 4, 0);
  for (int y = 8; y < 24; ++y)
    for (int x = 14; x < 18; ++x) rgba.at(x, y, 3) = 255;
  io::write_jpg(dir / "ink.jpg", rgba);
  Image g = io::read_image(dir / "ink.jpg", 1);
  CHECK(g.at(2, 2) > 245);
  CHECK(g.at(15, 16) < 20);
  CHECK_THROWS_WITH_AS(io::write_jpg(dir / "q.jpg", img, 0), doctest::Contains("quality"), ember::Error);
}

TEST_CASE("image: the format comes from the content, not the extension") {
  TempDir dir;
  Image img = pattern(20, 10, 3);
  io::write_png(dir / "photo.jpg", img);  // a PNG named .jpg
  CHECK(slurp(dir / "photo.jpg").substr(1, 3) == "PNG");
  CHECK(same(io::read_image(dir / "photo.jpg"), img));
  io::write_bmp(dir / "scan.png", img);  // a BMP named .png
  CHECK(same(io::read_image(dir / "scan.png"), img));
  std::string bytes = slurp(dir / "photo.jpg");
  CHECK(same(io::decode_image(bytes.data(), bytes.size()), img));
}

TEST_CASE("image: read errors name the path and the reason") {
  TempDir dir;
  auto fails_with = [](const std::string& path, const std::string& needle) {
    INFO(needle);
    CHECK_THROWS_WITH_AS(io::read_image(path), doctest::Contains(needle.c_str()), ember::Error);
    CHECK_THROWS_WITH_AS(io::read_image(path), doctest::Contains(path.c_str()), ember::Error);
  };
  fails_with(dir / "nope.png", "does not exist");
  fails_with(dir.path.string(), "is a directory");
  spit(dir / "empty.png", "");
  fails_with(dir / "empty.png", "is empty");
  spit(dir / "text.jpg", "hello, this is not an image at all");
  fails_with(dir / "text.jpg", "cannot decode");
  fails_with(dir / "text.jpg", "unknown image type");  // stb's reason
  io::write_png(dir / "full.png", pattern(64, 64, 3));
  std::string png = slurp(dir / "full.png");
  spit(dir / "truncated.png", png.substr(0, png.size() / 2));
  fails_with(dir / "truncated.png", "cannot decode");
  CHECK_THROWS_WITH_AS(io::read_image(dir / "full.png", 5), doctest::Contains("desired_channels"), ember::Error);
  CHECK_THROWS_WITH_AS(io::write_png(dir / "no/dir/x.png", pattern(2, 2, 1)), doctest::Contains("does not exist"),
                       ember::Error);
  Image bad = pattern(4, 4, 3);
  bad.data.pop_back();
  CHECK_THROWS_WITH_AS(io::write_png(dir / "bad.png", bad), doctest::Contains("needs 48 bytes, data has 47"), ember::Error);
  CHECK_THROWS_WITH_AS(io::write_png(dir / "empty2.png", Image::filled(0, 3, 1)), doctest::Contains("empty"),
                       ember::Error);
}

// The disk filling up is injected by the LD_PRELOAD shim of tests/fault/fault_inject.c into a child
// run of this binary (tests/fault_injection.hpp): the library has no hook for it.
TEST_CASE("image fault child: writes one PNG (does nothing unless started by a fault-injection test)") {
  const char* p = std::getenv("EMBER_FAULT_CHILD_PNG");
  if (p == nullptr) return;
  try {
    io::write_png(p, pattern(16, 16, 1));
    std::cout << "SAVED\n";
  } catch (const ember::Error& e) {
    std::cout << "EMBER_ERROR: " << e.what() << "\n";
  }
}

TEST_CASE("image: a failed PNG write leaves the previous file") {
  TempDir dir, tools;
  const std::string shim = ember_test::fault_shim(tools.path);
  if (shim.empty()) {
    MESSAGE(ember_test::kNoFaultShim);
    return;
  }
  const std::string keep = dir / "keep.png";
  io::write_png(keep, pattern(16, 16, 3));
  const std::string before = slurp(keep);
  for (int cut : {0, 10}) {
    INFO("the disk is full after " << cut << " bytes of the new file");
    const ember_test::ProgramResult r = ember_test::run_self_with_fault(
        shim,
        "EMBER_FAULT_INJECT=write EMBER_FAULT_ERRNO=28 EMBER_FAULT_AFTER_BYTES=" + std::to_string(cut) +
            " EMBER_FAULT_MATCH=" + ember_test::shell_quote(dir.path.string()) +
            " EMBER_FAULT_CHILD_PNG=" + ember_test::shell_quote(keep),
        "image fault child: writes one PNG*", tools / "child.err");
    INFO("child stdout: " << r.out << "\nchild stderr: " << r.err);
    CHECK(r.code == 0);
    CHECK(r.err.find("fault_inject: write('" + keep + ".tmp.") != std::string::npos);  // the fault really happened
    CHECK(r.out.find("EMBER_ERROR: write_png: write to '" + keep + "' failed: No space left on device") !=
          std::string::npos);
    CHECK(slurp(keep) == before);
    CHECK(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator()) == 1);
  }
}

TEST_CASE("image: BT.601 grayscale values") {
  Image rgb = from_pixels(6, 1, 3, {255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255, 0, 0, 0, 100, 150, 200});
  Image g = io::to_grayscale(rgb);
  CHECK(g.channels == 1);
  // 0.299*255 = 76.2, 0.587*255 = 149.7, 0.114*255 = 29.1, 0.299*100 + 0.587*150 + 0.114*200 = 141.25
  CHECK(g.data == std::vector<uint8_t>{76, 150, 29, 255, 0, 141});
  // Gray → RGB replicates, RGB → RGBA is opaque.
  Image rgb2 = io::convert_channels(from_pixels(2, 1, 1, {7, 200}), 3);
  CHECK(rgb2.data == std::vector<uint8_t>{7, 7, 7, 200, 200, 200});
  CHECK(io::convert_channels(rgb2, 4).data == std::vector<uint8_t>{7, 7, 7, 255, 200, 200, 200, 255});
  // RGBA → gray + alpha keeps alpha untouched.
  CHECK(io::convert_channels(from_pixels(1, 1, 4, {255, 0, 0, 9}), 2).data == std::vector<uint8_t>{76, 9});
}

TEST_CASE("image: transparent backgrounds never turn into black ink") {
  // Pixels: transparent "black", opaque black ink, half-transparent red, transparent "white".
  Image rgba = from_pixels(4, 1, 4, {0, 0, 0, 0, 0, 0, 0, 255, 255, 0, 0, 128, 255, 255, 255, 0});
  // Dark content → Auto composites over white.
  // Half red over white: r = 255, g = b = (127 * 255 + 127) / 255 = 127; luma(255, 127, 127) = 165.
  CHECK(io::to_grayscale(rgba).data == std::vector<uint8_t>{255, 0, 165, 255});
  CHECK(io::to_grayscale(rgba, Background::White).data == std::vector<uint8_t>{255, 0, 165, 255});
  // Forced black: half red = (128 * 255 + 127) / 255 = 128 red → luma 38.
  CHECK(io::to_grayscale(rgba, Background::Black).data == std::vector<uint8_t>{0, 0, 38, 0});
  CHECK(io::remove_alpha(rgba).data == std::vector<uint8_t>{255, 255, 255, 0, 0, 0, 255, 127, 127, 255, 255, 255});

  // Light strokes on a transparent background → Auto composites over black, so they stay visible.
  Image light = from_pixels(3, 1, 2, {0, 0, 250, 255, 255, 0});
  CHECK(io::to_grayscale(light).data == std::vector<uint8_t>{0, 250, 0});
  // Fully transparent: white.
  CHECK(io::to_grayscale(from_pixels(2, 1, 2, {0, 0, 0, 0})).data == std::vector<uint8_t>{255, 255});

  // The same through a file, as a paint program exports it: read_image(path, 1) composites
  // (stb's own conversion would just drop alpha and return a black page).
  TempDir dir;
  Image drawing = Image::filled(40, 30, 4, 0);
  for (int x = 5; x < 35; ++x) drawing.at(x, 15, 3) = 255;  // a black line, the rest transparent black
  io::write_png(dir / "drawing.png", drawing);
  Image g = io::read_image(dir / "drawing.png", 1);
  CHECK(g.at(0, 0) == 255);
  CHECK(g.at(20, 15) == 0);
  CHECK(io::read_image(dir / "drawing.png", 3).at(0, 0, 2) == 255);
  CHECK(io::read_image(dir / "drawing.png", 1, Background::Black).at(0, 0) == 0);
  CHECK(io::read_image(dir / "drawing.png").channels == 4);
}

TEST_CASE("image: image_to_tensor / tensor_to_image") {
  Image img = pattern(5, 3, 3);
  Tensor t = io::image_to_tensor(img);
  CHECK(t.sizes() == Shape{3, 3, 5});
  CHECK(t.dtype() == kFloat32);
  CHECK(t.select(0, 1).select(0, 2).select(0, 4).item<float>() == img.at(4, 2, 1) / 255.0f);
  CHECK(same(io::tensor_to_image(t), img));
  CHECK(same(io::tensor_to_image(t.to(kFloat64)), img));
  CHECK(same(io::tensor_to_image((t * 255.0 + 0.5).to(kUInt8)), img));
  // Non-contiguous input: a transposed [H, W] view.
  Tensor hw = tensor<float>({0.0f, 0.25f, 1.0f, 0.5f, -0.5f, 1.7f}, {2, 3});
  Image g = io::tensor_to_image(hw.t());
  CHECK(g.width == 2);
  CHECK(g.height == 3);
  CHECK(g.channels == 1);
  // Column-major reading of hw: 0, 0.5 / 0.25, -0.5 (clamped) / 1.0, 1.7 (clamped); 0.25 → 63.75 → 64.
  CHECK(g.data == std::vector<uint8_t>{0, 128, 64, 0, 255, 255});
  Tensor nan = full({1, 1}, std::nan(""));
  CHECK(io::tensor_to_image(nan).data[0] == 0);
  CHECK_THROWS_WITH_AS(io::tensor_to_image(zeros({5, 2, 2})), doctest::Contains("C = 1..4"), ember::Error);
  CHECK_THROWS_WITH_AS(io::tensor_to_image(zeros({2, 2}, kInt64)), doctest::Contains("int64"), ember::Error);
  CHECK_THROWS_WITH_AS(io::tensor_to_image(zeros({2})), doctest::Contains("[C, H, W]"), ember::Error);
}

TEST_CASE("image: resize_bilinear") {
  // Upsampling matches PyTorch's bilinear with align_corners=False: [0, 63.75, 191.25, 255].
  Image two = from_pixels(2, 1, 1, {0, 255});
  CHECK(io::resize_bilinear(two, 4, 1).data == std::vector<uint8_t>{0, 64, 191, 255});
  Image p = pattern(9, 7, 3);
  CHECK(same(io::resize_bilinear(p, 9, 7), p));
  // A constant image stays constant at any size.
  Image flat = Image::filled(31, 17, 2, 77);
  for (auto [w, h] : {std::pair{5, 3}, std::pair{100, 80}, std::pair{1, 1}})
    for (uint8_t v : io::resize_bilinear(flat, w, h).data) CHECK(v == 77);
  // Shrinking by 2 weighs neighbours with a tent twice as wide: [0,0,255,255] → [36, 219].
  CHECK(io::resize_bilinear(from_pixels(4, 1, 1, {0, 0, 255, 255}), 2, 1).data == std::vector<uint8_t>{36, 219});
  // Alpha is premultiplied: a transparent black neighbour does not darken an opaque white pixel.
  Image rgba = from_pixels(2, 1, 4, {255, 255, 255, 255, 0, 0, 0, 0});
  Image up = io::resize_bilinear(rgba, 4, 1);
  CHECK(up.at(1, 0, 0) == 255);
  CHECK(up.at(1, 0, 3) == 191);
  CHECK_THROWS_WITH_AS(io::resize_bilinear(p, 0, 3), doctest::Contains("positive"), ember::Error);
}

TEST_CASE("image: thin pen strokes on a 2000x1500 photo survive a 10x downscale") {
  Image photo = Image::filled(2000, 1500, 1, 220);  // grey paper
  const int ink = 60;
  for (int y = 0; y < 1500; ++y)
    for (int x : {137, 611, 1234, 1771}) photo.at(x, y) = photo.at(x + 1, y) = static_cast<uint8_t>(ink);  // 2 px
  for (int x = 0; x < 2000; ++x) photo.at(x, 777) = static_cast<uint8_t>(ink);  // 1 px horizontal
  Image small = io::resize_bilinear(photo, 200, 150);
  // Every stroke leaves a clearly darker line (a point-sampling resize would skip most of them).
  for (int x : {137, 611, 1234, 1771}) {
    int darkest = 255;
    for (int dx = -1; dx <= 1; ++dx) darkest = std::min<int>(darkest, small.at(x / 10 + dx, 40));
    INFO("stroke at x = " << x);
    CHECK(darkest <= 220 - 15);
  }
  int darkest_row = 255;
  for (int dy = -1; dy <= 1; ++dy) darkest_row = std::min<int>(darkest_row, small.at(50, 77 + dy));
  CHECK(darkest_row <= 220 - 7);
  // Ink is conserved: the total darkness (relative to the paper) matches within 3%.
  double in = 0, out = 0;
  for (uint8_t v : photo.data) in += 220 - v;
  for (uint8_t v : small.data) out += (220 - v) * 100.0;
  CHECK(std::abs(out - in) / in < 0.03);
}

// ---- regressions found by tests/fuzz/fuzz_image (inputs in tests/fuzz/regressions/fuzz_image/) ----

TEST_CASE("image: JPEG Huffman tables with more than 256 codes are refused (stb 2.27 heap overflow)") {
  // Each input is the fuzzer's crash file; its first byte is the harness's mode byte.
  const fs::path dir = fs::path(EMBER_SOURCE_DIR) / "tests/fuzz/regressions/fuzz_image";
  int seen = 0;
  for (const char* name : {"jpeg_dht_over_256_codes", "jpeg_dht_after_padding", "jpeg_dht_counts_past_eof",
                           "jpeg_dht_after_bad_dqt", "jpeg_dht_after_leading_fill_bytes"}) {
    std::string bytes = slurp((dir / name).string());
    REQUIRE_MESSAGE(bytes.size() > 1, "missing regression input ", name);
    ++seen;
    try {
      io::decode_image(bytes.data() + 1, bytes.size() - 1, 0, Background::Auto, name);
      FAIL("decoded a JPEG with an oversized Huffman table: ", name);
    } catch (const Error& e) {
      CHECK_MESSAGE(std::string(e.what()).find("Huffman table (DHT)") != std::string::npos, e.what());
    }
  }
  CHECK(seen == 5);
  // A valid JPEG (whose DHT segments hold <= 256 codes each) still decodes.
  TempDir tmp;
  io::write_jpg(tmp / "ok.jpg", pattern(9, 7, 3), 80);
  std::string ok = slurp(tmp / "ok.jpg");
  CHECK(io::detail::find_bad_jpeg_dht(reinterpret_cast<const uint8_t*>(ok.data()), ok.size()) == 0);
  CHECK(io::decode_image(ok.data(), ok.size()).width == 9);
  // The same file with one DHT count raised past 256 codes is refused, not decoded.
  size_t dht = ok.find("\xFF\xC4");
  REQUIRE(dht != std::string::npos);
  ok[dht + 5 + 15] = static_cast<char>(0xFF);  // last of the 16 counts of the first table
  ok[dht + 5 + 14] = static_cast<char>(0xFF);
  CHECK_THROWS_WITH_AS(io::decode_image(ok.data(), ok.size()), doctest::Contains("more than 256 codes"), Error);
}

TEST_CASE("image: a header announcing a huge image is refused before decoding") {
  TempDir tmp;
  io::write_png(tmp / "one.png", pattern(1, 1, 1));
  std::string png = slurp(tmp / "one.png");
  // IHDR: 8-byte signature, length, "IHDR", then big-endian width and height.
  REQUIRE(png.substr(12, 4) == "IHDR");
  for (int i = 0; i < 4; ++i) {
    png[16 + i] = static_cast<char>((20000u >> (24 - 8 * i)) & 0xFF);
    png[20 + i] = static_cast<char>((20000u >> (24 - 8 * i)) & 0xFF);
  }
  uint64_t before = cpu_memory_stats().system_allocations;
  CHECK_THROWS_WITH_AS(io::decode_image(png.data(), png.size(), 0, Background::Auto, "huge.png"),
                       doctest::Contains("20000x20000 pixels"), Error);
  CHECK(cpu_memory_stats().system_allocations == before);
  // The allocation cap lowers the limit further (1 KiB: a 32x32 image is 4 KiB as RGBA).
  io::write_png(tmp / "small.png", pattern(32, 32, 1));
  std::string small = slurp(tmp / "small.png");
  size_t old = set_max_allocation_bytes(1024);
  CHECK_THROWS_WITH_AS(io::decode_image(small.data(), small.size()), doctest::Contains("refused before decoding"), Error);
  set_max_allocation_bytes(old);
  CHECK(io::decode_image(small.data(), small.size()).width == 32);
}

TEST_CASE("image: PNM sizes beyond 2^31 are refused (stb 2.27 signed overflow)") {
  const fs::path dir = fs::path(EMBER_SOURCE_DIR) / "tests/fuzz/regressions/fuzz_image";
  std::string bytes = slurp((dir / "pnm_width_overflows_int").string());
  REQUIRE(bytes.size() > 1);
  CHECK_THROWS_WITH_AS(io::decode_image(bytes.data() + 1, bytes.size() - 1), doctest::Contains("corrupt PNM header"),
                       Error);
  std::string pgm = "P5\n# comment 99999999999\n3 2\n255\n" + std::string("\x00\x40\x80\xc0\xff\x10", 6);
  CHECK(io::decode_image(pgm.data(), pgm.size()).width == 3);  // digits in comments do not count
  std::string big = "P5 3 99999999999 255\n" + std::string(6, '\0');
  CHECK_THROWS_WITH_AS(io::decode_image(big.data(), big.size()), doctest::Contains("corrupt PNM header"), Error);
}

TEST_CASE("image: a PNG chunk longer than the file is refused before stb allocates it") {
  const fs::path dir = fs::path(EMBER_SOURCE_DIR) / "tests/fuzz/regressions/fuzz_image";
  std::string bytes = slurp((dir / "png_idat_length_1GB").string());
  REQUIRE(bytes.size() > 1);
  CHECK_THROWS_WITH_AS(io::decode_image(bytes.data() + 1, bytes.size() - 1), doctest::Contains("longer than the rest"),
                       Error);
  // A valid PNG is untouched; cutting its last chunk short is refused the same way.
  TempDir tmp;
  io::write_png(tmp / "ok.png", pattern(6, 5, 3));
  std::string ok = slurp(tmp / "ok.png");
  CHECK(io::decode_image(ok.data(), ok.size()).height == 5);
  std::string cut = ok.substr(0, ok.size() - 14);  // into the IDAT chunk
  CHECK_THROWS_AS(io::decode_image(cut.data(), cut.size()), Error);
}

TEST_CASE("image: a side longer than 20,000 pixels is refused from the header") {
  TempDir tmp;
  io::write_png(tmp / "one.png", pattern(1, 1, 1));
  std::string png = slurp(tmp / "one.png");
  REQUIRE(png.substr(12, 4) == "IHDR");
  auto set_be32 = [&](size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i) png[at + i] = static_cast<char>((v >> (24 - 8 * i)) & 0xFF);
  };
  set_be32(16, 20001);  // a 20001 x 1 strip: few pixels, but a side beyond the limit
  set_be32(20, 1);
  CHECK_THROWS_WITH_AS(io::decode_image(png.data(), png.size(), 0, Background::Auto, "strip.png"),
                       doctest::Contains("20000 pixels a side"), Error);
}

namespace {
/// `jpeg` with an APP1 Exif segment (IFD0 holding only Orientation = o) inserted after SOI, in
/// little- or big-endian TIFF byte order.
std::string with_exif_orientation(const std::string& jpeg, int o, bool little_endian) {
  std::string tiff = little_endian ? std::string("II\x2A\x00\x08\x00\x00\x00", 8) : std::string("MM\x00\x2A\x00\x00\x00\x08", 8);
  auto u16 = [&](uint32_t v) {
    return little_endian ? std::string{char(v & 0xFF), char(v >> 8)} : std::string{char(v >> 8), char(v & 0xFF)};
  };
  tiff += u16(1);                                                    // one entry
  tiff += u16(0x0112) + u16(3) + (little_endian ? std::string("\x01\x00\x00\x00", 4) : std::string("\x00\x00\x00\x01", 4));
  tiff += u16(static_cast<uint32_t>(o)) + std::string(2, '\0');     // SHORT value, left-justified
  tiff += std::string(4, '\0');                                      // no next IFD
  std::string payload = std::string("Exif\0\0", 6) + tiff;
  const size_t len = payload.size() + 2;
  std::string app1 = std::string("\xFF\xE1", 2) + char(len >> 8) + char(len & 0xFF) + payload;
  return jpeg.substr(0, 2) + app1 + jpeg.substr(2);
}
}  // namespace

TEST_CASE("image: JPEG EXIF orientation is applied (the photo comes out upright, as PIL's exif_transpose)") {
  TempDir tmp;
  // 32 x 16, red in the top-left quarter: where it lands tells the transform.
  Image im = Image::filled(32, 16, 3, 0);
  for (int y = 0; y < 8; ++y)
    for (int x = 0; x < 16; ++x) im.at(x, y, 0) = 255;
  io::write_jpg(tmp / "plain.jpg", im, 100);
  const std::string jpeg = slurp(tmp / "plain.jpg");
  // Size and red centroid after PIL 9.4's ImageOps.exif_transpose of the same picture.
  struct Want {
    int w, h;
    double cx, cy;
  };
  const Want want[9] = {{}, {32, 16, 7.5, 3.5}, {32, 16, 23.5, 3.5}, {32, 16, 23.5, 11.5}, {32, 16, 7.5, 11.5},
                        {16, 32, 3.5, 7.5}, {16, 32, 11.5, 7.5}, {16, 32, 11.5, 23.5}, {16, 32, 3.5, 23.5}};
  for (int o = 1; o <= 8; ++o)
    for (bool le : {true, false}) {
      CAPTURE(o);
      CAPTURE(le);
      std::string f = with_exif_orientation(jpeg, o, le);
      Image got = io::decode_image(f.data(), f.size(), 3);
      REQUIRE(got.width == want[o].w);
      REQUIRE(got.height == want[o].h);
      double sx = 0, sy = 0, n = 0;
      for (int y = 0; y < got.height; ++y)
        for (int x = 0; x < got.width; ++x)
          if (got.at(x, y, 0) > 128) sx += x, sy += y, n += 1;
      REQUIRE(n > 0);
      CHECK(sx / n == doctest::Approx(want[o].cx).epsilon(0.02));
      CHECK(sy / n == doctest::Approx(want[o].cy).epsilon(0.02));
    }
  // Malformed EXIF (cut short, an orientation of 9, garbage) is ignored, never read out of bounds.
  std::string bad = with_exif_orientation(jpeg, 9, true);
  CHECK(io::decode_image(bad.data(), bad.size()).width == 32);
  std::string cut = with_exif_orientation(jpeg, 6, true);
  cut[5] = 10;  // APP1 length 10: the TIFF header no longer fits in the segment
  CHECK_NOTHROW(io::decode_image(cut.data(), cut.size()));
}

TEST_CASE("image: empty IDAT chunks are dropped before stb sees them (stb 2.27 memcpy to null)") {
  TempDir tmp;
  Image im = pattern(7, 5, 3);
  io::write_png(tmp / "p.png", im);
  std::string png = slurp(tmp / "p.png");
  const size_t idat = png.find("IDAT");
  REQUIRE(idat != std::string::npos);
  // A zero-length IDAT (length 0, type, CRC-32 of "IDAT") before the real one: a valid PNG.
  const std::string empty("\x00\x00\x00\x00IDAT\x35\xAF\x06\x1E", 12);
  std::string with_empty = png.substr(0, idat - 4) + empty + png.substr(idat - 4);
  Image got = io::decode_image(with_empty.data(), with_empty.size());
  CHECK(got.width == 7);
  CHECK(got.data == im.data);
  // tests/fuzz/regressions/fuzz_image/png_empty_first_idat_memcpy_null: a truncated stream behind
  // an empty first IDAT is a clean error (or a decode), never undefined behaviour.
  std::string fuzz = slurp(std::string(EMBER_SOURCE_DIR) + "/tests/fuzz/regressions/fuzz_image/png_empty_first_idat_memcpy_null");
  REQUIRE(fuzz.size() > 1);
  try {
    (void)io::decode_image(fuzz.data() + 1, fuzz.size() - 1);
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("read_image") != std::string::npos);
  }
}

TEST_CASE("image: CMYK and progressive JPEGs, grey JPEGs, 16-bit and palette PNGs decode as Pillow does") {
  // tests/golden/make_photo_formats.py: each file beside Pillow's decode as 8-bit RGB. JPEG
  // decoders round their IDCT and chroma upsampling differently (stb vs libjpeg), so JPEGs agree
  // within a few levels; the PNGs exactly (16 bits: the high byte).
  const std::string dir = std::string(EMBER_SOURCE_DIR) + "/tests/golden/photo_formats/";
  struct Case {
    const char* file;
    int channels;  // as decoded
    double mean_tol;
    int max_tol;
  };
  for (const Case& c : {Case{"cmyk.jpg", 3, 2.0, 12}, Case{"progressive.jpg", 3, 2.0, 12}, Case{"grey.jpg", 1, 1.0, 6},
                        Case{"grey16.png", 1, 0, 0}, Case{"rgb16.png", 3, 0, 0}, Case{"palette.png", 3, 0, 0}}) {
    INFO(c.file);
    const Image native = io::read_image(dir + c.file);
    CHECK(native.channels == c.channels);
    const Image got = io::read_image(dir + c.file, 3), ref = io::read_image(dir + c.file + ".ref.png", 3);
    REQUIRE(got.width == ref.width);
    REQUIRE(got.height == ref.height);
    REQUIRE(got.data.size() == ref.data.size());
    double sum = 0;
    int worst = 0;
    for (size_t i = 0; i < got.data.size(); ++i) {
      const int d = std::abs(int(got.data[i]) - int(ref.data[i]));
      sum += d;
      worst = std::max(worst, d);
    }
    CHECK(sum / static_cast<double>(got.data.size()) <= c.mean_tol);
    CHECK(worst <= c.max_tol);
  }
}

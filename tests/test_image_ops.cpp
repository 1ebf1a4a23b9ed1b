// ember::vision image ops against torchvision 0.14 on PIL images (tests/golden/make_image_golden.py).
#include <doctest/doctest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "ember/io/image.hpp"
#include "ember/vision/image_ops.hpp"

using namespace ember;
using nlohmann::json;

namespace {

std::string golden_dir() { return std::string(EMBER_SOURCE_DIR) + "/tests/golden/image_ops/"; }

io::Image run_op(const std::string& op, const json& a, const io::Image& in) {
  auto i = [&](size_t k) { return a.at(k).get<int64_t>(); };
  auto d = [&](size_t k) { return a.at(k).get<double>(); };
  if (op == "resize_int") return vision::resize(in, i(0));
  if (op == "resize_hw") return vision::resize(in, i(0), i(1));
  if (op == "center_crop") return vision::center_crop(in, i(0), i(1));
  if (op == "crop") return vision::crop(in, i(0), i(1), i(2), i(3));
  if (op == "resized_crop") return vision::resized_crop(in, i(0), i(1), i(2), i(3), i(4), i(5));
  if (op == "hflip") return vision::hflip(in);
  if (op == "rotate") return vision::rotate(in, d(0), static_cast<uint8_t>(i(1)));
  if (op == "adjust_brightness") return vision::adjust_brightness(in, d(0));
  if (op == "adjust_contrast") return vision::adjust_contrast(in, d(0));
  if (op == "adjust_saturation") return vision::adjust_saturation(in, d(0));
  if (op == "adjust_hue") return vision::adjust_hue(in, d(0));
  FAIL("unknown op in cases.json: " << op);
  return {};
}

struct Diff {
  int max = 0;
  double mean = 0;
  double frac_pixels = 0;  // pixels with any channel different
};

Diff diff(const io::Image& a, const io::Image& b) {
  Diff r;
  int64_t px = 0;
  for (size_t p = 0; p < a.data.size(); p += static_cast<size_t>(a.channels)) {
    bool any = false;
    for (int c = 0; c < a.channels; ++c) {
      int e = std::abs(int(a.data[p + c]) - int(b.data[p + c]));
      r.max = std::max(r.max, e);
      r.mean += e;
      any |= e != 0;
    }
    px += any;
  }
  r.mean /= static_cast<double>(a.data.size());
  r.frac_pixels = static_cast<double>(px) / (static_cast<double>(a.width) * a.height);
  return r;
}

}  // namespace

TEST_CASE("image ops: every golden case matches torchvision on PIL images") {
  std::ifstream f(golden_dir() + "cases.json");
  REQUIRE_MESSAGE(f.good(), "missing tests/golden/image_ops/cases.json (run tests/golden/make_image_golden.py)");
  json cases = json::parse(f);
  REQUIRE(cases.at("cases").size() >= 30);
  for (const auto& c : cases.at("cases")) {
    const std::string name = c.at("name"), op = c.at("op");
    CAPTURE(name);
    io::Image in = io::read_image(golden_dir() + c.at("input").get<std::string>());
    io::Image want = io::read_image(golden_dir() + c.at("output").get<std::string>());
    io::Image got = run_op(op, c.at("args"), in);
    REQUIRE(got.width == want.width);
    REQUIRE(got.height == want.height);
    REQUIRE(got.channels == want.channels);
    Diff d = diff(got, want);
    // Every op reproduces PIL's integer arithmetic, so the bytes are identical.
    CHECK_MESSAGE(d.max == 0, name << ": max difference " << d.max << ", mean " << d.mean << ", pixels differing "
                                   << d.frac_pixels);
  }
}

TEST_CASE("image ops: sizes follow torchvision (shorter side, truncation, center-crop rounding)") {
  CHECK(vision::resized_shape(375, 500, 150) == std::pair<int64_t, int64_t>{150, 200});
  CHECK(vision::resized_shape(500, 333, 150) == std::pair<int64_t, int64_t>{225, 150});  // 150*500/333 = 225.2
  CHECK(vision::resized_shape(7, 7, 3) == std::pair<int64_t, int64_t>{3, 3});
  io::Image img = io::Image::filled(5, 4, 1);
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 5; ++x) img.at(x, y) = static_cast<uint8_t>(10 * y + x);
  // (5 - 2) / 2 = 1.5 rounds to 2 (ties to even); (4 - 1) / 2 = 1.5 -> 2.
  io::Image c = vision::center_crop(img, 1, 2);
  CHECK(c.at(0, 0) == 22);
  CHECK(c.at(1, 0) == 23);
  // A rotation by 0 or 360 degrees is the identity; 90 degrees of a square image is exact.
  CHECK(vision::rotate(img, 360.0).data == img.data);
  io::Image sq = vision::center_crop(img, 4, 4);
  io::Image r = vision::rotate(sq, 90.0);
  CHECK(r.at(0, 3) == sq.at(0, 0));  // counter-clockwise: the top-left corner goes to the bottom-left
  CHECK(vision::hflip(vision::hflip(img)).data == img.data);
  // Alpha images resize through the premultiplied path; a colour channel of an opaque image
  // matches the opaque RGB result within one level.
  io::Image rgba = io::Image::filled(9, 6, 4, 255), rgb = io::Image::filled(9, 6, 3);
  for (int y = 0; y < 6; ++y)
    for (int x = 0; x < 9; ++x)
      for (int ch = 0; ch < 3; ++ch) rgba.at(x, y, ch) = rgb.at(x, y, ch) = static_cast<uint8_t>((x * 29 + y * 41 + ch * 70) % 256);
  io::Image a = vision::resize(rgba, 4, 5), b = vision::resize(rgb, 4, 5);
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 5; ++x)
      for (int ch = 0; ch < 3; ++ch) CHECK(std::abs(int(a.at(x, y, ch)) - int(b.at(x, y, ch))) <= 1);
}

TEST_CASE("image ops: bad arguments give clear errors") {
  io::Image img = io::Image::filled(6, 4, 3, 100);
  CHECK_THROWS_WITH_AS(vision::resize(img, 0), doctest::Contains("resize: size must be positive"), Error);
  CHECK_THROWS_WITH_AS(vision::resize(img, 3, -1), doctest::Contains("resize: size must be in [1, 65536]"), Error);
  CHECK_THROWS_WITH_AS(vision::crop(img, 0, 0, 0, 3), doctest::Contains("crop: size must be positive"), Error);
  CHECK_THROWS_WITH_AS(vision::adjust_brightness(img, -0.5), doctest::Contains("adjust_brightness"), Error);
  CHECK_THROWS_WITH_AS(vision::adjust_hue(img, 0.7), doctest::Contains("[-0.5, 0.5]"), Error);
  CHECK_THROWS_WITH_AS(vision::rotate(img, std::nan("")), doctest::Contains("rotate: the angle must be finite"), Error);
  io::Image empty;
  CHECK_THROWS_WITH_AS(vision::hflip(empty), doctest::Contains("hflip: expected a non-empty 8-bit image"), Error);
  io::Image broken = io::Image::filled(4, 4, 3);
  broken.data.resize(5);
  CHECK_THROWS_WITH_AS(vision::adjust_contrast(broken, 1.0), doctest::Contains("5 bytes"), Error);
}

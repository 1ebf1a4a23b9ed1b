#include <doctest/doctest.h>

#include "ember/ember.hpp"
#include "ember/vision/vision.hpp"
#include "vision_data.hpp"

#include <chrono>
#include <map>

namespace v = ember::vision;
using vision_data::Rng;
using vision_data::Scene;
using vision_data::Style;

namespace {

// Centre of mass and the bounding box of the non-zero pixels of a framed 28 x 28 digit.
struct FrameStats {
  double cx = 0, cy = 0;
  v::Box box;
};
FrameStats frame_stats(const v::GrayImage& img) {
  FrameStats s;
  double m = 0;
  s.box = {img.width, img.height, 0, 0};
  for (int y = 0; y < img.height; ++y)
    for (int x = 0; x < img.width; ++x) {
      const double p = img(x, y);
      m += p, s.cx += p * (x + 0.5), s.cy += p * (y + 0.5);
      if (p > 0) s.box = s.box.united({x, y, x + 1, y + 1});
    }
  if (m > 0) s.cx /= m, s.cy /= m;
  return s;
}

// One-to-one matching of ground-truth boxes to crops in reading order: a digit is correctly
// separated when exactly one crop overlaps it with IoU >= 0.5.
struct Score {
  int digits = 0, found = 0, strings = 0, strings_ok = 0, crops = 0;
};
void score(const Scene& sc, const std::vector<v::DigitCrop>& crops, Score& s) {
  std::vector<int> used(crops.size(), 0);
  int ok = 0;
  for (const auto& b : sc.boxes) {
    int best = -1;
    double best_iou = 0.5;
    for (size_t k = 0; k < crops.size(); ++k)
      if (!used[k] && v::iou(b, crops[k].box) >= best_iou) best = int(k), best_iou = v::iou(b, crops[k].box);
    if (best >= 0) used[size_t(best)] = 1, ++ok;
  }
  // Reading order must match too: crops sorted left to right correspond to boxes left to right.
  bool ordered = crops.size() == sc.boxes.size();
  for (size_t k = 0; ordered && k < crops.size(); ++k) ordered = v::iou(sc.boxes[k], crops[k].box) >= 0.5;
  s.digits += int(sc.boxes.size());
  s.found += ok;
  s.crops += int(crops.size());
  s.strings += 1;
  s.strings_ok += ordered;
}

v::Mask mask_from(const std::vector<std::string>& rows) {
  v::Mask m(int(rows[0].size()), int(rows.size()));
  for (int y = 0; y < m.height; ++y)
    for (int x = 0; x < m.width; ++x) m(x, y) = rows[size_t(y)][size_t(x)] == '#';
  return m;
}

}  // namespace

TEST_CASE("vision: 8-bit grey, RGB and RGBA buffers to GrayImage") {
  const uint8_t grey[] = {0, 255, 51};
  auto g = v::from_gray_u8(grey, 3, 1);
  CHECK(g.width == 3);
  CHECK(g(0, 0) == doctest::Approx(0.0));
  CHECK(g(1, 0) == doctest::Approx(1.0));
  CHECK(g(2, 0) == doctest::Approx(0.2));
  const uint8_t rgb[] = {255, 0, 0, 0, 255, 0, 0, 0, 255};
  auto c = v::from_interleaved_u8(rgb, 3, 1, 3);
  CHECK(c(0, 0) == doctest::Approx(0.299).epsilon(1e-3));
  CHECK(c(1, 0) == doctest::Approx(0.587).epsilon(1e-3));
  CHECK(c(2, 0) == doctest::Approx(0.114).epsilon(1e-3));
  // RGBA: black ink opaque, transparent black background -> composited over white.
  const uint8_t rgba[] = {0, 0, 0, 255, 0, 0, 0, 0, 0, 0, 0, 128};
  auto a = v::from_interleaved_u8(rgba, 3, 1, 4);
  CHECK(a(0, 0) == doctest::Approx(0.0));
  CHECK(a(1, 0) == doctest::Approx(1.0));
  CHECK(a(2, 0) == doctest::Approx(1.0 - 128 / 255.0).epsilon(1e-3));
  // White strokes on a transparent background: over white they would vanish, so over black.
  const uint8_t white_on_clear[] = {255, 255, 255, 255, 255, 255, 255, 0};
  auto w = v::from_interleaved_u8(white_on_clear, 2, 1, 4);
  CHECK(w(0, 0) == doctest::Approx(1.0));
  CHECK(w(1, 0) == doctest::Approx(0.0));
  // Grey + alpha (2 channels) and an io::Image-like struct.
  struct FakeImage {
    int width = 2, height = 1, channels = 2;
    std::vector<uint8_t> data{0, 255, 0, 0};
  } fake;
  auto f = v::from_image(fake);
  CHECK(f(0, 0) == doctest::Approx(0.0));
  CHECK(f(1, 0) == doctest::Approx(1.0));
  fake.data.resize(3);
  CHECK_THROWS_AS(v::from_image(fake), ember::Error);
  CHECK_THROWS_AS(v::from_interleaved_u8(rgb, 3, 1, 5), ember::Error);
  CHECK_THROWS_AS(v::from_interleaved_u8(nullptr, 3, 1, 3), ember::Error);
  auto bytes = v::to_u8(g);
  CHECK(bytes == std::vector<uint8_t>{0, 255, 51});
}

TEST_CASE("vision: resize_area averages when shrinking, interpolates when growing") {
  v::GrayImage img(4, 2);
  for (int x = 0; x < 4; ++x) img(x, 0) = float(x), img(x, 1) = float(x + 4);
  auto half = v::resize_area(img, 2, 1);
  CHECK(half(0, 0) == doctest::Approx((0 + 1 + 4 + 5) / 4.0));
  CHECK(half(1, 0) == doctest::Approx((2 + 3 + 6 + 7) / 4.0));
  // Non-integer factor keeps the mean.
  v::GrayImage big(7, 5);
  for (size_t i = 0; i < big.size(); ++i) big.data[i] = float(i % 3);
  auto r = v::resize_area(big, 3, 2);
  double m0 = 0, m1 = 0;
  for (float x : big.data) m0 += x;
  for (float x : r.data) m1 += x;
  CHECK(m1 / r.size() == doctest::Approx(m0 / big.size()).epsilon(0.02));
  // A 1-px line in a 2000-px image survives a 2x shrink at half contrast (area averaging).
  v::GrayImage line(2000, 4, 1.f);
  for (int y = 0; y < 4; ++y) line(1001, y) = 0.f;
  auto small = v::resize_area(line, 1000, 2);
  CHECK(small(500, 0) == doctest::Approx(0.5));
  auto up = v::resize_area(img, 8, 4);
  CHECK(up(0, 0) == doctest::Approx(0.0));
  CHECK(up(7, 3) == doctest::Approx(7.0));
  CHECK(v::resize_area(img, 0, 3).empty());
  CHECK_THROWS_AS(v::resize_area(v::GrayImage(), 2, 2), ember::Error);
  auto c = v::crop(img, {1, 0, 3, 5});  // clipped to the image
  CHECK(c.width == 2);
  CHECK(c.height == 2);
  CHECK(c(1, 1) == doctest::Approx(6.0));
  CHECK(v::iou({0, 0, 10, 10}, {5, 0, 15, 10}) == doctest::Approx(1.0 / 3));
  CHECK(v::iou({0, 0, 1, 1}, {2, 2, 3, 3}) == 0.0);
}

TEST_CASE("vision: components, distance transform, morphology, stroke width") {
  auto m = mask_from({"#...#",
                      ".#..#",
                      "....#",
                      "##...",
                      ".#..."});
  auto l8 = v::connected_components(m, 8);
  auto l4 = v::connected_components(m, 4);
  REQUIRE(l8.components.size() == 3);
  CHECK(l4.components.size() == 4);  // the diagonal pair splits
  CHECK(l8.components[0].area == 2);
  CHECK(l8.components[0].box == v::Box{0, 0, 2, 2});
  CHECK(l8.components[1].box == v::Box{4, 0, 5, 3});
  CHECK(l8.components[1].cx == doctest::Approx(4.5));
  CHECK(l8.components[1].cy == doctest::Approx(1.5));
  CHECK(l8(1, 4) == l8(0, 3));
  CHECK(l8(2, 2) == -1);
  CHECK_THROWS_AS(v::connected_components(m, 6), ember::Error);
  // A 3-px wide vertical bar: stroke width ~3; dilation by 1 -> 5 wide, erosion by 1 -> 1 wide.
  v::Mask bar(20, 40);
  for (int y = 5; y < 35; ++y)
    for (int x = 8; x < 11; ++x) bar(x, y) = 1;
  CHECK(v::stroke_width(bar) == doctest::Approx(3.0).epsilon(0.12));
  auto fat = v::dilate(bar, 1.f);
  CHECK(fat(7, 20) == 1);
  CHECK(fat(11, 20) == 1);
  CHECK(fat(12, 20) == 0);
  auto thin = v::erode(bar, 1.f);
  CHECK(thin.count() == 28);  // the middle column, minus an end pixel at each end
  auto d = v::distance_transform(bar, 1);
  CHECK(d[size_t(20) * 20 + 14] == doctest::Approx(4.0));
  CHECK(v::stroke_width(v::Mask(3, 3)) == 0.0);
  CHECK(v::connected_components(v::Mask()).components.empty());
}

TEST_CASE("vision: Otsu and binarize decide polarity and ignore shadows") {
  std::vector<float> vals;
  for (int i = 0; i < 300; ++i) vals.push_back(0.2f + 0.01f * (i % 5));
  for (int i = 0; i < 100; ++i) vals.push_back(0.8f + 0.01f * (i % 5));
  const float t = v::otsu_threshold(vals);
  CHECK(t > 0.24f);
  CHECK(t <= 0.8f);
  CHECK(v::otsu_threshold({0.5f, 0.5f}) == 0.f);
  // A cross, dark on light, on a strong gradient with a soft shadow; then the same light on dark.
  v::GrayImage img(120, 90);
  for (int y = 0; y < 90; ++y)
    for (int x = 0; x < 120; ++x) {
      double paper = 0.5 + 0.4 * x / 120.0;
      paper *= 1 - 0.3 / (1 + std::exp((std::hypot(x - 30, y - 20) - 35) / 4));  // soft-edged shadow
      const bool ink = (std::abs(x - 60) < 2 && y > 20 && y < 70) || (std::abs(y - 45) < 2 && x > 35 && x < 85);
      img(x, y) = float(ink ? paper * 0.4 : paper);
    }
  auto b = v::binarize(img);
  CHECK(b.polarity == v::Polarity::DarkOnLight);
  CHECK(b.ink(60, 30) == 1);
  CHECK(b.ink(40, 45) == 1);
  CHECK(b.ink(10, 10) == 0);
  CHECK(b.ink(30, 53) == 0);  // shadow edge is not ink
  CHECK(v::connected_components(b.ink).components.size() == 1);
  auto inv = v::binarize(v::invert(img));
  CHECK(inv.polarity == v::Polarity::LightOnDark);
  CHECK(inv.ink(60, 30) == 1);
  CHECK(inv.ink(10, 10) == 0);
  // Forcing the wrong polarity finds no cross.
  v::BinarizeOptions forced;
  forced.polarity = v::Polarity::LightOnDark;
  CHECK(v::binarize(img, forced).ink(60, 30) == 0);
  // Soft shadow and gradient but no ink: nothing.
  v::GrayImage blank(120, 90);
  for (int y = 0; y < 90; ++y)
    for (int x = 0; x < 120; ++x)
      blank(x, y) = float((0.5 + 0.4 * x / 120.0) * (1 - 0.3 / (1 + std::exp((std::hypot(x - 30, y - 20) - 35) / 4))));
  CHECK(v::binarize(blank).ink.count() == 0);
}

TEST_CASE("vision: mnist_frame fits the larger side to 20 px and centres the mass") {
  v::SegmentOptions opt;
  // A tall thin "1", a wide "-"-like bar, an L with its mass off-centre, a single pixel.
  v::Mask one(10, 100), dash(60, 8), ell(50, 50), dot(1, 1, 1);
  for (int y = 0; y < 100; ++y)
    for (int x = 3; x < 7; ++x) one(x, y) = 1;
  for (int y = 0; y < 8; ++y)
    for (int x = 0; x < 60; ++x) dash(x, y) = 1;
  for (int k = 0; k < 50; ++k)
    for (int t = 0; t < 6; ++t) ell(t, k) = 1, ell(k, 49 - t) = 1;
  for (const v::Mask* m : {&one, &dash, &ell, &dot}) {
    auto img = v::mnist_frame(*m, opt);
    REQUIRE(img.width == 28);
    REQUIRE(img.height == 28);
    auto s = frame_stats(img);
    CHECK(std::abs(s.cx - 14) <= 1.0);
    CHECK(std::abs(s.cy - 14) <= 1.0);
    if (m != &dot) CHECK(std::max(s.box.width(), s.box.height()) == 20);
    for (float p : img.data) CHECK((p >= 0.f && p <= 1.f));
  }
  // The L's corner is heavy: centring by mass, not by box, moves the box off-centre (as MNIST).
  auto s = frame_stats(v::mnist_frame(ell, opt));
  CHECK(s.box.x0 > 4);
  // Stroke normalisation: a 1-px pen line gets MNIST-like width, a fat marker gets thinner.
  v::Mask pen(200, 200), marker(200, 200);
  for (int y = 0; y < 200; ++y)
    for (int x = 0; x < 200; ++x) {
      const double r = std::hypot(x - 100, y - 100);
      pen(x, y) = std::abs(r - 90) < 1.0;
      marker(x, y) = std::abs(r - 70) < 25;
    }
  auto pen_img = v::mnist_frame(pen, opt), marker_img = v::mnist_frame(marker, opt);
  auto binarised = [](const v::GrayImage& g) {
    v::Mask b(g.width, g.height);
    for (size_t i = 0; i < g.size(); ++i) b.data[i] = g.data[i] >= 0.5f;
    return b;
  };
  const double pen_w = v::stroke_width(binarised(pen_img)), marker_w = v::stroke_width(binarised(marker_img));
  MESSAGE("stroke width at 28x28: pen ring ", pen_w, ", marker ring ", marker_w, " (target ", opt.target_stroke, ")");
  CHECK(marker_w < 4.0);
  CHECK(pen_w > 1.4);  // MNIST's digits measure 1.9 on average (2.2 after this framing)
  CHECK(pen_w < 3.0);
  opt.normalize_stroke = false;
  const double raw_pen_w = v::stroke_width(binarised(v::mnist_frame(pen, opt)));
  const double raw_marker_w = v::stroke_width(binarised(v::mnist_frame(marker, opt)));
  CHECK(raw_pen_w < pen_w - 0.5);
  CHECK(marker_w < raw_marker_w - 0.4);
  CHECK(frame_stats(v::mnist_frame(v::Mask(5, 5), opt)).box.empty());
}

TEST_CASE("vision: segment_digits edge cases never crash and find nothing in blank images") {
  CHECK(v::segment_digits(v::GrayImage()).empty());
  CHECK(v::segment_digits(v::GrayImage(1, 1, 0.f)).empty());
  CHECK(v::segment_digits(v::GrayImage(1, 1, 1.f)).empty());
  CHECK(v::segment_digits(v::GrayImage(3, 2, 0.5f)).empty());
  CHECK(v::segment_digits(v::GrayImage(640, 480, 0.f)).empty());
  CHECK(v::segment_digits(v::GrayImage(640, 480, 1.f)).empty());
  CHECK(v::segment_digits(v::GrayImage(5000, 2, 1.f)).empty());
  CHECK(v::segment_digits(v::GrayImage(1, 3000, 0.3f)).empty());
  Rng rng(3);
  v::GrayImage noise(300, 200);
  for (float& p : noise.data) p = float(std::clamp(0.7 + 0.05 * rng.normal(), 0.0, 1.0));
  CHECK(v::segment_digits(noise).empty());
  // Salt and pepper specks on white.
  v::GrayImage specks(300, 200, 1.f);
  for (int k = 0; k < 300; ++k) specks(rng.integer(0, 299), rng.integer(0, 199)) = 0.f;
  CHECK(v::segment_digits(specks).empty());
  // Mismatched buffer and bad options are errors, not crashes.
  v::GrayImage bad(10, 10);
  bad.data.resize(50);
  CHECK_THROWS_AS(v::segment_digits(bad), ember::Error);
  v::SegmentOptions opt;
  opt.max_side = 0;
  CHECK_THROWS_AS(v::segment_digits(v::GrayImage(10, 10), opt), ember::Error);
  // Tiny images with a mark: a 1-row image and a 4x4 blob give at most one digit, no crash.
  v::GrayImage row(50, 1, 1.f);
  for (int x = 20; x < 30; ++x) row(x, 0) = 0.f;
  CHECK(v::segment_digits(row).size() <= 1);
  v::GrayImage tiny(4, 4, 1.f);
  tiny(1, 1) = tiny(2, 1) = tiny(1, 2) = tiny(2, 2) = 0.f;
  CHECK(v::segment_digits(tiny).size() <= 1);
  // Ink filling the whole frame except a border (a black image with a white frame).
  v::GrayImage framed(30, 30, 0.f);
  for (int k = 0; k < 30; ++k) framed(k, 0) = framed(0, k) = framed(k, 29) = framed(29, k) = 1.f;
  CHECK(v::segment_digits(framed).size() <= 1);
}

TEST_CASE("vision: a single MNIST-style digit image gives one crop equal to its framing") {
  bool real = false;
  auto digits = vision_data::digit_source(20, real);
  int one = 0;
  for (const auto& d : digits) {
    auto crops = v::segment_digits(v::invert(d.ink));  // dark on light, as a scanned digit
    auto crops2 = v::segment_digits(d.ink);            // MNIST polarity
    one += crops.size() == 1 && crops2.size() == 1;
    if (crops.size() == 1) {
      auto s = frame_stats(crops[0].image);
      CHECK(std::abs(s.cx - 14) <= 1.0);
      CHECK(std::abs(s.cy - 14) <= 1.0);
    }
  }
  MESSAGE(std::string(real ? "MNIST" : "synthetic"), " single digits segmented as one crop: ", one, "/", digits.size());
  CHECK(one >= 19);
}

TEST_CASE("vision: broken strokes merge, touching digits split, lines ordered") {
  Rng rng(11);
  // A 4 whose vertical stroke is cut, and a 5 whose top bar floats free.
  v::GrayImage ink(400, 160);
  vision_data::draw_digit(ink, 4, 40, 30, 60, 100, 5, rng, 0);
  for (int y = 105; y < 113; ++y)
    for (int x = 70; x < 120; ++x) ink(x, y) = 0.f;  // gap across the upright, below the bar
  vision_data::draw_polyline(ink, {{200, 30}, {250, 30}}, 5);                  // bar of the 5
  vision_data::draw_polyline(ink, {{195, 40}, {192, 75}, {230, 70}, {250, 95}, {245, 120}, {220, 130}, {190, 122}}, 5);
  // Two touching 0s.
  vision_data::draw_digit(ink, 0, 290, 30, 50, 100, 5, rng, 0);
  vision_data::draw_digit(ink, 0, 338, 30, 50, 100, 5, rng, 0);
  auto img = vision_data::render(ink, Style::Clean, rng, 0.0);
  auto crops = v::segment_digits(img);
  REQUIRE(crops.size() == 4);
  CHECK(crops[0].box.x0 < 50);
  CHECK(crops[0].box.height() > 90);  // both parts of the 4
  CHECK(crops[1].box.y0 <= 31);       // the 5 includes its bar
  CHECK(crops[2].box.x1 < 345);
  CHECK(crops[3].box.x0 > 333);
  // Two lines: "12" above "345"; order is line by line.
  v::GrayImage two(300, 300);
  const std::string top = "12", bottom = "345";
  for (size_t i = 0; i < top.size(); ++i) vision_data::draw_digit(two, top[i] - '0', 40 + 70.0 * i, 30, 45, 80, 4, rng);
  for (size_t i = 0; i < bottom.size(); ++i) vision_data::draw_digit(two, bottom[i] - '0', 30 + 70.0 * i, 170, 45, 80, 4, rng);
  auto c2 = v::segment_digits(vision_data::render(two, Style::LightOnDark, rng, 0.02));
  REQUIRE(c2.size() == 5);
  CHECK(c2[0].line == 0);
  CHECK(c2[1].line == 0);
  CHECK(c2[2].line == 1);
  CHECK(c2[4].line == 1);
  CHECK(c2[0].box.x0 < c2[1].box.x0);
  CHECK(c2[2].box.y0 > c2[1].box.y1);
  CHECK(c2[2].box.x0 < c2[3].box.x0);
}

TEST_CASE("vision: a winding cut separates overlapping digits; an open 4 and a broken 7 stay whole") {
  // Two slanted strokes whose columns overlap: no straight column separates them, the least-ink
  // path winds between them without crossing ink; with a bridge it crosses exactly the bridge.
  v::Mask m(60, 50);
  for (int y = 0; y < 50; ++y)
    for (int x = 0; x < 60; ++x) {
      const double u = x - 0.6 * (50 - y);  // slant
      m(x, y) = (u >= 5 && u < 9) || (u >= 24 && u < 28);
    }
  std::vector<int> xs;
  CHECK(v::detail::least_ink_path(m, xs) == 0.0);
  REQUIRE(xs.size() == 50);
  bool separated = true;
  for (int y = 0; y < 50; ++y)
    for (int x = 0; x < 60; ++x)
      if (m(x, y)) separated = separated && ((x - 0.6 * (50 - y) < 16) == (x < xs[size_t(y)]));
  CHECK(separated);
  for (int x = 0; x < 60; ++x) m(x, 25) = 1;  // a 1-px bridge across everything
  CHECK(v::detail::least_ink_path(m, xs) == 1.0);

  Rng rng(5);
  v::GrayImage ink(300, 170);
  // An open 4 whose bar stops short of the slanted upright (two pieces overlapping by a little).
  vision_data::draw_polyline(ink, {{60, 30}, {35, 95}, {81, 95}}, 5);
  vision_data::draw_polyline(ink, {{98, 25}, {82, 130}}, 5);
  // A 7 whose bar is detached from its stem, the stem's top tucked under the bar's end.
  vision_data::draw_polyline(ink, {{160, 30}, {220, 30}}, 5);
  vision_data::draw_polyline(ink, {{216, 40}, {180, 130}}, 5);
  auto img = vision_data::render(ink, Style::Clean, rng, 0.0);
  auto crops = v::segment_digits(img);
  REQUIRE(crops.size() == 2);
  CHECK(crops[0].box.x0 < 40);  // the whole 4
  CHECK(crops[0].box.x1 > 95);
  CHECK(crops[1].box.x0 < 185);  // the whole 7, bar and stem
  CHECK(crops[1].box.y0 <= 31);
  CHECK(crops[1].box.height() > 90);
  // Without merging, pieces fall apart: the checks above are not vacuous.
  v::SegmentOptions no_merge;
  no_merge.merge_broken = false;
  CHECK(v::segment_digits(img, no_merge).size() >= 3);
}

TEST_CASE("vision: framed digits keep MNIST's stroke width, ink mass and centring") {
  bool real = false;
  auto digits = vision_data::digit_source(300, real);
  double sw_raw = 0, sw_framed = 0, mass_raw = 0, mass_framed = 0, off = 0;
  for (const auto& d : digits) {
    v::Mask raw(28, 28), m(28, 28), framed(28, 28);
    for (size_t k = 0; k < 784; ++k) raw.data[k] = m.data[k] = d.ink.data[k] >= 0.5f;
    auto img = v::mnist_frame(m);
    for (size_t k = 0; k < 784; ++k) framed.data[k] = img.data[k] >= 0.5f, mass_framed += img.data[k], mass_raw += d.ink.data[k];
    sw_raw += v::stroke_width(raw);
    sw_framed += v::stroke_width(framed);
    auto s = frame_stats(img);
    off += std::hypot(s.cx - 14, s.cy - 14);
  }
  const double n = double(digits.size());
  MESSAGE(std::string(real ? "MNIST" : "synthetic"), " digits: stroke width ", sw_raw / n, " raw, ", sw_framed / n,
          " framed; ink mass ratio ", mass_framed / mass_raw, "; mean centre-of-mass offset ", off / n, " px");
  // MNIST 0.5-binarised measures 1.9 and is re-framed at 2.1: within half a pixel, with about the
  // same ink, and the centre of mass within half a pixel of (14, 14) (MNIST shifts by whole pixels).
  CHECK(std::abs(sw_framed - sw_raw) / n < 0.5);
  CHECK(mass_framed / mass_raw > 0.8);
  CHECK(mass_framed / mass_raw < 1.3);
  CHECK(off / n < 0.75);
}

TEST_CASE("vision: composed multi-digit set (MNIST digits when present), all styles") {
  bool real = false;
  auto pool = vision_data::digit_source(2000, real);
  Rng rng(2024);
  std::map<Style, Score> by_style;
  Score all;
  int touching = 0, bad_frames = 0, frames = 0;
  const Style styles[] = {Style::Clean, Style::LightOnDark, Style::LowContrast, Style::Photo};
  const int kStrings = 240;
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < kStrings; ++i) {
    const Style st = styles[i % 4];
    Scene sc = vision_data::compose(pool, rng, st);
    touching += sc.touching;
    auto crops = v::segment_digits(sc.image);
    score(sc, crops, by_style[st]);
    score(sc, crops, all);
    for (const auto& c : crops) {
      auto s = frame_stats(c.image);
      ++frames;
      const int side = std::max(s.box.width(), s.box.height());
      bad_frames += std::abs(s.cx - 14) > 1.0 || std::abs(s.cy - 14) > 1.0 || side < 19 || side > 21;
    }
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const char* names[] = {"clean", "light-on-dark", "low-contrast", "photo"};
  for (auto& [st, s] : by_style)
    MESSAGE(std::string(names[int(st)]), ": ", s.found, "/", s.digits, " digits separated, ", s.strings_ok, "/", s.strings,
            " strings exact (", s.crops, " crops)");
  const double digit_rate = double(all.found) / all.digits, string_rate = double(all.strings_ok) / all.strings;
  MESSAGE(std::string(real ? "MNIST test digits" : "synthetic digits (MNIST not found)"), ": ", all.found, "/", all.digits,
          " digits = ", 100 * digit_rate, "%, ", all.strings_ok, "/", all.strings, " strings = ", 100 * string_rate,
          "%, ", touching, " touching pairs, ", bad_frames, "/", frames, " framings off, ", secs, " s");
  CHECK(digit_rate >= 0.97);
  CHECK(string_rate >= 0.90);  // 90.4 % with MNIST, 94.6 % synthetic (was 88.3 % before winding cuts)
  CHECK(bad_frames <= frames / 100);
}

TEST_CASE("vision: synthetic 2000x1500 phone photo with pen strokes and a shadow") {
  const std::string numbers[] = {"31415", "2718", "9876543", "1000"};
  uint32_t seed = 5;
  for (const auto& s : numbers) {
    Scene sc = vision_data::phone_photo(s, seed++);
    auto t0 = std::chrono::steady_clock::now();
    auto crops = v::segment_digits(sc.image);
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    Score sco;
    score(sc, crops, sco);
    MESSAGE("photo ", s, ": ", crops.size(), " crops, ", sco.found, "/", sco.digits, " matched, ", ms, " ms");
    CHECK(crops.size() == s.size());
    CHECK(sco.strings_ok == 1);
  }
}

TEST_CASE("vision: segment_digits with a classifier: probabilities on each crop, the search splits by recognition") {
  Rng rng(11);
  // Two touching 0s, then a well separated 1 and 7.
  v::GrayImage ink(420, 160);
  vision_data::draw_digit(ink, 0, 40, 30, 50, 100, 5, rng, 0);
  vision_data::draw_digit(ink, 0, 88, 30, 50, 100, 5, rng, 0);
  vision_data::draw_digit(ink, 1, 220, 30, 40, 100, 5, rng, 0);
  vision_data::draw_digit(ink, 7, 320, 30, 60, 100, 5, rng, 0);
  auto img = vision_data::render(ink, Style::Clean, rng, 0.0);
  // A stand-in network: sure of a "1" (whose aspect prior allows narrow pieces) when the framed ink is clearly taller than wide, unsure
  // (uniform) of anything wider (two digits squeezed into one frame).
  int calls = 0;
  size_t seen = 0;
  v::DigitClassifier net = [&](const std::vector<v::GrayImage>& crops) {
    ++calls;
    seen += crops.size();
    std::vector<std::array<float, 10>> out(crops.size());
    for (size_t i = 0; i < crops.size(); ++i) {
      auto s = frame_stats(crops[i]);
      out[i].fill(0.1f);
      if (s.box.width() < 0.8 * s.box.height()) out[i].fill(0.f), out[i][1] = 1.f;
    }
    return out;
  };
  auto crops = v::segment_digits(img, {}, net);
  CHECK(calls == 1);       // one batch per image
  CHECK(seen > crops.size());  // candidate pieces were scored, not just the answer
  REQUIRE(crops.size() == 4);
  CHECK(crops[0].box.x1 < 95);  // the touching 0s come apart
  CHECK(crops[1].box.x0 > 85);
  for (const auto& c : crops) CHECK(c.probs[0] + c.probs[1] > 0.99f);  // the stand-in's answers travel with the crops
  // Without a classifier the crops carry no probabilities.
  for (const auto& c : v::segment_digits(img)) CHECK(c.probs[0] == 0.f);
  // A classifier that answers for the wrong number of crops is an error, not a crash.
  v::DigitClassifier bad = [](const std::vector<v::GrayImage>& c) { return std::vector<std::array<float, 10>>(c.size() + 1); };
  CHECK_THROWS_WITH_AS(v::segment_digits(img, {}, bad), doctest::Contains("classifier returned"), ember::Error);
}

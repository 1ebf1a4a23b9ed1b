// vision::transforms: torchvision's random image transforms (sampling rules, determinism, errors).
#include <doctest/doctest.h>

#include <cmath>
#include <memory>

#include "ember/io/image.hpp"
#include "ember/vision/image_ops.hpp"
#include "ember/vision/image_transforms.hpp"

using namespace ember;
namespace T = ember::vision::transforms;

namespace {
io::Image test_photo(int w = 40, int h = 30) {
  io::Image img = io::Image::filled(w, h, 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c) img.at(x, y, c) = static_cast<uint8_t>((x * 7 + y * 13 + c * 60) % 256);
  return img;
}
std::shared_ptr<Generator> gen(uint64_t seed) { return std::make_shared<Generator>(seed); }
}  // namespace

TEST_CASE("image transforms: RandomHorizontalFlip flips with probability p, reproducibly") {
  io::Image img = test_photo();
  CHECK(T::RandomHorizontalFlip(0.0)(img).data == img.data);
  CHECK(T::RandomHorizontalFlip(1.0)(img).data == vision::hflip(img).data);
  T::RandomHorizontalFlip flip(0.5, gen(3));
  int flipped = 0;
  for (int i = 0; i < 2000; ++i) flipped += flip(img).data != img.data;
  CHECK(flipped > 900);
  CHECK(flipped < 1100);
  T::RandomHorizontalFlip a(0.5, gen(11)), b(0.5, gen(11));
  for (int i = 0; i < 20; ++i) CHECK(a(img).data == b(img).data);
}

TEST_CASE("image transforms: RandomRotation draws its angle uniformly from the range") {
  io::Image img = test_photo();
  auto g1 = gen(5), g2 = gen(5);
  T::RandomRotation rot(15.0, 0, g1);
  double lo = 1e9, hi = -1e9, sum = 0;
  for (int i = 0; i < 1000; ++i) {
    T::detail::Randoms r(2, g2.get());
    double angle = rot.sample(r);
    lo = std::min(lo, angle), hi = std::max(hi, angle), sum += angle;
    CHECK(rot(img).data == vision::rotate(img, angle).data);  // same stream, same angle
  }
  CHECK(lo >= -15.0);
  CHECK(hi < 15.0);
  CHECK(lo < -14.0);
  CHECK(hi > 14.0);
  CHECK(std::abs(sum / 1000) < 1.0);
  CHECK_THROWS_WITH_AS(T::RandomRotation(-3.0), doctest::Contains("non-negative"), Error);
  CHECK_THROWS_WITH_AS(T::RandomRotation(std::pair{5.0, -5.0}), doctest::Contains("min <= max"), Error);
}

TEST_CASE("image transforms: RandomResizedCrop samples area and aspect as torchvision, with its fallback") {
  auto g = gen(9);
  const std::pair<double, double> scale{0.08, 1.0}, ratio{3.0 / 4.0, 4.0 / 3.0};
  double area_sum = 0;
  int n = 3000;
  for (int i = 0; i < n; ++i) {
    T::detail::Randoms r(T::RandomResizedCrop::kWords, g.get());
    auto b = T::RandomResizedCrop::get_params(300, 400, scale, ratio, r);
    REQUIRE(b.top >= 0);
    REQUIRE(b.left >= 0);
    REQUIRE(b.top + b.height <= 300);
    REQUIRE(b.left + b.width <= 400);
    double frac = double(b.height) * b.width / (300.0 * 400.0);
    CHECK(frac >= 0.07);
    CHECK(frac <= 1.01);
    double aspect = double(b.width) / b.height;
    CHECK(aspect >= 0.74);
    CHECK(aspect <= 1.35);
    area_sum += frac;
  }
  // torchvision 0.14's get_params on a 400x300 image, 20000 draws: mean area fraction 0.4351
  // (uniform in [0.08, 1] less the rejected too-large crops). 3000 draws: sigma ~0.005.
  CHECK(std::abs(area_sum / n - 0.4351) < 0.015);
  // An impossible scale makes every attempt fail: torchvision's central fallback, here a 100x10
  // image (too wide for 4/3) gives h = 10, w = round(10 * 4/3) = 13, left = (100 - 13) // 2.
  T::detail::Randoms r(T::RandomResizedCrop::kWords, g.get());
  auto b = T::RandomResizedCrop::get_params(10, 100, {2.0, 3.0}, ratio, r);
  CHECK(b.height == 10);
  CHECK(b.width == 13);
  CHECK(b.top == 0);
  CHECK(b.left == 43);
  io::Image out = T::RandomResizedCrop(150, {0.8, 1.0}, ratio, g)(test_photo());
  CHECK(out.width == 150);
  CHECK(out.height == 150);
  CHECK_THROWS_WITH_AS(T::RandomResizedCrop(150, {0.9, 0.2}), doctest::Contains("scale must be a finite range"), Error);
}

TEST_CASE("image transforms: ColorJitter factors stay in range; zero jitter is the identity") {
  io::Image img = test_photo();
  CHECK(T::ColorJitter()(img).data == img.data);
  T::ColorJitter bright(0.5, 0, 0, 0, gen(2));
  double lo = 9, hi = 0;
  auto mean = [](const io::Image& im) {
    double s = 0;
    for (uint8_t v : im.data) s += v;
    return s / static_cast<double>(im.data.size());
  };
  io::Image flat = io::Image::filled(8, 8, 3, 100);
  for (int i = 0; i < 500; ++i) {
    double f = mean(bright(flat)) / 100.0;
    lo = std::min(lo, f), hi = std::max(hi, f);
  }
  CHECK(lo >= 0.49);
  CHECK(hi <= 1.5);
  CHECK(lo < 0.6);
  CHECK(hi > 1.4);
  T::ColorJitter a(0.2, 0.2, 0.2, 0.05, gen(4)), b(0.2, 0.2, 0.2, 0.05, gen(4));
  for (int i = 0; i < 10; ++i) CHECK(a(img).data == b(img).data);
  CHECK_THROWS_WITH_AS(T::ColorJitter(-0.1), doctest::Contains("brightness must be non-negative"), Error);
  CHECK_THROWS_WITH_AS(T::ColorJitter(0, 0, 0, 0.7), doctest::Contains("hue must lie in [0, 0.5]"), Error);
}

TEST_CASE("image transforms: Compose, Resize, CenterCrop and ToTensor give the tutorial's test pipeline") {
  T::ToTensor pipeline(T::Compose({T::Resize(150), T::CenterCrop(150)}));
  Tensor t = pipeline(test_photo(400, 300));
  CHECK(t.sizes() == Shape{3, 150, 150});
  CHECK(t.dtype() == kFloat32);
  CHECK(t.max().item<float>() <= 1.0f);
  CHECK(t.min().item<float>() >= 0.0f);
  io::Image r = T::Resize(20, 30)(test_photo());
  CHECK(r.height == 20);
  CHECK(r.width == 30);
  CHECK_THROWS_WITH_AS(T::Compose({T::ImageTransform()}), doctest::Contains("Compose: transform 0 is empty"), Error);
}

#pragma once
/// torchvision.transforms for photos: the classes a PyTorch recipe composes before ToTensor
/// (Resize, CenterCrop, RandomResizedCrop, RandomHorizontalFlip, RandomRotation, ColorJitter,
/// Compose, ToTensor), with torchvision 0.14's parameter sampling on top of vision/image_ops.hpp
/// (PIL's arithmetic). So the cat/dog tutorial's
///
///   transforms.Compose([RandomHorizontalFlip(), RandomRotation(15),
///                       ColorJitter(0.01, 0.01, 0.01, 0.01), RandomResizedCrop(150, scale=(0.8, 1.0)),
///                       ToTensor(), Normalize(mean, std)])
///
/// reads, in C++,
///
///   using namespace ember::vision::transforms;
///   auto to_tensor = ToTensor(Compose({RandomHorizontalFlip(), RandomRotation(15),
///                                      ColorJitter(0.01, 0.01, 0.01, 0.01),
///                                      RandomResizedCrop(150, {0.8, 1.0})}));
///   // then data::Normalize on the tensor (data/transforms.hpp)
///
/// Randomness: each random transform reserves Philox counters through data::reserve_random —
/// inside a DataLoader that is the loader's per-batch stream (reproducible for any number of
/// workers, exact on resume), otherwise the transform's own Generator if given, else the default
/// generator. The distributions are torchvision's; the numbers themselves are Ember's.
#include <array>
#include <cmath>
#include <functional>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "ember/core/error.hpp"
#include "ember/core/generator.hpp"
#include "ember/core/philox.hpp"
#include "ember/data/dataset.hpp"
#include "ember/io/image.hpp"
#include "ember/vision/image_ops.hpp"

namespace ember::vision::transforms {

/// An image-to-image transform.
using ImageTransform = std::function<io::Image(const io::Image&)>;

namespace detail {
/// Uniform numbers from a block of Philox counters reserved up front (a transform knows the most
/// it can need: RandomResizedCrop's ten attempts take 40).
class Randoms {
 public:
  Randoms(uint64_t words, Generator* gen) {
    auto [key, counter] = data::reserve_random((words + 3) / 4, gen);
    key_ = key, counter_ = counter, left_ = (words + 3) / 4 * 4;
  }
  /// Uniform in [lo, hi), 53-bit resolution (torch's uniform_ on a double).
  double uniform(double lo, double hi) {
    uint32_t a = word(), b = word();
    return lo + (hi - lo) * philox::to_uniform_double(a, b);
  }
  /// Uniform integer in [lo, hi) (torch.randint's half-open range); hi > lo.
  int64_t integer(int64_t lo, int64_t hi) {
    const uint64_t span = static_cast<uint64_t>(hi - lo);
    const uint64_t r = (static_cast<uint64_t>(word()) << 32) | word();
    return lo + static_cast<int64_t>(r % span);
  }

 private:
  uint32_t word() {
    EMBER_CHECK(left_ > 0, "image transforms: drew more random numbers than reserved (a bug in the transform)");
    if (used_ % 4 == 0) block_ = philox::philox4x32(key_, counter_ + used_ / 4);
    const uint32_t w = used_ % 4 == 0 ? block_.x : used_ % 4 == 1 ? block_.y : used_ % 4 == 2 ? block_.z : block_.w;
    ++used_, --left_;
    return w;
  }
  uint64_t key_ = 0, counter_ = 0, left_ = 0, used_ = 0;
  philox::Uint4 block_{};
};

inline void check_range(const char* op, const char* what, std::pair<double, double> r, double lo_min) {
  EMBER_CHECK(std::isfinite(r.first) && std::isfinite(r.second) && r.first <= r.second && r.first >= lo_min, op, ": ",
              what, " must be a finite range (min <= max, min >= ", lo_min, "), got (", r.first, ", ", r.second, ")");
}
}  // namespace detail

// ---- deterministic ----------------------------------------------------------------------------

/// Resize(size): the shorter side becomes `size` (aspect kept); Resize(h, w): exactly h x w.
class Resize {
 public:
  explicit Resize(int64_t size) : size_(size) { EMBER_CHECK(size > 0, "Resize: size must be positive, got ", size); }
  Resize(int64_t height, int64_t width) : height_(height), width_(width) {
    EMBER_CHECK(height > 0 && width > 0, "Resize: size must be positive, got ", height, "x", width);
  }
  io::Image operator()(const io::Image& img) const {
    return size_ > 0 ? vision::resize(img, size_) : vision::resize(img, height_, width_);
  }

 private:
  int64_t size_ = 0, height_ = 0, width_ = 0;
};

/// The central size x size (or height x width) region, zero-padded if the image is smaller.
class CenterCrop {
 public:
  explicit CenterCrop(int64_t size) : CenterCrop(size, size) {}
  CenterCrop(int64_t height, int64_t width) : height_(height), width_(width) {
    EMBER_CHECK(height > 0 && width > 0, "CenterCrop: size must be positive, got ", height, "x", width);
  }
  io::Image operator()(const io::Image& img) const { return vision::center_crop(img, height_, width_); }

 private:
  int64_t height_, width_;
};

/// Applies the transforms in order.
class Compose {
 public:
  Compose(std::vector<ImageTransform> transforms) : transforms_(std::move(transforms)) {
    for (size_t i = 0; i < transforms_.size(); ++i)
      EMBER_CHECK(static_cast<bool>(transforms_[i]), "Compose: transform ", i, " is empty");
  }
  io::Image operator()(const io::Image& img) const {
    io::Image out = img;
    for (const auto& t : transforms_) out = t(out);
    return out;
  }

 private:
  std::vector<ImageTransform> transforms_;
};

/// The image as a float32 [C, H, W] tensor in [0, 1] after an optional image transform
/// (torchvision's ToTensor at the end of a Compose).
class ToTensor {
 public:
  ToTensor() = default;
  explicit ToTensor(ImageTransform before) : before_(std::move(before)) {}
  Tensor operator()(const io::Image& img) const { return io::image_to_tensor(before_ ? before_(img) : img); }

 private:
  ImageTransform before_;
};

// ---- random ------------------------------------------------------------------------------------

/// Mirrors the image with probability p.
class RandomHorizontalFlip {
 public:
  explicit RandomHorizontalFlip(double p = 0.5, std::shared_ptr<Generator> gen = nullptr) : p_(p), gen_(std::move(gen)) {
    EMBER_CHECK(p >= 0 && p <= 1, "RandomHorizontalFlip: p must lie in [0, 1], got ", p);
  }
  io::Image operator()(const io::Image& img) const {
    detail::Randoms r(2, gen_.get());
    return r.uniform(0, 1) < p_ ? vision::hflip(img) : img;
  }

 private:
  double p_;
  std::shared_ptr<Generator> gen_;
};

/// Rotates by an angle drawn uniformly from (-degrees, degrees) (or [min, max]), nearest
/// neighbour, same size, uncovered corners `fill` (torchvision's RandomRotation defaults).
class RandomRotation {
 public:
  explicit RandomRotation(double degrees, uint8_t fill = 0, std::shared_ptr<Generator> gen = nullptr)
      : RandomRotation(symmetric(degrees), fill, std::move(gen)) {}
  RandomRotation(std::pair<double, double> degrees, uint8_t fill = 0, std::shared_ptr<Generator> gen = nullptr)
      : degrees_(degrees), fill_(fill), gen_(std::move(gen)) {
    detail::check_range("RandomRotation", "degrees", degrees, -1e9);
  }
  /// The angle torchvision's get_params would draw, from `r`.
  double sample(detail::Randoms& r) const { return r.uniform(degrees_.first, degrees_.second); }
  io::Image operator()(const io::Image& img) const {
    detail::Randoms r(2, gen_.get());
    return vision::rotate(img, sample(r), fill_);
  }

 private:
  static std::pair<double, double> symmetric(double degrees) {
    EMBER_CHECK(degrees >= 0, "RandomRotation: degrees must be non-negative when a single number, got ", degrees);
    return {-degrees, degrees};
  }
  std::pair<double, double> degrees_;
  uint8_t fill_;
  std::shared_ptr<Generator> gen_;
};

/// A crop of random area (fraction `scale` of the image) and aspect ratio (log-uniform in
/// `ratio`), resized to size x size: torchvision's RandomResizedCrop, including its ten attempts
/// and its fallback to a central crop of the nearest allowed aspect ratio.
class RandomResizedCrop {
 public:
  struct Box {
    int64_t top, left, height, width;
  };
  explicit RandomResizedCrop(int64_t size, std::pair<double, double> scale = {0.08, 1.0},
                             std::pair<double, double> ratio = {3.0 / 4.0, 4.0 / 3.0}, std::shared_ptr<Generator> gen = nullptr)
      : RandomResizedCrop(size, size, scale, ratio, std::move(gen)) {}
  RandomResizedCrop(int64_t height, int64_t width, std::pair<double, double> scale, std::pair<double, double> ratio,
                    std::shared_ptr<Generator> gen = nullptr)
      : height_(height), width_(width), scale_(scale), ratio_(ratio), gen_(std::move(gen)) {
    EMBER_CHECK(height > 0 && width > 0, "RandomResizedCrop: size must be positive, got ", height, "x", width);
    detail::check_range("RandomResizedCrop", "scale", scale, 0.0);
    detail::check_range("RandomResizedCrop", "ratio", ratio, 1e-9);
  }

  /// torchvision's RandomResizedCrop.get_params for an image of height x width.
  static Box get_params(int64_t height, int64_t width, std::pair<double, double> scale, std::pair<double, double> ratio,
                        detail::Randoms& r) {
    const double area = static_cast<double>(height) * static_cast<double>(width);
    const double log_lo = std::log(ratio.first), log_hi = std::log(ratio.second);
    for (int attempt = 0; attempt < 10; ++attempt) {
      const double target_area = area * r.uniform(scale.first, scale.second);
      const double aspect = std::exp(r.uniform(log_lo, log_hi));
      const int64_t w = vision::detail::round_half_even(std::sqrt(target_area * aspect));
      const int64_t h = vision::detail::round_half_even(std::sqrt(target_area / aspect));
      if (0 < w && w <= width && 0 < h && h <= height)
        return {r.integer(0, height - h + 1), r.integer(0, width - w + 1), h, w};
    }
    // Fallback: the whole image, cut to the nearest allowed aspect ratio, centred.
    const double in_ratio = static_cast<double>(width) / static_cast<double>(height);
    int64_t w = width, h = height;
    if (in_ratio < ratio.first) h = vision::detail::round_half_even(static_cast<double>(w) / ratio.first);
    else if (in_ratio > ratio.second) w = vision::detail::round_half_even(static_cast<double>(h) * ratio.second);
    return {(height - h) / 2, (width - w) / 2, h, w};
  }

  io::Image operator()(const io::Image& img) const {
    detail::Randoms r(kWords, gen_.get());
    Box b = get_params(img.height, img.width, scale_, ratio_, r);
    return vision::resized_crop(img, b.top, b.left, b.height, b.width, height_, width_);
  }

  static constexpr uint64_t kWords = 10 * 4 + 4;  // ten attempts of two uniforms, then two integers

 private:
  int64_t height_, width_;
  std::pair<double, double> scale_, ratio_;
  std::shared_ptr<Generator> gen_;
};

/// Random brightness, contrast, saturation and hue changes, applied in a random order, each
/// factor drawn uniformly: brightness/contrast/saturation b from [max(0, 1 - b), 1 + b], hue h
/// from [-h, h] (torchvision's ColorJitter; 0 turns a component off).
class ColorJitter {
 public:
  ColorJitter(double brightness = 0, double contrast = 0, double saturation = 0, double hue = 0,
              std::shared_ptr<Generator> gen = nullptr)
      : gen_(std::move(gen)) {
    auto factor_range = [](const char* what, double v) -> std::optional<std::pair<double, double>> {
      EMBER_CHECK(v >= 0 && std::isfinite(v), "ColorJitter: ", what, " must be non-negative, got ", v);
      if (v == 0) return std::nullopt;
      return std::pair{std::max(0.0, 1.0 - v), 1.0 + v};
    };
    brightness_ = factor_range("brightness", brightness);
    contrast_ = factor_range("contrast", contrast);
    saturation_ = factor_range("saturation", saturation);
    EMBER_CHECK(hue >= 0 && hue <= 0.5, "ColorJitter: hue must lie in [0, 0.5], got ", hue);
    if (hue > 0) hue_ = std::pair{-hue, hue};
  }

  io::Image operator()(const io::Image& img) const {
    detail::Randoms r(4 * 2 + 4 * 2, gen_.get());
    // torch.randperm(4), then the four factors in torchvision's order.
    std::array<int, 4> order{0, 1, 2, 3};
    for (int i = 3; i > 0; --i) std::swap(order[i], order[r.integer(0, i + 1)]);
    const double b = brightness_ ? r.uniform(brightness_->first, brightness_->second) : 1.0;
    const double c = contrast_ ? r.uniform(contrast_->first, contrast_->second) : 1.0;
    const double s = saturation_ ? r.uniform(saturation_->first, saturation_->second) : 1.0;
    const double h = hue_ ? r.uniform(hue_->first, hue_->second) : 0.0;
    io::Image out = img;
    for (int fn : order) {
      if (fn == 0 && brightness_) out = vision::adjust_brightness(out, b);
      else if (fn == 1 && contrast_) out = vision::adjust_contrast(out, c);
      else if (fn == 2 && saturation_) out = vision::adjust_saturation(out, s);
      else if (fn == 3 && hue_) out = vision::adjust_hue(out, h);
    }
    return out;
  }

 private:
  std::optional<std::pair<double, double>> brightness_, contrast_, saturation_, hue_;
  std::shared_ptr<Generator> gen_;
};

}  // namespace ember::vision::transforms

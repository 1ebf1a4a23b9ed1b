#pragma once
/// Transforms on image tensors [C, H, W] (or batches [N, C, H, W]): Normalize, Compose,
/// RandomAffine (with the deterministic `affine` it samples), RandomHorizontalFlip, and
/// MapDataset, which applies a transform to every example of a dataset (torchvision.transforms).
///
/// Random transforms draw from `reserve_random` (data/dataset.hpp): an explicit Generator when
/// given, the DataLoader's per-batch stream inside a loader (reproducible for any worker count),
/// otherwise the default generator. On a batch each image gets its own parameters, from the same
/// stream as that image alone, so inside a DataLoader mapping with Apply::kPerBatch and
/// Apply::kPerExample gives the same batches.
///
/// Example:
/// ```
///   using namespace ember::data;
///   auto train = MapDataset(MNIST(dir, true), Compose({RandomAffine(10, {{0.1, 0.1}}, {{0.9, 1.1}}),
///                                                      Normalize({0.1307}, {0.3081})}));
/// ```
#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <numbers>
#include <optional>
#include <utility>
#include <vector>

#include "ember/core/error.hpp"
#include "ember/core/generator.hpp"
#include "ember/core/parallel.hpp"
#include "ember/core/philox.hpp"
#include "ember/data/dataset.hpp"
#include "ember/nn/options.hpp"
#include "ember/ops/binary.hpp"
#include "ember/ops/copy.hpp"
#include "ember/ops/factory.hpp"
#include "ember/ops/index.hpp"

namespace ember::data {

/// A tensor-to-tensor function applied to each example's data.
using Transform = std::function<Tensor(const Tensor&)>;

namespace detail {
/// Checks an image or batch of images: [C, H, W] or [N, C, H, W].
inline void check_image(const Tensor& x, const char* op) {
  EMBER_CHECK(x.defined(), op, ": the input tensor is undefined");
  EMBER_CHECK(x.dim() == 3 || x.dim() == 4, op, ": expected an image [C, H, W] or a batch [N, C, H, W], got shape ",
              x.sizes());
}
/// Uniform in [lo, hi) from one 32-bit Philox word.
inline double uniform_from(uint32_t word, double lo, double hi) {
  return lo + (hi - lo) * static_cast<double>(philox::to_uniform_float(word));
}
}  // namespace detail

// ---- Normalize, Compose ----------------------------------------------------------------------

/// (x - mean[c]) / std[c] per channel (torchvision Normalize); one value applies to every channel.
/// Works on [C, H, W] and [N, C, H, W] float tensors on any device.
class Normalize {
 public:
  Normalize(std::vector<double> mean, std::vector<double> std) : mean_(std::move(mean)), std_(std::move(std)) {
    EMBER_CHECK(!mean_.empty() && mean_.size() == std_.size(), "Normalize: mean and std need one value per channel, got ",
                mean_.size(), " means and ", std_.size(), " stds");
    for (double s : std_) EMBER_CHECK(s != 0, "Normalize: std must be non-zero, got ", s);
  }
  Normalize(double mean, double std) : Normalize(std::vector<double>{mean}, std::vector<double>{std}) {}

  Tensor operator()(const Tensor& x) const {
    detail::check_image(x, "Normalize");
    EMBER_CHECK(x.is_floating_point(), "Normalize: expected a floating point image, got dtype ", x.dtype(),
                " (convert with .to(kFloat32) and scale to [0, 1] first)");
    const int64_t c = x.size(-3), k = static_cast<int64_t>(mean_.size());
    EMBER_CHECK(k == 1 || k == c, "Normalize: ", k, " means/stds for an image with ", c, " channels (shape ", x.sizes(), ")");
    // Mean and std as tensors of x's dtype, so the arithmetic rounds exactly as torchvision's.
    Tensor m = tensor(mean_, {k, 1, 1}, TensorOptions(x.dtype()).device(x.device()));
    Tensor s = tensor(std_, {k, 1, 1}, TensorOptions(x.dtype()).device(x.device()));
    return (x - m) / s;
  }
  const std::vector<double>& mean() const { return mean_; }
  const std::vector<double>& std() const { return std_; }

 private:
  std::vector<double> mean_, std_;
};

/// Applies transforms in order (torchvision Compose).
class Compose {
 public:
  Compose(std::vector<Transform> transforms) : transforms_(std::move(transforms)) {}  // NOLINT
  Tensor operator()(const Tensor& x) const {
    Tensor y = x;
    for (const auto& t : transforms_) y = t(y);
    return y;
  }

 private:
  std::vector<Transform> transforms_;
};

// ---- affine ---------------------------------------------------------------------------------

/// An inclusive range (lo, hi) for a random parameter.
using Range = std::pair<double, double>;

namespace detail {

/// The inverse map of torchvision's affine (output pixel → input pixel), both relative to the
/// image centre: torchvision.transforms.functional._get_inverse_affine_matrix with centre 0.
struct AffineMatrix {
  double m[6];
};
inline AffineMatrix inverse_affine(double angle_deg, double tx, double ty, double scale, double shear_x_deg,
                                   double shear_y_deg) {
  const double d2r = std::numbers::pi / 180.0;
  const double rot = angle_deg * d2r, sx = shear_x_deg * d2r, sy = shear_y_deg * d2r;
  const double a = std::cos(rot - sy) / std::cos(sy);
  const double b = -std::cos(rot - sy) * std::tan(sx) / std::cos(sy) - std::sin(rot);
  const double c = std::sin(rot - sy) / std::cos(sy);
  const double d = -std::sin(rot - sy) * std::tan(sx) / std::cos(sy) + std::cos(rot);
  AffineMatrix r{{d / scale, -b / scale, 0.0, -c / scale, a / scale, 0.0}};
  r.m[2] += r.m[0] * -tx + r.m[1] * -ty;
  r.m[5] += r.m[3] * -tx + r.m[4] * -ty;
  return r;
}

/// Within this of an integer a sample coordinate is that integer: cos(90°) is 6e-17, not 0, and
/// a quarter turn should move pixels exactly.
inline double snap(double v) {
  double r = std::nearbyint(v);
  return std::abs(v - r) < 1e-9 ? r : v;
}

/// Bilinear resampling of one [C, H, W] image through `m`; neighbours outside the image count
/// as `fill` (grid_sample with zero padding when fill is 0, align_corners=False geometry).
template <typename T>
void affine_image(const T* in, T* out, int64_t C, int64_t H, int64_t W, const AffineMatrix& A, double fill) {
  const double cx = (W - 1) * 0.5, cy = (H - 1) * 0.5;
  const int64_t plane = H * W;
  for (int64_t y = 0; y < H; ++y) {
    for (int64_t x = 0; x < W; ++x) {
      const double xc = x - cx, yc = y - cy;
      const double xi = snap(A.m[0] * xc + A.m[1] * yc + A.m[2] + cx);
      const double yi = snap(A.m[3] * xc + A.m[4] * yc + A.m[5] + cy);
      const double fx = std::floor(xi), fy = std::floor(yi);
      const double wx = xi - fx, wy = yi - fy;
      const int64_t x0 = static_cast<int64_t>(fx), y0 = static_cast<int64_t>(fy);
      const int64_t xs[2] = {x0, x0 + 1}, ys[2] = {y0, y0 + 1};
      const double wxs[2] = {1 - wx, wx}, wys[2] = {1 - wy, wy};
      for (int64_t ch = 0; ch < C; ++ch) {
        const T* src = in + ch * plane;
        double v = 0;
        for (int j = 0; j < 2; ++j) {
          if (wys[j] == 0) continue;
          for (int i = 0; i < 2; ++i) {
            if (wxs[i] == 0) continue;
            bool inside = xs[i] >= 0 && xs[i] < W && ys[j] >= 0 && ys[j] < H;
            v += wys[j] * wxs[i] * (inside ? static_cast<double>(src[ys[j] * W + xs[i]]) : fill);
          }
        }
        out[ch * plane + y * W + x] = static_cast<T>(v);
      }
    }
  }
}

/// Applies matrix `mats[n]` to image n of a contiguous [N, C, H, W] CPU float tensor.
inline Tensor affine_batch(const Tensor& x4, const std::vector<AffineMatrix>& mats, double fill, const char* op) {
  EMBER_CHECK(x4.device().is_cpu(), op, ": expects a CPU tensor (data transforms run in the loader's threads before "
              "the batch moves to the GPU), got one on ", x4.device());
  Tensor in = x4.contiguous();
  Tensor out = empty_like(in);
  const int64_t N = in.size(0), C = in.size(1), H = in.size(2), W = in.size(3);
  visit_floating(in.dtype(), op, [&]<typename T>() {
    const T* ip = in.data_ptr<T>();
    T* op_ = out.data_ptr<T>();
    const int64_t img = C * H * W;
    parallel_for(0, N, std::max<int64_t>(1, kGrainSize / std::max<int64_t>(img * 8, 1)), [&](int64_t b, int64_t e) {
      for (int64_t n = b; n < e; ++n) affine_image<T>(ip + n * img, op_ + n * img, C, H, W, mats[static_cast<size_t>(n)], fill);
    });
  });
  return out;
}

}  // namespace detail

/// The affine transform of an image keeping its centre fixed (torchvision.transforms.functional
/// .affine): rotation by `angle` degrees clockwise, translation by (tx, ty) pixels, scaling, and
/// shear (x, y) in degrees; bilinear sampling, pixels from outside the image are `fill`.
/// [C, H, W] or [N, C, H, W] (every image the same), float32/float64 on the CPU.
inline Tensor affine(const Tensor& img, double angle, Range translate = {0, 0}, double scale = 1.0,
                     Range shear = {0, 0}, double fill = 0.0) {
  detail::check_image(img, "affine");
  EMBER_CHECK(scale > 0, "affine: scale must be positive, got ", scale);
  Tensor x4 = img.dim() == 3 ? img.unsqueeze(0) : img;
  std::vector<detail::AffineMatrix> mats(static_cast<size_t>(x4.size(0)),
                                         detail::inverse_affine(angle, translate.first, translate.second, scale,
                                                                shear.first, shear.second));
  Tensor out = detail::affine_batch(x4, mats, fill, "affine");
  return img.dim() == 3 ? out.squeeze(0) : out;
}

/// Ranges of RandomAffine's parameters, in torchvision's terms.
struct RandomAffineOptions {
  /// Rotation uniform in [-degrees, degrees].
  RandomAffineOptions(double degrees = 0) : degrees_({-degrees, degrees}) {}  // NOLINT
  /// Rotation range in degrees (positive = clockwise).
  EMBER_ARG(Range, degrees);
  /// Maximum shift as fractions of width and height: tx uniform in ±fx·W, rounded to pixels.
  EMBER_ARG(std::optional<Range>, translate);
  /// Scale factor range.
  EMBER_ARG(std::optional<Range>, scale);
  /// Shear parallel to x, range in degrees.
  EMBER_ARG(std::optional<Range>, shear);
  /// Shear parallel to y, range in degrees.
  EMBER_ARG(std::optional<Range>, shear_y);
  /// Value of pixels coming from outside the image.
  EMBER_ARG(double, fill) = 0.0;
  /// Draw from this generator instead of the loader's stream / the default generator.
  EMBER_ARG(std::shared_ptr<Generator>, generator);
};

/// Random rotation, translation, scale and shear for augmentation (torchvision RandomAffine,
/// bilinear). Each image of a batch gets its own parameters.
class RandomAffine {
 public:
  explicit RandomAffine(RandomAffineOptions options) : options_(std::move(options)) {
    const auto& o = options_;
    EMBER_CHECK(o.degrees().first <= o.degrees().second, "RandomAffine: degrees range must have lo <= hi, got (",
                o.degrees().first, ", ", o.degrees().second, ")");
    if (o.translate()) {
      auto [fx, fy] = *o.translate();
      EMBER_CHECK(fx >= 0 && fx <= 1 && fy >= 0 && fy <= 1, "RandomAffine: translate fractions must lie in [0, 1], got (",
                  fx, ", ", fy, ")");
    }
    if (o.scale()) {
      auto [lo, hi] = *o.scale();
      EMBER_CHECK(lo > 0 && lo <= hi, "RandomAffine: scale range must satisfy 0 < lo <= hi, got (", lo, ", ", hi, ")");
    }
  }
  /// `RandomAffine(10, {{0.1, 0.1}}, {{0.9, 1.1}}, {{-5, 5}})`: degrees, translate, scale, x shear.
  explicit RandomAffine(double degrees, std::optional<Range> translate = std::nullopt,
                        std::optional<Range> scale = std::nullopt, std::optional<Range> shear = std::nullopt)
      : RandomAffine(RandomAffineOptions(degrees).translate(translate).scale(scale).shear(shear)) {}

  /// Draws the parameters of one image of size H x W from two Philox blocks.
  detail::AffineMatrix sample(uint64_t key, uint64_t counter, int64_t H, int64_t W) const {
    const auto& o = options_;
    auto r0 = philox::philox4x32(key, counter), r1 = philox::philox4x32(key, counter + 1);
    double angle = detail::uniform_from(r0.x, o.degrees().first, o.degrees().second);
    double tx = 0, ty = 0, scale = 1, shx = 0, shy = 0;
    if (o.translate()) {
      double mx = o.translate()->first * static_cast<double>(W), my = o.translate()->second * static_cast<double>(H);
      tx = std::round(detail::uniform_from(r0.y, -mx, mx));
      ty = std::round(detail::uniform_from(r0.z, -my, my));
    }
    if (o.scale()) scale = detail::uniform_from(r0.w, o.scale()->first, o.scale()->second);
    if (o.shear()) shx = detail::uniform_from(r1.x, o.shear()->first, o.shear()->second);
    if (o.shear_y()) shy = detail::uniform_from(r1.y, o.shear_y()->first, o.shear_y()->second);
    return detail::inverse_affine(angle, tx, ty, scale, shx, shy);
  }

  Tensor operator()(const Tensor& img) const {
    detail::check_image(img, "RandomAffine");
    Tensor x4 = img.dim() == 3 ? img.unsqueeze(0) : img;
    const int64_t n = x4.size(0);
    std::vector<detail::AffineMatrix> mats;
    mats.reserve(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      auto [key, counter] = reserve_random(2, options_.generator().get(), static_cast<uint64_t>(i));
      mats.push_back(sample(key, counter, x4.size(2), x4.size(3)));
    }
    Tensor out = detail::affine_batch(x4, mats, options_.fill(), "RandomAffine");
    return img.dim() == 3 ? out.squeeze(0) : out;
  }
  const RandomAffineOptions& options() const { return options_; }

 private:
  RandomAffineOptions options_;
};

// ---- flips ----------------------------------------------------------------------------------

/// The image mirrored left-right (last dimension reversed); any dtype and device.
inline Tensor hflip(const Tensor& img) {
  EMBER_CHECK(img.defined() && img.dim() >= 1, "hflip: expected a tensor with at least one dimension");
  const int64_t w = img.size(-1);
  Tensor rev = arange(w - 1, -1, -1, TensorOptions(kInt64).device(img.device()));
  return index_select(img, -1, rev);
}

/// Mirrors each image left-right with probability p (torchvision RandomHorizontalFlip).
class RandomHorizontalFlip {
 public:
  explicit RandomHorizontalFlip(double p = 0.5, std::shared_ptr<Generator> generator = nullptr)
      : p_(p), generator_(std::move(generator)) {
    EMBER_CHECK(p >= 0 && p <= 1, "RandomHorizontalFlip: p must lie in [0, 1], got ", p);
  }
  Tensor operator()(const Tensor& img) const {
    detail::check_image(img, "RandomHorizontalFlip");
    const int64_t n = img.dim() == 3 ? 1 : img.size(0);
    auto flip = [&](int64_t i) {
      auto [key, counter] = reserve_random(1, generator_.get(), static_cast<uint64_t>(i));
      return detail::uniform_from(philox::philox4x32(key, counter).x, 0, 1) < p_;
    };
    if (img.dim() == 3) return flip(0) ? hflip(img) : img;
    std::vector<int64_t> which;
    for (int64_t i = 0; i < n; ++i)
      if (flip(i)) which.push_back(i);
    if (which.empty()) return img;
    Tensor out = img.clone();
    for (int64_t i : which) out.select(0, i).copy_(hflip(img.select(0, i)));
    return out;
  }

 private:
  double p_;
  std::shared_ptr<Generator> generator_;
};

// ---- MapDataset -----------------------------------------------------------------------------

/// Where MapDataset applies its transform.
enum class Apply {
  kPerExample,  ///< to each example's data before batching (any transform)
  kPerBatch,    ///< to the stacked batch (transforms that accept [N, C, H, W]; keeps fast paths)
};

/// `dataset` with `transform` applied to each example's data (and `target_transform`, if given,
/// to its target): torchvision's `transform=` argument as a wrapper.
class MapDataset : public Dataset {
 public:
  MapDataset(DatasetPtr dataset, Transform transform, Apply apply = Apply::kPerExample, Transform target_transform = nullptr)
      : dataset_(std::move(dataset)), transform_(std::move(transform)), target_transform_(std::move(target_transform)),
        apply_(apply) {
    EMBER_CHECK(dataset_ != nullptr, "MapDataset: the dataset is null");
  }
  /// Copies `dataset` (datasets are cheap handles to their tensors).
  template <typename D, typename = std::enable_if_t<std::is_base_of_v<Dataset, std::decay_t<D>>>>
  MapDataset(D&& dataset, Transform transform, Apply apply = Apply::kPerExample, Transform target_transform = nullptr)
      : MapDataset(DatasetPtr(std::make_shared<std::decay_t<D>>(std::forward<D>(dataset))), std::move(transform), apply,
                   std::move(target_transform)) {}

  int64_t size() const override { return dataset_->size(); }
  Example get(int64_t index) const override { return apply_to(dataset_->get(index)); }
  Example get_batch(const std::vector<int64_t>& indices) const override {
    if (apply_ == Apply::kPerBatch) return apply_to(dataset_->get_batch(indices));
    return Dataset::get_batch(indices);
  }

 private:
  Example apply_to(Example e) const {
    if (transform_) e.data = transform_(e.data);
    if (target_transform_ && e.target.defined()) e.target = target_transform_(e.target);
    return e;
  }

  DatasetPtr dataset_;
  Transform transform_, target_transform_;
  Apply apply_;
};

}  // namespace ember::data

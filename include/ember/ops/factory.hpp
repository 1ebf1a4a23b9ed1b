#pragma once
/// Tensor factories: empty, zeros, ones, full, tensor (from values), from_blob, arange, linspace,
/// eye, the *_like variants, and the random factories on the Philox generator.
#include <cmath>
#include <functional>
#include <initializer_list>
#include <numbers>
#include <vector>

#include "ember/core/generator.hpp"
#include "ember/core/philox.hpp"
#include "ember/ops/copy.hpp"

namespace ember {

namespace detail {
inline Tensor finish(Tensor t, const TensorOptions& opts) {
  if (opts.requires_grad()) t.requires_grad_(true);
  return t;
}
}  // namespace detail

/// Uninitialised storage.
inline Tensor empty(const Shape& sizes, const TensorOptions& opts) {
  return detail::finish(make_tensor(sizes, opts.dtype(), opts.device()), opts);
}

inline Tensor& Tensor::fill_(Scalar v) {
  EMBER_CHECK(!(is_grad_enabled() && is_leaf() && requires_grad()),
              "fill_: a leaf tensor that requires grad is being used in an in-place operation");
  if (numel() > 0) {
    if (device().is_cuda()) {
#ifdef EMBER_WITH_CUDA
      cuda::fill(cuda::arg(*this), v.to_double());
#else
      fail_no_cuda("fill_");
#endif
    } else {
      visit_all_dtypes(dtype(), "fill_", [&]<typename T>() {
        T value;
        if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>) value = T(static_cast<float>(v.to_double()));
        else if constexpr (std::is_same_v<T, bool>) value = v.to_double() != 0;
        else value = v.is_floating() ? static_cast<T>(v.to_double()) : static_cast<T>(v.to_int());
        cpu::map<T>(*this, [value]() { return value; });
      });
    }
  }
  storage()->bump_version();
  return *this;
}
inline Tensor& Tensor::zero_() { return fill_(0); }

inline Tensor full(const Shape& sizes, Scalar value, const TensorOptions& opts = {}) {
  Tensor t = make_tensor(sizes, opts.dtype(), opts.device());
  t.fill_(value);
  return detail::finish(t, opts);
}
inline Tensor zeros(const Shape& sizes, const TensorOptions& opts = {}) { return full(sizes, 0, opts); }
inline Tensor ones(const Shape& sizes, const TensorOptions& opts = {}) { return full(sizes, 1, opts); }
inline Tensor empty_like(const Tensor& t) { return make_tensor(t.sizes(), t.dtype(), t.device()); }
inline Tensor empty_like(const Tensor& t, const TensorOptions& opts) { return empty(t.sizes(), opts); }
inline Tensor zeros_like(const Tensor& t) { return zeros(t.sizes(), t.options()); }
inline Tensor zeros_like(const Tensor& t, const TensorOptions& opts) { return zeros(t.sizes(), opts); }
inline Tensor ones_like(const Tensor& t) { return ones(t.sizes(), t.options()); }
inline Tensor ones_like(const Tensor& t, const TensorOptions& opts) { return ones(t.sizes(), opts); }
inline Tensor full_like(const Tensor& t, Scalar v) { return full(t.sizes(), v, t.options()); }

/// A tensor holding a copy of `values` with the given shape (default: 1-d), dtype from T unless
/// `opts` names another: `tensor<float>({1, 2, 3, 4}, {2, 2})`.
template <typename T>
Tensor tensor(const std::vector<T>& values, const Shape& sizes, TensorOptions opts) {
  EMBER_CHECK(sizes.numel() == static_cast<int64_t>(values.size()), "tensor: ", values.size(),
              " values do not fill a tensor of shape ", sizes);
  Tensor host = make_tensor(sizes, dtype_v<T>, kCPU);
  if constexpr (std::is_same_v<T, bool>) {  // std::vector<bool> is packed: copy element by element
    bool* p = host.data_ptr<bool>();
    for (size_t i = 0; i < values.size(); ++i) p[i] = values[i];
  } else if (!values.empty()) {
    std::memcpy(host.raw_data(), values.data(), values.size() * sizeof(T));
  }
  Tensor out = host.to(opts.device(), opts.dtype());
  if (out.is_same(host) || out.storage() == host.storage()) out = host;
  return detail::finish(out, opts);
}
template <typename T>
Tensor tensor(const std::vector<T>& values, const Shape& sizes) {
  return tensor(values, sizes, TensorOptions(dtype_v<T>));
}
template <typename T>
Tensor tensor(const std::vector<T>& values) {
  return tensor(values, Shape{static_cast<int64_t>(values.size())}, TensorOptions(dtype_v<T>));
}
template <typename T>
Tensor tensor(std::initializer_list<T> values, const Shape& sizes = {-1}) {
  std::vector<T> v(values);
  Shape s = sizes.size() == 1 && sizes[0] == -1 ? Shape{static_cast<int64_t>(v.size())} : sizes;
  return tensor(v, s, TensorOptions(dtype_v<T>));
}
template <typename T>
Tensor tensor(std::initializer_list<T> values, const Shape& sizes, TensorOptions opts) {
  return tensor(std::vector<T>(values), sizes, opts);
}
/// A 0-dim tensor.
inline Tensor scalar_tensor(Scalar v, const TensorOptions& opts = {}) { return full({}, v, opts); }

/// Wraps memory owned elsewhere without copying; `deleter` runs when the last view is gone.
inline Tensor from_blob(void* data, const Shape& sizes, const TensorOptions& opts = {},
                        std::function<void(void*)> deleter = nullptr) {
  int64_t n = 0;
  EMBER_CHECK(sizes.checked_numel(n) && n <= INT64_MAX / static_cast<int64_t>(element_size(opts.dtype())),
              "from_blob: invalid shape ", sizes, " (", opts.dtype(), "): negative size or byte size overflows int64");
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(data, static_cast<size_t>(n) * element_size(opts.dtype()),
                                            opts.device(), std::move(deleter));
  impl->sizes = sizes;
  impl->strides = contiguous_strides(sizes);
  impl->dtype = opts.dtype();
  return detail::finish(Tensor(std::move(impl)), opts);
}

namespace detail {
/// Fills a fresh CPU tensor element by element from f(i) in double, then moves it to opts' device.
template <typename F>
Tensor generate(const Shape& sizes, const TensorOptions& opts, const F& f) {
  Tensor host = make_tensor(sizes, opts.dtype(), kCPU);
  visit_all_dtypes(opts.dtype(), "generate", [&]<typename T>() {
    T* p = host.data_ptr<T>();
    parallel_for(0, host.numel(), kGrainSize, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) p[i] = convert_value<T, double>(f(i));
    });
  });
  return finish(host.to(opts.device()), opts);
}
}  // namespace detail

/// Values start, start+step, ... below end (torch.arange). Integral arguments give int64.
inline Tensor arange(Scalar start, Scalar end, Scalar step = 1, std::optional<TensorOptions> opts = std::nullopt) {
  EMBER_CHECK(step.to_double() != 0, "arange: step must be nonzero");
  double n = std::ceil((end.to_double() - start.to_double()) / step.to_double());
  EMBER_CHECK(n >= 0, "arange: upper bound ", end.to_double(), " and step ", step.to_double(),
              " are inconsistent with start ", start.to_double());
  // Checked in double: converting an out-of-range double (1e30, inf) to int64 is undefined.
  EMBER_CHECK(n < 9.0e18, "arange: [", start.to_double(), ", ", end.to_double(), ") with step ", step.to_double(),
              " has ", n, " elements, more than int64 can count");
  bool integral = start.is_integral() && end.is_integral() && step.is_integral();
  TensorOptions o = opts ? *opts : TensorOptions(integral ? kInt64 : kFloat32);
  double s0 = start.to_double(), st = step.to_double();
  return detail::generate({static_cast<int64_t>(n)}, o, [&](int64_t i) { return s0 + st * static_cast<double>(i); });
}
inline Tensor arange(Scalar end, std::optional<TensorOptions> opts = std::nullopt) {
  return arange(Scalar(int64_t{0}), end, Scalar(int64_t{1}), opts);
}
/// `steps` evenly spaced values from start to end inclusive.
inline Tensor linspace(double start, double end, int64_t steps, const TensorOptions& opts = {}) {
  EMBER_CHECK(steps >= 0, "linspace: number of steps must be non-negative, got ", steps);
  double step = steps > 1 ? (end - start) / static_cast<double>(steps - 1) : 0.0;
  return detail::generate({steps}, opts, [&](int64_t i) { return i == steps - 1 && steps > 1 ? end : start + step * static_cast<double>(i); });
}
/// Identity matrix n x m (m defaults to n).
inline Tensor eye(int64_t n, int64_t m = -1, const TensorOptions& opts = {}) {
  if (m < 0) m = n;
  EMBER_CHECK(n >= 0, "eye: n must be non-negative, got ", n);
  return detail::generate({n, m}, opts, [&](int64_t i) { return (i / m) == (i % m) ? 1.0 : 0.0; });
}

// ---- random ------------------------------------------------------------------------------------

inline Tensor& Tensor::uniform_(double from, double to) {
  EMBER_CHECK(is_floating_point(), "uniform_: expected a floating point tensor, got ", dtype());
  EMBER_CHECK(from <= to, "uniform_: expects from <= to, got from=", from, " to=", to);
  auto& gen = default_generator();
  uint64_t seed = gen.seed(), offset = gen.reserve(static_cast<uint64_t>(numel()));
  if (device().is_cuda()) {
#ifdef EMBER_WITH_CUDA
    Tensor tmp = is_contiguous() ? *this : make_tensor(sizes(), dtype(), device());
    cuda::uniform(cuda::arg(tmp), seed, offset, from, to);
    if (!tmp.is_same(*this)) detail::copy_into(*this, tmp);
#else
    fail_no_cuda("uniform_");
#endif
  } else {
    Tensor tmp = detail::generate(sizes(), TensorOptions(dtype()), [&](int64_t i) {
      auto r = philox::philox4x32(seed, offset + static_cast<uint64_t>(i));
      double u = dtype() == kFloat64 ? philox::to_uniform_double(r.x, r.y) : philox::to_uniform_float(r.x);
      return from + (to - from) * u;
    });
    detail::copy_into(*this, tmp);
  }
  storage()->bump_version();
  return *this;
}

inline Tensor& Tensor::normal_(double mean, double std) {
  EMBER_CHECK(is_floating_point(), "normal_: expected a floating point tensor, got ", dtype());
  EMBER_CHECK(std >= 0, "normal_: expects std >= 0, got ", std);
  auto& gen = default_generator();
  uint64_t seed = gen.seed(), offset = gen.reserve(static_cast<uint64_t>(numel()));
  if (device().is_cuda()) {
#ifdef EMBER_WITH_CUDA
    Tensor tmp = is_contiguous() ? *this : make_tensor(sizes(), dtype(), device());
    cuda::normal(cuda::arg(tmp), seed, offset, mean, std);
    if (!tmp.is_same(*this)) detail::copy_into(*this, tmp);
#else
    fail_no_cuda("normal_");
#endif
  } else {
    Tensor tmp = detail::generate(sizes(), TensorOptions(dtype()), [&](int64_t i) {
      // Box-Muller on two words of this element's Philox block; u1 in (0, 1] avoids log(0).
      auto r = philox::philox4x32(seed, offset + static_cast<uint64_t>(i));
      double u1, u2;
      if (dtype() == kFloat64) {
        u1 = 1.0 - philox::to_uniform_double(r.x, r.y);
        u2 = philox::to_uniform_double(r.z, r.w);
      } else {
        u1 = 1.0 - philox::to_uniform_float(r.x);
        u2 = philox::to_uniform_float(r.y);
      }
      return mean + std * std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
    });
    detail::copy_into(*this, tmp);
  }
  storage()->bump_version();
  return *this;
}

/// Uniform in [0, 1).
inline Tensor rand(const Shape& sizes, const TensorOptions& opts = {}) {
  Tensor t = make_tensor(sizes, opts.dtype(), opts.device());
  t.uniform_(0, 1);
  return detail::finish(t, opts);
}
/// Standard normal.
inline Tensor randn(const Shape& sizes, const TensorOptions& opts = {}) {
  Tensor t = make_tensor(sizes, opts.dtype(), opts.device());
  t.normal_(0, 1);
  return detail::finish(t, opts);
}
inline Tensor rand_like(const Tensor& t) { return rand(t.sizes(), t.options()); }
inline Tensor randn_like(const Tensor& t) { return randn(t.sizes(), t.options()); }

/// Integers uniform in [low, high); int64 by default.
inline Tensor randint(int64_t low, int64_t high, const Shape& sizes, const TensorOptions& opts = TensorOptions(kInt64)) {
  EMBER_CHECK(low < high, "randint: expected low < high, got low=", low, " high=", high);
  auto& gen = default_generator();
  uint64_t seed = gen.seed(), offset = gen.reserve(static_cast<uint64_t>(sizes.numel()));
  uint64_t range = static_cast<uint64_t>(high - low);
  return detail::generate(sizes, opts, [&](int64_t i) {
    auto r = philox::philox4x32(seed, offset + static_cast<uint64_t>(i));
    uint64_t v = (static_cast<uint64_t>(r.x) << 32) | r.y;
    return static_cast<double>(low + static_cast<int64_t>(v % range));
  });
}
inline Tensor randint(int64_t high, const Shape& sizes, const TensorOptions& opts = TensorOptions(kInt64)) {
  return randint(0, high, sizes, opts);
}

/// A random permutation of 0..n-1 (Fisher-Yates on the Philox stream); int64.
inline Tensor randperm(int64_t n, const TensorOptions& opts = TensorOptions(kInt64)) {
  EMBER_CHECK(n >= 0, "randperm: n must be non-negative, got ", n);
  auto& gen = default_generator();
  uint64_t seed = gen.seed(), offset = gen.reserve(static_cast<uint64_t>(n));
  std::vector<int64_t> p(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) p[i] = i;
  for (int64_t i = n - 1; i > 0; --i) {
    auto r = philox::philox4x32(seed, offset + static_cast<uint64_t>(i));
    uint64_t v = (static_cast<uint64_t>(r.x) << 32) | r.y;
    std::swap(p[i], p[static_cast<int64_t>(v % static_cast<uint64_t>(i + 1))]);
  }
  return tensor(p, {n}, opts);
}

}  // namespace ember

#pragma once
/// Shape: a small inline vector of int64 used for sizes, strides and dimension lists.
/// Tensors have at most kMaxDims dimensions, so a shape never touches the heap; this keeps
/// creating a small tensor (the per-op overhead) to one allocation for the impl and one for data.
#include <algorithm>
#include <array>
#include <cstdint>
#include <initializer_list>
#include <ostream>
#include <vector>

#include "ember/core/error.hpp"

namespace ember {

inline constexpr int kMaxDims = 8;

class Shape {
 public:
  Shape() = default;
  Shape(std::initializer_list<int64_t> v) { assign(v.begin(), v.end()); }
  Shape(const std::vector<int64_t>& v) { assign(v.begin(), v.end()); }  // NOLINT: implicit on purpose
  template <typename It>
  Shape(It first, It last) { assign(first, last); }
  /// n copies of `value`.
  static Shape filled(int64_t n, int64_t value) {
    Shape s;
    s.resize(n, value);
    return s;
  }

  int64_t size() const { return n_; }
  bool empty() const { return n_ == 0; }
  int64_t* data() { return v_.data(); }
  const int64_t* data() const { return v_.data(); }
  int64_t* begin() { return v_.data(); }
  int64_t* end() { return v_.data() + n_; }
  const int64_t* begin() const { return v_.data(); }
  const int64_t* end() const { return v_.data() + n_; }
  int64_t& operator[](int64_t i) { return v_[i]; }
  int64_t operator[](int64_t i) const { return v_[i]; }
  int64_t back() const { return v_[n_ - 1]; }
  int64_t& back() { return v_[n_ - 1]; }

  void push_back(int64_t x) {
    EMBER_CHECK(n_ < kMaxDims, "tensors support at most ", kMaxDims, " dimensions");
    v_[n_++] = x;
  }
  void pop_back() { --n_; }
  void insert(int64_t pos, int64_t x) {
    EMBER_CHECK(n_ < kMaxDims, "tensors support at most ", kMaxDims, " dimensions");
    for (int64_t i = n_; i > pos; --i) v_[i] = v_[i - 1];
    v_[pos] = x;
    ++n_;
  }
  void erase(int64_t pos) {
    for (int64_t i = pos; i + 1 < n_; ++i) v_[i] = v_[i + 1];
    --n_;
  }
  void resize(int64_t n, int64_t value = 0) {
    EMBER_CHECK(n >= 0 && n <= kMaxDims, "tensors support at most ", kMaxDims, " dimensions, got ", n);
    for (int64_t i = n_; i < n; ++i) v_[i] = value;
    n_ = n;
  }
  /// Product of the entries (the element count for sizes).
  int64_t numel() const {
    int64_t p = 1;
    for (int64_t i = 0; i < n_; ++i) p *= v_[i];
    return p;
  }
  /// The element count, or false when it overflows int64 or an entry is negative (sizes from
  /// files and user arithmetic; numel() itself stays a plain product for the hot path).
  bool checked_numel(int64_t& out) const {
    int64_t p = 1;
    for (int64_t i = 0; i < n_; ++i) {
      if (v_[i] < 0 || __builtin_mul_overflow(p, v_[i], &p)) return false;
    }
    out = p;
    return true;
  }
  std::vector<int64_t> vec() const { return {begin(), end()}; }

  friend bool operator==(const Shape& a, const Shape& b) {
    return a.n_ == b.n_ && std::equal(a.begin(), a.end(), b.begin());
  }
  friend bool operator!=(const Shape& a, const Shape& b) { return !(a == b); }
  friend std::ostream& operator<<(std::ostream& os, const Shape& s) {
    os << '[';
    for (int64_t i = 0; i < s.n_; ++i) os << (i ? ", " : "") << s.v_[i];
    return os << ']';
  }

 private:
  template <typename It>
  void assign(It first, It last) {
    n_ = 0;
    for (; first != last; ++first) push_back(static_cast<int64_t>(*first));
  }
  std::array<int64_t, kMaxDims> v_{};
  int64_t n_ = 0;
};

/// Contiguous (row-major) strides for `sizes`.
inline Shape contiguous_strides(const Shape& sizes) {
  Shape st = Shape::filled(sizes.size(), 1);
  int64_t acc = 1;
  for (int64_t i = sizes.size() - 1; i >= 0; --i) {
    st[i] = acc;
    acc *= std::max<int64_t>(sizes[i], 1);
  }
  return st;
}

/// Wraps a possibly negative dimension index into [0, ndim), with a clear error naming the op.
inline int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op) {
  int64_t lo = ndim == 0 ? -1 : -ndim, hi = ndim == 0 ? 0 : ndim - 1;
  EMBER_CHECK(dim >= lo && dim <= hi, op, ": dimension ", dim, " out of range for a ", ndim,
              "-d tensor (expected in [", lo, ", ", hi, "])");
  return dim < 0 ? dim + std::max<int64_t>(ndim, 1) : dim;
}

/// NumPy/PyTorch broadcasting of two shapes.
inline Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  int64_t n = std::max(a.size(), b.size());
  Shape out = Shape::filled(n, 1);
  for (int64_t i = 0; i < n; ++i) {
    int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    EMBER_CHECK(da == db || da == 1 || db == 1, op, ": shapes ", a, " and ", b,
                " cannot be broadcast (dimension ", i, ": ", da, " vs ", db, ")");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

}  // namespace ember

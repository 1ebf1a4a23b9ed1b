#pragma once
/// Elementwise binary ops with NumPy/PyTorch broadcasting and type promotion: add sub mul div
/// pow maximum minimum, comparisons (bool results), logical and/or, where; the C++ operators.
///
/// One dispatch point: `binary_kernel(op, a, b)` picks the device, then the dtype, then the
/// op's lambda. Backward formulas sit with each public function.
#include <cmath>

#include "ember/ops/factory.hpp"

namespace ember {

using cuda::BinaryOp;

namespace detail {

inline bool is_comparison(BinaryOp op) {
  return op == BinaryOp::Eq || op == BinaryOp::Ne || op == BinaryOp::Lt || op == BinaryOp::Le ||
         op == BinaryOp::Gt || op == BinaryOp::Ge || op == BinaryOp::LogicalAnd || op == BinaryOp::LogicalOr;
}

inline const char* binary_name(BinaryOp op) {
  switch (op) {
    case BinaryOp::Add: return "add";
    case BinaryOp::Sub: return "sub";
    case BinaryOp::Mul: return "mul";
    case BinaryOp::Div: return "div";
    case BinaryOp::Pow: return "pow";
    case BinaryOp::Maximum: return "maximum";
    case BinaryOp::Minimum: return "minimum";
    case BinaryOp::Eq: return "eq";
    case BinaryOp::Ne: return "ne";
    case BinaryOp::Lt: return "lt";
    case BinaryOp::Le: return "le";
    case BinaryOp::Gt: return "gt";
    case BinaryOp::Ge: return "ge";
    case BinaryOp::LogicalAnd: return "logical_and";
    case BinaryOp::LogicalOr: return "logical_or";
  }
  return "binary";
}

/// The CPU loop for one op at compute type T, writing Out (T, or bool for comparisons).
template <typename T>
void binary_cpu(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b, T alpha) {
  auto run = [&]<typename Out>(auto f) { cpu::map<Out, T, T>(out, f, a, b); };
  switch (op) {
    case BinaryOp::Add: return run.template operator()<T>([alpha](T x, T y) { return static_cast<T>(x + alpha * y); });
    case BinaryOp::Sub: return run.template operator()<T>([alpha](T x, T y) { return static_cast<T>(x - alpha * y); });
    case BinaryOp::Mul: return run.template operator()<T>([](T x, T y) { return static_cast<T>(x * y); });
    case BinaryOp::Div:
      if constexpr (std::is_floating_point_v<T>) return run.template operator()<T>([](T x, T y) { return x / y; });
      else EMBER_FAIL("div: integer division is computed in floating point; this path is unreachable");
    case BinaryOp::Pow:
      return run.template operator()<T>([](T x, T y) { return static_cast<T>(std::pow(x, y)); });
    case BinaryOp::Maximum:
      return run.template operator()<T>([](T x, T y) {
        if constexpr (std::is_floating_point_v<T>) if (std::isnan(x) || std::isnan(y)) return x + y;
        return x > y ? x : y;
      });
    case BinaryOp::Minimum:
      return run.template operator()<T>([](T x, T y) {
        if constexpr (std::is_floating_point_v<T>) if (std::isnan(x) || std::isnan(y)) return x + y;
        return x < y ? x : y;
      });
    case BinaryOp::Eq: return run.template operator()<bool>([](T x, T y) { return x == y; });
    case BinaryOp::Ne: return run.template operator()<bool>([](T x, T y) { return x != y; });
    case BinaryOp::Lt: return run.template operator()<bool>([](T x, T y) { return x < y; });
    case BinaryOp::Le: return run.template operator()<bool>([](T x, T y) { return x <= y; });
    case BinaryOp::Gt: return run.template operator()<bool>([](T x, T y) { return x > y; });
    case BinaryOp::Ge: return run.template operator()<bool>([](T x, T y) { return x >= y; });
    case BinaryOp::LogicalAnd: return run.template operator()<bool>([](T x, T y) { return x != T(0) && y != T(0); });
    case BinaryOp::LogicalOr: return run.template operator()<bool>([](T x, T y) { return x != T(0) || y != T(0); });
  }
}

/// Result dtype of an op on tensors a and b (PyTorch promotion; true division gives a float).
inline DType binary_compute_dtype(BinaryOp op, DType a, DType b) {
  DType t = promote_types(a, b);
  return op == BinaryOp::Div && !is_floating(t) ? kFloat32 : t;
}

}  // namespace detail

/// Runs `op` into an existing `out` (shape = broadcast shape, dtype = compute dtype, or bool for
/// comparisons); inputs already in the compute dtype. `out` may alias `a` (in-place ops).
inline void binary_into(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b, double alpha) {
  const char* name = detail::binary_name(op);
  if (out.numel() == 0) return;
  if (out.is_cuda()) {
#ifdef EMBER_WITH_CUDA
    cuda::binary(op, cuda::arg(out), cuda::arg(a, out.sizes()), cuda::arg(b, out.sizes()), alpha);
#else
    fail_no_cuda(name);
#endif
    return;
  }
  visit_dtype(a.dtype(), name, [&]<typename T>() {
    if constexpr (std::is_same_v<T, bool>) {
      // bool arithmetic as in PyTorch: add/maximum are logical or, mul/minimum logical and.
      if (op == BinaryOp::Add || op == BinaryOp::Maximum) return detail::binary_cpu<bool>(BinaryOp::LogicalOr, out, a, b, true);
      if (op == BinaryOp::Mul || op == BinaryOp::Minimum) return detail::binary_cpu<bool>(BinaryOp::LogicalAnd, out, a, b, true);
      EMBER_CHECK(detail::is_comparison(op), name, ": not supported for bool tensors");
      return detail::binary_cpu<bool>(op, out, a, b, true);
    } else {
      detail::binary_cpu<T>(op, out, a, b, static_cast<T>(alpha));
    }
  });
}

/// The dispatch point for elementwise binary ops (no autograd; the public functions record).
inline Tensor binary_kernel(BinaryOp op, const Tensor& a, const Tensor& b, double alpha = 1.0) {
  const char* name = detail::binary_name(op);
  EMBER_CHECK(a.defined() && b.defined(), name, ": undefined tensor argument");
  check_same_device(name, {&a, &b});
  Shape shape = broadcast_shapes(a.sizes(), b.sizes(), name);
  DType ct = detail::binary_compute_dtype(op, a.dtype(), b.dtype());
  Tensor ac = a.dtype() == ct ? a : a.detach().to(ct);
  Tensor bc = b.dtype() == ct ? b : b.detach().to(ct);
  Tensor out = make_tensor(shape, detail::is_comparison(op) ? kBool : ct, a.device());
  binary_into(op, out, ac, bc, alpha);
  return out;
}

/// A scalar as a 0-dim tensor of the dtype PyTorch would compute `t op s` in: a scalar does not
/// widen a tensor of the same category, but a float scalar makes an integral tensor float32.
inline Tensor wrap_scalar(const Tensor& t, Scalar s) {
  DType dt = t.dtype();
  if (s.is_floating() && !is_floating(dt)) dt = kFloat32;
  else if (s.is_integral() && dt == kBool) dt = kInt64;
  Tensor w = make_tensor({}, dt, t.device());
  w.fill_(s);
  return w;
}

// ---- arithmetic with autograd ------------------------------------------------------------------

inline Tensor mul(const Tensor& a, Scalar b);
inline Tensor operator*(const Tensor& a, Scalar b);

inline Tensor add(const Tensor& a, const Tensor& b, Scalar alpha = 1) {
  double al = alpha.to_double();
  Tensor out = binary_kernel(BinaryOp::Add, a, b, al);
  if (autograd::needs_grad(a, b)) {
    autograd::record("AddBackward", out, {a, b}, {}, [al](const Tensor& g, const autograd::BackwardCtx& c) -> tensor_list {
      return {c.needs(0) ? g : Tensor(), c.needs(1) ? (al == 1.0 ? g : g * Scalar(al)) : Tensor()};
    });
  }
  return out;
}
inline Tensor sub(const Tensor& a, const Tensor& b, Scalar alpha = 1) {
  double al = alpha.to_double();
  Tensor out = binary_kernel(BinaryOp::Sub, a, b, al);
  if (autograd::needs_grad(a, b)) {
    autograd::record("SubBackward", out, {a, b}, {}, [al](const Tensor& g, const autograd::BackwardCtx& c) -> tensor_list {
      return {c.needs(0) ? g : Tensor(), c.needs(1) ? g * Scalar(-al) : Tensor()};
    });
  }
  return out;
}
inline Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = binary_kernel(BinaryOp::Mul, a, b);
  if (autograd::needs_grad(a, b)) {
    autograd::record("MulBackward", out, {a, b}, {a, b}, [](const Tensor& g, const autograd::BackwardCtx& c) -> tensor_list {
      return {c.needs(0) ? mul(g, c.saved(1)) : Tensor(), c.needs(1) ? mul(g, c.saved(0)) : Tensor()};
    });
  }
  return out;
}
inline Tensor div(const Tensor& a, const Tensor& b) {
  Tensor out = binary_kernel(BinaryOp::Div, a, b);
  if (autograd::needs_grad(a, b)) {
    autograd::record("DivBackward", out, {a, b}, {a, b}, [](const Tensor& g, const autograd::BackwardCtx& c) -> tensor_list {
      const Tensor& x = c.saved(0);
      const Tensor& y = c.saved(1);
      Tensor ga = c.needs(0) ? div(g, y) : Tensor();
      Tensor gb = c.needs(1) ? div(mul(g, x), mul(y, y)) * Scalar(-1) : Tensor();
      return {ga, gb};
    });
  }
  return out;
}

inline Tensor add(const Tensor& a, Scalar b) { return add(a, wrap_scalar(a, b)); }
inline Tensor sub(const Tensor& a, Scalar b) { return sub(a, wrap_scalar(a, b)); }
inline Tensor mul(const Tensor& a, Scalar b) { return mul(a, wrap_scalar(a, b)); }
inline Tensor div(const Tensor& a, Scalar b) {
  Tensor w = wrap_scalar(a, b);
  if (!is_floating(w.dtype())) w = w.to(kFloat32);
  return div(a, w);
}

inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
inline Tensor operator+(const Tensor& a, Scalar b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, Scalar b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, Scalar b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, Scalar b) { return div(a, b); }
inline Tensor operator+(Scalar a, const Tensor& b) { return add(b, a); }
inline Tensor operator-(Scalar a, const Tensor& b) { return add(mul(b, Scalar(-1)), a); }
inline Tensor operator*(Scalar a, const Tensor& b) { return mul(b, a); }
inline Tensor operator/(Scalar a, const Tensor& b) { return div(wrap_scalar(b, a), b); }
inline Tensor operator-(const Tensor& a) { return mul(a, Scalar(-1)); }

inline Tensor Tensor::add(const Tensor& o, Scalar alpha) const { return ember::add(*this, o, alpha); }
inline Tensor Tensor::sub(const Tensor& o, Scalar alpha) const { return ember::sub(*this, o, alpha); }
inline Tensor Tensor::mul(const Tensor& o) const { return ember::mul(*this, o); }
inline Tensor Tensor::div(const Tensor& o) const { return ember::div(*this, o); }

// ---- comparisons and logical ops (bool results, not differentiable) ----------------------------

inline Tensor eq(const Tensor& a, const Tensor& b) { return binary_kernel(BinaryOp::Eq, a, b); }
inline Tensor ne(const Tensor& a, const Tensor& b) { return binary_kernel(BinaryOp::Ne, a, b); }
inline Tensor lt(const Tensor& a, const Tensor& b) { return binary_kernel(BinaryOp::Lt, a, b); }
inline Tensor le(const Tensor& a, const Tensor& b) { return binary_kernel(BinaryOp::Le, a, b); }
inline Tensor gt(const Tensor& a, const Tensor& b) { return binary_kernel(BinaryOp::Gt, a, b); }
inline Tensor ge(const Tensor& a, const Tensor& b) { return binary_kernel(BinaryOp::Ge, a, b); }
inline Tensor logical_and(const Tensor& a, const Tensor& b) { return binary_kernel(BinaryOp::LogicalAnd, a, b); }
inline Tensor logical_or(const Tensor& a, const Tensor& b) { return binary_kernel(BinaryOp::LogicalOr, a, b); }
inline Tensor eq(const Tensor& a, Scalar b) { return eq(a, wrap_scalar(a, b)); }
inline Tensor ne(const Tensor& a, Scalar b) { return ne(a, wrap_scalar(a, b)); }
inline Tensor lt(const Tensor& a, Scalar b) { return lt(a, wrap_scalar(a, b)); }
inline Tensor le(const Tensor& a, Scalar b) { return le(a, wrap_scalar(a, b)); }
inline Tensor gt(const Tensor& a, Scalar b) { return gt(a, wrap_scalar(a, b)); }
inline Tensor ge(const Tensor& a, Scalar b) { return ge(a, wrap_scalar(a, b)); }
inline Tensor operator==(const Tensor& a, const Tensor& b) { return eq(a, b); }
inline Tensor operator!=(const Tensor& a, const Tensor& b) { return ne(a, b); }
inline Tensor operator<(const Tensor& a, const Tensor& b) { return lt(a, b); }
inline Tensor operator<=(const Tensor& a, const Tensor& b) { return le(a, b); }
inline Tensor operator>(const Tensor& a, const Tensor& b) { return gt(a, b); }
inline Tensor operator>=(const Tensor& a, const Tensor& b) { return ge(a, b); }
inline Tensor operator==(const Tensor& a, Scalar b) { return eq(a, b); }
inline Tensor operator!=(const Tensor& a, Scalar b) { return ne(a, b); }
inline Tensor operator<(const Tensor& a, Scalar b) { return lt(a, b); }
inline Tensor operator<=(const Tensor& a, Scalar b) { return le(a, b); }
inline Tensor operator>(const Tensor& a, Scalar b) { return gt(a, b); }
inline Tensor operator>=(const Tensor& a, Scalar b) { return ge(a, b); }

}  // namespace ember

#pragma once
/// Pointwise ops on several tensors: maximum, minimum, pow(tensor, tensor), where (and its
/// Scalar-branch forms), masked_fill, lerp, addcmul, addcdiv.
///
/// maximum/minimum/pow run through binary_kernel (ops/binary.hpp); `where` has its own dispatch
/// point (`where_kernel`: CUDA cuda::where, CPU a three-input cpu::map). Gradients are written
/// with differentiable Ember ops, so they differentiate again.
///
/// Example:
/// ```
///   auto x = ember::randn({3, 4});
///   auto y = ember::where(x > 0, x, x * 0.1);          // leaky by hand
///   auto z = ember::masked_fill(x, ember::isnan(x), 0.0);  // no NaN left
/// ```
#include "ember/ops/unary.hpp"

namespace ember {

// ---- where ---------------------------------------------------------------------------------------

/// The dispatch point for `where` (no autograd): out = cond ? a : b, all three broadcast
/// together; a and b are promoted to a common dtype.
inline Tensor where_kernel(const Tensor& cond, const Tensor& a, const Tensor& b) {
  EMBER_CHECK(cond.defined() && a.defined() && b.defined(), "where: undefined tensor argument");
  EMBER_CHECK(cond.dtype() == kBool, "where: expected condition to be a bool tensor, got ", cond.dtype());
  check_same_device("where", {&cond, &a, &b});
  Shape shape = broadcast_shapes(broadcast_shapes(cond.sizes(), a.sizes(), "where"), b.sizes(), "where");
  DType dt = promote_types(a.dtype(), b.dtype());
  Tensor ac = a.dtype() == dt ? a.detach() : a.detach().to(dt);
  Tensor bc = b.dtype() == dt ? b.detach() : b.detach().to(dt);
  Tensor out = make_tensor(shape, dt, a.device());
  if (out.numel() == 0) return out;
  if (out.is_cuda()) {
#ifdef EMBER_WITH_CUDA
    cuda::where(cuda::arg(out), cuda::arg(cond, shape), cuda::arg(ac, shape), cuda::arg(bc, shape));
#else
    fail_no_cuda("where");
#endif
    return out;
  }
  // A pure selection: every dtype works, float16/bfloat16 included.
  visit_all_dtypes(dt, "where", [&]<typename T>() {
    cpu::map<T, bool, T, T>(out, [](bool c, T x, T y) { return c ? x : y; }, cond, ac, bc);
  });
  return out;
}

namespace detail {
/// A 0-dim tensor holding s, with the dtype PyTorch gives a lone Scalar (int64, float32, bool).
inline Tensor scalar_as_tensor(Scalar s, Device device) {
  DType dt = s.is_floating() ? kFloat32 : s.is_bool() ? kBool : kInt64;
  Tensor t = make_tensor({}, dt, device);
  t.fill_(s);
  return t;
}
}  // namespace detail

/// cond ? a : b elementwise, broadcasting all three (torch.where). Gradients flow to `a` where
/// cond holds and to `b` elsewhere.
inline Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  Tensor out = where_kernel(cond, a, b);
  if (autograd::needs_grad(a, b)) {
    autograd::record("WhereBackward", out, {a, b}, {cond},
                     [](const Tensor& g, const autograd::BackwardCtx& c) -> tensor_list {
                       const Tensor& m = c.saved(0);
                       Tensor zero = zeros({}, g.options());
                       return {c.needs(0) ? where(m, g, zero) : Tensor(), c.needs(1) ? where(m, zero, g) : Tensor()};
                     });
  }
  return out;
}
/// where with a Scalar for the false branch; the scalar takes a's dtype category, as in PyTorch.
inline Tensor where(const Tensor& cond, const Tensor& a, Scalar b) { return where(cond, a, wrap_scalar(a, b)); }
/// where with a Scalar for the true branch.
inline Tensor where(const Tensor& cond, Scalar a, const Tensor& b) { return where(cond, wrap_scalar(b, a), b); }
/// where with two Scalars: float32 if either is floating, else int64 (bool for two bools).
inline Tensor where(const Tensor& cond, Scalar a, Scalar b) {
  EMBER_CHECK(cond.defined(), "where: undefined tensor argument");
  return where_kernel(cond, detail::scalar_as_tensor(a, cond.device()), detail::scalar_as_tensor(b, cond.device()));
}

/// A copy of x with `value` wherever mask (bool, broadcastable to x's shape) is true. The value
/// is converted to x's dtype; the gradient flows to x where mask is false.
inline Tensor masked_fill(const Tensor& x, const Tensor& mask, Scalar value) {
  EMBER_CHECK(x.defined() && mask.defined(), "masked_fill: undefined tensor argument");
  EMBER_CHECK(mask.dtype() == kBool, "masked_fill: expected a bool mask, got ", mask.dtype());
  EMBER_CHECK(broadcast_shapes(x.sizes(), mask.sizes(), "masked_fill") == x.sizes(), "masked_fill: mask of shape ",
              mask.sizes(), " cannot be broadcast to the input's shape ", x.sizes());
  Tensor v = make_tensor({}, x.dtype(), x.device());
  v.fill_(value);
  return where(mask, v, x);
}
inline Tensor Tensor::masked_fill(const Tensor& mask, Scalar value) const { return ember::masked_fill(*this, mask, value); }

// ---- maximum / minimum ---------------------------------------------------------------------------

namespace detail {
/// Share of the gradient that goes to `a` for maximum (larger=gt) or minimum (larger=lt):
/// 1 where a wins, 1/2 on ties, 0 where b wins (PyTorch's rule).
inline Tensor winner_weight(const Tensor& a, const Tensor& b, BinaryOp cmp, DType dt) {
  Tensor wins = binary_kernel(cmp, a, b).to(dt);
  Tensor ties = binary_kernel(BinaryOp::Eq, a, b).to(dt);
  return add(wins, ties, Scalar(0.5));
}
inline Tensor extremum(BinaryOp op, const Tensor& a, const Tensor& b, const char* node) {
  Tensor out = binary_kernel(op, a, b);
  if (autograd::needs_grad(a, b)) {
    BinaryOp cmp = op == BinaryOp::Maximum ? BinaryOp::Gt : BinaryOp::Lt;
    autograd::record(node, out, {a, b}, {a, b}, [cmp](const Tensor& g, const autograd::BackwardCtx& c) -> tensor_list {
      Tensor w = winner_weight(c.saved(0), c.saved(1), cmp, g.dtype());
      return {c.needs(0) ? mul(g, w) : Tensor(), c.needs(1) ? mul(g, sub(ones_like(w), w)) : Tensor()};
    });
  }
  return out;
}
}  // namespace detail

/// Elementwise maximum with broadcasting (NaN propagates). Ties split the gradient in half.
inline Tensor maximum(const Tensor& a, const Tensor& b) { return detail::extremum(BinaryOp::Maximum, a, b, "MaximumBackward"); }
/// Elementwise minimum with broadcasting (NaN propagates). Ties split the gradient in half.
inline Tensor minimum(const Tensor& a, const Tensor& b) { return detail::extremum(BinaryOp::Minimum, a, b, "MinimumBackward"); }

// ---- pow(tensor, tensor) -------------------------------------------------------------------------

/// base ** exponent elementwise, with broadcasting and type promotion. Integers to negative
/// integer powers are an error, as in PyTorch. d/dbase = e * base^(e-1) (0 where e == 0),
/// d/dexponent = out * log(base) (0 where base == 0 and e >= 0).
inline Tensor pow(const Tensor& base, const Tensor& exponent) {
  EMBER_CHECK(base.defined() && exponent.defined(), "pow: undefined tensor argument");
  DType ct = promote_types(base.dtype(), exponent.dtype());
  if (!is_floating(ct) && exponent.numel() > 0) {
    NoGradGuard ng;
    EMBER_CHECK(lt(exponent, Scalar(0)).to(kInt64).sum().item<int64_t>() == 0,
                "pow: integers to negative integer powers are not allowed (base ", base.dtype(), ", exponent ",
                exponent.dtype(), ")");
  }
  Tensor out = binary_kernel(BinaryOp::Pow, base, exponent);
  if (autograd::needs_grad(base, exponent)) {
    autograd::record("PowBackward", out, {base, exponent}, {base, exponent},
                     [](const Tensor& g, const autograd::BackwardCtx& c) -> tensor_list {
                       const Tensor& x = c.saved(0);
                       const Tensor& e = c.saved(1);
                       Tensor ga, ge_;
                       if (c.needs(0)) {
                         Tensor d = mul(e, pow(x, sub(e, Scalar(1))));
                         ga = where(eq(e, Scalar(0)), Scalar(0), mul(g, d));
                       }
                       if (c.needs(1)) {
                         Tensor d = mul(c.result(), log(x));
                         Tensor zero_base = logical_and(eq(x, Scalar(0)), ge(e, Scalar(0)));
                         ge_ = where(zero_base, Scalar(0), mul(g, d));
                       }
                       return {ga, ge_};
                     },
                     /*save_result=*/true);
  }
  return out;
}
/// scalar ** exponent (torch.pow(Scalar, Tensor)).
inline Tensor pow(Scalar base, const Tensor& exponent) { return pow(wrap_scalar(exponent, base), exponent); }
inline Tensor Tensor::pow(const Tensor& exponent) const { return ember::pow(*this, exponent); }

// ---- composites (their gradients come from the primitives) --------------------------------------

/// start + weight * (end - start)
inline Tensor lerp(const Tensor& start, const Tensor& end, Scalar weight) {
  return add(start, mul(sub(end, start), weight));
}
/// start + weight * (end - start), weight a tensor (broadcast).
inline Tensor lerp(const Tensor& start, const Tensor& end, const Tensor& weight) {
  return add(start, mul(weight, sub(end, start)));
}
/// self + value * t1 * t2 (out of place; Tensor::addcmul_ is the in-place form).
inline Tensor addcmul(const Tensor& self, const Tensor& t1, const Tensor& t2, Scalar value = 1) {
  return add(self, mul(t1, t2), value);
}
/// self + value * t1 / t2 (out of place; Tensor::addcdiv_ is the in-place form).
inline Tensor addcdiv(const Tensor& self, const Tensor& t1, const Tensor& t2, Scalar value = 1) {
  return add(self, div(t1, t2), value);
}

}  // namespace ember

#pragma once
/// Elementwise unary ops: neg exp log log1p expm1 sqrt rsqrt abs sign square reciprocal sin cos
/// tanh sigmoid floor ceil round, pow(x, scalar), clamp, logical_not, isnan.
///
/// One dispatch point: `unary_kernel(op, x, alpha, beta)` picks the device, then the dtype, then
/// the op's lambda (activation functions in ops/activation.hpp reuse it). Integer inputs to
/// floating functions (exp, log, sqrt, sigmoid, ...) are computed in float32, as in PyTorch.
/// Backward formulas sit with each public function and use only differentiable Ember ops, so
/// second derivatives work; exp, sqrt, rsqrt, tanh, sigmoid reuse the result (ctx.result()).
///
/// Example:
/// ```
///   auto x = ember::tensor<double>({-1.0, 0.5, 2.0});
///   auto y = ember::clamp(x.exp(), std::nullopt, 3.0);   // [0.3679, 1.6487, 3.0]
/// ```
#include <cmath>
#include <optional>

#include "ember/ops/erfc_vec.hpp"
#include "ember/ops/reduce.hpp"

namespace ember {

using cuda::UnaryOp;

namespace detail {

inline const char* unary_name(UnaryOp op) {
  switch (op) {
    case UnaryOp::Neg: return "neg";
    case UnaryOp::Exp: return "exp";
    case UnaryOp::Log: return "log";
    case UnaryOp::Log1p: return "log1p";
    case UnaryOp::Expm1: return "expm1";
    case UnaryOp::Sqrt: return "sqrt";
    case UnaryOp::Rsqrt: return "rsqrt";
    case UnaryOp::Abs: return "abs";
    case UnaryOp::Sign: return "sign";
    case UnaryOp::Square: return "square";
    case UnaryOp::Reciprocal: return "reciprocal";
    case UnaryOp::Sin: return "sin";
    case UnaryOp::Cos: return "cos";
    case UnaryOp::Tanh: return "tanh";
    case UnaryOp::Sigmoid: return "sigmoid";
    case UnaryOp::Relu: return "relu";
    case UnaryOp::LeakyRelu: return "leaky_relu";
    case UnaryOp::Elu: return "elu";
    case UnaryOp::GeluErf: return "gelu";
    case UnaryOp::GeluTanh: return "gelu";
    case UnaryOp::Softplus: return "softplus";
    case UnaryOp::Silu: return "silu";
    case UnaryOp::Clamp: return "clamp";
    case UnaryOp::ClampMin: return "clamp_min";
    case UnaryOp::ClampMax: return "clamp_max";
    case UnaryOp::PowScalar: return "pow";
    case UnaryOp::Floor: return "floor";
    case UnaryOp::Ceil: return "ceil";
    case UnaryOp::Round: return "round";
    case UnaryOp::LogicalNot: return "logical_not";
    case UnaryOp::IsNan: return "isnan";
  }
  return "unary";
}

/// Ops whose result is a real function of the input: integer inputs are computed in float32.
inline bool unary_is_float_function(UnaryOp op) {
  switch (op) {
    case UnaryOp::Exp: case UnaryOp::Log: case UnaryOp::Log1p: case UnaryOp::Expm1: case UnaryOp::Sqrt:
    case UnaryOp::Rsqrt: case UnaryOp::Reciprocal: case UnaryOp::Sin: case UnaryOp::Cos: case UnaryOp::Tanh:
    case UnaryOp::Sigmoid: case UnaryOp::LeakyRelu: case UnaryOp::Elu: case UnaryOp::GeluErf:
    case UnaryOp::GeluTanh: case UnaryOp::Softplus: case UnaryOp::Silu:
      return true;
    default:
      return false;
  }
}

inline bool unary_is_predicate(UnaryOp op) { return op == UnaryOp::LogicalNot || op == UnaryOp::IsNan; }

/// a * b wrapping around on overflow, as PyTorch's integer ops do: signed overflow is undefined
/// in C++, so signed types multiply as unsigned.
template <typename T>
T wrapping_mul(T a, T b) {
  if constexpr (std::is_integral_v<T> && std::is_signed_v<T>) {
    using U = std::make_unsigned_t<T>;
    return static_cast<T>(static_cast<U>(static_cast<U>(a) * static_cast<U>(b)));
  } else {
    return static_cast<T>(a * b);
  }
}

/// Ops that work on integer types without changing them.
template <typename T>
void unary_cpu_integral(UnaryOp op, const Tensor& out, const Tensor& x, double alpha, double beta) {
  auto run = [&](auto f) { cpu::map<T, T>(out, f, x); };
  const T a = static_cast<T>(alpha), b = static_cast<T>(beta);
  switch (op) {
    case UnaryOp::Neg: return run([](T v) { return static_cast<T>(-v); });
    case UnaryOp::Abs:
      if constexpr (std::is_unsigned_v<T>) return run([](T v) { return v; });
      else return run([](T v) { return static_cast<T>(v < 0 ? -v : v); });
    case UnaryOp::Sign: return run([](T v) { return static_cast<T>((T(0) < v) - (v < T(0))); });
    case UnaryOp::Square: return run([](T v) { return wrapping_mul(v, v); });
    case UnaryOp::Relu: return run([](T v) { return v < T(0) ? T(0) : v; });
    case UnaryOp::Clamp: return run([a, b](T v) { T r = v < a ? a : v; return r > b ? b : r; });
    case UnaryOp::ClampMin: return run([a](T v) { return v < a ? a : v; });
    case UnaryOp::ClampMax: return run([a](T v) { return v > a ? a : v; });
    case UnaryOp::PowScalar: {
      // Exponentiation by squaring: exact for integers (pow() rejects negative exponents).
      const int64_t e = static_cast<int64_t>(alpha);
      return run([e](T v) {
        T r = 1, base = v;
        for (int64_t k = e; k > 0; k >>= 1) {
          if (k & 1) r = wrapping_mul(r, base);
          base = wrapping_mul(base, base);
        }
        return r;
      });
    }
    case UnaryOp::Floor: case UnaryOp::Ceil: case UnaryOp::Round: return run([](T v) { return v; });
    default: EMBER_FAIL(unary_name(op), ": not implemented for integer dtype ", dtype_v<T>);
  }
}

/// The CPU loop for one op at floating type T.
template <typename T>
void unary_cpu_floating(UnaryOp op, const Tensor& out, const Tensor& x, double alpha, double beta) {
  auto run = [&](auto f) { cpu::map<T, T>(out, f, x); };
  const T a = static_cast<T>(alpha), b = static_cast<T>(beta);
  switch (op) {
    case UnaryOp::Neg: return run([](T v) { return -v; });
    case UnaryOp::Exp: return run([](T v) { return std::exp(v); });
    case UnaryOp::Log: return run([](T v) { return std::log(v); });
    case UnaryOp::Log1p: return run([](T v) { return std::log1p(v); });
    case UnaryOp::Expm1: return run([](T v) { return std::expm1(v); });
    case UnaryOp::Sqrt: return run([](T v) { return std::sqrt(v); });
    case UnaryOp::Rsqrt: return run([](T v) { return T(1) / std::sqrt(v); });
    case UnaryOp::Abs: return run([](T v) { return std::abs(v); });
    // (0 < v) - (v < 0): zero for 0 and NaN, as PyTorch's CPU kernel.
    case UnaryOp::Sign: return run([](T v) { return static_cast<T>((T(0) < v) - (v < T(0))); });
    case UnaryOp::Square: return run([](T v) { return v * v; });
    case UnaryOp::Reciprocal: return run([](T v) { return T(1) / v; });
    case UnaryOp::Sin: return run([](T v) { return std::sin(v); });
    case UnaryOp::Cos: return run([](T v) { return std::cos(v); });
    case UnaryOp::Tanh: return run([](T v) { return std::tanh(v); });
    case UnaryOp::Sigmoid:
      // Never exponentiate a large positive number: exp(-|v|) is in (0, 1].
      return run([](T v) {
        T e = std::exp(-std::abs(v));
        return v >= T(0) ? T(1) / (T(1) + e) : e / (T(1) + e);
      });
    case UnaryOp::Relu: return run([](T v) { return v < T(0) ? T(0) : v; });  // NaN passes through
    case UnaryOp::LeakyRelu: return run([a](T v) { return v > T(0) ? v : v * a; });
    case UnaryOp::Elu: return run([a](T v) { return v > T(0) ? v : a * std::expm1(v); });
    case UnaryOp::GeluErf:
      // float: a branch-free erfc that vectorises; double keeps std::erfc (gradcheck precision).
      if constexpr (std::is_same_v<T, float>) return run([](float v) { return gelu_erf_vec(v); });
      else return run([](T v) { return T(0.5) * v * std::erfc(-v * T(0.70710678118654752440)); });
    case UnaryOp::GeluTanh:
      return run([](T v) {
        const T k = T(0.79788456080286535588);  // sqrt(2 / pi)
        return T(0.5) * v * (T(1) + std::tanh(k * (v + T(0.044715) * v * v * v)));
      });
    case UnaryOp::Softplus:  // alpha = beta, beta = threshold
      return run([a, b](T v) { return v * a > b ? v : std::log1p(std::exp(v * a)) / a; });
    case UnaryOp::Silu:
      return run([](T v) {
        T e = std::exp(-std::abs(v));
        return v * (v >= T(0) ? T(1) / (T(1) + e) : e / (T(1) + e));
      });
    // NaN compares false everywhere, so it passes through; min > max gives max, as PyTorch.
    case UnaryOp::Clamp: return run([a, b](T v) { T r = v < a ? a : v; return r > b ? b : r; });
    case UnaryOp::ClampMin: return run([a](T v) { return v < a ? a : v; });
    case UnaryOp::ClampMax: return run([a](T v) { return v > a ? a : v; });
    case UnaryOp::PowScalar:
      if (alpha == 2) return run([](T v) { return v * v; });
      if (alpha == 1) return run([](T v) { return v; });
      if (alpha == 0.5) return run([](T v) { return std::sqrt(v); });
      if (alpha == -1) return run([](T v) { return T(1) / v; });
      if (alpha == 3) return run([](T v) { return v * v * v; });
      return run([a](T v) { return std::pow(v, a); });
    case UnaryOp::Floor: return run([](T v) { return std::floor(v); });
    case UnaryOp::Ceil: return run([](T v) { return std::ceil(v); });
    case UnaryOp::Round: return run([](T v) { return std::nearbyint(v); });  // half to even
    default: EMBER_FAIL(unary_name(op), ": unreachable in the floating kernel");
  }
}

/// Result dtype of `op` on a tensor of dtype `in` (the dtype the kernel computes in, except
/// for the predicates, whose result is bool).
inline DType unary_compute_dtype(UnaryOp op, DType in) {
  if (unary_is_float_function(op) && !is_floating(in)) return kFloat32;
  return in;
}

}  // namespace detail

/// Runs `op` into an existing `out` of x's shape (dtype = x's dtype, or bool for the predicates).
/// `out` may be `x` itself (in-place ops such as clamp_).
inline void unary_into(UnaryOp op, const Tensor& out, const Tensor& x, double alpha = 0, double beta = 0) {
  const char* name = detail::unary_name(op);
  if (out.numel() == 0) return;
  if (out.is_cuda()) {
#ifdef EMBER_WITH_CUDA
    cuda::unary(op, cuda::arg(out), cuda::arg(x), alpha, beta);
#else
    fail_no_cuda(name);
#endif
    return;
  }
  visit_dtype(x.dtype(), name, [&]<typename T>() {
    if (op == UnaryOp::LogicalNot) return cpu::map<bool, T>(out, [](T v) { return v == T(0); }, x);
    if (op == UnaryOp::IsNan) {
      if constexpr (std::is_floating_point_v<T>) return cpu::map<bool, T>(out, [](T v) { return std::isnan(v); }, x);
      else return cpu::map<bool, T>(out, [](T) { return false; }, x);
    }
    if constexpr (std::is_same_v<T, bool>) {
      EMBER_FAIL(name, ": not supported for bool tensors (convert with .to(kFloat32) or .to(kInt64) first)");
    } else if constexpr (std::is_floating_point_v<T>) {
      detail::unary_cpu_floating<T>(op, out, x, alpha, beta);
    } else {
      detail::unary_cpu_integral<T>(op, out, x, alpha, beta);
    }
  });
}

/// The dispatch point for elementwise unary ops (no autograd; the public functions record).
/// `alpha`/`beta` carry the op's scalar parameters (see cuda::UnaryOp).
inline Tensor unary_kernel(UnaryOp op, const Tensor& x, double alpha = 0, double beta = 0) {
  const char* name = detail::unary_name(op);
  EMBER_CHECK(x.defined(), name, ": undefined tensor argument");
  DType ct = detail::unary_compute_dtype(op, x.dtype());
  Tensor xc = x.dtype() == ct ? x.detach() : x.detach().to(ct);
  Tensor out = make_tensor(x.sizes(), detail::unary_is_predicate(op) ? kBool : ct, x.device());
  unary_into(op, out, xc, alpha, beta);
  return out;
}

namespace detail {
/// Runs the kernel and, when x needs a gradient, records `formula(g, ctx)` as its backward:
/// ctx.saved(0) is x when `save_input`, ctx.result() the output when `save_result`.
template <typename F>
Tensor unary_recorded(UnaryOp op, const Tensor& x, const char* node, bool save_input, bool save_result, F formula,
                      double alpha = 0, double beta = 0) {
  Tensor out = unary_kernel(op, x, alpha, beta);
  if (is_floating(out.dtype()) && autograd::needs_grad(x)) {
    tensor_list saved;
    if (save_input) saved.push_back(x);
    autograd::record(node, out, {x}, std::move(saved),
                     [formula](const Tensor& g, const autograd::BackwardCtx& c) -> tensor_list { return {formula(g, c)}; },
                     save_result);
  }
  return out;
}

/// Backward of the piecewise-constant ops (sign, floor, ceil, round): zero, as in PyTorch.
inline Tensor zero_grad_formula(const Tensor& g, const autograd::BackwardCtx&) { return zeros_like(g); }
}  // namespace detail

// ---- public ops with autograd -------------------------------------------------------------------

/// -x
inline Tensor neg(const Tensor& x) {
  return detail::unary_recorded(UnaryOp::Neg, x, "NegBackward", false, false,
                                [](const Tensor& g, const autograd::BackwardCtx&) { return neg(g); });
}
/// e^x
inline Tensor exp(const Tensor& x) {
  return detail::unary_recorded(UnaryOp::Exp, x, "ExpBackward", false, true,
                                [](const Tensor& g, const autograd::BackwardCtx& c) { return mul(g, c.result()); });
}
/// Natural logarithm.
inline Tensor log(const Tensor& x) {
  return detail::unary_recorded(UnaryOp::Log, x, "LogBackward", true, false,
                                [](const Tensor& g, const autograd::BackwardCtx& c) { return div(g, c.saved(0)); });
}
/// log(1 + x), accurate for small x.
inline Tensor log1p(const Tensor& x) {
  return detail::unary_recorded(UnaryOp::Log1p, x, "Log1pBackward", true, false,
                                [](const Tensor& g, const autograd::BackwardCtx& c) {
                                  return div(g, add(c.saved(0), Scalar(1)));
                                });
}
/// e^x - 1, accurate for small x.
inline Tensor expm1(const Tensor& x) {
  return detail::unary_recorded(UnaryOp::Expm1, x, "Expm1Backward", false, true,
                                [](const Tensor& g, const autograd::BackwardCtx& c) {
                                  return mul(g, add(c.result(), Scalar(1)));
                                });
}
/// Square root.
inline Tensor sqrt(const Tensor& x) {
  return detail::unary_recorded(UnaryOp::Sqrt, x, "SqrtBackward", false, true,
                                [](const Tensor& g, const autograd::BackwardCtx& c) {
                                  return div(g, mul(c.result(), Scalar(2)));
                                });
}
/// 1 / sqrt(x).
inline Tensor rsqrt(const Tensor& x) {
  // d/dx x^-1/2 = -1/2 x^-3/2 = -1/2 y^3
  return detail::unary_recorded(UnaryOp::Rsqrt, x, "RsqrtBackward", false, true,
                                [](const Tensor& g, const autograd::BackwardCtx& c) {
                                  Tensor y = c.result();
                                  return mul(mul(g, mul(mul(y, y), y)), Scalar(-0.5));
                                });
}
/// sign(x): -1, 0 or 1 (0 for NaN). Its gradient is zero.
inline Tensor sign(const Tensor& x) {
  return detail::unary_recorded(UnaryOp::Sign, x, "SignBackward", false, false, detail::zero_grad_formula);
}
/// |x|; the gradient at 0 is 0 (sign(x)), as in PyTorch.
inline Tensor abs(const Tensor& x) {
  return detail::unary_recorded(UnaryOp::Abs, x, "AbsBackward", true, false,
                                [](const Tensor& g, const autograd::BackwardCtx& c) { return mul(g, sign(c.saved(0))); });
}
/// x * x
inline Tensor square(const Tensor& x) {
  return detail::unary_recorded(UnaryOp::Square, x, "SquareBackward", true, false,
                                [](const Tensor& g, const autograd::BackwardCtx& c) {
                                  return mul(g, mul(c.saved(0), Scalar(2)));
                                });
}
/// 1 / x
inline Tensor reciprocal(const Tensor& x) {
  return detail::unary_recorded(UnaryOp::Reciprocal, x, "ReciprocalBackward", false, true,
                                [](const Tensor& g, const autograd::BackwardCtx& c) {
                                  Tensor y = c.result();
                                  return neg(mul(g, mul(y, y)));
                                });
}
inline Tensor cos(const Tensor& x);
/// Sine (radians).
inline Tensor sin(const Tensor& x) {
  return detail::unary_recorded(UnaryOp::Sin, x, "SinBackward", true, false,
                                [](const Tensor& g, const autograd::BackwardCtx& c) { return mul(g, cos(c.saved(0))); });
}
/// Cosine (radians).
inline Tensor cos(const Tensor& x) {
  return detail::unary_recorded(UnaryOp::Cos, x, "CosBackward", true, false,
                                [](const Tensor& g, const autograd::BackwardCtx& c) {
                                  return neg(mul(g, sin(c.saved(0))));
                                });
}
/// Hyperbolic tangent.
inline Tensor tanh(const Tensor& x) {
  return detail::unary_recorded(UnaryOp::Tanh, x, "TanhBackward", false, true,
                                [](const Tensor& g, const autograd::BackwardCtx& c) {
                                  Tensor y = c.result();
                                  return mul(g, sub(ones_like(y), mul(y, y)));
                                });
}
/// 1 / (1 + e^-x), computed without overflow.
inline Tensor sigmoid(const Tensor& x) {
  return detail::unary_recorded(UnaryOp::Sigmoid, x, "SigmoidBackward", false, true,
                                [](const Tensor& g, const autograd::BackwardCtx& c) {
                                  Tensor y = c.result();
                                  return mul(g, mul(y, sub(ones_like(y), y)));
                                });
}
/// Largest integer not greater than x (integers unchanged). Zero gradient.
inline Tensor floor(const Tensor& x) {
  return detail::unary_recorded(UnaryOp::Floor, x, "FloorBackward", false, false, detail::zero_grad_formula);
}
/// Smallest integer not less than x (integers unchanged). Zero gradient.
inline Tensor ceil(const Tensor& x) {
  return detail::unary_recorded(UnaryOp::Ceil, x, "CeilBackward", false, false, detail::zero_grad_formula);
}
/// Nearest integer, halves to even (torch.round). Zero gradient.
inline Tensor round(const Tensor& x) {
  return detail::unary_recorded(UnaryOp::Round, x, "RoundBackward", false, false, detail::zero_grad_formula);
}

/// x ** exponent. An integer tensor stays integral for a non-negative integral exponent (a
/// negative one is an error, as in PyTorch) and becomes float32 for a floating exponent.
inline Tensor pow(const Tensor& x, Scalar exponent) {
  EMBER_CHECK(x.defined(), "pow: undefined tensor argument");
  DType dt = x.dtype();
  if (!is_floating(dt)) {
    if (exponent.is_floating()) {
      dt = kFloat32;
    } else {
      EMBER_CHECK(exponent.to_int() >= 0, "pow: integers to negative integer powers are not allowed (tensor of dtype ",
                  dt, ", exponent ", exponent.to_int(), ")");
      if (dt == kBool) dt = kInt64;
    }
  }
  Tensor xc = dt == x.dtype() ? x : x.to(dt);
  const double p = exponent.to_double();
  return detail::unary_recorded(UnaryOp::PowScalar, xc, "PowBackward", true, false,
                                [p](const Tensor& g, const autograd::BackwardCtx& c) -> Tensor {
                                  if (p == 0) return zeros_like(g);
                                  const Tensor& base = c.saved(0);
                                  Tensor d = p == 1 ? ones_like(base) : p == 2 ? mul(base, Scalar(2))
                                                                        : mul(pow(base, Scalar(p - 1)), Scalar(p));
                                  return mul(g, d);
                                },
                                p);
}

/// min(max(x, min), max); either bound may be absent (not both). NaN passes through; with
/// min > max every element becomes max. The gradient flows where min <= x <= max.
inline Tensor clamp(const Tensor& x, std::optional<Scalar> min, std::optional<Scalar> max = std::nullopt) {
  EMBER_CHECK(x.defined(), "clamp: undefined tensor argument");
  EMBER_CHECK(min.has_value() || max.has_value(), "clamp: at least one of 'min' or 'max' must be given");
  DType dt = x.dtype();
  if (!is_floating(dt) && ((min && min->is_floating()) || (max && max->is_floating()))) dt = kFloat32;
  EMBER_CHECK(dt != kBool, "clamp: not supported for bool tensors");
  Tensor xc = dt == x.dtype() ? x : x.to(dt);
  UnaryOp op = min && max ? UnaryOp::Clamp : min ? UnaryOp::ClampMin : UnaryOp::ClampMax;
  double a = min ? min->to_double() : max->to_double();
  double b = max ? max->to_double() : 0.0;
  return detail::unary_recorded(op, xc, "ClampBackward", true, false,
                                [min, max](const Tensor& g, const autograd::BackwardCtx& c) -> Tensor {
                                  const Tensor& in = c.saved(0);
                                  Tensor pass;
                                  if (min && max) pass = logical_and(ge(in, *min), le(in, *max));
                                  else if (min) pass = ge(in, *min);
                                  else pass = le(in, *max);
                                  return mul(g, pass.to(g.dtype()));
                                },
                                a, b);
}
/// max(x, min)
inline Tensor clamp_min(const Tensor& x, Scalar min) { return clamp(x, min, std::nullopt); }
/// min(x, max)
inline Tensor clamp_max(const Tensor& x, Scalar max) { return clamp(x, std::nullopt, max); }

/// x == 0, as a bool tensor (not differentiable).
inline Tensor logical_not(const Tensor& x) { return unary_kernel(UnaryOp::LogicalNot, x); }
/// True where x is NaN (always false for integer tensors).
inline Tensor isnan(const Tensor& x) { return unary_kernel(UnaryOp::IsNan, x); }

// ---- Tensor members ------------------------------------------------------------------------------

inline Tensor Tensor::pow(Scalar exponent) const { return ember::pow(*this, exponent); }
inline Tensor Tensor::neg() const { return ember::neg(*this); }
inline Tensor Tensor::exp() const { return ember::exp(*this); }
inline Tensor Tensor::log() const { return ember::log(*this); }
inline Tensor Tensor::log1p() const { return ember::log1p(*this); }
inline Tensor Tensor::sqrt() const { return ember::sqrt(*this); }
inline Tensor Tensor::rsqrt() const { return ember::rsqrt(*this); }
inline Tensor Tensor::abs() const { return ember::abs(*this); }
inline Tensor Tensor::sign() const { return ember::sign(*this); }
inline Tensor Tensor::square() const { return ember::square(*this); }
inline Tensor Tensor::reciprocal() const { return ember::reciprocal(*this); }
inline Tensor Tensor::sin() const { return ember::sin(*this); }
inline Tensor Tensor::cos() const { return ember::cos(*this); }
inline Tensor Tensor::tanh() const { return ember::tanh(*this); }
inline Tensor Tensor::sigmoid() const { return ember::sigmoid(*this); }
inline Tensor Tensor::clamp(std::optional<Scalar> min, std::optional<Scalar> max) const {
  return ember::clamp(*this, min, max);
}

/// In-place clamp (optimizers, weight clipping in WGAN). Bumps the version counter.
inline Tensor& Tensor::clamp_(std::optional<Scalar> min, std::optional<Scalar> max) {
  EMBER_CHECK(defined(), "clamp_: undefined tensor argument");
  EMBER_CHECK(min.has_value() || max.has_value(), "clamp_: at least one of 'min' or 'max' must be given");
  EMBER_CHECK(!(is_grad_enabled() && requires_grad()),
              "clamp_: in-place operations on tensors that require grad are not recorded by autograd; use "
              "clamp(), or run it under NoGradGuard (as optimizers do)");
  EMBER_CHECK(dtype() != kBool, "clamp_: not supported for bool tensors");
  EMBER_CHECK(is_floating_point() || !((min && min->is_floating()) || (max && max->is_floating())),
              "clamp_: result type float32 can't be cast to the desired output type ", dtype());
  UnaryOp op = min && max ? UnaryOp::Clamp : min ? UnaryOp::ClampMin : UnaryOp::ClampMax;
  unary_into(op, *this, *this, min ? min->to_double() : max->to_double(), max ? max->to_double() : 0.0);
  storage()->bump_version();
  return *this;
}

}  // namespace ember

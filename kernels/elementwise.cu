/// Elementwise unary and binary ops and where(). Formulas mirror the CPU kernels in
/// ops/unary.hpp and ops/binary.hpp op for op (same branches, same special cases), so both
/// devices agree to rounding. float16/bfloat16 compute in float.
///
/// The op is a runtime switch inside one kernel per dtype: every thread of a launch takes the
/// same branch, so it costs nothing next to the memory traffic, and it keeps the number of
/// template instantiations (and the build time) small.
#include <cmath>

#include "common.cuh"

namespace ember::cuda {

namespace {

using detail::cast;
using detail::compute_t;

// ---- device math, float and double --------------------------------------------------------------

#define EMBER_MATH1(name, fname)                                                 \
  template <typename C> __device__ __forceinline__ C m_##name(C x) {            \
    if constexpr (std::is_same_v<C, float>) return fname(x);                   \
    else return name(x);                                                        \
  }
EMBER_MATH1(exp, expf)
EMBER_MATH1(log, logf)
EMBER_MATH1(log1p, log1pf)
EMBER_MATH1(expm1, expm1f)
EMBER_MATH1(sqrt, sqrtf)
EMBER_MATH1(sin, sinf)
EMBER_MATH1(cos, cosf)
EMBER_MATH1(tanh, tanhf)
EMBER_MATH1(erfc, erfcf)
EMBER_MATH1(floor, floorf)
EMBER_MATH1(ceil, ceilf)
EMBER_MATH1(nearbyint, nearbyintf)
EMBER_MATH1(fabs, fabsf)
#undef EMBER_MATH1
template <typename C> __device__ __forceinline__ C m_pow(C x, C y) {
  if constexpr (std::is_same_v<C, float>) return powf(x, y);
  else return pow(x, y);
}

// ---- unary ----------------------------------------------------------------------------------------

/// ops/unary.hpp unary_cpu_floating, for C = float or double.
template <typename C>
__device__ __forceinline__ C unary_floating(UnaryOp op, C v, C a, C b, double alpha) {
  switch (op) {
    case UnaryOp::Neg: return -v;
    case UnaryOp::Exp: return m_exp(v);
    case UnaryOp::Log: return m_log(v);
    case UnaryOp::Log1p: return m_log1p(v);
    case UnaryOp::Expm1: return m_expm1(v);
    case UnaryOp::Sqrt: return m_sqrt(v);
    case UnaryOp::Rsqrt: return C(1) / m_sqrt(v);
    case UnaryOp::Abs: return m_fabs(v);
    case UnaryOp::Sign: return static_cast<C>(static_cast<int>(C(0) < v) - static_cast<int>(v < C(0)));
    case UnaryOp::Square: return v * v;
    case UnaryOp::Reciprocal: return C(1) / v;
    case UnaryOp::Sin: return m_sin(v);
    case UnaryOp::Cos: return m_cos(v);
    case UnaryOp::Tanh: return m_tanh(v);
    case UnaryOp::Sigmoid: {
      C e = m_exp(-m_fabs(v));
      return v >= C(0) ? C(1) / (C(1) + e) : e / (C(1) + e);
    }
    case UnaryOp::Relu: return v < C(0) ? C(0) : v;
    case UnaryOp::LeakyRelu: return v > C(0) ? v : v * a;
    case UnaryOp::Elu: return v > C(0) ? v : a * m_expm1(v);
    case UnaryOp::GeluErf: return C(0.5) * v * m_erfc(-v * C(0.70710678118654752440));
    case UnaryOp::GeluTanh: {
      const C k = C(0.79788456080286535588);
      return C(0.5) * v * (C(1) + m_tanh(k * (v + C(0.044715) * v * v * v)));
    }
    case UnaryOp::Softplus: return v * a > b ? v : m_log1p(m_exp(v * a)) / a;
    case UnaryOp::Silu: {
      C e = m_exp(-m_fabs(v));
      return v * (v >= C(0) ? C(1) / (C(1) + e) : e / (C(1) + e));
    }
    case UnaryOp::Clamp: {
      C r = v < a ? a : v;
      return r > b ? b : r;
    }
    case UnaryOp::ClampMin: return v < a ? a : v;
    case UnaryOp::ClampMax: return v > a ? a : v;
    case UnaryOp::PowScalar:
      if (alpha == 2) return v * v;
      if (alpha == 1) return v;
      if (alpha == 0.5) return m_sqrt(v);
      if (alpha == -1) return C(1) / v;
      if (alpha == 3) return v * v * v;
      return m_pow(v, a);
    case UnaryOp::Floor: return m_floor(v);
    case UnaryOp::Ceil: return m_ceil(v);
    case UnaryOp::Round: return m_nearbyint(v);  // half to even
    default: return v;  // predicates are handled by the caller; others rejected on the host
  }
}

template <typename T> __device__ __forceinline__ bool is_negative(T v) {
  if constexpr (std::is_unsigned_v<T>) return false;
  else return v < T(0);
}

/// ops/unary.hpp unary_cpu_integral.
template <typename T>
__device__ __forceinline__ T unary_integral(UnaryOp op, T v, T a, T b, int64_t e) {
  switch (op) {
    case UnaryOp::Neg: return static_cast<T>(-v);
    case UnaryOp::Abs:
      if constexpr (std::is_unsigned_v<T>) return v;
      else return static_cast<T>(v < 0 ? -v : v);
    case UnaryOp::Sign: return static_cast<T>(static_cast<int>(T(0) < v) - static_cast<int>(is_negative(v)));
    case UnaryOp::Square: return static_cast<T>(v * v);
    case UnaryOp::Relu: return is_negative(v) ? T(0) : v;
    case UnaryOp::Clamp: {
      T r = v < a ? a : v;
      return r > b ? b : r;
    }
    case UnaryOp::ClampMin: return v < a ? a : v;
    case UnaryOp::ClampMax: return v > a ? a : v;
    case UnaryOp::PowScalar: {
      T r = 1, base = v;
      for (int64_t k = e; k > 0; k >>= 1) {
        if (k & 1) r = static_cast<T>(r * base);
        base = static_cast<T>(base * base);
      }
      return r;
    }
    default: return v;  // Floor, Ceil, Round are the identity on integers
  }
}

template <typename T, typename O>
struct UnaryFn {
  UnaryOp op;
  O* out;
  const T* in;
  double alpha, beta;
  __device__ __forceinline__ void operator()(detail::Offsets<2> o) const {
    T x = in[o.v[1]];
    if constexpr (std::is_same_v<O, bool>) {
      // The predicates (the only ops with a bool result).
      if (op == UnaryOp::IsNan) out[o.v[0]] = detail::is_nan(cast<compute_t<T>>(x));
      else out[o.v[0]] = cast<compute_t<T>>(x) == compute_t<T>(0);
    } else if constexpr (detail::is_float_like<T>) {
      using C = compute_t<T>;
      out[o.v[0]] = cast<O>(unary_floating<C>(op, cast<C>(x), static_cast<C>(alpha), static_cast<C>(beta), alpha));
    } else {
      out[o.v[0]] = unary_integral<T>(op, x, static_cast<T>(alpha), static_cast<T>(beta), static_cast<int64_t>(alpha));
    }
  }
};

bool unary_is_float_function(UnaryOp op) {
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

// ---- binary ---------------------------------------------------------------------------------------

/// x**y for integers, exact: the CPU computes std::pow in double, which is exact for every
/// result below 2**53, while the GPU's pow() can land one ulp under an integer and truncate.
template <typename C>
__device__ __forceinline__ C int_pow(C x, C y) {
  if (is_negative(y)) {  // |x| >= 2 gives a fraction that truncates to 0
    if (x == C(1)) return C(1);
    if constexpr (std::is_signed_v<C>) {
      if (x == C(-1)) return (y & C(1)) ? C(-1) : C(1);
    }
    return C(0);
  }
  C r = 1, base = x;
  for (C k = y; k > C(0); k = static_cast<C>(k >> 1)) {
    if (k & C(1)) r = static_cast<C>(r * base);
    base = static_cast<C>(base * base);
  }
  return r;
}

template <typename C>
__device__ __forceinline__ C binary_value(BinaryOp op, C x, C y, C alpha) {
  switch (op) {
    case BinaryOp::Add: return static_cast<C>(x + alpha * y);
    case BinaryOp::Sub: return static_cast<C>(x - alpha * y);
    case BinaryOp::Mul: return static_cast<C>(x * y);
    case BinaryOp::Div:
      if constexpr (std::is_floating_point_v<C>) return x / y;
      else return static_cast<C>(static_cast<double>(x) / static_cast<double>(y));
    case BinaryOp::Pow:
      if constexpr (std::is_floating_point_v<C>) return m_pow(x, y);
      else return int_pow(x, y);
    case BinaryOp::Maximum:
      if (detail::is_nan(x) || detail::is_nan(y)) return x + y;
      return x > y ? x : y;
    case BinaryOp::Minimum:
      if (detail::is_nan(x) || detail::is_nan(y)) return x + y;
      return x < y ? x : y;
    default: return C(0);
  }
}

template <typename C>
__device__ __forceinline__ bool binary_predicate(BinaryOp op, C x, C y) {
  switch (op) {
    case BinaryOp::Eq: return x == y;
    case BinaryOp::Ne: return x != y;
    case BinaryOp::Lt: return x < y;
    case BinaryOp::Le: return x <= y;
    case BinaryOp::Gt: return x > y;
    case BinaryOp::Ge: return x >= y;
    case BinaryOp::LogicalAnd: return x != C(0) && y != C(0);
    case BinaryOp::LogicalOr: return x != C(0) || y != C(0);
    default: return false;
  }
}

template <typename T, typename O>
struct BinaryFn {
  BinaryOp op;
  O* out;
  const T* a;
  const T* b;
  compute_t<T> alpha;
  __device__ __forceinline__ void operator()(detail::Offsets<3> o) const {
    using C = compute_t<T>;
    C x = cast<C>(a[o.v[1]]), y = cast<C>(b[o.v[2]]);
    if constexpr (std::is_same_v<O, bool>) out[o.v[0]] = binary_predicate<C>(op, x, y);
    else out[o.v[0]] = cast<O>(binary_value<C>(op, x, y, alpha));
  }
};

bool binary_is_predicate(BinaryOp op) {
  return op == BinaryOp::Eq || op == BinaryOp::Ne || op == BinaryOp::Lt || op == BinaryOp::Le ||
         op == BinaryOp::Gt || op == BinaryOp::Ge || op == BinaryOp::LogicalAnd || op == BinaryOp::LogicalOr;
}

// ---- where ----------------------------------------------------------------------------------------

template <typename T>
struct WhereFn {
  T* out;
  const uint8_t* cond;  // bool or uint8: any nonzero byte selects a
  const T* a;
  const T* b;
  __device__ __forceinline__ void operator()(detail::Offsets<4> o) const {
    out[o.v[0]] = cond[o.v[1]] != 0 ? a[o.v[2]] : b[o.v[3]];
  }
};

}  // namespace

void unary(UnaryOp op, const TensorArg& out, const TensorArg& in, double alpha, double beta) {
  const char* name = "unary (cuda)";
  if (out.numel() == 0) return;
  bool predicate = op == UnaryOp::LogicalNot || op == UnaryOp::IsNan;
  EMBER_CHECK(out.dtype == (predicate ? kBool : in.dtype), name, ": op ", static_cast<int>(op), " on ", in.dtype,
              " expects a ", (predicate ? kBool : in.dtype), " output, got ", out.dtype);
  const TensorArg* args[2] = {&out, &in};
  detail::dispatch_all(in.dtype, name, [&](auto t) {
    using T = typename decltype(t)::type;
    if (predicate) {
      detail::launch_elementwise<2>(args, UnaryFn<T, bool>{op, static_cast<bool*>(out.data), static_cast<const T*>(in.data), alpha, beta},
                                    name);
      return;
    }
    if constexpr (std::is_same_v<T, bool>) {
      EMBER_FAIL("unary op ", static_cast<int>(op), ": not supported for bool tensors (convert with .to(kFloat32) or .to(kInt64) first)");
    } else {
      if constexpr (!detail::is_float_like<T>) {
        EMBER_CHECK(!unary_is_float_function(op), "unary op ", static_cast<int>(op), ": not implemented for integer dtype ",
                    in.dtype, " (compute it in float32)");
      }
      detail::launch_elementwise<2>(args, UnaryFn<T, T>{op, static_cast<T*>(out.data), static_cast<const T*>(in.data), alpha, beta},
                                    name);
    }
  });
}

void binary(BinaryOp op, const TensorArg& out, const TensorArg& a, const TensorArg& b, double alpha) {
  const char* name = "binary (cuda)";
  if (out.numel() == 0) return;
  EMBER_CHECK(a.dtype == b.dtype, name, ": operands must share a dtype, got ", a.dtype, " and ", b.dtype);
  bool predicate = binary_is_predicate(op);
  if (a.dtype == kBool && !predicate) {
    // bool arithmetic as on the CPU: add/maximum are logical or, mul/minimum logical and.
    if (op == BinaryOp::Add || op == BinaryOp::Maximum) return binary(BinaryOp::LogicalOr, out, a, b, alpha);
    if (op == BinaryOp::Mul || op == BinaryOp::Minimum) return binary(BinaryOp::LogicalAnd, out, a, b, alpha);
    EMBER_FAIL("binary op ", static_cast<int>(op), ": not supported for bool tensors");
  }
  EMBER_CHECK(out.dtype == (predicate ? kBool : a.dtype), name, ": op ", static_cast<int>(op), " on ", a.dtype,
              " expects a ", (predicate ? kBool : a.dtype), " output, got ", out.dtype);
  const TensorArg* args[3] = {&out, &a, &b};
  detail::dispatch_all(a.dtype, name, [&](auto t) {
    using T = typename decltype(t)::type;
    using C = compute_t<T>;
    const T* pa = static_cast<const T*>(a.data);
    const T* pb = static_cast<const T*>(b.data);
    if (predicate) {
      detail::launch_elementwise<3>(args, BinaryFn<T, bool>{op, static_cast<bool*>(out.data), pa, pb, C(0)}, name);
    } else if constexpr (!std::is_same_v<T, bool>) {
      detail::launch_elementwise<3>(args, BinaryFn<T, T>{op, static_cast<T*>(out.data), pa, pb, static_cast<C>(alpha)},
                                    name);
    }
  });
}

void where(const TensorArg& out, const TensorArg& cond, const TensorArg& a, const TensorArg& b) {
  const char* name = "where (cuda)";
  if (out.numel() == 0) return;
  EMBER_CHECK(cond.dtype == kBool || cond.dtype == kUInt8, name, ": condition must be bool, got ", cond.dtype);
  EMBER_CHECK(a.dtype == out.dtype && b.dtype == out.dtype, name, ": expected both values as ", out.dtype, ", got ",
              a.dtype, " and ", b.dtype);
  const TensorArg* args[4] = {&out, &cond, &a, &b};
  detail::dispatch_all(out.dtype, name, [&](auto t) {
    using T = typename decltype(t)::type;
    detail::launch_elementwise<4>(args,
                                  WhereFn<T>{static_cast<T*>(out.data), static_cast<const uint8_t*>(cond.data),
                                             static_cast<const T*>(a.data), static_cast<const T*>(b.data)},
                                  name);
  });
}

}  // namespace ember::cuda

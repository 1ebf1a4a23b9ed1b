#pragma once
/// erfc and exp for float32 tensors, written branch-free and without library calls so that a
/// loop over them vectorises (the exact GELU's CPU kernels, forward and backward, use them;
/// scalar erfcf per element was most of GELU's cost). float64 keeps std::erfc / std::exp.
///
/// Both work in double on float inputs: x^2 and the exp reduction then need no splitting tricks,
/// and the result, rounded to float, is within ~1 ulp of erfc in relative terms over the whole
/// float range, left tail included (normal_cdf_from_gelu divides gelu(x) by x down to x ~ -13, so
/// an absolute-error erf approximation, 1 + erf(x) in float, would not do).
#include <bit>
#include <cstdint>

// The kernels' loops vectorise only if these are inlined into them; GCC declines on its own
// for the backward's map (two calls of erfc/exp per element).
#if defined(__GNUC__) || defined(__clang__)
#define EMBER_VEC_INLINE inline __attribute__((always_inline))
#else
#define EMBER_VEC_INLINE inline
#endif

namespace ember::detail {

/// e^a for a in [-708, 0] (callers clamp), relative error ~1e-15. Cody-Waite reduction
/// a = n ln2 + r, |r| <= ln2 / 2, a degree-11 Taylor polynomial for e^r, and 2^n built in the
/// exponent bits.
EMBER_VEC_INLINE double exp_vec(double a) {
  constexpr double kLog2e = 1.4426950408889634074;
  constexpr double kLn2Hi = 6.93147180369123816490e-01;  // ln2's high bits: n * kLn2Hi is exact
  constexpr double kLn2Lo = 1.90821492927058770002e-10;
  constexpr double kShift = 6755399441055744.0;  // 1.5 * 2^52: adding it rounds to an integer
  double shifted = a * kLog2e + kShift;
  double n = shifted - kShift;
  int64_t ni = std::bit_cast<int64_t>(shifted) - std::bit_cast<int64_t>(kShift);
  double r = a - n * kLn2Hi - n * kLn2Lo;
  double p = 1.0 / 39916800.0;
  p = p * r + 1.0 / 3628800.0;
  p = p * r + 1.0 / 362880.0;
  p = p * r + 1.0 / 40320.0;
  p = p * r + 1.0 / 5040.0;
  p = p * r + 1.0 / 720.0;
  p = p * r + 1.0 / 120.0;
  p = p * r + 1.0 / 24.0;
  p = p * r + 1.0 / 6.0;
  p = p * r + 0.5;
  p = p * r + 1.0;
  p = p * r + 1.0;
  return p * std::bit_cast<double>((ni + 1023) << 52);
}

/// erfc(z) with relative error ~1e-9 (before rounding to float) for every z; NaN gives NaN.
/// erfc(|z|) = t e^(-z^2 + P(t)), t = 1 / (1 + |z| / 2) (the form of Numerical Recipes' erfcc,
/// whose tail stays relative), with P a degree-12 least-squares fit (tests/golden/gelu/fit_erfc.py)
/// of log(erfc(z) / t) + z^2 on z in [0, 10.5], max error 6e-10. Past |z| = 10.5 erfc is below
/// 1e-49, zero in float; erfc(-z) = 2 - erfc(z).
EMBER_VEC_INLINE double erfc_vec(double z) {
  double az = z < 0 ? -z : z;
  double c = az > 10.5 ? 10.5 : az;  // NaN stays NaN
  double t = 1.0 / (1.0 + 0.5 * c);
  double p = 0.19020234995425947;
  p = p * t - 1.4024215913802509;
  p = p * t + 4.4833750757484276;
  p = p * t - 8.0333950526269149;
  p = p * t + 8.7160930986102532;
  p = p * t - 5.8962234385032515;
  p = p * t + 2.7443931291680794;
  p = p * t - 1.1050379878149703;
  p = p * t + 0.14449307958515295;
  p = p * t + 0.045131452488015728;
  p = p * t + 0.37916193469464454;
  p = p * t + 0.99973239439311568;
  p = p * t - 1.2655044437136449;
  double e = t * exp_vec(p - c * c);
  e = az > 10.5 ? 0.0 : e;  // exactly 0, so gelu(-inf) = -inf * 0 = NaN as with std::erfc
  return z < 0 ? 2.0 - e : e;
}

/// x Phi(x) = x erfc(-x / sqrt 2) / 2 for float x.
EMBER_VEC_INLINE float gelu_erf_vec(float xf) {
  double x = xf;
  return static_cast<float>(0.5 * x * erfc_vec(x * -0.70710678118654752440));
}

/// Phi(x) for float x.
EMBER_VEC_INLINE float normal_cdf_vec(float xf) {
  return static_cast<float>(0.5 * erfc_vec(static_cast<double>(xf) * -0.70710678118654752440));
}

/// d/dx x Phi(x) = Phi(x) + x phi(x) for float x.
EMBER_VEC_INLINE float gelu_erf_grad_vec(float xf) {
  double x = xf;
  double h = 0.5 * x * x;
  double pdf = 0.39894228040143267794 * exp_vec(h < 708.0 ? -h : -708.0);
  pdf = h > 708.0 ? 0.0 : pdf;  // so x = +-inf gives inf * 0 = NaN, as PyTorch and std::exp
  return static_cast<float>(0.5 * erfc_vec(x * -0.70710678118654752440) + x * pdf);
}

}  // namespace ember::detail

#undef EMBER_VEC_INLINE

#pragma once
/// Activation functions: relu, leaky_relu, elu, gelu (exact and tanh), silu, softplus, hardtanh,
/// and dropout (sigmoid and tanh live in ops/unary.hpp).
///
/// Forwards run through unary_kernel (one fused kernel per activation on each device); backward
/// formulas are written with differentiable Ember ops, so gradient penalties (WGAN-GP through
/// leaky_relu and dropout) and other second derivatives are exact.
///
/// Example:
/// ```
///   auto h = ember::leaky_relu(ember::matmul(x, w), 0.2);
///   h = ember::dropout(h, 0.3, model_is_training);
/// ```
#include <numbers>
#include <string>

#include "ember/ops/pointwise.hpp"

namespace ember {

namespace detail {
/// g where x > 0, else 0 (PyTorch's threshold_backward): ReLU's backward in one pass over memory
/// on the CPU instead of compare + cast + multiply with two temporaries. Its own gradient with
/// respect to g is the same mask, so second derivatives through ReLU stay exact; with respect to
/// x it is zero almost everywhere, so x is saved, not an input.
inline Tensor relu_backward(const Tensor& g, const Tensor& x) {
  if (g.is_cuda() || x.is_cuda() || g.sizes() != x.sizes() || g.dtype() != x.dtype() || !is_floating(g.dtype()))
    return mul(g, gt(x, Scalar(0)).to(g.dtype()));
  Tensor out = make_tensor(g.sizes(), g.dtype(), g.device());
  visit_floating(g.dtype(), "relu_backward", [&]<typename T>() {
    cpu::map<T, T, T>(out, [](T gv, T xv) { return xv > T(0) ? gv : T(0); }, g.detach(), x.detach());
  });
  if (autograd::needs_grad(g)) {
    autograd::record("ReluBackwardBackward", out, {g}, {x}, [](const Tensor& gg, const autograd::BackwardCtx& c) -> tensor_list {
      return {relu_backward(gg, c.saved(0))};
    });
  }
  return out;
}
}  // namespace detail

/// max(x, 0). The gradient is g where x > 0 and 0 elsewhere (0 at x == 0, as PyTorch).
inline Tensor relu(const Tensor& x) {
  return detail::unary_recorded(UnaryOp::Relu, x, "ReluBackward", true, false,
                                [](const Tensor& g, const autograd::BackwardCtx& c) {
                                  return detail::relu_backward(g, c.saved(0));
                                });
}
inline Tensor Tensor::relu() const { return ember::relu(*this); }

/// x for x > 0, negative_slope * x otherwise.
inline Tensor leaky_relu(const Tensor& x, double negative_slope = 0.01) {
  return detail::unary_recorded(UnaryOp::LeakyRelu, x, "LeakyReluBackward", true, false,
                                [negative_slope](const Tensor& g, const autograd::BackwardCtx& c) {
                                  return where(gt(c.saved(0), Scalar(0)), g, mul(g, Scalar(negative_slope)));
                                },
                                negative_slope);
}

/// x for x > 0, alpha * (e^x - 1) otherwise.
inline Tensor elu(const Tensor& x, double alpha = 1.0) {
  return detail::unary_recorded(UnaryOp::Elu, x, "EluBackward", true, false,
                                [alpha](const Tensor& g, const autograd::BackwardCtx& c) {
                                  const Tensor& in = c.saved(0);
                                  // exp of min(x, 0): the unused branch must stay finite, or the
                                  // double backward would compute 0 * inf through it.
                                  Tensor slope = mul(exp(clamp_max(in, Scalar(0))), Scalar(alpha));
                                  return where(gt(in, Scalar(0)), g, mul(g, slope));
                                },
                                alpha);
}

namespace detail {
inline constexpr double kInvSqrt2Pi = 0.39894228040143267794;  // 1 / sqrt(2 pi)

/// phi(x) = e^(-x^2/2) / sqrt(2 pi), the standard normal density.
inline Tensor normal_pdf(const Tensor& x) {
  return mul(exp(mul(square(x), Scalar(-0.5))), Scalar(kInvSqrt2Pi));
}

/// Phi(x) from the gelu kernel, for devices without an erf launcher (CUDA): Phi(x) = gelu(x) / x,
/// 1/2 at x == 0. The gelu kernel uses erfc, so the ratio keeps full relative precision in both
/// tails (down to subnormal results). No autograd; on the CPU it is reachable for tests.
inline Tensor normal_cdf_from_gelu(const Tensor& x) {
  Tensor xd = x.detach();
  Tensor ratio = binary_kernel(BinaryOp::Div, unary_kernel(UnaryOp::GeluErf, xd), xd);
  Tensor half = make_tensor({}, x.dtype(), x.device());
  half.fill_(0.5);
  return where_kernel(binary_kernel(BinaryOp::Eq, xd, zeros({}, x.options())), half, ratio);
}

/// Phi(x), the standard normal CDF, differentiable (Phi' = phi): gelu's backward needs it.
inline Tensor normal_cdf(const Tensor& x) {
  Tensor xd = x.detach();
  Tensor out;
  if (x.is_cuda()) {
    out = normal_cdf_from_gelu(xd);
  } else {
    out = make_tensor(x.sizes(), x.dtype(), x.device());
    visit_floating(x.dtype(), "gelu", [&]<typename T>() {
      // erfc keeps the left tail accurate where 1 + erf(x) would cancel.
      if constexpr (std::is_same_v<T, float>)
        cpu::map<T, T>(out, [](float v) { return normal_cdf_vec(v); }, xd);
      else
        cpu::map<T, T>(out, [](T v) { return T(0.5) * std::erfc(-v * T(0.70710678118654752440)); }, xd);
    });
  }
  if (autograd::needs_grad(x)) {
    autograd::record("NormalCdfBackward", out, {x}, {x}, [](const Tensor& g, const autograd::BackwardCtx& c) -> tensor_list {
      return {mul(g, normal_pdf(c.saved(0)))};
    });
  }
  return out;
}

/// g (Phi(x) + x phi(x)), the exact gelu's backward. On the CPU it is one fused pass over memory
/// (float32 through the vectorised erfc of ops/erfc_vec.hpp) instead of eight ops with their
/// temporaries; elsewhere, or for broadcast/mixed operands, it is the same formula in ops. It
/// records its own backward, so second derivatives stay exact: d/dg is the same map and
/// d/dx = g (2 - x^2) phi(x).
inline Tensor gelu_erf_backward(const Tensor& g, const Tensor& x) {
  if (g.is_cuda() || x.is_cuda() || g.sizes() != x.sizes() || g.dtype() != x.dtype() || !is_floating(g.dtype()))
    return mul(g, add(normal_cdf(x), mul(x, normal_pdf(x))));
  Tensor out = make_tensor(g.sizes(), g.dtype(), g.device());
  visit_floating(g.dtype(), "gelu_backward", [&]<typename T>() {
    if constexpr (std::is_same_v<T, float>) {
      cpu::map<T, T, T>(out, [](float gv, float xv) { return gv * gelu_erf_grad_vec(xv); }, g.detach(), x.detach());
    } else {
      cpu::map<T, T, T>(out, [](T gv, T xv) {
        T d = T(0.5) * std::erfc(-xv * T(0.70710678118654752440)) + xv * T(kInvSqrt2Pi) * std::exp(T(-0.5) * xv * xv);
        return gv * d;
      }, g.detach(), x.detach());
    }
  });
  if (autograd::needs_grad(g, x)) {
    autograd::record("GeluBackwardBackward", out, {g, x}, {g, x}, [](const Tensor& gg, const autograd::BackwardCtx& c) -> tensor_list {
      const Tensor& gs = c.saved(0);
      const Tensor& xs = c.saved(1);
      Tensor dg = c.needs(0) ? gelu_erf_backward(gg, xs) : Tensor();
      Tensor dx;
      if (c.needs(1)) {
        Tensor d2 = mul(normal_pdf(xs), add(mul(square(xs), Scalar(-1)), Scalar(2)));
        dx = mul(mul(gg, gs), d2);
      }
      return {dg, dx};
    });
  }
  return out;
}
}  // namespace detail

/// x * Phi(x) (approximate = "none") or its tanh approximation (approximate = "tanh"),
/// 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), as torch.nn.functional.gelu.
inline Tensor gelu(const Tensor& x, const std::string& approximate = "none") {
  EMBER_CHECK(approximate == "none" || approximate == "tanh", "gelu: approximate must be \"none\" or \"tanh\", got \"",
              approximate, "\"");
  if (approximate == "none") {
    return detail::unary_recorded(UnaryOp::GeluErf, x, "GeluBackward", true, false,
                                  [](const Tensor& g, const autograd::BackwardCtx& c) {
                                    // d/dx x Phi(x) = Phi(x) + x phi(x)
                                    return detail::gelu_erf_backward(g, c.saved(0));
                                  });
  }
  return detail::unary_recorded(UnaryOp::GeluTanh, x, "GeluBackward", true, false,
                                [](const Tensor& g, const autograd::BackwardCtx& c) {
                                  const Tensor& in = c.saved(0);
                                  const double k = std::numbers::sqrt2 / std::sqrt(std::numbers::pi);  // sqrt(2/pi)
                                  const double a = 0.044715;
                                  Tensor x2 = square(in);
                                  Tensor t = tanh(mul(add(in, mul(mul(x2, in), Scalar(a))), Scalar(k)));
                                  Tensor du = mul(add(mul(x2, Scalar(3 * a)), Scalar(1)), Scalar(k));
                                  // 0.5 (1 + t) + 0.5 x (1 - t^2) u'
                                  Tensor d = add(mul(add(t, Scalar(1)), Scalar(0.5)),
                                                 mul(mul(mul(in, sub(ones_like(t), square(t))), du), Scalar(0.5)));
                                  return mul(g, d);
                                });
}

/// x * sigmoid(x) (swish).
inline Tensor silu(const Tensor& x) {
  return detail::unary_recorded(UnaryOp::Silu, x, "SiluBackward", true, false,
                                [](const Tensor& g, const autograd::BackwardCtx& c) {
                                  const Tensor& in = c.saved(0);
                                  Tensor s = sigmoid(in);
                                  // s (1 + x (1 - s))
                                  return mul(g, mul(s, add(mul(in, sub(ones_like(s), s)), Scalar(1))));
                                });
}

/// log(1 + e^(beta x)) / beta, reverting to x where beta x > threshold (numerical stability).
inline Tensor softplus(const Tensor& x, double beta = 1.0, double threshold = 20.0) {
  EMBER_CHECK(beta != 0, "softplus: beta must be nonzero");
  return detail::unary_recorded(UnaryOp::Softplus, x, "SoftplusBackward", true, false,
                                [beta, threshold](const Tensor& g, const autograd::BackwardCtx& c) {
                                  Tensor z = mul(c.saved(0), Scalar(beta));
                                  return where(gt(z, Scalar(threshold)), g, mul(g, sigmoid(z)));
                                },
                                beta, threshold);
}

/// clamp(x, min_val, max_val), with PyTorch's hardtanh gradient: g strictly inside the range, 0
/// at and beyond the edges.
inline Tensor hardtanh(const Tensor& x, double min_val = -1.0, double max_val = 1.0) {
  EMBER_CHECK(min_val <= max_val, "hardtanh: min_val (", min_val, ") cannot be greater than max_val (", max_val, ")");
  EMBER_CHECK(x.defined(), "hardtanh: undefined tensor argument");
  Tensor xc = is_floating(x.dtype()) ? x : x.to(kFloat32);
  return detail::unary_recorded(UnaryOp::Clamp, xc, "HardtanhBackward", true, false,
                                [min_val, max_val](const Tensor& g, const autograd::BackwardCtx& c) {
                                  const Tensor& in = c.saved(0);
                                  Tensor inside = logical_and(gt(in, Scalar(min_val)), lt(in, Scalar(max_val)));
                                  return mul(g, inside.to(g.dtype()));
                                },
                                min_val, max_val);
}

/// Zeroes each element with probability p and scales the rest by 1 / (1 - p) during training;
/// returns x unchanged when !train or p == 0. The mask is drawn from the default Philox
/// generator, so manual_seed makes it reproducible (and identical on CPU and CUDA). The
/// gradient is g * mask / (1 - p), itself differentiable in g.
inline Tensor dropout(const Tensor& x, double p = 0.5, bool train = true) {
  EMBER_CHECK(x.defined(), "dropout: undefined tensor argument");
  EMBER_CHECK(p >= 0 && p <= 1, "dropout: probability has to be between 0 and 1, but got ", p);
  if (!train || p == 0) return x;
  EMBER_CHECK(x.is_floating_point(), "dropout: expected a floating point tensor, got ", x.dtype());
  if (p == 1) return mul(x, zeros({}, x.options()));
  if (!x.is_cuda() && (x.dtype() == kFloat32 || x.dtype() == kFloat64)) {
    // The mask times 1 / (1 - p) in one pass over one buffer, from exactly the draws of the
    // composed path below (rand's Philox numbers compared with p in x's dtype), so the masks are
    // the same bits on every path and device; the composed path costs five passes and four
    // temporaries, a tenth of a BiLSTM training step.
    auto& gen = default_generator();
    const uint64_t seed = gen.seed(), offset = gen.reserve(static_cast<uint64_t>(x.numel()));
    Tensor scale = make_tensor(x.sizes(), x.dtype(), kCPU);
    auto fill = [&]<typename T>() {
      T* out = scale.data_ptr<T>();
      const T keep_scale = static_cast<T>(1.0 / (1.0 - p)), threshold = static_cast<T>(p);
      parallel_for(0, scale.numel(), kGrainSize / 4, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) {
          auto r = philox::philox4x32(seed, offset + static_cast<uint64_t>(i));
          T u;
          if constexpr (std::is_same_v<T, double>) u = philox::to_uniform_double(r.x, r.y);
          else u = philox::to_uniform_float(r.x);
          out[i] = u >= threshold ? keep_scale : T(0);
        }
      });
    };
    if (x.dtype() == kFloat64) fill.template operator()<double>();
    else fill.template operator()<float>();
    return mul(x, scale);
  }
  DType udt = x.dtype() == kFloat64 ? kFloat64 : kFloat32;
  Tensor keep = ge(rand(x.sizes(), TensorOptions(udt).device(x.device())), Scalar(p));
  Tensor scale = mul(keep.to(x.dtype()), Scalar(1.0 / (1.0 - p)));
  return mul(x, scale);
}

}  // namespace ember

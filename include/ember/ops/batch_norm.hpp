#pragma once
/// Batch normalisation (torch.nn.functional.batch_norm) over [N, C] or [N, C, *] inputs.
///
/// Written from differentiable Ember ops (mean over every dim but the channel dim, rsqrt, one
/// scale-and-shift per channel), so its gradient is itself differentiable: a gradient penalty
/// through a batch-normalised network works. Training mode normalises with the batch statistics
/// (biased variance) and updates the running statistics in place, outside the graph, with the
/// unbiased variance, exactly as PyTorch:
///   running_mean = (1 - momentum) * running_mean + momentum * mean
///   running_var  = (1 - momentum) * running_var  + momentum * var * n / (n - 1)
/// Eval mode uses the running statistics.
///
/// On the CPU (contiguous float/double) training mode runs fused kernels: one pass for the
/// per-channel statistics and one for the output; the backward one reduction pass and one pass
/// for dx (the composed version touched a [32, 32, 150, 150] activation ~20 times). When the
/// backward itself must be differentiable (create_graph), it is written with Ember ops instead,
/// recomputing the statistics from the saved input, so higher derivatives stay exact.
///
/// Example:
/// ```
///   auto rm = ember::zeros({16}), rv = ember::ones({16});
///   auto y = ember::batch_norm(x, rm, rv, gamma, beta, /*training=*/true);   // rm, rv updated
///   auto z = ember::batch_norm(x, rm, rv, gamma, beta, /*training=*/false);  // uses rm, rv
/// ```
#include <cmath>
#include <vector>

#include "ember/autograd/function.hpp"
#include "ember/core/grad_mode.hpp"
#include "ember/core/parallel.hpp"
#include "ember/ops/copy.hpp"
#include "ember/ops/dispatch.hpp"
#include "ember/ops/factory.hpp"
#include "ember/ops/binary.hpp"
#include "ember/ops/inplace.hpp"
#include "ember/ops/reduce.hpp"
#include "ember/ops/shape.hpp"
#include "ember/ops/unary.hpp"

namespace ember {

namespace detail {

inline constexpr int kLanes = 16;  // partial sums per channel in the reductions below

/// x viewed as [N, C, S]: the per-channel mean and biased variance, summed in double around the
/// channel's first value (a shift that keeps E[x^2] - E[x]^2 from cancelling when |mean| >> std).
template <typename T>
void batch_norm_stats_cpu(const T* x, int64_t N, int64_t C, int64_t S, double* mean, double* var) {
  parallel_for(0, C, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const double k = static_cast<double>(x[c * S]);
      // kLanes independent partial sums: one chain of dependent additions would run at the
      // adder's latency, lanes let the compiler use whole vector registers.
      double a1[kLanes] = {}, a2[kLanes] = {};
      for (int64_t n = 0; n < N; ++n) {
        const T* p = x + (n * C + c) * S;
        int64_t i = 0;
        for (; i + kLanes <= S; i += kLanes)
          for (int l = 0; l < kLanes; ++l) {
            const double d = static_cast<double>(p[i + l]) - k;
            a1[l] += d;
            a2[l] += d * d;
          }
        for (; i < S; ++i) {
          const double d = static_cast<double>(p[i]) - k;
          a1[0] += d;
          a2[0] += d * d;
        }
      }
      double s1 = 0, s2 = 0;
      for (int l = 0; l < kLanes; ++l) s1 += a1[l], s2 += a2[l];
      const double m = static_cast<double>(N * S), d1 = s1 / m;
      mean[c] = k + d1;
      var[c] = std::max(0.0, s2 / m - d1 * d1);
    }
  });
}

/// out[n, c, s] = (a[n, c, s] - ca[c]) * k1[c] + (b ? (b[n, c, s] - cb[c]) * k2[c] : 0) + k3[c]
/// (ca, cb null: 0). Centring before scaling keeps the digits of x when |mean| >> std.
template <typename T>
void batch_norm_affine_cpu(const T* a, const T* b, T* out, int64_t N, int64_t C, int64_t S, const double* ca,
                           const double* cb, const double* k1, const double* k2, const double* k3) {
  parallel_for(0, N * C, std::max<int64_t>(1, kGrainSize / std::max<int64_t>(S, 1)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t c = r % C;
      const T m1 = static_cast<T>(k1[c]), m3 = static_cast<T>(k3[c]), c1 = ca ? static_cast<T>(ca[c]) : T(0);
      const T* ap = a + r * S;
      T* op = out + r * S;
      if (b) {
        const T m2 = static_cast<T>(k2[c]), c2 = cb ? static_cast<T>(cb[c]) : T(0);
        const T* bp = b + r * S;
        for (int64_t i = 0; i < S; ++i) op[i] = (ap[i] - c1) * m1 + (bp[i] - c2) * m2 + m3;
      } else {
        for (int64_t i = 0; i < S; ++i) op[i] = (ap[i] - c1) * m1 + m3;
      }
    }
  });
}

/// Per channel: sum(g) and sum(g * (x - mean)).
template <typename T>
void batch_norm_grad_sums_cpu(const T* g, const T* x, int64_t N, int64_t C, int64_t S, const double* mean, double* sg,
                              double* sgx) {
  parallel_for(0, C, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      double a[kLanes] = {}, b[kLanes] = {};
      const double m = mean[c];
      for (int64_t n = 0; n < N; ++n) {
        const T* gp = g + (n * C + c) * S;
        const T* xp = x + (n * C + c) * S;
        int64_t i = 0;
        for (; i + kLanes <= S; i += kLanes)
          for (int l = 0; l < kLanes; ++l) {
            const double gv = static_cast<double>(gp[i + l]);
            a[l] += gv;
            b[l] += gv * (static_cast<double>(xp[i + l]) - m);
          }
        for (; i < S; ++i) {
          const double gv = static_cast<double>(gp[i]);
          a[0] += gv;
          b[0] += gv * (static_cast<double>(xp[i]) - m);
        }
      }
      sg[c] = 0, sgx[c] = 0;
      for (int l = 0; l < kLanes; ++l) sg[c] += a[l], sgx[c] += b[l];
    }
  });
}

/// The input gradient of training-mode batch norm written with differentiable ops (used when the
/// backward is recorded, for double backward): with xhat = (x - mean) * invstd and gw = g * w,
///   dx = invstd * (gw - mean(gw) - xhat * mean(gw * xhat)).
inline tensor_list batch_norm_backward_composite(const Tensor& g, const Tensor& x, const Tensor& weight, double eps,
                                                 const Shape& dims, const Shape& bshape, bool need_x, bool need_w,
                                                 bool need_b) {
  Tensor mean = ember::mean(x, dims, true);
  Tensor xc = sub(x, mean);
  Tensor invstd = rsqrt(add(ember::mean(mul(xc, xc), dims, true), Scalar(eps)));
  Tensor xhat = mul(xc, invstd);
  tensor_list out(3);
  if (need_x) {
    Tensor gw = weight.defined() ? mul(g, weight.view(bshape)) : g;
    out[0] = mul(invstd, sub(sub(gw, ember::mean(gw, dims, true)), mul(xhat, ember::mean(mul(gw, xhat), dims, true))));
  }
  if (need_w) out[1] = ember::sum(mul(g, xhat), dims);
  if (need_b) out[2] = ember::sum(g, dims);
  return out;
}

/// Training-mode batch norm on a contiguous CPU float/double input with fused kernels (see the
/// header comment); updates the running statistics like the composed version.
inline Tensor batch_norm_train_cpu(const Tensor& input, const Tensor& running_mean, const Tensor& running_var,
                                   const Tensor& weight, const Tensor& bias, double momentum, double eps,
                                   const Shape& dims, const Shape& bshape) {
  const int64_t N = input.size(0), C = input.size(1), S = input.numel() / std::max<int64_t>(N * C, 1);
  Tensor x = input.detach().contiguous();
  std::vector<double> mean(static_cast<size_t>(C)), var(static_cast<size_t>(C)), k1(static_cast<size_t>(C));
  std::vector<double> w = weight.defined() ? weight.detach().to_vector<double>() : std::vector<double>(C, 1.0);
  std::vector<double> b = bias.defined() ? bias.detach().to_vector<double>() : std::vector<double>(C, 0.0);
  Tensor y = make_tensor(input.sizes(), input.dtype(), input.device());
  visit_floating(input.dtype(), "batch_norm", [&]<typename T>() {
    if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
      batch_norm_stats_cpu<T>(x.data_ptr<T>(), N, C, S, mean.data(), var.data());
      for (int64_t c = 0; c < C; ++c) k1[c] = w[c] / std::sqrt(var[c] + eps);
      batch_norm_affine_cpu<T>(x.data_ptr<T>(), nullptr, y.data_ptr<T>(), N, C, S, mean.data(), nullptr, k1.data(),
                               nullptr, b.data());
    } else {
      EMBER_FAIL("batch_norm: the fused CPU path takes float32/float64 only");
    }
  });
  if (running_mean.defined()) {
    NoGradGuard ng;
    const double m = static_cast<double>(N * S);
    std::vector<double> unbiased(var);
    for (auto& v : unbiased) v *= m / (m - 1);
    Tensor rm = running_mean, rv = running_var;
    rm.mul_(Scalar(1.0 - momentum)).add_(tensor(mean, {C}).to(rm.dtype()), Scalar(momentum));
    rv.mul_(Scalar(1.0 - momentum)).add_(tensor(unbiased, {C}).to(rv.dtype()), Scalar(momentum));
  }
  if (autograd::needs_grad_list({input, weight, bias})) {
    autograd::record(
        // The input itself is saved (not the detached copy): a recorded backward differentiates
        // through it.
        "NativeBatchNormBackward", y, {input, weight, bias}, {input, weight},
        [mean, var, eps, dims, bshape](const Tensor& g, const autograd::BackwardCtx& c) -> tensor_list {
          const Tensor& xs = c.saved(0);
          const Tensor& ws = c.saved(1);
          const bool nx = c.needs(0), nw = c.needs(1), nb = c.needs(2);
          if (is_grad_enabled() || g.is_cuda() || g.dtype() != xs.dtype())
            return batch_norm_backward_composite(g, xs, ws, eps, dims, bshape, nx, nw, nb);
          const int64_t N = xs.size(0), C = xs.size(1), S = xs.numel() / std::max<int64_t>(N * C, 1);
          const double M = static_cast<double>(N * S);
          Tensor gc = g.contiguous(), xc = xs.detach().contiguous();
          std::vector<double> sg(static_cast<size_t>(C)), sgx(static_cast<size_t>(C));
          std::vector<double> w = ws.defined() ? ws.detach().to_vector<double>() : std::vector<double>(C, 1.0);
          tensor_list out(3);
          visit_floating(xs.dtype(), "batch_norm_backward", [&]<typename T>() {
            if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
              batch_norm_grad_sums_cpu<T>(gc.data_ptr<T>(), xc.data_ptr<T>(), N, C, S, mean.data(), sg.data(), sgx.data());
              if (nx) {
                // dx = g k1 + (x - mean) k2 + k3 with k1 = w invstd, k2 = -w invstd^3 sgx / M,
                // k3 = -w invstd sg / M.
                std::vector<double> k1(static_cast<size_t>(C)), k2(static_cast<size_t>(C)), k3(static_cast<size_t>(C));
                for (int64_t ch = 0; ch < C; ++ch) {
                  const double is = 1.0 / std::sqrt(var[ch] + eps);
                  k1[ch] = w[ch] * is;
                  k2[ch] = -w[ch] * is * is * is * sgx[ch] / M;
                  k3[ch] = -w[ch] * is * sg[ch] / M;
                }
                Tensor dx = make_tensor(xs.sizes(), xs.dtype(), xs.device());
                batch_norm_affine_cpu<T>(gc.data_ptr<T>(), xc.data_ptr<T>(), dx.data_ptr<T>(), N, C, S, nullptr,
                                         mean.data(), k1.data(), k2.data(), k3.data());
                out[0] = dx;
              }
            }
          });
          if (nw) {
            std::vector<double> dw(static_cast<size_t>(C));
            for (int64_t ch = 0; ch < C; ++ch) dw[ch] = sgx[ch] / std::sqrt(var[ch] + eps);
            out[1] = tensor(dw, {C}).to(ws.dtype());
          }
          if (nb) out[2] = tensor(sg, {C}).to(xs.dtype());
          return out;
        });
  }
  return y;
}

}  // namespace detail

/// Normalises each channel (dim 1) of `input`; weight/bias ([C], optional) scale and shift the
/// result. running_mean/running_var ([C], optional in training mode) are read in eval mode and
/// updated in place in training mode. Differentiable in input, weight and bias, to any order.
inline Tensor batch_norm(const Tensor& input, const Tensor& running_mean, const Tensor& running_var,
                         const Tensor& weight = {}, const Tensor& bias = {}, bool training = false,
                         double momentum = 0.1, double eps = 1e-5) {
  const char* op = "batch_norm";
  EMBER_CHECK(input.defined() && input.dim() >= 2, op, ": expected an input of shape [N, C] or [N, C, *], got ",
              input.defined() ? input.sizes() : Shape{});
  EMBER_CHECK(input.is_floating_point(), op, ": expected a floating point input, got ", input.dtype());
  const int64_t C = input.size(1);
  auto check_param = [&](const Tensor& t, const char* what) {
    if (!t.defined()) return;
    EMBER_CHECK(t.dim() == 1 && t.size(0) == C, op, ": expected ", what, " of shape [", C, "] for input of shape ",
                input.sizes(), ", got ", t.sizes());
    EMBER_CHECK(t.device() == input.device(), op, ": ", what, " is on ", t.device(), " but the input is on ",
                input.device());
  };
  check_param(running_mean, "running_mean");
  check_param(running_var, "running_var");
  check_param(weight, "weight");
  check_param(bias, "bias");
  EMBER_CHECK(eps >= 0, op, ": eps must be non-negative, got ", eps);
  EMBER_CHECK(running_mean.defined() == running_var.defined(), op,
              ": running_mean and running_var must both be given or both be undefined");

  // Every dim but the channel dim is reduced; per-channel tensors are viewed as [1, C, 1, ...].
  Shape dims{0};
  Shape bshape{1, C};
  for (int64_t d = 2; d < input.dim(); ++d) {
    dims.push_back(d);
    bshape.push_back(1);
  }
  const int64_t n = input.numel() / std::max<int64_t>(C, 1);

  Tensor mean, invstd;
  if (training) {
    EMBER_CHECK(n > 1, op, ": expected more than 1 value per channel when training, got input of shape ", input.sizes());
    auto cpu_param = [&](const Tensor& t) { return !t.defined() || (!t.is_cuda() && t.dtype() == input.dtype()); };
    if (!input.is_cuda() && (input.dtype() == kFloat32 || input.dtype() == kFloat64) && cpu_param(weight) &&
        cpu_param(bias))
      return detail::batch_norm_train_cpu(input, running_mean, running_var, weight, bias, momentum, eps, dims, bshape);
    mean = ember::mean(input, dims, true);
    Tensor xc = sub(input, mean);
    Tensor var = ember::mean(mul(xc, xc), dims, true);  // biased, as PyTorch normalises
    invstd = rsqrt(add(var, Scalar(eps)));
    if (running_mean.defined()) {
      NoGradGuard ng;
      Tensor m = mean.detach().reshape({C}).to(running_mean.dtype());
      Tensor v = mul(var.detach().reshape({C}), Scalar(static_cast<double>(n) / static_cast<double>(n - 1)))
                     .to(running_var.dtype());
      Tensor rm = running_mean, rv = running_var;
      rm.mul_(Scalar(1.0 - momentum)).add_(m, Scalar(momentum));
      rv.mul_(Scalar(1.0 - momentum)).add_(v, Scalar(momentum));
    }
    // y = (x - mean) * invstd * w + b, reusing the centred x.
    Tensor scale = weight.defined() ? mul(invstd, weight.view(bshape)) : invstd;
    Tensor y = mul(xc, scale);
    return bias.defined() ? add(y, bias.view(bshape)) : y;
  }
  EMBER_CHECK(running_mean.defined(), op, ": running_mean and running_var are required in eval mode (training=false)");
  // One scale and one shift per channel, so the big tensor is touched twice.
  Tensor scale = rsqrt(add(running_var.detach(), Scalar(eps)));
  if (weight.defined()) scale = mul(scale, weight);
  Tensor shift = neg(mul(running_mean.detach(), scale));
  if (bias.defined()) shift = add(shift, bias);
  return add(mul(input, scale.view(bshape).to(input.dtype())), shift.view(bshape).to(input.dtype()));
}

}  // namespace ember

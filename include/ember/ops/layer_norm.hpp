#pragma once
/// Layer normalisation (torch.nn.functional.layer_norm): each slice over the trailing
/// `normalized_shape` dims is normalised to zero mean and unit (biased) variance, then scaled by
/// `weight` and shifted by `bias` (both of shape `normalized_shape`, optional):
///   y = (x - mean) / sqrt(var + eps) * weight + bias
///
/// On the CPU (float32/float64) forward and backward are fused row kernels: one pass for the row
/// statistics and the output, one pass for dx with the weight and bias gradients accumulated per
/// thread (the composed version touches the activation ~8 times each way, and a Transformer
/// normalises twice per layer). When the backward itself must be differentiable (create_graph,
/// e.g. gradgradcheck or a gradient penalty), it is written with Ember ops instead, recomputing
/// the statistics from the saved input, so higher derivatives stay exact — the batch_norm pattern.
/// Other devices and dtypes run the composed forward.
///
/// Example:
/// ```
///   auto x = ember::randn({16, 128, 256});
///   auto w = ember::ones({256}), b = ember::zeros({256});
///   auto y = ember::layer_norm(x, {256}, w, b);   // every [256] row: mean 0, variance 1
/// ```
#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "ember/autograd/function.hpp"
#include "ember/core/grad_mode.hpp"
#include "ember/core/parallel.hpp"
#include "ember/ops/binary.hpp"
#include "ember/ops/copy.hpp"
#include "ember/ops/factory.hpp"
#include "ember/ops/reduce.hpp"
#include "ember/ops/shape.hpp"
#include "ember/ops/unary.hpp"

namespace ember {

namespace detail {

inline constexpr int kLayerNormLanes = 8;  // independent partial sums per row (see batch_norm_stats_cpu)

/// Rows of a contiguous [M, N] input: mean and 1 / sqrt(var + eps) (biased variance, two passes
/// in double so |mean| >> std keeps its digits), and y = (x - mean) * rstd * w + b.
template <typename T>
void layer_norm_forward_cpu(const T* x, const T* w, const T* b, T* y, int64_t M, int64_t N, double eps, double* mean,
                            double* rstd) {
  parallel_for(0, M, std::max<int64_t>(1, kGrainSize / std::max<int64_t>(N, 1)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const T* xr = x + r * N;
      double a[kLayerNormLanes] = {};
      int64_t i = 0;
      for (; i + kLayerNormLanes <= N; i += kLayerNormLanes)
        for (int l = 0; l < kLayerNormLanes; ++l) a[l] += static_cast<double>(xr[i + l]);
      for (; i < N; ++i) a[0] += static_cast<double>(xr[i]);
      double s = 0;
      for (double v : a) s += v;
      const double m = s / static_cast<double>(N);
      double q[kLayerNormLanes] = {};
      i = 0;
      for (; i + kLayerNormLanes <= N; i += kLayerNormLanes)
        for (int l = 0; l < kLayerNormLanes; ++l) {
          const double d = static_cast<double>(xr[i + l]) - m;
          q[l] += d * d;
        }
      for (; i < N; ++i) {
        const double d = static_cast<double>(xr[i]) - m;
        q[0] += d * d;
      }
      double v = 0;
      for (double t : q) v += t;
      const double rs = 1.0 / std::sqrt(v / static_cast<double>(N) + eps);
      mean[r] = m;
      rstd[r] = rs;
      const T mt = static_cast<T>(m), rt = static_cast<T>(rs);
      T* yr = y + r * N;
      if (w && b) {
        for (int64_t j = 0; j < N; ++j) yr[j] = (xr[j] - mt) * rt * w[j] + b[j];
      } else if (w) {
        for (int64_t j = 0; j < N; ++j) yr[j] = (xr[j] - mt) * rt * w[j];
      } else {
        for (int64_t j = 0; j < N; ++j) yr[j] = (xr[j] - mt) * rt + (b ? b[j] : T(0));
      }
    }
  });
}

/// The backward of layer_norm_forward_cpu: with xhat = (x - mean) rstd and gw = g w,
///   dx = rstd (gw - mean(gw) - xhat mean(gw xhat))     (dx null: not wanted)
///   dw = sum over rows of g xhat, db = sum over rows of g  (dw, db null: not wanted).
/// The weight and bias sums go to one partial buffer per chunk of rows, added at the end, so
/// threads never share an accumulator.
template <typename T>
void layer_norm_backward_cpu(const T* g, const T* x, const T* w, const double* mean, const double* rstd, int64_t M,
                             int64_t N, T* dx, T* dw, T* db) {
  const bool want_wb = dw || db;
  const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(get_num_threads(), M));
  std::vector<double> part(want_wb ? static_cast<size_t>(chunks * 2 * N) : 0, 0.0);
  // Chunk c works on rows [M c / chunks, M (c + 1) / chunks).
  parallel_for(0, chunks, 1, [&](int64_t c0, int64_t c1) {
    std::vector<T> gw(static_cast<size_t>(N)), xh(static_cast<size_t>(N));
    for (int64_t c = c0; c < c1; ++c) {
      double* pw = want_wb ? part.data() + c * 2 * N : nullptr;
      double* pb = want_wb ? pw + N : nullptr;
      for (int64_t r = M * c / chunks, re = M * (c + 1) / chunks; r < re; ++r) {
        const T* gr = g + r * N;
        const T* xr = x + r * N;
        const T mt = static_cast<T>(mean[r]), rt = static_cast<T>(rstd[r]);
        for (int64_t j = 0; j < N; ++j) xh[j] = (xr[j] - mt) * rt;
        if (want_wb)
          for (int64_t j = 0; j < N; ++j) {
            pw[j] += static_cast<double>(gr[j] * xh[j]);
            pb[j] += static_cast<double>(gr[j]);
          }
        if (!dx) continue;
        double s1[kLayerNormLanes] = {}, s2[kLayerNormLanes] = {};
        for (int64_t j = 0; j < N; ++j) gw[j] = w ? gr[j] * w[j] : gr[j];
        int64_t j = 0;
        for (; j + kLayerNormLanes <= N; j += kLayerNormLanes)
          for (int l = 0; l < kLayerNormLanes; ++l) {
            s1[l] += static_cast<double>(gw[j + l]);
            s2[l] += static_cast<double>(gw[j + l] * xh[j + l]);
          }
        for (; j < N; ++j) {
          s1[0] += static_cast<double>(gw[j]);
          s2[0] += static_cast<double>(gw[j] * xh[j]);
        }
        double a = 0, b = 0;
        for (int l = 0; l < kLayerNormLanes; ++l) a += s1[l], b += s2[l];
        const T at = static_cast<T>(a / static_cast<double>(N)), bt = static_cast<T>(b / static_cast<double>(N));
        T* dr = dx + r * N;
        for (int64_t k = 0; k < N; ++k) dr[k] = rt * (gw[k] - at - xh[k] * bt);
      }
    }
  });
  if (!want_wb) return;
  for (int64_t j = 0; j < N; ++j) {
    double sw = 0, sb = 0;
    for (int64_t c = 0; c < chunks; ++c) sw += part[c * 2 * N + j], sb += part[c * 2 * N + N + j];
    if (dw) dw[j] = static_cast<T>(sw);
    if (db) db[j] = static_cast<T>(sb);
  }
}

/// The gradients of layer_norm written with differentiable ops (used when the backward is
/// recorded, for double backward): the statistics are recomputed from the saved input.
inline tensor_list layer_norm_backward_composite(const Tensor& g, const Tensor& x, const Tensor& weight, double eps,
                                                 const Shape& dims, bool need_x, bool need_w, bool need_b) {
  Tensor xc = sub(x, ember::mean(x, dims, true));
  Tensor rstd = rsqrt(add(ember::mean(mul(xc, xc), dims, true), Scalar(eps)));
  Tensor xhat = mul(xc, rstd);
  tensor_list out(3);
  if (need_x) {
    Tensor gw = weight.defined() ? mul(g, weight) : g;
    out[0] = mul(rstd, sub(sub(gw, ember::mean(gw, dims, true)), mul(xhat, ember::mean(mul(gw, xhat), dims, true))));
  }
  // Returned in the input's shape: the engine sums them to the weight's and bias's shape.
  if (need_w) out[1] = mul(g, xhat);
  if (need_b) out[2] = g;
  return out;
}

/// Fused CPU layer norm of a float32/float64 input whose parameters share its dtype.
inline Tensor layer_norm_cpu(const Tensor& input, const Tensor& weight, const Tensor& bias, double eps, int64_t N,
                             const Shape& dims) {
  const int64_t M = N == 0 ? 0 : input.numel() / N;
  Tensor x = input.detach().contiguous();
  Tensor wc = weight.defined() ? weight.detach().contiguous() : Tensor();
  Tensor bc = bias.defined() ? bias.detach().contiguous() : Tensor();
  auto stats = std::make_shared<std::vector<double>>(static_cast<size_t>(2 * M));
  Tensor y = make_tensor(input.sizes(), input.dtype(), input.device());
  visit_floating(input.dtype(), "layer_norm", [&]<typename T>() {
    if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
      layer_norm_forward_cpu<T>(x.data_ptr<T>(), wc.defined() ? wc.data_ptr<T>() : nullptr,
                                bc.defined() ? bc.data_ptr<T>() : nullptr, y.data_ptr<T>(), M, N, eps, stats->data(),
                                stats->data() + M);
    } else {
      EMBER_FAIL("layer_norm: the fused CPU path takes float32/float64 only");
    }
  });
  if (autograd::needs_grad_list({input, weight, bias})) {
    autograd::record(
        // The input itself is saved (not the detached copy): a recorded backward differentiates
        // through it.
        "NativeLayerNormBackward", y, {input, weight, bias}, {input, weight},
        [stats, eps, dims, M, N](const Tensor& g, const autograd::BackwardCtx& c) -> tensor_list {
          const Tensor& xs = c.saved(0);
          const Tensor& ws = c.saved(1);
          const bool nx = c.needs(0), nw = c.needs(1), nb = c.needs(2);
          if (is_grad_enabled() || g.is_cuda() || g.dtype() != xs.dtype())
            return layer_norm_backward_composite(g, xs, ws, eps, dims, nx, nw, nb);
          Tensor gc = g.contiguous(), xc = xs.detach().contiguous();
          Tensor wc = ws.defined() ? ws.detach().contiguous() : Tensor();
          tensor_list out(3);
          if (nx) out[0] = make_tensor(xs.sizes(), xs.dtype(), xs.device());
          if (nw) out[1] = make_tensor(ws.sizes(), xs.dtype(), xs.device());
          if (nb) out[2] = make_tensor(ws.defined() ? ws.sizes() : Shape(xs.sizes().end() - dims.size(), xs.sizes().end()),
                                       xs.dtype(), xs.device());
          visit_floating(xs.dtype(), "layer_norm_backward", [&]<typename T>() {
            if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
              auto ptr = [](const Tensor& t) { return t.defined() ? t.data_ptr<T>() : nullptr; };
              layer_norm_backward_cpu<T>(gc.data_ptr<T>(), xc.data_ptr<T>(), ptr(wc), stats->data(),
                                         stats->data() + M, M, N, ptr(out[0]), ptr(out[1]), ptr(out[2]));
            }
          });
          return out;
        });
  }
  return y;
}

}  // namespace detail

/// Normalises `input` over its trailing dims `normalized_shape` (torch.nn.functional.layer_norm).
/// weight and bias (optional, shape `normalized_shape`) scale and shift the result.
/// Differentiable in input, weight and bias, to any order.
inline Tensor layer_norm(const Tensor& input, const Shape& normalized_shape, const Tensor& weight = {},
                         const Tensor& bias = {}, double eps = 1e-5) {
  const char* op = "layer_norm";
  EMBER_CHECK(input.defined(), op, ": undefined input");
  EMBER_CHECK(input.is_floating_point(), op, ": expected a floating point input, got ", input.dtype());
  const int64_t k = normalized_shape.size();
  EMBER_CHECK(k >= 1, op, ": normalized_shape must have at least one dimension, got ", normalized_shape);
  bool fits = input.dim() >= k;
  for (int64_t d = 0; fits && d < k; ++d) fits = input.size(input.dim() - k + d) == normalized_shape[d];
  EMBER_CHECK(fits, op, ": given normalized_shape=", normalized_shape, ", expected input with shape [*, ",
              normalized_shape, "], but got input of size ", input.sizes());
  auto check_param = [&](const Tensor& t, const char* what) {
    if (!t.defined()) return;
    EMBER_CHECK(t.sizes() == normalized_shape, op, ": expected ", what, " of shape ", normalized_shape, ", got ",
                t.sizes());
    EMBER_CHECK(t.device() == input.device(), op, ": ", what, " is on ", t.device(), " but the input is on ",
                input.device());
    EMBER_CHECK(t.dtype() == input.dtype(), op, ": ", what, " has dtype ", t.dtype(), " but the input has ",
                input.dtype());
  };
  check_param(weight, "weight");
  check_param(bias, "bias");
  EMBER_CHECK(eps >= 0, op, ": eps must be non-negative, got ", eps);
  Shape dims;
  for (int64_t d = input.dim() - k; d < input.dim(); ++d) dims.push_back(d);
  const int64_t N = normalized_shape.numel();
  if (!input.is_cuda() && (input.dtype() == kFloat32 || input.dtype() == kFloat64) && N > 0)
    return detail::layer_norm_cpu(input, weight, bias, eps, N, dims);
  // Composed from differentiable ops (other devices and dtypes).
  Tensor xc = sub(input, ember::mean(input, dims, true));
  Tensor y = mul(xc, rsqrt(add(ember::mean(mul(xc, xc), dims, true), Scalar(eps))));
  if (weight.defined()) y = mul(y, weight);
  return bias.defined() ? add(y, bias) : y;
}

}  // namespace ember

#pragma once
/// softmax and log_softmax along one dim, and logsumexp over any dims: each one numerically
/// stable (the maximum is subtracted before exponentiating), so inputs like 1000 give exact
/// results instead of inf/NaN.
///
/// One kernel per op. On the CPU the input is made contiguous and viewed as [outer, n, inner]
/// with the softmax dim in the middle: when the dim is last (inner == 1) each row is one pass,
/// otherwise the loop runs along `inner` (contiguous) so it vectorises without a transposed copy.
/// On CUDA the dim is moved last and `cuda::softmax_last` runs on the contiguous rows.
///
/// Backward formulas use the op's result, so they differentiate again (double backward):
///   softmax:     y * (g - sum(g * y, dim))
///   log_softmax: g - exp(y) * sum(g, dim)
///   logsumexp:   g * exp(x - y)
///
/// Example:
/// ```
///   auto logits = ember::randn({32, 10});
///   auto p = ember::softmax(logits, 1);        // rows sum to 1
///   auto lp = logits.log_softmax(-1);          // == log(p), without under/overflow
///   auto lse = ember::logsumexp(logits, {1});  // shape [32]
/// ```
#include <cmath>
#include <limits>
#include <vector>

#include "ember/ops/pointwise.hpp"
#include "ember/ops/reduce.hpp"
#include "ember/ops/unary.hpp"

namespace ember {

namespace detail {

/// Largest non-NaN value of v[0], v[stride], ... (n elements); -inf if none. A NaN anywhere still
/// reaches the output through the exp-sum, so it is skipped here rather than propagated twice.
template <typename T>
T row_max(const T* v, int64_t n, int64_t stride) {
  T m = -std::numeric_limits<T>::infinity();
  for (int64_t i = 0; i < n; ++i) m = v[i * stride] > m ? v[i * stride] : m;
  return m;
}

/// (log-)softmax of a contiguous [outer, n, inner] input along n. Accumulates in double.
template <typename T>
void softmax_cpu(const T* in, T* out, int64_t outer, int64_t n, int64_t inner, bool log) {
  if (inner == 1) {
    parallel_for(0, outer, std::max<int64_t>(1, kGrainSize / std::max<int64_t>(n, 1)), [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        const T* x = in + r * n;
        T* y = out + r * n;
        T m = row_max(x, n, 1);
        double s = 0;
        if (log) {
          for (int64_t i = 0; i < n; ++i) s += std::exp(static_cast<double>(x[i] - m));
          // (x - m) first: exact for the large entries, so float32 keeps full precision at 1000.
          T ls = static_cast<T>(std::log(s));
          for (int64_t i = 0; i < n; ++i) y[i] = (x[i] - m) - ls;
        } else {
          for (int64_t i = 0; i < n; ++i) {
            y[i] = std::exp(x[i] - m);
            s += static_cast<double>(y[i]);
          }
          T inv = static_cast<T>(1.0 / s);
          for (int64_t i = 0; i < n; ++i) y[i] *= inv;
        }
      }
    });
    return;
  }
  // The dim is not last: work on blocks of kBlock columns of one [n, inner] slab at a time, with
  // per-column max and sum, so every inner loop is contiguous.
  constexpr int64_t kBlock = 256;
  int64_t nblk = (inner + kBlock - 1) / kBlock;
  int64_t units = outer * nblk;
  parallel_for(0, units, std::max<int64_t>(1, kGrainSize / std::max<int64_t>(n * kBlock, 1)), [&](int64_t b, int64_t e) {
    T mx[kBlock];
    double s[kBlock];
    for (int64_t u = b; u < e; ++u) {
      int64_t o = u / nblk, c0 = (u % nblk) * kBlock, w = std::min(kBlock, inner - c0);
      const T* x = in + o * n * inner + c0;
      T* y = out + o * n * inner + c0;
      for (int64_t j = 0; j < w; ++j) {
        mx[j] = -std::numeric_limits<T>::infinity();
        s[j] = 0;
      }
      for (int64_t k = 0; k < n; ++k)
        for (int64_t j = 0; j < w; ++j) mx[j] = x[k * inner + j] > mx[j] ? x[k * inner + j] : mx[j];
      for (int64_t k = 0; k < n; ++k)
        for (int64_t j = 0; j < w; ++j) {
          T ev = std::exp(x[k * inner + j] - mx[j]);
          s[j] += static_cast<double>(ev);
          if (!log) y[k * inner + j] = ev;
        }
      if (log) {
        T ls[kBlock];
        for (int64_t j = 0; j < w; ++j) ls[j] = static_cast<T>(std::log(s[j]));
        for (int64_t k = 0; k < n; ++k)
          for (int64_t j = 0; j < w; ++j) y[k * inner + j] = (x[k * inner + j] - mx[j]) - ls[j];
      } else {
        for (int64_t j = 0; j < w; ++j) s[j] = 1.0 / s[j];
        for (int64_t k = 0; k < n; ++k)
          for (int64_t j = 0; j < w; ++j) y[k * inner + j] *= static_cast<T>(s[j]);
      }
    }
  });
}

/// log(sum(exp(row))) of each row of a contiguous [outer, n] input, shifted by the row max (0
/// when the max is infinite, so all -inf rows give -inf and a +inf element gives +inf).
template <typename T>
void logsumexp_cpu(const T* in, T* out, int64_t outer, int64_t n) {
  parallel_for(0, outer, std::max<int64_t>(1, kGrainSize / std::max<int64_t>(n, 1)), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const T* x = in + r * n;
      double m = static_cast<double>(row_max(x, n, 1));
      if (std::isinf(m)) m = 0;
      double s = 0;
      for (int64_t i = 0; i < n; ++i) s += std::exp(static_cast<double>(x[i]) - m);
      out[r] = static_cast<T>(std::log(s) + m);
    }
  });
}

/// The dispatch point for softmax (log = false) and log_softmax (log = true); no autograd.
inline Tensor softmax_kernel(const Tensor& x, int64_t dim, bool log, const char* name) {
  EMBER_CHECK(x.defined(), name, ": undefined tensor argument");
  EMBER_CHECK(x.is_floating_point(), name, ": expected a floating point tensor, got ", x.dtype(),
              " (convert with .to(kFloat32))");
  int64_t d = wrap_dim(dim, x.dim(), name);
  if (x.numel() == 0) return make_tensor(x.sizes(), x.dtype(), x.device());
  if (x.is_cuda()) {
#ifdef EMBER_WITH_CUDA
    // Move `d` last (keeping the other dims in order), run on contiguous rows, move it back.
    Shape perm, inv = Shape::filled(x.dim(), 0);
    for (int64_t i = 0; i < x.dim(); ++i)
      if (i != d) perm.push_back(i);
    if (x.dim() > 0) perm.push_back(d);
    for (int64_t i = 0; i < perm.size(); ++i) inv[perm[i]] = i;
    Tensor rows = x.detach().permute(perm).contiguous();
    Tensor out = make_tensor(rows.sizes(), x.dtype(), x.device());
    int64_t n = x.dim() == 0 ? 1 : x.size(d);
    cuda::softmax_last(cuda::arg(out), cuda::arg(rows), x.numel() / n, n, log);
    return out.permute(inv);
#else
    fail_no_cuda(name);
#endif
  }
  // float16/bfloat16 are storage types on the CPU: compute in float32.
  DType ct = x.dtype() == kFloat64 ? kFloat64 : kFloat32;
  Tensor xc = x.detach();
  if (xc.dtype() != ct) xc = xc.to(ct);
  xc = xc.contiguous();
  Tensor out = make_tensor(x.sizes(), ct, x.device());
  int64_t outer = 1, inner = 1, n = x.dim() == 0 ? 1 : x.size(d);
  for (int64_t i = 0; i < d; ++i) outer *= x.size(i);
  for (int64_t i = d + 1; i < x.dim(); ++i) inner *= x.size(i);
  visit_floating(ct, name, [&]<typename T>() {
    softmax_cpu<T>(xc.data_ptr<T>(), out.data_ptr<T>(), outer, n, inner, log);
  });
  return out.dtype() == x.dtype() ? out : out.to(x.dtype());
}

}  // namespace detail

/// exp(x) / sum(exp(x)) along `dim`, computed as exp(x - max) / sum(exp(x - max)).
inline Tensor softmax(const Tensor& x, int64_t dim) {
  Tensor out = detail::softmax_kernel(x, dim, false, "softmax");
  if (autograd::needs_grad(x)) {
    int64_t d = wrap_dim(dim, x.dim(), "softmax");
    autograd::record("SoftmaxBackward", out, {x}, {}, [d](const Tensor& g, const autograd::BackwardCtx& c) -> tensor_list {
      Tensor y = c.result();
      return {mul(y, sub(g, sum(mul(g, y), Shape{d}, true)))};
    }, /*save_result=*/true);
  }
  return out;
}

/// log(softmax(x)) along `dim`, computed as x - max - log(sum(exp(x - max))).
inline Tensor log_softmax(const Tensor& x, int64_t dim) {
  Tensor out = detail::softmax_kernel(x, dim, true, "log_softmax");
  if (autograd::needs_grad(x)) {
    int64_t d = wrap_dim(dim, x.dim(), "log_softmax");
    autograd::record("LogSoftmaxBackward", out, {x}, {}, [d](const Tensor& g, const autograd::BackwardCtx& c) -> tensor_list {
      Tensor y = c.result();
      return {sub(g, mul(exp(y), sum(g, Shape{d}, true)))};
    }, /*save_result=*/true);
  }
  return out;
}

/// log(sum(exp(x))) over `dims` (all when empty), stable for large inputs; an empty slice gives
/// -inf. Integral inputs are computed in float32, as in PyTorch.
inline Tensor logsumexp(const Tensor& x, const Shape& dims = {}, bool keepdim = false) {
  EMBER_CHECK(x.defined(), "logsumexp: undefined tensor argument");
  Tensor xf = x.is_floating_point() ? x : x.to(kFloat32);
  Shape rd = detail::reduce_dims(dims, x.dim(), "logsumexp");
  Shape kd = detail::reduced_shape(x.sizes(), rd, true);
  Shape out_shape = detail::reduced_shape(x.sizes(), rd, keepdim);
  int64_t n = 1;
  for (int64_t d : rd) n *= x.size(d);
  Tensor out;
  if (n == 0 || out_shape.numel() == 0) {
    out = full(out_shape, -std::numeric_limits<double>::infinity(), xf.options());
  } else if (x.is_cuda() || xf.dtype() == kFloat16 || xf.dtype() == kBFloat16) {
    // Composed from kernels that exist on every device; clamping an infinite max to the finite
    // range plays the role of the CPU kernel's "shift by 0".
    NoGradGuard ng;
    double big = std::numeric_limits<double>::max();
    if (xf.dtype() != kFloat64) big = std::numeric_limits<float>::max();
    Tensor m = clamp(amax(xf, rd, true), Scalar(-big), Scalar(big));
    out = add(log(sum(exp(sub(xf, m)), rd, true)), m).reshape(out_shape);
  } else {
    Shape perm;
    for (int64_t d = 0, k = 0; d < x.dim(); ++d) {
      if (k < rd.size() && rd[k] == d) {
        ++k;
        continue;
      }
      perm.push_back(d);
    }
    for (int64_t d : rd) perm.push_back(d);
    Tensor rows = xf.detach().permute(perm).contiguous();
    out = make_tensor(out_shape, xf.dtype(), x.device());
    visit_floating(xf.dtype(), "logsumexp", [&]<typename T>() {
      detail::logsumexp_cpu<T>(rows.data_ptr<T>(), out.data_ptr<T>(), out.numel(), n);
    });
  }
  if (autograd::needs_grad(xf)) {
    autograd::record("LogsumexpBackward", out, {xf}, {xf}, [kd](const Tensor& g, const autograd::BackwardCtx& c) -> tensor_list {
      return {mul(g.reshape(kd), exp(sub(c.saved(0), c.result().reshape(kd))))};
    }, /*save_result=*/true);
  }
  return out;
}

inline Tensor Tensor::softmax(int64_t dim) const { return ember::softmax(*this, dim); }
inline Tensor Tensor::log_softmax(int64_t dim) const { return ember::log_softmax(*this, dim); }

}  // namespace ember

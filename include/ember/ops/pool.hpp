#pragma once
/// 2-d pooling: max_pool2d (+ indices), avg_pool2d, adaptive_avg_pool2d, on [N, C, H, W] or
/// [C, H, W] inputs, with PyTorch's output sizes (ceil_mode, padding, dilation).
///
/// Each pooling is a recorded primitive whose backward is another recorded primitive, and the
/// two are adjoints, so double backward works:
///   max_pool2d            backward: max_pool2d_backward(g, indices) (scatter into the argmax)
///   max_pool2d_backward   backward: gather of gg at the indices (ember::gather)
///   avg pooling           backward: avg_pool2d_backward (spread each mean over its window)
///   avg_pool2d_backward   backward: the avg pooling again
/// CPU kernels loop over (n, c) planes in parallel; CUDA uses the launchers of cuda/dnn.hpp
/// (adaptive pooling on CUDA needs input sizes divisible by the output size).
///
/// Example:
/// ```
///   auto x = ember::randn({32, 32, 26, 26});
///   auto y = ember::max_pool2d(x, 2);                        // [32, 32, 13, 13]
///   auto [v, idx] = ember::max_pool2d_with_indices(x, 3, 2, 1);
///   auto a = ember::adaptive_avg_pool2d(x, {1, 1});           // global average pooling
/// ```
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <tuple>
#include <type_traits>
#include <vector>

#include "ember/autograd/function.hpp"
#include "ember/core/parallel.hpp"
#include "ember/cuda/dnn.hpp"
#include "ember/ops/conv.hpp"  // Int2
#include "ember/ops/copy.hpp"
#include "ember/ops/dispatch.hpp"
#include "ember/ops/factory.hpp"
#include "ember/ops/index.hpp"
#include "ember/ops/shape.hpp"

namespace ember {

using cuda::PoolParams;

/// The stride of a pooling: one number, a (h, w) pair, or std::nullopt for "= kernel_size".
struct PoolStride {
  std::optional<Int2> value;
  PoolStride(std::nullopt_t = std::nullopt) {}                 // NOLINT
  PoolStride(int64_t s) : value(Int2(s)) {}                    // NOLINT
  PoolStride(int64_t a, int64_t b) : value(Int2(a, b)) {}      // NOLINT
  PoolStride(Int2 s) : value(s) {}                             // NOLINT
  Int2 or_kernel(Int2 kernel) const { return value.value_or(kernel); }
};

namespace detail {

/// PyTorch's pooling_output_shape: floor or ceil division, and with ceil_mode the last window
/// must start inside the input or its left padding.
inline int64_t pool_out_size(int64_t in, int64_t k, int64_t s, int64_t pad, int64_t d, bool ceil_mode) {
  int64_t num = in + 2 * pad - d * (k - 1) - 1 + (ceil_mode ? s - 1 : 0);
  int64_t out = (num >= 0 ? num / s : -((-num + s - 1) / s)) + 1;
  if (ceil_mode && (out - 1) * s >= in + pad) --out;
  return out;
}

/// Checks the pooling arguments and fills the geometry of x (4-d) pooled to [n, c, oh, ow].
inline PoolParams pool_params(const char* op, const Tensor& x, Int2 k, Int2 s, Int2 pad, Int2 d, bool ceil_mode) {
  EMBER_CHECK(k.h > 0 && k.w > 0, op, ": kernel_size must be positive, got (", k.h, ", ", k.w, ")");
  EMBER_CHECK(s.h > 0 && s.w > 0, op, ": stride must be positive, got (", s.h, ", ", s.w, ")");
  EMBER_CHECK(d.h > 0 && d.w > 0, op, ": dilation must be positive, got (", d.h, ", ", d.w, ")");
  EMBER_CHECK(pad.h >= 0 && pad.w >= 0 && pad.h <= k.h / 2 && pad.w <= k.w / 2, op,
              ": pad should be non-negative and at most half of the kernel size, got padding (", pad.h, ", ", pad.w,
              ") for kernel_size (", k.h, ", ", k.w, ")");
  PoolParams p;
  p.dtype = x.dtype();
  p.n = x.size(0), p.c = x.size(1), p.h = x.size(2), p.w = x.size(3);
  p.kh = k.h, p.kw = k.w;
  p.stride[0] = s.h, p.stride[1] = s.w, p.pad[0] = pad.h, p.pad[1] = pad.w, p.dil[0] = d.h, p.dil[1] = d.w;
  p.oh = pool_out_size(p.h, k.h, s.h, pad.h, d.h, ceil_mode);
  p.ow = pool_out_size(p.w, k.w, s.w, pad.w, d.w, ceil_mode);
  EMBER_CHECK(p.oh > 0 && p.ow > 0, op, ": the output size (", p.oh, ", ", p.ow, ") is too small for input of shape ",
              x.sizes(), " with kernel_size (", k.h, ", ", k.w, ")");
  return p;
}

inline void check_pool_input(const char* op, const Tensor& x) {
  EMBER_CHECK(x.defined(), op, ": undefined input");
  EMBER_CHECK((x.dim() == 3 || x.dim() == 4) && x.numel() > 0, op,
              ": expected a non-empty 3-d [C, H, W] or 4-d [N, C, H, W] input, got shape ", x.sizes());
}

inline Shape pool_in_shape(const PoolParams& p) { return {p.n, p.c, p.h, p.w}; }
inline Shape pool_out_shape(const PoolParams& p) { return {p.n, p.c, p.oh, p.ow}; }

// ---- max pooling kernels -------------------------------------------------------------------------

/// The geometry of the tutorials' MaxPool2d(2): 2x2 windows, stride 2, no padding or dilation,
/// every window inside the plane (ceil_mode on an odd size adds a partial window: not this).
inline bool is_pool_2x2(const PoolParams& p) {
  return p.kh == 2 && p.kw == 2 && p.stride[0] == 2 && p.stride[1] == 2 && p.pad[0] == 0 && p.pad[1] == 0 &&
         p.dil[0] == 1 && p.dil[1] == 1 && 2 * p.oh <= p.h && 2 * p.ow <= p.w;
}

/// One output row of a 2x2, stride-2 max pool over input rows r0 and r1 (`base`: offset of r0[0]
/// in its plane). The maximum is a chain of branch-free max instructions and the index the first
/// candidate equal to it (the scan order's tie rule), selected with integer masks: on real
/// activations every comparison is a coin flip, and the branchy loop this replaces spent more
/// time on mispredictions than the GEMMs around it. Written so GCC vectorises it. Returns false
/// when a NaN was seen: the caller then redoes the row with the generic loop, where NaN wins.
template <typename T, bool kIdx>
bool max_pool_2x2_row(const T* __restrict r0, const T* __restrict r1, T* __restrict y, int64_t* __restrict idx,
                      int64_t ow, int64_t base, int64_t W) {
  int nan = 0;
  for (int64_t ox = 0; ox < ow; ++ox) {
    const T a = r0[2 * ox], b = r0[2 * ox + 1], c = r1[2 * ox], d = r1[2 * ox + 1];
    const T ab = a > b ? a : b, cd = c > d ? c : d, m = ab > cd ? ab : cd;
    const int64_t ea = -static_cast<int64_t>(a == m), eb = -static_cast<int64_t>(b == m);
    const int64_t ec = -static_cast<int64_t>(c == m);
    const int64_t k = ~ea & ((eb & 1) | (~eb & ((ec & W) | (~ec & (W + 1)))));
    nan |= (a != a) | (b != b) | (c != c) | (d != d);
    y[ox] = m;
    if constexpr (kIdx) idx[ox] = base + 2 * ox + k;
  }
  return nan == 0;
}

/// y[plane, oy, ox] = max over the window, idx = the flat offset of the maximum in its plane
/// (kIdx = false: no indices, for inference, where they would be a second and twice as large
/// output). The geometry is copied into locals first: the int64 index stores could alias
/// PoolParams' fields, and reloading them in the inner loop was slower than the loop body.
template <typename T, bool kIdx = true>
void max_pool_forward_cpu(const PoolParams& p, const T* x, T* y, int64_t* idx) {
  const int64_t H = p.h, W = p.w, OH = p.oh, OW = p.ow, ohw = OH * OW;
  const int64_t KH = p.kh, KW = p.kw, SH = p.stride[0], SW = p.stride[1];
  const int64_t PH = p.pad[0], PW = p.pad[1], DH = p.dil[0], DW = p.dil[1];
  const bool k2s2 = is_pool_2x2(p);
  // Any window shape; each window's rows and columns clipped once. NaN wins, as in PyTorch (a max
  // that hid a NaN would hide a diverged model).
  auto generic_row = [=](const T* xp, T* yr, int64_t* ir, int64_t oy) {
    const int64_t y0 = oy * SH - PH;
    const int64_t i0 = y0 < 0 ? (-y0 + DH - 1) / DH : 0;  // kernel rows with 0 <= y0 + i * DH < H
    const int64_t i1 = std::min(KH, (H - y0 + DH - 1) / DH);
    for (int64_t ox = 0; ox < OW; ++ox) {
      const int64_t x0 = ox * SW - PW;
      const int64_t j0 = x0 < 0 ? (-x0 + DW - 1) / DW : 0;
      const int64_t j1 = std::min(KW, (W - x0 + DW - 1) / DW);
      int64_t best = -1;
      T bv = T(0);
      for (int64_t i = i0; i < i1; ++i) {
        const int64_t row = (y0 + i * DH) * W;
        for (int64_t j = j0; j < j1; ++j) {
          const int64_t off = row + x0 + j * DW;
          const T v = xp[off];
          if (best < 0 || v > bv || v != v) bv = v, best = off;
        }
      }
      yr[ox] = bv;
      if constexpr (kIdx) ir[ox] = best;
    }
  };
  parallel_for(0, p.n * p.c, std::max<int64_t>(1, kGrainSize / std::max<int64_t>(ohw * KH * KW, 1)),
               [=](int64_t b, int64_t e) {
    for (int64_t pl = b; pl < e; ++pl) {
      const T* xp = x + pl * H * W;
      for (int64_t oy = 0; oy < OH; ++oy) {
        T* yr = y + pl * ohw + oy * OW;
        int64_t* ir = kIdx ? idx + pl * ohw + oy * OW : nullptr;
        if (!k2s2 || !max_pool_2x2_row<T, kIdx>(xp + 2 * oy * W, xp + (2 * oy + 1) * W, yr, ir, OW, 2 * oy * W, W))
          generic_row(xp, yr, ir, oy);
      }
    }
  });
}

/// One output row of max_pool_2x2_backward_cpu: input rows r0, r1 and their gradient rows d0,
/// d1, maxima ym, gradients g. Bit masks on g's bits rather than `cond ? g : 0`: GCC vectorises
/// the masks and the interleaved stores, while the selects stayed scalar (5x slower). A
/// function of its own, as max_pool_2x2_row: inside the caller's lambda the stores (memcpy, so
/// char-typed) could alias its captured sizes, and the loop was not vectorised. Returns false
/// when a maximum is NaN (the caller fixes those windows).
template <typename T>
bool max_pool_2x2_backward_row(const T* __restrict r0, const T* __restrict r1, const T* __restrict ym,
                               const T* __restrict g, T* __restrict d0, T* __restrict d1, int64_t ow) {
  using Bits = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
  static_assert(sizeof(Bits) == sizeof(T));
  int nan = 0;
  for (int64_t ox = 0; ox < ow; ++ox) {
    const T a = r0[2 * ox], b = r0[2 * ox + 1], c = r1[2 * ox], m = ym[ox];
    const Bits ea = -Bits(a == m), eb = -Bits(b == m) & ~ea, ec = -Bits(c == m) & ~ea & ~eb;
    const Bits ed = ~(ea | eb | ec);
    Bits gb;
    std::memcpy(&gb, g + ox, sizeof(T));
    const Bits oa = gb & ea, ob = gb & eb, oc = gb & ec, od = gb & ed;
    std::memcpy(d0 + 2 * ox, &oa, sizeof(T));
    std::memcpy(d0 + 2 * ox + 1, &ob, sizeof(T));
    std::memcpy(d1 + 2 * ox, &oc, sizeof(T));
    std::memcpy(d1 + 2 * ox + 1, &od, sizeof(T));
    nan |= m != m;
  }
  return nan == 0;
}

/// The gradient of a 2x2 stride-2 max pool from its input x and output y instead of stored
/// indices: the windows do not overlap, so each dx element is written once, g where it is the
/// window's first element equal to the maximum (the forward's scan-order rule) and 0 elsewhere.
/// One pass, no zero fill and no scatter, and the forward needs no int64 index output (twice the
/// size of y). A window holding a NaN sends g to its last NaN, as the forward's scan (and
/// PyTorch's) picks; such rows take a scalar loop. Rows and columns no window covers (odd sizes)
/// get 0.
template <typename T>
void max_pool_2x2_backward_cpu(const PoolParams& p, const T* x, const T* y, const T* dy, T* dx) {
  const int64_t H = p.h, W = p.w, OH = p.oh, OW = p.ow, ohw = OH * OW;
  parallel_for(0, p.n * p.c, std::max<int64_t>(1, kGrainSize / std::max<int64_t>(H * W, 1)), [=](int64_t b, int64_t e) {
    for (int64_t pl = b; pl < e; ++pl) {
      const T* xp = x + pl * H * W;
      T* dp = dx + pl * H * W;
      for (int64_t oy = 0; oy < OH; ++oy) {
        const T* __restrict r0 = xp + 2 * oy * W;
        const T* __restrict r1 = r0 + W;
        T* __restrict d0 = dp + 2 * oy * W;
        T* __restrict d1 = d0 + W;
        const T* __restrict ym = y + pl * ohw + oy * OW;
        const T* __restrict g = dy + pl * ohw + oy * OW;
        if (!max_pool_2x2_backward_row(r0, r1, ym, g, d0, d1, OW)) {
          for (int64_t ox = 0; ox < OW; ++ox) {
            if (ym[ox] == ym[ox]) continue;
            const T* cand[4] = {r0 + 2 * ox, r0 + 2 * ox + 1, r1 + 2 * ox, r1 + 2 * ox + 1};
            T* dst[4] = {d0 + 2 * ox, d0 + 2 * ox + 1, d1 + 2 * ox, d1 + 2 * ox + 1};
            int last = 0;
            for (int q = 0; q < 4; ++q) {
              if (*cand[q] != *cand[q]) last = q;
              *dst[q] = T(0);
            }
            *dst[last] = g[ox];
          }
        }
        for (int64_t q = 2 * OW; q < W; ++q) d0[q] = d1[q] = T(0);
      }
      std::fill(dp + 2 * OH * W, dp + H * W, T(0));
    }
  });
}

/// dx (zeroed) [plane, idx] += dy.
template <typename T>
void max_pool_backward_cpu(const PoolParams& p, const T* dy, const int64_t* idx, T* dx) {
  const int64_t HW = p.h * p.w, ohw = p.oh * p.ow;
  parallel_for(0, p.n * p.c, std::max<int64_t>(1, kGrainSize / std::max<int64_t>(ohw, 1)), [&](int64_t b, int64_t e) {
    for (int64_t pl = b; pl < e; ++pl) {
      T* xp = dx + pl * HW;
      for (int64_t i = 0; i < ohw; ++i) xp[idx[pl * ohw + i]] += dy[pl * ohw + i];
    }
  });
}

// ---- average pooling kernels (regular and adaptive windows) -----------------------------------------

/// One pooling window along one dim: [start, end) clipped to the input, and the divisor share.
struct Window {
  int64_t start, end, count;
};

/// The windows of avg pooling (adaptive = false) or adaptive pooling along one dim.
inline std::vector<Window> avg_windows(int64_t in, int64_t out, int64_t k, int64_t s, int64_t pad, bool include_pad,
                                       bool adaptive) {
  std::vector<Window> w(static_cast<size_t>(out));
  for (int64_t o = 0; o < out; ++o) {
    if (adaptive) {
      int64_t a = (o * in) / out, b = ((o + 1) * in + out - 1) / out;
      w[o] = {a, b, b - a};
    } else {
      int64_t a = o * s - pad, b = std::min(a + k, in + pad);
      int64_t padded = b - a;
      a = std::max<int64_t>(a, 0);
      b = std::min(b, in);
      w[o] = {a, b, include_pad ? padded : b - a};
    }
  }
  return w;
}

/// Geometry of an average pooling: regular (PoolParams) or adaptive.
struct AvgSpec {
  PoolParams p;
  bool adaptive = false;
};

template <typename T, bool Forward>
void avg_pool_cpu(const AvgSpec& sp, const T* in, T* out) {
  const PoolParams& p = sp.p;
  bool cip = p.count_include_pad;
  auto wh = avg_windows(p.h, p.oh, p.kh, p.stride[0], p.pad[0], cip, sp.adaptive);
  auto ww = avg_windows(p.w, p.ow, p.kw, p.stride[1], p.pad[1], cip, sp.adaptive);
  const int64_t HW = p.h * p.w, ohw = p.oh * p.ow;
  parallel_for(0, p.n * p.c, std::max<int64_t>(1, kGrainSize / std::max<int64_t>(HW + ohw, 1)), [&](int64_t b, int64_t e) {
    for (int64_t pl = b; pl < e; ++pl) {
      if constexpr (Forward) {
        const T* xp = in + pl * HW;
        for (int64_t oy = 0; oy < p.oh; ++oy)
          for (int64_t ox = 0; ox < p.ow; ++ox) {
            const Window &a = wh[oy], &c = ww[ox];
            T s = T(0);
            for (int64_t iy = a.start; iy < a.end; ++iy)
              for (int64_t ix = c.start; ix < c.end; ++ix) s += xp[iy * p.w + ix];
            int64_t div = a.count * c.count;
            out[pl * ohw + oy * p.ow + ox] = div > 0 ? s / static_cast<T>(div) : T(0);
          }
      } else {  // in = dy, out = dx
        T* xp = out + pl * HW;
        std::fill(xp, xp + HW, T(0));
        for (int64_t oy = 0; oy < p.oh; ++oy)
          for (int64_t ox = 0; ox < p.ow; ++ox) {
            const Window &a = wh[oy], &c = ww[ox];
            int64_t div = a.count * c.count;
            if (div == 0) continue;
            T g = in[pl * ohw + oy * p.ow + ox] / static_cast<T>(div);
            for (int64_t iy = a.start; iy < a.end; ++iy)
              for (int64_t ix = c.start; ix < c.end; ++ix) xp[iy * p.w + ix] += g;
          }
      }
    }
  });
}

/// PoolParams of an adaptive pooling that is a regular one (input divisible by output), for CUDA.
inline PoolParams adaptive_as_regular(const AvgSpec& sp, const char* op) {
  PoolParams p = sp.p;
  EMBER_CHECK(p.h % p.oh == 0 && p.w % p.ow == 0, op, ": on CUDA the input size (", p.h, ", ", p.w,
              ") must be divisible by the output size (", p.oh, ", ", p.ow, ") (not implemented on CUDA yet)");
  p.kh = p.h / p.oh, p.kw = p.w / p.ow;
  p.stride[0] = p.kh, p.stride[1] = p.kw, p.pad[0] = p.pad[1] = 0, p.dil[0] = p.dil[1] = 1;
  return p;
}

/// Forward (dy = nullptr direction: x → y) or backward (dy → dx) of average pooling; no autograd.
inline Tensor avg_pool_kernel(const AvgSpec& sp, const Tensor& in_t, bool forward, const char* op) {
  Tensor in = in_t.detach().contiguous();
  Tensor out = make_tensor(forward ? pool_out_shape(sp.p) : pool_in_shape(sp.p), in.dtype(), in.device());
  if (in.is_cuda()) {
#ifdef EMBER_WITH_CUDA
    PoolParams p = sp.adaptive ? adaptive_as_regular(sp, op) : sp.p;
    p.dtype = in.dtype();
    if (forward) cuda::avg_pool2d_forward(p, in.raw_data(), out.raw_data());
    else cuda::avg_pool2d_backward(p, in.raw_data(), out.raw_data());
#else
    fail_no_cuda(op);
#endif
    return out;
  }
  visit_floating(in.dtype(), op, [&]<typename T>() {
    if (forward) avg_pool_cpu<T, true>(sp, in.data_ptr<T>(), out.data_ptr<T>());
    else avg_pool_cpu<T, false>(sp, in.data_ptr<T>(), out.data_ptr<T>());
  });
  return out;
}

inline Tensor avg_pool_p(const Tensor& x, const AvgSpec& sp);

/// The adjoint of avg pooling: each output gradient spread evenly over its window.
inline Tensor avg_pool_backward_p(const Tensor& g, const AvgSpec& sp) {
  Tensor dx = avg_pool_kernel(sp, g, false, "avg_pool2d_backward");
  if (autograd::needs_grad(g)) {
    autograd::record("AvgPool2DBackwardBackward", dx, {g}, {},
                     [sp](const Tensor& gg, const autograd::BackwardCtx&) -> tensor_list { return {avg_pool_p(gg, sp)}; });
  }
  return dx;
}

inline Tensor avg_pool_p(const Tensor& x, const AvgSpec& sp) {
  Tensor y = avg_pool_kernel(sp, x, true, sp.adaptive ? "adaptive_avg_pool2d" : "avg_pool2d");
  if (autograd::needs_grad(x)) {
    autograd::record(sp.adaptive ? "AdaptiveAvgPool2DBackward" : "AvgPool2DBackward", y, {x}, {},
                     [sp](const Tensor& g, const autograd::BackwardCtx&) -> tensor_list {
                       return {avg_pool_backward_p(g, sp)};
                     });
  }
  return y;
}

/// Runs `f` on the 4-d view of a 3- or 4-d input and restores the input's rank.
template <typename F>
Tensor pool_batched(const Tensor& x, const F& f) {
  if (x.dim() == 4) return f(x);
  return f(x.unsqueeze(0)).squeeze(0);
}

}  // namespace detail

// ---- max pooling ------------------------------------------------------------------------------------

/// The gradient of max pooling: a zero tensor of `input_size` ([N, C, H, W]) with each g value
/// added at its plane's argmax `indices` (int64, positions in the H*W plane). Differentiable in g
/// (its backward gathers at the indices).
inline Tensor max_pool2d_backward(const Tensor& g, const Tensor& indices, const Shape& input_size) {
  const char* op = "max_pool2d_backward";
  EMBER_CHECK(g.defined() && indices.defined() && g.dim() == 4 && input_size.size() == 4, op,
              ": expected a 4-d grad_output and input_size, got ", g.sizes(), " and ", input_size);
  EMBER_CHECK(indices.dtype() == kInt64 && indices.sizes() == g.sizes(), op, ": expected int64 indices of shape ",
              g.sizes(), ", got ", indices.dtype(), " ", indices.sizes());
  check_same_device(op, {&g, &indices});
  PoolParams p;
  p.dtype = g.dtype();
  p.n = input_size[0], p.c = input_size[1], p.h = input_size[2], p.w = input_size[3];
  p.oh = g.size(2), p.ow = g.size(3);
  Tensor gc = g.detach().contiguous(), ic = indices.contiguous();
  Tensor dx = zeros(input_size, g.options());
  if (g.is_cuda()) {
#ifdef EMBER_WITH_CUDA
    cuda::max_pool2d_backward(p, gc.raw_data(), ic.data_ptr<int64_t>(), dx.raw_data());
#else
    fail_no_cuda(op);
#endif
  } else {
    visit_floating(g.dtype(), op, [&]<typename T>() {
      detail::max_pool_backward_cpu<T>(p, gc.data_ptr<T>(), ic.data_ptr<int64_t>(), dx.data_ptr<T>());
    });
  }
  if (autograd::needs_grad(g)) {
    autograd::record("MaxPool2DBackwardBackward", dx, {g}, {ic},
                     [p](const Tensor& gg, const autograd::BackwardCtx& c) -> tensor_list {
                       const Tensor& idx = c.saved(0);
                       Tensor flat = gg.reshape({p.n * p.c, p.h * p.w});
                       return {gather(flat, 1, idx.view({p.n * p.c, p.oh * p.ow})).view({p.n, p.c, p.oh, p.ow})};
                     });
  }
  return dx;
}

namespace detail {
/// The max-pool forward. `with_indices`: the caller wants the int64 argmax positions returned.
/// Otherwise none are made where the backward does without them: CPU inference (nothing will
/// need a backward), and a CPU 2x2 stride-2 pool, whose backward finds each window's argmax again
/// from the saved input and output (max_pool_2x2_backward_cpu) instead of storing an index per
/// output, twice the size of the values.
inline std::tuple<Tensor, Tensor> max_pool2d_impl(const Tensor& input, Int2 kernel_size, PoolStride stride,
                                                  Int2 padding, Int2 dilation, bool ceil_mode, bool with_indices) {
  const char* op = "max_pool2d";
  check_pool_input(op, input);
  Tensor x = input.dim() == 4 ? input : input.unsqueeze(0);
  PoolParams p = pool_params(op, x, kernel_size, stride.or_kernel(kernel_size), padding, dilation, ceil_mode);
  Tensor xc = x.detach().contiguous();
  const bool grad = autograd::needs_grad(x);
  const bool recompute = !with_indices && !x.is_cuda() && is_pool_2x2(p);
  const bool make_idx = with_indices || x.is_cuda() || (grad && !recompute);
  Tensor y = make_tensor(pool_out_shape(p), x.dtype(), x.device());
  Tensor idx = make_idx ? make_tensor(pool_out_shape(p), kInt64, x.device()) : Tensor();
  if (x.is_cuda()) {
#ifdef EMBER_WITH_CUDA
    cuda::max_pool2d_forward(p, xc.raw_data(), y.raw_data(), idx.data_ptr<int64_t>());
#else
    fail_no_cuda(op);
#endif
  } else {
    visit_floating(x.dtype(), op, [&]<typename T>() {
      if (make_idx) max_pool_forward_cpu<T, true>(p, xc.data_ptr<T>(), y.data_ptr<T>(), idx.data_ptr<int64_t>());
      else max_pool_forward_cpu<T, false>(p, xc.data_ptr<T>(), y.data_ptr<T>(), nullptr);
    });
  }
  if (grad) {
    Shape in_shape = pool_in_shape(p);
    if (make_idx) {
      autograd::record("MaxPool2DWithIndicesBackward", y, {x}, {idx},
                       [in_shape](const Tensor& g, const autograd::BackwardCtx& c) -> tensor_list {
                         return {max_pool2d_backward(g, c.saved(0), in_shape)};
                       });
    } else {
      // y.detach(): a view without autograd, so the node does not own its own output (no cycle),
      // and the saved-tensor version check still sees in-place changes of y.
      autograd::record("MaxPool2DWithIndicesBackward", y, {x}, {xc, y.detach()},
                       [p, in_shape](const Tensor& g, const autograd::BackwardCtx& c) -> tensor_list {
                         const Tensor &xs = c.saved(0), &ys = c.saved(1);
                         if (autograd::needs_grad(g)) {
                           // create_graph: the differentiable form, with the indices made now.
                           Tensor ind = make_tensor(pool_out_shape(p), kInt64, xs.device());
                           visit_floating(xs.dtype(), "max_pool2d_backward", [&]<typename T>() {
                             Tensor v = make_tensor(pool_out_shape(p), xs.dtype(), xs.device());
                             max_pool_forward_cpu<T, true>(p, xs.data_ptr<T>(), v.data_ptr<T>(), ind.data_ptr<int64_t>());
                           });
                           return {max_pool2d_backward(g, ind, in_shape)};
                         }
                         Tensor gc = g.contiguous(), dx = make_tensor(in_shape, g.dtype(), g.device());
                         visit_floating(g.dtype(), "max_pool2d_backward", [&]<typename T>() {
                           max_pool_2x2_backward_cpu<T>(p, xs.data_ptr<T>(), ys.data_ptr<T>(), gc.data_ptr<T>(),
                                                        dx.data_ptr<T>());
                         });
                         return {dx};
                       });
    }
  }
  if (input.dim() == 3) return {y.squeeze(0), with_indices ? idx.squeeze(0) : idx};
  return {y, idx};
}
}  // namespace detail

/// Max pooling (torch.nn.functional.max_pool2d with return_indices=True): the window maxima and
/// their int64 positions in each input H*W plane. stride defaults to kernel_size.
inline std::tuple<Tensor, Tensor> max_pool2d_with_indices(const Tensor& input, Int2 kernel_size,
                                                          PoolStride stride = std::nullopt, Int2 padding = 0,
                                                          Int2 dilation = 1, bool ceil_mode = false) {
  return detail::max_pool2d_impl(input, kernel_size, stride, padding, dilation, ceil_mode, true);
}

/// Max pooling (torch.nn.functional.max_pool2d): [N, C, H, W] → [N, C, oh, ow] with
/// oh = (H + 2 * pad - dilation * (k - 1) - 1) / stride + 1 (rounded up with ceil_mode).
inline Tensor max_pool2d(const Tensor& input, Int2 kernel_size, PoolStride stride = std::nullopt,
                         Int2 padding = 0, Int2 dilation = 1, bool ceil_mode = false) {
  return std::get<0>(detail::max_pool2d_impl(input, kernel_size, stride, padding, dilation, ceil_mode, false));
}

// ---- average pooling ----------------------------------------------------------------------------------

/// Average pooling (torch.nn.functional.avg_pool2d). With count_include_pad the divisor counts
/// the zero padding inside each window; otherwise only the input elements.
inline Tensor avg_pool2d(const Tensor& input, Int2 kernel_size, PoolStride stride = std::nullopt,
                         Int2 padding = 0, bool ceil_mode = false, bool count_include_pad = true) {
  const char* op = "avg_pool2d";
  detail::check_pool_input(op, input);
  return detail::pool_batched(input, [&](const Tensor& x) {
    detail::AvgSpec sp;
    sp.p = detail::pool_params(op, x, kernel_size, stride.or_kernel(kernel_size), padding, 1, ceil_mode);
    sp.p.count_include_pad = count_include_pad;
    return detail::avg_pool_p(x, sp);
  });
}

/// Adaptive average pooling (torch.nn.functional.adaptive_avg_pool2d): output cell (i, j) is the
/// mean over rows [floor(i * H / oh), ceil((i + 1) * H / oh)) and the same for columns.
inline Tensor adaptive_avg_pool2d(const Tensor& input, Int2 output_size) {
  const char* op = "adaptive_avg_pool2d";
  detail::check_pool_input(op, input);
  EMBER_CHECK(output_size.h > 0 && output_size.w > 0, op, ": output_size must be positive, got (", output_size.h, ", ",
              output_size.w, ")");
  return detail::pool_batched(input, [&](const Tensor& x) {
    detail::AvgSpec sp;
    sp.adaptive = true;
    sp.p.dtype = x.dtype();
    sp.p.n = x.size(0), sp.p.c = x.size(1), sp.p.h = x.size(2), sp.p.w = x.size(3);
    sp.p.oh = output_size.h, sp.p.ow = output_size.w;
    return detail::avg_pool_p(x, sp);
  });
}

}  // namespace ember

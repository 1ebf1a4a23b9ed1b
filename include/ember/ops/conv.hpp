#pragma once
/// 2-d convolution: conv2d, conv_transpose2d, and the two adjoints conv2d_input_grad /
/// conv2d_weight_grad (torch.nn.grad.conv2d_input / conv2d_weight).
///
/// The three primitives are linear in each argument and each other's adjoints, so every backward
/// formula is one of them and double backward (WGAN-GP) works to any order:
///   y  = conv2d(x, w)                 dx = input_grad(g, w)      dw = weight_grad(x, g)
///   dx = input_grad(g, w)             d/dg = conv2d(gg, w)       d/dw = weight_grad(gg, g)
///   dw = weight_grad(x, g)            d/dx = input_grad(g, gg)   d/dg = conv2d(x, gg)
/// conv_transpose2d is input_grad with its own geometry (plus bias and output_padding).
///
/// CPU: im2col + one GEMM per chunk of images and group (`cpu::gemm`; the columns of a chunk side
/// by side, see `conv_chunk`), images spread over threads, each thread reusing its own column
/// workspace (no allocation in a warm step); col2im for the adjoint. CUDA: the cuDNN launchers of cuda/dnn.hpp on contiguous NCHW.
///
/// Example:
/// ```
///   auto x = ember::randn({32, 1, 28, 28});
///   auto w = ember::randn({32, 1, 3, 3});
///   auto y = ember::conv2d(x, w, b, /*stride=*/1, /*padding=*/1);   // [32, 32, 28, 28]
///   auto z = ember::conv2d(x, w, {}, 1, "same");                    // same spatial size
///   auto u = ember::conv_transpose2d(y, w.transpose(0, 1).contiguous(), {}, 2, 1, 1);  // upsample
/// ```
#include <algorithm>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "ember/autograd/function.hpp"
#include "ember/core/parallel.hpp"
#include "ember/cuda/dnn.hpp"
#include "ember/ops/binary.hpp"
#include "ember/ops/copy.hpp"
#include "ember/ops/cpu_gemm.hpp"
#include "ember/ops/dispatch.hpp"
#include "ember/ops/factory.hpp"
#include "ember/ops/inplace.hpp"
#include "ember/ops/reduce.hpp"
#include "ember/ops/shape.hpp"

namespace ember {

/// A (height, width) pair of a 2-d geometry argument; one integer means both: `2` is {2, 2}.
struct Int2 {
  int64_t h = 0, w = 0;
  Int2(int64_t v) : h(v), w(v) {}                   // NOLINT: conv2d(x, w, b, 2) reads like PyTorch
  Int2(int64_t a, int64_t b) : h(a), w(b) {}        // NOLINT: conv2d(x, w, b, {2, 1})
  int64_t operator[](int i) const { return i == 0 ? h : w; }
  bool operator==(const Int2&) const = default;
};

/// Padding of a convolution: a number, a (h, w) pair, or the strings "valid" (no padding) and
/// "same" (output has the input's size; stride 1 only, as in PyTorch).
struct Conv2dPadding {
  Int2 size{0};
  bool same = false;
  Conv2dPadding(int64_t v) : size(v) {}                 // NOLINT
  Conv2dPadding(int64_t a, int64_t b) : size(a, b) {}   // NOLINT
  Conv2dPadding(Int2 p) : size(p) {}                    // NOLINT
  // An array reference, not `const char*`, so that a literal 0 is a number and not a null string.
  template <size_t N>
  Conv2dPadding(const char (&mode)[N]) : Conv2dPadding(std::string(mode)) {}  // NOLINT
  Conv2dPadding(const std::string& mode) {                               // NOLINT
    EMBER_CHECK(mode == "same" || mode == "valid", "conv2d: padding must be a number, a pair, \"same\" or "
                "\"valid\", got \"", mode, "\"");
    same = mode == "same";
  }
};

using cuda::ConvParams;

namespace detail {

// ---- CPU kernels ---------------------------------------------------------------------------------

/// A per-thread scratch buffer that only grows: the im2col columns of a warm training step reuse
/// the previous step's memory. `Slot` separates buffers that are alive at the same time.
template <typename T, int Slot>
T* conv_workspace(size_t n) {
  thread_local std::vector<T> buf;
  if (buf.size() < n) buf.resize(n);
  return buf.data();
}

/// The range [lo, hi) of output positions o for which o * s - p + k * d lies in [0, in).
inline void valid_range(int64_t in, int64_t out, int64_t s, int64_t p, int64_t kd, int64_t& lo, int64_t& hi) {
  int64_t off = p - kd;  // need o * s >= off and o * s < in + off
  lo = off <= 0 ? 0 : (off + s - 1) / s;
  hi = in + off <= 0 ? 0 : (in + off + s - 1) / s;
  lo = std::min(lo, out);
  hi = std::clamp(hi, lo, out);
}

inline bool is_pointwise(const ConvParams& p) {
  return p.kh == 1 && p.kw == 1 && p.stride[0] == 1 && p.stride[1] == 1 && p.pad[0] == 0 && p.pad[1] == 0 &&
         p.oh == p.h && p.ow == p.w;
}

/// Copies n elements of a short row (11 floats in the MNIST network's second layer, where a
/// memcpy call costs more than the copy, and the compiler turns a plain loop into one): up to
/// 4 x 32 bytes as fixed-size moves, the last ones overlapping the first, which the compiler
/// emits inline as vector moves.
template <typename T>
inline void copy_short(T* __restrict dst, const T* __restrict src, int64_t n) {
  constexpr int64_t B = 32 / sizeof(T), H = B / 2;
  if (n > 4 * B) {
    std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(T));  // long enough for the call to pay
  } else if (n > 2 * B) {
    std::memcpy(dst, src, 32);
    std::memcpy(dst + B, src + B, 32);
    std::memcpy(dst + n - 2 * B, src + n - 2 * B, 32);
    std::memcpy(dst + n - B, src + n - B, 32);
  } else if (n >= B) {
    std::memcpy(dst, src, 32);
    std::memcpy(dst + n - B, src + n - B, 32);
  } else if (n >= H) {
    std::memcpy(dst, src, 16);
    std::memcpy(dst + n - H, src + n - H, 16);
  } else {
    for (int64_t i = 0; i < n; ++i) dst[i] = src[i];
  }
}

/// dst[0, n) += src[0, n) for a short row, the add of copy_short: two fixed-size blocks, the
/// first and the last B elements, both loaded before either is stored, so an element in their
/// overlap is written twice with the same value (x + r, rounded once).
template <typename T>
inline void add_short(T* __restrict dst, const T* __restrict src, int64_t n) {
  constexpr int64_t B = 32 / sizeof(T);
  if (n >= B && n <= 2 * B) {
    T a[B], b[B];
    std::memcpy(a, dst, sizeof a);
    std::memcpy(b, dst + n - B, sizeof b);
    for (int64_t k = 0; k < B; ++k) {
      a[k] += src[k];
      b[k] += src[n - B + k];
    }
    std::memcpy(dst + n - B, b, sizeof b);
    std::memcpy(dst, a, sizeof a);
  } else {
    for (int64_t k = 0; k < n; ++k) dst[k] += src[k];
  }
}

/// col[(c * kh + i) * kw + j][oy * ow + ox] = x[c][oy * s - p + i * d][ox * s - p + j * d] (0 outside).
/// `ldcol` is the distance between rows of col (>= oh * ow): the columns of several images sit
/// side by side in one matrix so that one GEMM covers them all.
template <typename T>
void im2col(const T* x, T* col, const ConvParams& p, int64_t channels, int64_t ldcol) {
  const int64_t H = p.h, W = p.w, oh = p.oh, ow = p.ow;
  for (int64_t c = 0; c < channels; ++c) {
    const T* xc = x + c * H * W;
    for (int64_t i = 0; i < p.kh; ++i) {
      int64_t ylo, yhi;
      valid_range(H, oh, p.stride[0], p.pad[0], i * p.dil[0], ylo, yhi);
      for (int64_t j = 0; j < p.kw; ++j) {
        T* row = col + ((c * p.kh + i) * p.kw + j) * ldcol;
        int64_t xlo, xhi;
        valid_range(W, ow, p.stride[1], p.pad[1], j * p.dil[1], xlo, xhi);
        std::fill(row, row + ylo * ow, T(0));
        const T* xr = xc + (ylo * p.stride[0] - p.pad[0] + i * p.dil[0]) * W - p.pad[1] + j * p.dil[1];
        const int64_t xstep = p.stride[0] * W;
        if (xlo == 0 && xhi == ow && p.stride[1] == 1) {
          // No horizontal padding in this row: a straight window copy.
          for (int64_t oy = ylo; oy < yhi; ++oy, xr += xstep) copy_short(row + oy * ow, xr, ow);
        } else {
          for (int64_t oy = ylo; oy < yhi; ++oy, xr += xstep) {
            T* r = row + oy * ow;
            std::fill(r, r + xlo, T(0));
            if (p.stride[1] == 1) {
              copy_short(r + xlo, xr + xlo, xhi - xlo);
            } else {
              for (int64_t ox = xlo; ox < xhi; ++ox) r[ox] = xr[ox * p.stride[1]];
            }
            std::fill(r + xhi, r + ow, T(0));
          }
        }
        std::fill(row + yhi * ow, row + oh * ow, T(0));
      }
    }
  }
}

/// The adjoint of im2col: x[c][iy][ix] += col[...] for every column entry that maps inside x.
/// `x` must be zeroed by the caller; `ldcol` as in im2col.
template <typename T>
void col2im(const T* col, T* x, const ConvParams& p, int64_t channels, int64_t ldcol) {
  const int64_t H = p.h, W = p.w, oh = p.oh, ow = p.ow;
  for (int64_t c = 0; c < channels; ++c) {
    T* xc = x + c * H * W;
    for (int64_t i = 0; i < p.kh; ++i) {
      int64_t ylo, yhi;
      valid_range(H, oh, p.stride[0], p.pad[0], i * p.dil[0], ylo, yhi);
      for (int64_t j = 0; j < p.kw; ++j) {
        const T* row = col + ((c * p.kh + i) * p.kw + j) * ldcol;
        int64_t xlo, xhi;
        valid_range(W, ow, p.stride[1], p.pad[1], j * p.dil[1], xlo, xhi);
        T* xr = xc + (ylo * p.stride[0] - p.pad[0] + i * p.dil[0]) * W - p.pad[1] + j * p.dil[1];
        const int64_t xstep = p.stride[0] * W;
        for (int64_t oy = ylo; oy < yhi; ++oy, xr += xstep) {
          const T* __restrict r = row + oy * ow;
          if (p.stride[1] == 1) {
            add_short(xr + xlo, r + xlo, xhi - xlo);
          } else {
            for (int64_t ox = xlo; ox < xhi; ++ox) xr[ox * p.stride[1]] += r[ox];
          }
        }
      }
    }
  }
}

/// Runs f(begin, end) over the images of a convolution: spread over threads when there are enough
/// images to keep them busy (each GEMM then runs serially) and enough work to pay for waking them,
/// otherwise in one go so Eigen threads each GEMM itself. (A tiny convolution, e.g. two 8 x 8
/// images in a gradgradcheck, forked on every call: 20x slower on a loaded machine.)
template <typename F>
void for_images(const ConvParams& p, const F& f) {
  constexpr int64_t kMinParallelMacs = int64_t{1} << 18;  // ~0.1 ms of serial GEMM
  const int64_t macs = p.n * p.o * (p.c / p.groups) * p.kh * p.kw * p.oh * p.ow;
  const int64_t n = p.n;
  if (n >= 2 && n >= get_num_threads() && macs >= kMinParallelMacs) parallel_for(0, n, 1, f);
  else f(0, n);
}

/// How many images one GEMM covers. A per-image GEMM of a small feature map (64 x 288 x 121 in
/// the MNIST network's second layer) is too small for Eigen: packing the weight and the call
/// overhead are paid per image, and its kernel is far from its rate on ~100 columns. So the
/// im2col columns of a chunk of images are laid side by side, [K, chunk * oh * ow], enough for
/// ~1000 GEMM columns while the columns and the GEMM's output stay within ~1 MiB of floats (in
/// L2 between im2col, the GEMM and the scatter). A feature map of >= 1000 outputs (the first
/// MNIST layer, 26 x 26, whose GEMM has K = 9) stays one image per GEMM, written in place. The
/// chunk depends only on the geometry, never on the thread count.
inline int64_t conv_chunk(const ConvParams& p) {
  constexpr int64_t kCols = 1024, kElems = int64_t{1} << 18;
  const int64_t K = (p.c / p.groups) * p.kh * p.kw, og = p.o / p.groups, ohw = std::max<int64_t>(1, p.oh * p.ow);
  const int64_t by_size = kElems / std::max<int64_t>(1, (K + og) * ohw);
  return std::max<int64_t>(1, std::min(by_size, kCols / ohw));
}

/// Calls f(n0, m) for consecutive chunks [n0, n0 + m) of the images [b, e), m <= chunk.
template <typename F>
void for_chunks(int64_t b, int64_t e, int64_t chunk, const F& f) {
  // Equal chunks (e.g. 16 images at chunk 7: 6 + 5 + 5, not 7 + 7 + 2): the GEMM rate falls on
  // a narrow remainder.
  const int64_t count = (e - b + chunk - 1) / chunk;
  for (int64_t i = 0; i < count; ++i) {
    int64_t n0 = b + (e - b) * i / count, n1 = b + (e - b) * (i + 1) / count;
    f(n0, n1 - n0);
  }
}

/// y[n] (per group) = W_g [og, K] @ im2col(x[n, group]) [K, oh*ow] (+ bias[o] on every row
/// when given). A chunk of m images is one GEMM, [og, m * oh*ow], scattered into y with the
/// bias added on the way; a single image (or a pointwise convolution, which needs no columns)
/// is computed in place, onto rows pre-filled with the bias.
/// `cols` (optional, not for a pointwise convolution): where to keep the im2col columns of the
/// whole batch for the filter gradient (see conv_saved_cols), instead of a per-chunk scratch.
template <typename T>
void conv2d_forward_cpu(const ConvParams& p, const T* x, const T* w, T* y, const T* bias = nullptr, T* cols = nullptr) {
  const int64_t G = p.groups, cg = p.c / G, og = p.o / G, K = cg * p.kh * p.kw, ohw = p.oh * p.ow;
  const bool pointwise = is_pointwise(p);
  const int64_t chunk = pointwise ? 1 : conv_chunk(p);
  for_images(p, [&](int64_t b, int64_t e) {
    const int64_t mmax = std::min(chunk, e - b);
    T* col = pointwise || cols ? nullptr : conv_workspace<T, 0>(static_cast<size_t>(K * mmax * ohw));
    T* tmp = mmax > 1 ? conv_workspace<T, 2>(static_cast<size_t>(og * mmax * ohw)) : nullptr;
    for_chunks(b, e, chunk, [&](int64_t n0, int64_t m) {
      const int64_t ld = m * ohw;
      for (int64_t g = 0; g < G; ++g) {
        // The chunk's columns: [K, m * ohw] in the scratch, or a block of the batch's columns.
        T* cc = cols ? cols + g * K * p.n * ohw + n0 * ohw : col;
        const int64_t ldc = cols ? p.n * ohw : ld;
        if (!pointwise) {
          for (int64_t i = 0; i < m; ++i) im2col(x + ((n0 + i) * p.c + g * cg) * p.h * p.w, cc + i * ohw, p, cg, ldc);
        }
        const T* rhs = pointwise ? x + (n0 * p.c + g * cg) * p.h * p.w : cc;
        const int64_t ldr = pointwise ? ld : ldc;
        if (m == 1) {
          T* yg = y + (n0 * p.o + g * og) * ohw;
          if (bias) {
            for (int64_t o = 0; o < og; ++o) std::fill(yg + o * ohw, yg + (o + 1) * ohw, bias[g * og + o]);
          }
          cpu::gemm<T>(false, false, og, ohw, K, T(1), w + g * og * K, K, rhs, ldr, bias ? T(1) : T(0), yg, ohw);
          continue;
        }
        cpu::gemm<T>(false, false, og, ld, K, T(1), w + g * og * K, K, rhs, ldr, T(0), tmp, ld);
        for (int64_t i = 0; i < m; ++i) {
          T* yg = y + ((n0 + i) * p.o + g * og) * ohw;
          for (int64_t o = 0; o < og; ++o) {
            const T* __restrict src = tmp + o * ld + i * ohw;
            T* __restrict dst = yg + o * ohw;
            if (bias) {
              const T bo = bias[g * og + o];
              for (int64_t q = 0; q < ohw; ++q) dst[q] = src[q] + bo;
            } else {
              copy_short(dst, src, ohw);
            }
          }
        }
      }
    });
  });
}

/// dst [og, m * ohw] = the og channels of group g of dy for images n0 .. n0 + m, side by side
/// (the layout of a chunk's GEMM).
template <typename T>
void gather_chunk(const T* dy, T* dst, const ConvParams& p, int64_t n0, int64_t m, int64_t g, int64_t og) {
  const int64_t ohw = p.oh * p.ow, ld = m * ohw;
  for (int64_t i = 0; i < m; ++i) {
    const T* src = dy + ((n0 + i) * p.o + g * og) * ohw;
    for (int64_t o = 0; o < og; ++o) copy_short(dst + o * ld + i * ohw, src + o * ohw, ohw);
  }
}

/// dx[n] (per group) = col2im(W_g^T [K, og] @ dy[n, group] [og, oh*ow]), one GEMM per chunk of
/// images ([K, m * oh*ow]) and one col2im per image.
template <typename T>
void conv2d_backward_data_cpu(const ConvParams& p, const T* dy, const T* w, T* dx) {
  const int64_t G = p.groups, cg = p.c / G, og = p.o / G, K = cg * p.kh * p.kw, ohw = p.oh * p.ow;
  const bool pointwise = is_pointwise(p);
  const int64_t chunk = pointwise ? 1 : conv_chunk(p);
  for_images(p, [&](int64_t b, int64_t e) {
    const int64_t mmax = std::min(chunk, e - b);
    T* col = pointwise ? nullptr : conv_workspace<T, 0>(static_cast<size_t>(K * mmax * ohw));
    T* dyc = mmax > 1 ? conv_workspace<T, 2>(static_cast<size_t>(og * mmax * ohw)) : nullptr;
    for_chunks(b, e, chunk, [&](int64_t n0, int64_t m) {
      const int64_t ld = m * ohw;
      for (int64_t g = 0; g < G; ++g) {
        const T* rhs = dy + (n0 * p.o + g * og) * ohw;
        if (m > 1) {
          gather_chunk(dy, dyc, p, n0, m, g, og);
          rhs = dyc;
        }
        // [K, m * ohw] = W_g^T [K, og] @ dy [og, m * ohw], straight into dx for a pointwise convolution.
        T* xg0 = dx + (n0 * p.c + g * cg) * p.h * p.w;
        cpu::gemm<T>(true, false, K, ld, og, T(1), w + g * og * K, K, rhs, ld, T(0), pointwise ? xg0 : col, ld);
        if (!pointwise) {
          for (int64_t i = 0; i < m; ++i) {
            T* xg = dx + ((n0 + i) * p.c + g * cg) * p.h * p.w;
            std::fill(xg, xg + cg * p.h * p.w, T(0));
            col2im(col + i * ohw, xg, p, cg, ld);
          }
        }
      }
    });
  });
}

/// dw_g = sum_n dy[n, group] [og, oh*ow] @ im2col(x[n, group])^T, one GEMM per chunk of images
/// (the sum over the chunk's images is the GEMM's inner dimension). Threads accumulate partial
/// sums over their images in a private buffer, then add them into dw under a lock.
template <typename T>
void conv2d_backward_filter_cpu(const ConvParams& p, const T* x, const T* dy, T* dw, const T* cols = nullptr) {
  const int64_t G = p.groups, cg = p.c / G, og = p.o / G, K = cg * p.kh * p.kw, ohw = p.oh * p.ow;
  const bool pointwise = is_pointwise(p);
  const int64_t chunk = pointwise ? 1 : conv_chunk(p);
  const int64_t wsize = p.o * K;
  std::fill(dw, dw + wsize, T(0));
  std::mutex mu;
  for_images(p, [&](int64_t b, int64_t e) {
    const int64_t mmax = std::min(chunk, e - b);
    T* col = pointwise || cols ? nullptr : conv_workspace<T, 0>(static_cast<size_t>(K * mmax * ohw));
    T* dyc = mmax > 1 ? conv_workspace<T, 2>(static_cast<size_t>(og * mmax * ohw)) : nullptr;
    bool whole = b == 0 && e == p.n;  // one chunk: accumulate straight into dw
    T* acc = whole ? dw : conv_workspace<T, 1>(static_cast<size_t>(wsize));
    if (!whole) std::fill(acc, acc + wsize, T(0));
    for_chunks(b, e, chunk, [&](int64_t n0, int64_t m) {
      const int64_t ld = m * ohw;
      for (int64_t g = 0; g < G; ++g) {
        const T* lhs = dy + (n0 * p.o + g * og) * ohw;
        if (m > 1) {
          gather_chunk(dy, dyc, p, n0, m, g, og);
          lhs = dyc;
        }
        const T* rhs = pointwise ? x + (n0 * p.c + g * cg) * p.h * p.w : col;
        int64_t ldr = ld;
        if (cols && !pointwise) {
          rhs = cols + g * K * p.n * ohw + n0 * ohw;  // the forward's columns
          ldr = p.n * ohw;
        } else if (!pointwise) {
          for (int64_t i = 0; i < m; ++i) im2col(x + ((n0 + i) * p.c + g * cg) * p.h * p.w, col + i * ohw, p, cg, ld);
        }
        // acc_g [og, K] += dy [og, m * ohw] @ im2col^T [m * ohw, K]
        cpu::gemm<T>(false, true, og, K, ld, T(1), lhs, ld, rhs, ldr, T(1), acc + g * og * K, K);
      }
    });
    if (!whole) {
      std::lock_guard<std::mutex> lock(mu);
      for (int64_t i = 0; i < wsize; ++i) dw[i] += acc[i];
    }
  });
}

// ---- dispatch (device x dtype), no autograd --------------------------------------------------------

enum class ConvKernel { Forward, BackwardData, BackwardFilter };

/// Runs one of the three kernels on contiguous copies of its operands `a`, `b` and returns the
/// fresh result of shape `out_shape`. `bias` (Forward only): a per-output-channel bias added to
/// the result, inside the GEMM on the CPU.
/// `cols` (CPU only): Forward fills it with the batch's im2col columns when it is defined;
/// BackwardFilter reads them from it instead of building them again.
inline Tensor conv_kernel(ConvKernel k, const Tensor& a_in, const Tensor& b_in, const Shape& out_shape, ConvParams p,
                          const Tensor& bias_in = {}, const Tensor& cols = {}) {
  Tensor a = a_in.detach().contiguous(), b = b_in.detach().contiguous();
  p.dtype = a.dtype();
  Tensor out = make_tensor(out_shape, a.dtype(), a.device());
  if (out.numel() == 0) return out;
  auto add_bias = [&] {
    if (bias_in.defined()) out.add_(bias_in.detach().view({1, bias_in.numel(), 1, 1}));
    return out;
  };
  if (a.numel() == 0 || b.numel() == 0) {
    out.zero_();
    return add_bias();
  }
  if (a.is_cuda()) {
#ifdef EMBER_WITH_CUDA
    switch (k) {
      case ConvKernel::Forward: cuda::conv2d_forward(p, a.raw_data(), b.raw_data(), out.raw_data()); break;
      case ConvKernel::BackwardData: cuda::conv2d_backward_data(p, a.raw_data(), b.raw_data(), out.raw_data()); break;
      case ConvKernel::BackwardFilter: cuda::conv2d_backward_filter(p, a.raw_data(), b.raw_data(), out.raw_data()); break;
    }
#else
    fail_no_cuda("conv2d");
#endif
    return add_bias();
  }
  visit_floating(a.dtype(), "conv2d", [&]<typename T>() {
    switch (k) {
      case ConvKernel::Forward: {
        Tensor bias = bias_in.defined() ? bias_in.detach().contiguous() : Tensor();
        conv2d_forward_cpu<T>(p, a.data_ptr<T>(), b.data_ptr<T>(), out.data_ptr<T>(),
                              bias.defined() ? bias.data_ptr<T>() : nullptr, cols.defined() ? cols.data_ptr<T>() : nullptr);
        break;
      }
      case ConvKernel::BackwardData: conv2d_backward_data_cpu<T>(p, a.data_ptr<T>(), b.data_ptr<T>(), out.data_ptr<T>()); break;
      case ConvKernel::BackwardFilter:
        conv2d_backward_filter_cpu<T>(p, a.data_ptr<T>(), b.data_ptr<T>(), out.data_ptr<T>(),
                                      cols.defined() ? cols.data_ptr<T>() : nullptr);
        break;
    }
  });
  return out;
}

inline Shape conv_x_shape(const ConvParams& p) { return {p.n, p.c, p.h, p.w}; }
inline Shape conv_w_shape(const ConvParams& p) { return {p.o, p.c / p.groups, p.kh, p.kw}; }
inline Shape conv_y_shape(const ConvParams& p) { return {p.n, p.o, p.oh, p.ow}; }

// ---- the three differentiable primitives (4-d operands, geometry p) --------------------------------

inline Tensor conv2d_p(const Tensor& x, const Tensor& w, const ConvParams& p);
inline Tensor conv2d_input_grad_p(const Tensor& g, const Tensor& w, const ConvParams& p);
inline Tensor conv2d_weight_grad_p(const Tensor& x, const Tensor& g, const ConvParams& p, const Tensor& cols = {});

/// The im2col columns a CPU forward keeps for the filter gradient, [C * kh * kw, N * oh * ow]
/// (PyTorch's CPU slow_conv2d kept them too, as `finput`): building them again in the backward
/// was ~4 % of the MNIST network's training step. Undefined (made again per chunk in the
/// backward) when the weight needs no gradient, for a pointwise convolution (its columns are
/// the input), on CUDA, and beyond 2^23 elements (a photo-sized layer's columns would be
/// hundreds of MB held from the forward to the backward).
inline Tensor conv_saved_cols(const Tensor& x, const Tensor& w, const ConvParams& p) {
  constexpr int64_t kMaxElements = int64_t{1} << 23;
  if (x.is_cuda() || !autograd::needs_grad(w) || is_pointwise(p)) return {};
  const int64_t rows = p.c * p.kh * p.kw, cols = p.n * p.oh * p.ow;
  if (rows <= 0 || cols <= 0 || rows > kMaxElements / cols) return {};
  return make_tensor({rows, cols}, x.dtype(), x.device());
}

/// y = conv2d(x, w) without bias.
inline Tensor conv2d_p(const Tensor& x, const Tensor& w, const ConvParams& p) {
  Tensor cols = conv_saved_cols(x, w, p);
  Tensor y = conv_kernel(ConvKernel::Forward, x, w, conv_y_shape(p), p, {}, cols);
  if (autograd::needs_grad(x, w)) {
    autograd::record("ConvolutionBackward", y, {x, w},
                     {w.requires_grad() ? x : Tensor(), x.requires_grad() ? w : Tensor(), cols},
                     [p](const Tensor& g, const autograd::BackwardCtx& c) -> tensor_list {
                       return {c.needs(0) ? conv2d_input_grad_p(g, c.saved(1), p) : Tensor(),
                               c.needs(1) ? conv2d_weight_grad_p(c.saved(0), g, p, c.saved(2)) : Tensor()};
                     });
  }
  return y;
}

/// y = conv2d(x, w) + bias[o], the bias added inside the kernel. The bias gradient is the
/// per-channel sum of g.
inline Tensor conv2d_bias_p(const Tensor& x, const Tensor& w, const Tensor& bias, const ConvParams& p) {
  Tensor cols = conv_saved_cols(x, w, p);
  Tensor y = conv_kernel(ConvKernel::Forward, x, w, conv_y_shape(p), p, bias, cols);
  if (autograd::needs_grad(x, w, bias)) {
    autograd::record("ConvolutionBackward", y, {x, w, bias},
                     {w.requires_grad() ? x : Tensor(), x.requires_grad() ? w : Tensor(), cols},
                     [p](const Tensor& g, const autograd::BackwardCtx& c) -> tensor_list {
                       return {c.needs(0) ? conv2d_input_grad_p(g, c.saved(1), p) : Tensor(),
                               c.needs(1) ? conv2d_weight_grad_p(c.saved(0), g, p, c.saved(2)) : Tensor(),
                               c.needs(2) ? sum(g, {0, 2, 3}) : Tensor()};
                     });
  }
  return y;
}

/// dx = the adjoint of conv2d(., w) applied to g (g has y's shape, the result x's).
inline Tensor conv2d_input_grad_p(const Tensor& g, const Tensor& w, const ConvParams& p) {
  Tensor dx = conv_kernel(ConvKernel::BackwardData, g, w, conv_x_shape(p), p);
  if (autograd::needs_grad(g, w)) {
    autograd::record("ConvolutionBackwardData", dx, {g, w}, {w.requires_grad() ? g : Tensor(), g.requires_grad() ? w : Tensor()},
                     [p](const Tensor& gg, const autograd::BackwardCtx& c) -> tensor_list {
                       return {c.needs(0) ? conv2d_p(gg, c.saved(1), p) : Tensor(),
                               c.needs(1) ? conv2d_weight_grad_p(gg, c.saved(0), p) : Tensor()};
                     });
  }
  return dx;
}

/// dw = the adjoint of conv2d(x, .) applied to g (the result has w's shape). `cols`: x's
/// im2col columns when the forward kept them (conv_saved_cols).
inline Tensor conv2d_weight_grad_p(const Tensor& x, const Tensor& g, const ConvParams& p, const Tensor& cols) {
  Tensor dw = conv_kernel(ConvKernel::BackwardFilter, x, g, conv_w_shape(p), p, {}, cols);
  if (autograd::needs_grad(x, g)) {
    autograd::record("ConvolutionBackwardFilter", dw, {x, g}, {g.requires_grad() ? x : Tensor(), x.requires_grad() ? g : Tensor()},
                     [p](const Tensor& gw, const autograd::BackwardCtx& c) -> tensor_list {
                       return {c.needs(0) ? conv2d_input_grad_p(c.saved(1), gw, p) : Tensor(),
                               c.needs(1) ? conv2d_p(c.saved(0), gw, p) : Tensor()};
                     });
  }
  return dw;
}

// ---- argument checks and geometry ------------------------------------------------------------------

inline void check_conv_common(const char* op, const Tensor& x, const Tensor& w, const Tensor& bias) {
  EMBER_CHECK(x.defined() && w.defined(), op, ": undefined input or weight");
  EMBER_CHECK(w.dim() == 4, op, ": expected a 4-d weight, got shape ", w.sizes());
  EMBER_CHECK(x.dim() == 3 || x.dim() == 4, op, ": expected a 3-d [C, H, W] or 4-d [N, C, H, W] input, got shape ",
              x.sizes());
  EMBER_CHECK(x.is_floating_point(), op, ": expected a floating point input, got ", x.dtype());
  EMBER_CHECK(x.dtype() == w.dtype(), op, ": input dtype ", x.dtype(), " and weight dtype ", w.dtype(),
              " differ (convert one with .to(dtype))");
  check_same_device(op, {&x, &w, &bias});
  if (bias.defined()) {
    EMBER_CHECK(bias.dtype() == x.dtype(), op, ": bias dtype ", bias.dtype(), " differs from the input's ", x.dtype());
  }
}

inline void check_geometry(const char* op, Int2 stride, Int2 pad, Int2 dil) {
  EMBER_CHECK(stride.h > 0 && stride.w > 0, op, ": stride must be positive, got (", stride.h, ", ", stride.w, ")");
  EMBER_CHECK(dil.h > 0 && dil.w > 0, op, ": dilation must be positive, got (", dil.h, ", ", dil.w, ")");
  EMBER_CHECK(pad.h >= 0 && pad.w >= 0, op, ": padding must be non-negative, got (", pad.h, ", ", pad.w, ")");
}

inline void set_geometry(ConvParams& p, Int2 stride, Int2 pad, Int2 dil) {
  p.stride[0] = stride.h;
  p.stride[1] = stride.w;
  p.pad[0] = pad.h;
  p.pad[1] = pad.w;
  p.dil[0] = dil.h;
  p.dil[1] = dil.w;
}

/// Output size of a convolution along one dim; throws when the dilated kernel exceeds the padded input.
inline int64_t conv_out_size(const char* op, const Shape& xs, int64_t in, int64_t k, int64_t s, int64_t pad,
                             int64_t d) {
  int64_t span = d * (k - 1) + 1;
  EMBER_CHECK(in + 2 * pad >= span, op, ": kernel size (dilated) ", span, " is larger than the padded input size ",
              in + 2 * pad, " (input shape ", xs, ", padding ", pad, ")");
  return (in + 2 * pad - span) / s + 1;
}

inline Tensor add_channel_bias(const Tensor& y, const Tensor& bias) {
  if (!bias.defined()) return y;
  return add(y, bias.view({1, bias.numel(), 1, 1}));
}

}  // namespace detail

// ---- public API -----------------------------------------------------------------------------------

/// 2-d convolution (torch.nn.functional.conv2d): x [N, C, H, W] (or [C, H, W]), weight
/// [O, C / groups, kh, kw], optional bias [O] → [N, O, oh, ow] with
/// oh = (H + 2 * pad - dilation * (kh - 1) - 1) / stride + 1. Differentiable in all tensors, to
/// any order.
inline Tensor conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias = {}, Int2 stride = 1,
                     Conv2dPadding padding = 0, Int2 dilation = 1, int64_t groups = 1) {
  const char* op = "conv2d";
  detail::check_conv_common(op, input, weight, bias);
  bool batched = input.dim() == 4;
  Tensor x = batched ? input : input.unsqueeze(0);
  EMBER_CHECK(groups >= 1, op, ": groups must be positive, got ", groups);
  int64_t O = weight.size(0);
  EMBER_CHECK(O % groups == 0, op, ": the output channels ", O, " (weight ", weight.sizes(),
              ") must be divisible by groups=", groups);
  EMBER_CHECK(x.size(1) == weight.size(1) * groups, op, ": expected input with ", weight.size(1) * groups,
              " channels (weight ", weight.sizes(), groups > 1 ? ", groups=" + std::to_string(groups) : std::string(),
              "), got input of shape ", input.sizes());
  if (bias.defined()) {
    EMBER_CHECK(bias.dim() == 1 && bias.size(0) == O, op, ": expected a bias of shape [", O, "], got ", bias.sizes());
  }
  int64_t kh = weight.size(2), kw = weight.size(3);
  Int2 pad = padding.size;
  // "same" with an even dilated kernel needs one more row/column of padding on the bottom/right
  // than on the top/left (as PyTorch): pad by the larger amount and drop the extra first row.
  Int2 skip{0};
  if (padding.same) {
    EMBER_CHECK(stride == Int2(1), op, ": padding=\"same\" is not supported for strided convolutions");
    int64_t th = dilation.h * (kh - 1), tw = dilation.w * (kw - 1);
    pad = Int2((th + 1) / 2, (tw + 1) / 2);
    skip = Int2(th % 2, tw % 2);
  }
  detail::check_geometry(op, stride, pad, dilation);
  ConvParams p;
  p.n = x.size(0), p.c = x.size(1), p.h = x.size(2), p.w = x.size(3);
  p.o = O, p.kh = kh, p.kw = kw, p.groups = groups;
  detail::set_geometry(p, stride, pad, dilation);
  p.oh = detail::conv_out_size(op, input.sizes(), p.h, kh, stride.h, pad.h, dilation.h);
  p.ow = detail::conv_out_size(op, input.sizes(), p.w, kw, stride.w, pad.w, dilation.w);
  Tensor y;
  if (bias.defined() && !skip.h && !skip.w) {
    y = detail::conv2d_bias_p(x, weight, bias, p);
  } else {
    y = detail::conv2d_p(x, weight, p);
    if (skip.h) y = y.slice(2, 1, p.oh);
    if (skip.w) y = y.slice(3, 1, p.ow);
    y = detail::add_channel_bias(y, bias);
  }
  return batched ? y : y.squeeze(0);
}

/// The gradient of conv2d w.r.t. its input (torch.nn.grad.conv2d_input): grad_output
/// [N, O, oh, ow] → [N, C, H, W] = input_size. Differentiable in grad_output and weight.
inline Tensor conv2d_input_grad(const Tensor& grad_output, const Tensor& weight, const Shape& input_size,
                                Int2 stride = 1, Int2 padding = 0, Int2 dilation = 1, int64_t groups = 1) {
  const char* op = "conv2d_input_grad";
  detail::check_conv_common(op, grad_output, weight, Tensor());
  EMBER_CHECK(grad_output.dim() == 4 && input_size.size() == 4, op, ": expected 4-d grad_output and input_size, got ",
              grad_output.sizes(), " and ", input_size);
  detail::check_geometry(op, stride, padding, dilation);
  ConvParams p;
  p.n = input_size[0], p.c = input_size[1], p.h = input_size[2], p.w = input_size[3];
  p.o = weight.size(0), p.kh = weight.size(2), p.kw = weight.size(3), p.groups = groups;
  detail::set_geometry(p, stride, padding, dilation);
  EMBER_CHECK(groups >= 1 && p.o % groups == 0 && p.c == weight.size(1) * groups, op, ": weight ", weight.sizes(),
              " with groups=", groups, " does not fit input_size ", input_size);
  p.oh = detail::conv_out_size(op, input_size, p.h, p.kh, stride.h, padding.h, dilation.h);
  p.ow = detail::conv_out_size(op, input_size, p.w, p.kw, stride.w, padding.w, dilation.w);
  EMBER_CHECK(grad_output.sizes() == detail::conv_y_shape(p), op, ": expected grad_output of shape ",
              detail::conv_y_shape(p), ", got ", grad_output.sizes());
  return detail::conv2d_input_grad_p(grad_output, weight, p);
}

/// The gradient of conv2d w.r.t. its weight (torch.nn.grad.conv2d_weight): input [N, C, H, W],
/// grad_output [N, O, oh, ow] → weight_size [O, C / groups, kh, kw]. Differentiable in both.
inline Tensor conv2d_weight_grad(const Tensor& input, const Tensor& grad_output, const Shape& weight_size,
                                 Int2 stride = 1, Int2 padding = 0, Int2 dilation = 1, int64_t groups = 1) {
  const char* op = "conv2d_weight_grad";
  detail::check_conv_common(op, input, grad_output, Tensor());
  EMBER_CHECK(input.dim() == 4 && grad_output.dim() == 4 && weight_size.size() == 4, op,
              ": expected 4-d input, grad_output and weight_size, got ", input.sizes(), ", ", grad_output.sizes(),
              " and ", weight_size);
  detail::check_geometry(op, stride, padding, dilation);
  ConvParams p;
  p.n = input.size(0), p.c = input.size(1), p.h = input.size(2), p.w = input.size(3);
  p.o = weight_size[0], p.kh = weight_size[2], p.kw = weight_size[3], p.groups = groups;
  detail::set_geometry(p, stride, padding, dilation);
  EMBER_CHECK(groups >= 1 && p.o % groups == 0 && p.c == weight_size[1] * groups, op, ": weight_size ", weight_size,
              " with groups=", groups, " does not fit input ", input.sizes());
  p.oh = detail::conv_out_size(op, input.sizes(), p.h, p.kh, stride.h, padding.h, dilation.h);
  p.ow = detail::conv_out_size(op, input.sizes(), p.w, p.kw, stride.w, padding.w, dilation.w);
  EMBER_CHECK(grad_output.sizes() == detail::conv_y_shape(p), op, ": expected grad_output of shape ",
              detail::conv_y_shape(p), ", got ", grad_output.sizes());
  return detail::conv2d_weight_grad_p(input, grad_output, p);
}

/// Transposed 2-d convolution (torch.nn.functional.conv_transpose2d; note PyTorch's argument
/// order: output_padding, groups, dilation): x [N, C_in, H, W] (or 3-d), weight
/// [C_in, C_out / groups, kh, kw], bias [C_out] → [N, C_out, Ho, Wo] with
/// Ho = (H - 1) * stride - 2 * padding + dilation * (kh - 1) + output_padding + 1.
/// It is the input gradient of the conv2d that maps [Ho, Wo] back to [H, W].
inline Tensor conv_transpose2d(const Tensor& input, const Tensor& weight, const Tensor& bias = {}, Int2 stride = 1,
                               Int2 padding = 0, Int2 output_padding = 0, int64_t groups = 1, Int2 dilation = 1) {
  const char* op = "conv_transpose2d";
  detail::check_conv_common(op, input, weight, bias);
  detail::check_geometry(op, stride, padding, dilation);
  bool batched = input.dim() == 4;
  Tensor x = batched ? input : input.unsqueeze(0);
  EMBER_CHECK(groups >= 1, op, ": groups must be positive, got ", groups);
  int64_t cin = weight.size(0);
  EMBER_CHECK(cin % groups == 0, op, ": the input channels ", cin, " (weight ", weight.sizes(),
              ") must be divisible by groups=", groups);
  EMBER_CHECK(x.size(1) == cin, op, ": expected input with ", cin, " channels (weight ", weight.sizes(),
              "), got input of shape ", input.sizes());
  for (int i = 0; i < 2; ++i) {
    EMBER_CHECK(output_padding[i] >= 0 && (output_padding[i] < stride[i] || output_padding[i] < dilation[i]), op,
                ": output padding must be smaller than either stride or dilation, got output_padding=(",
                output_padding.h, ", ", output_padding.w, "), stride=(", stride.h, ", ", stride.w, "), dilation=(",
                dilation.h, ", ", dilation.w, ")");
  }
  int64_t cout = weight.size(1) * groups;
  if (bias.defined()) {
    EMBER_CHECK(bias.dim() == 1 && bias.size(0) == cout, op, ": expected a bias of shape [", cout, "], got ",
                bias.sizes());
  }
  ConvParams p;
  p.n = x.size(0), p.c = cout, p.o = cin, p.kh = weight.size(2), p.kw = weight.size(3), p.groups = groups;
  p.oh = x.size(2), p.ow = x.size(3);
  detail::set_geometry(p, stride, padding, dilation);
  p.h = (p.oh - 1) * stride.h - 2 * padding.h + dilation.h * (p.kh - 1) + output_padding.h + 1;
  p.w = (p.ow - 1) * stride.w - 2 * padding.w + dilation.w * (p.kw - 1) + output_padding.w + 1;
  EMBER_CHECK(p.h > 0 && p.w > 0, op, ": the output size (", p.h, ", ", p.w, ") is too small for input shape ",
              input.sizes(), " with padding (", padding.h, ", ", padding.w, ")");
  Tensor y = detail::add_channel_bias(detail::conv2d_input_grad_p(x, weight, p), bias);
  return batched ? y : y.squeeze(0);
}

}  // namespace ember

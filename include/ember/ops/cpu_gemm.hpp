#pragma once
/// `cpu::gemm`: the one CPU matrix-product primitive every op uses (matmul and linear, the three
/// convolution kernels, the fused LSTM/GRU layers), in BLAS's terms on row-major buffers:
///
///   C [m, n] = alpha * op(A) @ op(B) + beta * C,   op(X) = X or X^T
///
/// A is stored row-major with leading dimension lda: as [m, k] when !trans_a, as [k, m] when
/// trans_a (a transposed view costs nothing). Likewise B ([k, n] or [n, k], ldb) and C ([m, n],
/// ldc). With beta == 0, C's contents are ignored (BLAS semantics: NaNs there do not propagate).
///
/// Why one function: Eigen instantiates its GEMM machinery (packing, the register-blocked kernel,
/// threading) per product *expression*. When each op wrote its own `Map * Map` expression, every
/// translation unit including `ember.hpp` instantiated two dozen variants of it, compiled them at
/// -O3 in every program that used them, and paid ~10 s of compile time for it before writing a
/// line. Routing every product through this template leaves four layouts per scalar type.
///
/// Threading: Eigen threads a large product itself when called outside an OpenMP region and runs
/// serially inside one, so callers choose by where they call it (see `detail::gemm_cpu_layout`).
///
/// Example (y = x @ w^T, as in `linear`):
/// ```
///   ember::cpu::gemm<float>(false, true, batch, out_features, in_features, 1.f, x, in_features,
///                           w, in_features, 0.f, y, out_features);
/// ```
#include <cstdint>

#include <Eigen/Core>

namespace ember::cpu {

namespace detail {

template <typename T, int LA, int LB>
void gemm_layout(int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda, const T* b, int64_t ldb,
                 T* c, int64_t ldc) {
  using Stride = Eigen::OuterStride<>;
  using MapA = Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, LA>, Eigen::Unaligned, Stride>;
  using MapB = Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, LB>, Eigen::Unaligned, Stride>;
  using MapC = Eigen::Map<Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>, Eigen::Unaligned, Stride>;
  MapC cm(c, m, n, Stride(ldc));
  // One expression form only: `+= alpha * A * B` is how Eigen evaluates `= A * B` anyway (zero the
  // destination, then scale-and-add), so results are the same bits as the plain product.
  cm.noalias() += alpha * MapA(a, m, k, Stride(lda)) * MapB(b, k, n, Stride(ldb));
}

}  // namespace detail

template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda,
          const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  // Scale (or clear) C first. A row of C is contiguous, so this is one pass whatever ldc is.
  if (beta != T(1)) {
    for (int64_t i = 0; i < m; ++i) {
      T* row = c + i * ldc;
      if (beta == T(0)) {
        for (int64_t j = 0; j < n; ++j) row[j] = T(0);
      } else {
        for (int64_t j = 0; j < n; ++j) row[j] *= beta;
      }
    }
  }
  if (k <= 0 || alpha == T(0)) return;  // an empty sum: only beta * C remains
  // A row-major [k, m] buffer read as its transpose is a column-major [m, k] one with the same ld.
  constexpr int R = Eigen::RowMajor, C = Eigen::ColMajor;
  if (!trans_a && !trans_b) detail::gemm_layout<T, R, R>(m, n, k, alpha, a, lda, b, ldb, c, ldc);
  else if (!trans_a && trans_b) detail::gemm_layout<T, R, C>(m, n, k, alpha, a, lda, b, ldb, c, ldc);
  else if (trans_a && !trans_b) detail::gemm_layout<T, C, R>(m, n, k, alpha, a, lda, b, ldb, c, ldc);
  else detail::gemm_layout<T, C, C>(m, n, k, alpha, a, lda, b, ldb, c, ldc);
}

}  // namespace ember::cpu

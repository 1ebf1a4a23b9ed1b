#pragma once
/// The interface between the header-only core and the CUDA kernels in kernels/*.cu.
/// Only plain structs and declarations live here: no CUDA header is needed to include it, and the
/// definitions come from the ember::cuda static library (EMBER_WITH_CUDA is defined by that target).
#include <cstdint>

#include "ember/core/dtype.hpp"

namespace ember::cuda {

/// A tensor as a kernel sees it: data pointer (already offset), dtype and geometry in elements.
/// For elementwise ops, inputs are given in the output's shape with stride 0 on broadcast dims.
struct TensorArg {
  void* data = nullptr;
  DType dtype = kFloat32;
  int ndim = 0;
  int64_t sizes[8] = {};
  int64_t strides[8] = {};
  int64_t numel() const {
    int64_t n = 1;
    for (int i = 0; i < ndim; ++i) n *= sizes[i];
    return n;
  }
};

/// Elementwise unary ops; `alpha`/`beta` carry the op's scalar parameters where it has any.
enum class UnaryOp : int {
  Neg, Exp, Log, Log1p, Expm1, Sqrt, Rsqrt, Abs, Sign, Square, Reciprocal, Sin, Cos, Tanh, Sigmoid,
  Relu, LeakyRelu /*alpha=slope*/, Elu /*alpha*/, GeluErf, GeluTanh, Softplus /*alpha=beta, beta=threshold*/,
  Silu, Clamp /*alpha=min, beta=max*/, ClampMin /*alpha*/, ClampMax /*alpha*/, PowScalar /*alpha=exponent*/,
  Floor, Ceil, Round, LogicalNot, IsNan
};

/// Elementwise binary ops; Add/Sub compute a + alpha*b / a - alpha*b.
enum class BinaryOp : int {
  Add, Sub, Mul, Div, Pow, Maximum, Minimum, Eq, Ne, Lt, Le, Gt, Ge, LogicalAnd, LogicalOr
};

}  // namespace ember::cuda

namespace ember::cuda {

// ---- kernels/copy.cu -------------------------------------------------------------------------
/// dst = src converted to dst's dtype; both on the GPU, any strides (src in dst's shape, may broadcast).
void copy(const TensorArg& dst, const TensorArg& src);
/// Every element of out = value.
void fill(const TensorArg& out, double value);

// ---- kernels/elementwise.cu ------------------------------------------------------------------
/// out and in share dtype, except comparisons/logical ops whose out is bool.
void unary(UnaryOp op, const TensorArg& out, const TensorArg& in, double alpha, double beta);
void binary(BinaryOp op, const TensorArg& out, const TensorArg& a, const TensorArg& b, double alpha);
/// out = cond ? a : b (cond is bool; all given in out's shape).
void where(const TensorArg& out, const TensorArg& cond, const TensorArg& a, const TensorArg& b);

// ---- kernels/reduce.cu -----------------------------------------------------------------------
enum class ReduceOp : int { Sum, Prod, Max, Min, ArgMax, ArgMin };
/// Reduces a contiguous [outer, inner] input along inner into out[outer] (int64 for Arg*).
void reduce_last(ReduceOp op, const TensorArg& out, const TensorArg& in, int64_t outer, int64_t inner);
/// Numerically stable (log-)softmax of a contiguous [outer, inner] input along inner.
void softmax_last(const TensorArg& out, const TensorArg& in, int64_t outer, int64_t inner, bool log);

// ---- kernels/random.cu (Philox, identical streams to the CPU) ----------------------------------
void uniform(const TensorArg& out, uint64_t seed, uint64_t offset, double lo, double hi);
void normal(const TensorArg& out, uint64_t seed, uint64_t offset, double mean, double std);

// ---- kernels/index.cu (contiguous tensors) ---------------------------------------------------
/// out[o, j, i] = in[o, index[j], i] with in viewed as [outer, in_dim, inner].
void index_select(const TensorArg& out, const TensorArg& in, const TensorArg& index, int64_t outer,
                  int64_t in_dim, int64_t inner);
/// out = zeros; out[o, index[j], i] += src[o, j, i] (atomic accumulation: index_select's backward).
void index_add(const TensorArg& out, const TensorArg& src, const TensorArg& index, int64_t outer,
               int64_t out_dim, int64_t inner);
/// out[o, j, i] = in[o, index[o, j, i], i]; in viewed as [outer, in_dim, inner], index/out as [outer, idx_dim, inner].
void gather(const TensorArg& out, const TensorArg& in, const TensorArg& index, int64_t outer, int64_t in_dim,
            int64_t idx_dim, int64_t inner);
/// out[o, index[o, j, i], i] += src[o, j, i]; out already holds the base values.
void scatter_add(const TensorArg& out, const TensorArg& index, const TensorArg& src, int64_t outer,
                 int64_t out_dim, int64_t idx_dim, int64_t inner);

// ---- kernels/blas.cu (cuBLAS) ----------------------------------------------------------------
/// Row-major batched C[b] = alpha * op(A[b]) @ op(B[b]) + beta * C[b] with op = transpose when
/// trans_*; leading dimensions and batch strides in elements; float32/float64/float16/bfloat16.
void gemm(DType dtype, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
          const void* a, int64_t lda, int64_t stride_a, const void* b, int64_t ldb, int64_t stride_b,
          double beta, void* c, int64_t ldc, int64_t stride_c, int64_t batch);

}  // namespace ember::cuda

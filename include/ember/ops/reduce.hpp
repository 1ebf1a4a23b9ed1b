#pragma once
/// Reductions over any set of dims with keepdim, and whole-tensor versions: sum, mean, prod,
/// amax/amin, max/min (whole tensor, or along a dim with indices), argmax/argmin, var, std, norm.
/// logsumexp lives in ops/softmax.hpp: its gradient is a softmax, and it needs exp/log from
/// ops/unary.hpp, which sits above this header.
///
/// One kernel shape serves every reduction on both devices: the reduced dims are permuted to the
/// end and the input made contiguous, so a reduction is always "rows of length inner" → one value
/// per row (`reduce_kernel`). Two CPU fast paths skip the permuted copy or add parallelism where
/// that shape is poor: a few long rows (whole-tensor reductions) are split across threads, and a
/// sum over a non-trailing block of dims of a contiguous tensor (bias gradients, batch means) runs
/// as column accumulation. Composite reductions (mean, var, std, norm) are written from
/// primitives, so their gradients are differentiable again.
///
/// Example:
/// ```
///   auto x = ember::randn({4, 3, 5});
///   auto m = x.mean({0, -1}, true);                 // shape [1, 3, 1]
///   auto [v, i] = ember::max(x, 1);                  // values and int64 indices, shape [4, 5]
///   auto s = ember::std(x, {1});                     // unbiased, like torch.std
/// ```
#include <cmath>
#include <limits>
#include <tuple>
#include <vector>

#include "ember/ops/shape.hpp"

namespace ember {

using cuda::ReduceOp;

namespace detail {

/// Normalised, sorted, de-duplicated dims; empty `dims` means all dims.
inline Shape reduce_dims(const Shape& dims, int64_t ndim, const char* op) {
  std::array<bool, kMaxDims> on{};
  if (dims.empty()) {
    for (int64_t d = 0; d < ndim; ++d) on[d] = true;
  } else {
    for (int64_t d : dims) {
      int64_t w = wrap_dim(d, ndim, op);
      if (ndim == 0) continue;
      EMBER_CHECK(!on[w], op, ": dim ", w, " appears multiple times in the list of dims ", dims);
      on[w] = true;
    }
  }
  Shape out;
  for (int64_t d = 0; d < ndim; ++d)
    if (on[d]) out.push_back(d);
  return out;
}

/// Output shape of a reduction over `dims` (sorted).
inline Shape reduced_shape(const Shape& sizes, const Shape& dims, bool keepdim) {
  Shape out;
  int64_t k = 0;
  for (int64_t d = 0; d < sizes.size(); ++d) {
    bool r = k < dims.size() && dims[k] == d;
    if (r) ++k;
    if (!r) out.push_back(sizes[d]);
    else if (keepdim) out.push_back(1);
  }
  return out;
}

/// The keepdim shape of reducing x over `dims` (as given by the user): the shape a gradient is
/// reshaped to before it broadcasts back over the input.
inline Shape keepdim_shape(const Tensor& x, const Shape& dims, const char* op) {
  return reduced_shape(x.sizes(), reduce_dims(dims, x.dim(), op), true);
}

/// Number of elements reduced per output element.
inline int64_t reduced_count(const Tensor& x, const Shape& dims, const char* op) {
  int64_t n = 1;
  for (int64_t d : reduce_dims(dims, x.dim(), op)) n *= x.size(d);
  return n;
}

/// A partial reduction of part of a row: the accumulated value (Sum/Prod/Max/Min) or the index
/// of the best element so far (Arg*).
template <typename Acc>
struct Partial {
  Acc acc;
  int64_t best;
};

template <typename T>
bool is_nan_value(T v) {
  if constexpr (std::is_floating_point_v<T>) return std::isnan(v);
  else return false;
}

/// Reduces row[b, e). Max/Min keep the first extreme element, and the first NaN wins (NaN
/// propagates, as in PyTorch).
template <typename T, typename Acc>
Partial<Acc> reduce_range(ReduceOp op, const T* row, int64_t b, int64_t e) {
  switch (op) {
    case ReduceOp::Sum: {
      // Eight independent accumulators: breaks the add-latency chain and lets the compiler
      // vectorise without reassociating a single sum.
      Acc s[8] = {};
      int64_t i = b;
      for (; i + 8 <= e; i += 8)
        for (int k = 0; k < 8; ++k) s[k] += static_cast<Acc>(row[i + k]);
      for (; i < e; ++i) s[0] += static_cast<Acc>(row[i]);
      return {static_cast<Acc>(((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]))), 0};
    }
    case ReduceOp::Prod: {
      Acc s = 1;
      for (int64_t i = b; i < e; ++i) s *= static_cast<Acc>(row[i]);
      return {s, 0};
    }
    case ReduceOp::Max:
    case ReduceOp::Min: {
      // Values only: a branch-free loop (vectorisable) with a NaN flag; the value is kept in acc.
      T m = row[b];
      bool nan = false;
      if (op == ReduceOp::Max) {
        for (int64_t i = b + 1; i < e; ++i) {
          T v = row[i];
          if constexpr (std::is_floating_point_v<T>) nan |= v != v;
          m = v > m ? v : m;
        }
      } else {
        for (int64_t i = b + 1; i < e; ++i) {
          T v = row[i];
          if constexpr (std::is_floating_point_v<T>) nan |= v != v;
          m = v < m ? v : m;
        }
      }
      if (nan || is_nan_value(row[b])) return {static_cast<Acc>(std::numeric_limits<T>::quiet_NaN()), 0};
      return {static_cast<Acc>(m), 0};
    }
    case ReduceOp::ArgMax:
    case ReduceOp::ArgMin: {
      bool is_max = op == ReduceOp::ArgMax;
      int64_t best = b;
      if (is_nan_value(row[b])) return {Acc{}, b};
      for (int64_t i = b + 1; i < e; ++i) {
        T v = row[i], cur = row[best];
        if (is_nan_value(v)) return {Acc{}, i};
        if (is_max ? v > cur : v < cur) best = i;
      }
      return {Acc{}, best};
    }
  }
  return {Acc{}, 0};
}

/// Combines the partial result `b` (a later part of the row) into `a`.
template <typename T, typename Acc>
void combine(ReduceOp op, const T* row, Partial<Acc>& a, const Partial<Acc>& b) {
  switch (op) {
    case ReduceOp::Sum: a.acc += b.acc; return;
    case ReduceOp::Prod: a.acc *= b.acc; return;
    case ReduceOp::Max:
    case ReduceOp::Min:
      if (is_nan_value(a.acc)) return;
      if (is_nan_value(b.acc) || (op == ReduceOp::Max ? b.acc > a.acc : b.acc < a.acc)) a.acc = b.acc;
      return;
    default: {
      bool is_max = op == ReduceOp::Max || op == ReduceOp::ArgMax;
      T cur = row[a.best], v = row[b.best];
      if (is_nan_value(cur)) return;
      if (is_nan_value(v) || (is_max ? v > cur : v < cur)) a.best = b.best;
    }
  }
}

template <typename T, typename Acc>
void store(ReduceOp op, void* out, int64_t r, const Partial<Acc>& p) {
  switch (op) {
    case ReduceOp::Sum:
    case ReduceOp::Prod:
    case ReduceOp::Max:
    case ReduceOp::Min: static_cast<T*>(out)[r] = static_cast<T>(p.acc); return;
    default: static_cast<int64_t*>(out)[r] = p.best; return;
  }
}

/// Rows of a contiguous [outer, inner] input → out[outer]. With fewer rows than threads (a
/// whole-tensor reduction is one row), each row is split into chunks reduced in parallel.
template <typename T, typename Acc>
void reduce_rows_cpu(ReduceOp op, const T* in, void* out, int64_t outer, int64_t inner) {
  int threads = get_num_threads();
  if (outer < threads && inner >= 2 * kGrainSize && threads > 1) {
    int64_t chunks = std::min<int64_t>(threads, inner / kGrainSize);
    std::vector<Partial<Acc>> parts(static_cast<size_t>(chunks));
    for (int64_t r = 0; r < outer; ++r) {
      const T* row = in + r * inner;
      parallel_for(0, chunks, 1, [&](int64_t cb, int64_t ce) {
        for (int64_t c = cb; c < ce; ++c)
          parts[c] = reduce_range<T, Acc>(op, row, inner * c / chunks, inner * (c + 1) / chunks);
      });
      Partial<Acc> p = parts[0];
      for (int64_t c = 1; c < chunks; ++c) combine<T, Acc>(op, row, p, parts[c]);
      store<T, Acc>(op, out, r, p);
    }
    return;
  }
  parallel_for(0, outer, std::max<int64_t>(1, kGrainSize / std::max<int64_t>(inner, 1)), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const T* row = in + r * inner;
      store<T, Acc>(op, out, r, reduce_range<T, Acc>(op, row, 0, inner));
    }
  });
}

/// Sum over the middle dim of a contiguous [outer, rows, cols] input → out[outer, cols],
/// accumulating whole rows into a block of column sums so the input is read once, in order (no
/// permuted copy). Parallel over (outer, column block) pairs.
template <typename T, typename Acc>
void sum_middle_cpu(const T* in, T* out, int64_t outer, int64_t rows, int64_t cols) {
  constexpr int64_t kBlock = 512;
  int64_t nblocks = (cols + kBlock - 1) / kBlock;
  int64_t grain = std::max<int64_t>(1, kGrainSize / std::max<int64_t>(rows * std::min(kBlock, cols), 1));
  parallel_for(0, outer * nblocks, grain, [&](int64_t ub, int64_t ue) {
    Acc acc[kBlock];
    for (int64_t u = ub; u < ue; ++u) {
      int64_t o = u / nblocks, c0 = (u % nblocks) * kBlock, n = std::min(kBlock, cols - c0);
      const T* base = in + o * rows * cols + c0;
      for (int64_t j = 0; j < n; ++j) acc[j] = 0;
      for (int64_t i = 0; i < rows; ++i) {
        const T* p = base + i * cols;
        for (int64_t j = 0; j < n; ++j) acc[j] += static_cast<Acc>(p[j]);
      }
      for (int64_t j = 0; j < n; ++j) out[o * cols + c0 + j] = static_cast<T>(acc[j]);
    }
  });
}

/// Sum of a contiguous [outer, keep, inner] input over outer and inner → out[keep]: the
/// per-channel sum of an NCHW gradient (a conv or batch-norm bias), read in place instead of
/// permuted into a copy first. Parallel over the kept entries; each sums its `outer` contiguous
/// runs of `inner` elements.
template <typename T, typename Acc>
void sum_outer_inner_cpu(const T* in, T* out, int64_t outer, int64_t keep, int64_t inner) {
  int64_t grain = std::max<int64_t>(1, kGrainSize / std::max<int64_t>(outer * inner, 1));
  parallel_for(0, keep, grain, [&](int64_t kb, int64_t ke) {
    for (int64_t k = kb; k < ke; ++k) {
      // 32 independent partial sums: one running sum is a dependency chain the compiler may not
      // reorder (no -ffast-math); 32 become four vector registers of doubles, enough to cover
      // the add latency. A run's last < 32 elements go to lanes too (not to one more chain:
      // with the 121-element runs of an 11 x 11 map that chain took as long as the rest).
      constexpr int64_t L = 32;
      Acc lanes[L] = {};
      for (int64_t o = 0; o < outer; ++o) {
        const T* p = in + (o * keep + k) * inner;
        int64_t i = 0;
        for (; i + L <= inner; i += L)
          for (int64_t j = 0; j < L; ++j) lanes[j] += static_cast<Acc>(p[i + j]);
        for (int64_t j = 0; i + j < inner; ++j) lanes[j] += static_cast<Acc>(p[i + j]);
      }
      Acc total = 0;
      for (int64_t j = 0; j < L; ++j) total += lanes[j];
      out[k] = static_cast<T>(total);
    }
  });
}

}  // namespace detail

/// The dispatch point for reductions (no autograd). Reduces `dims` (empty: all) of x. Sum and
/// Prod of integral or bool inputs give int64 (as in PyTorch); Arg* give int64 indices; Max and
/// Min keep the input dtype.
inline Tensor reduce_kernel(ReduceOp op, const Tensor& x, const Shape& dims_in, bool keepdim, const char* name) {
  EMBER_CHECK(x.defined(), name, ": undefined tensor argument");
  Shape dims = detail::reduce_dims(dims_in, x.dim(), name);
  Shape out_shape = detail::reduced_shape(x.sizes(), dims, keepdim);
  bool arg = op == ReduceOp::ArgMax || op == ReduceOp::ArgMin;
  int64_t inner = 1;
  for (int64_t d : dims) inner *= x.size(d);
  int64_t outer = inner == 0 ? out_shape.numel() : x.numel() / inner;
  if (op != ReduceOp::Sum && op != ReduceOp::Prod) {
    EMBER_CHECK(inner > 0, name, ": cannot reduce over a dimension of size 0 (input shape ", x.sizes(),
                ", dims ", dims, "): the result is undefined for an empty slice");
  }
  DType in_dt = x.dtype();
  DType out_dt = arg ? kInt64 : in_dt;
  if ((op == ReduceOp::Sum || op == ReduceOp::Prod) && is_integral(in_dt, true)) out_dt = kInt64;  // as in PyTorch
  // The dtype the kernel runs in: bool max/min as uint8; float16/bfloat16 are storage types on the CPU.
  DType compute_dt = arg ? in_dt : out_dt;
  if (compute_dt == kBool) compute_dt = kUInt8;
  if (!x.is_cuda() && (compute_dt == kFloat16 || compute_dt == kBFloat16)) compute_dt = kFloat32;
  if (in_dt == kBool && arg) compute_dt = kUInt8;
  if (out_shape.numel() == 0) return make_tensor(out_shape, out_dt, x.device());
  if (inner == 0) return make_tensor(out_shape, out_dt, x.device()).fill_(op == ReduceOp::Prod ? 1 : 0);

  Tensor xs = x.detach();
  if (xs.dtype() != compute_dt) xs = xs.to(compute_dt);
  Tensor out = make_tensor(out_shape, arg ? kInt64 : compute_dt, x.device());
  // Permutation that puts the reduced dims last (identity, hence no copy, for trailing dims).
  Shape perm;
  for (int64_t d = 0, k = 0; d < x.dim(); ++d) {
    if (k < dims.size() && dims[k] == d) {
      ++k;
      continue;
    }
    perm.push_back(d);
  }
  for (int64_t d : dims) perm.push_back(d);
  if (x.is_cuda()) {
#ifdef EMBER_WITH_CUDA
    Tensor rows = xs.permute(perm).contiguous();
    // Few long rows (a whole-tensor sum) would leave the GPU idle with one block per row: reduce
    // in two passes, first [outer * k, inner / k] into partials, then the partials.
    int64_t k = 0;
    if ((op == ReduceOp::Sum || op == ReduceOp::Max || op == ReduceOp::Min) && outer < 1024 && inner >= (1 << 20)) {
      for (int64_t c = 2048; c >= 64 && k == 0; c /= 2)
        if (inner % c == 0) k = c;
    }
    if (k > 0) {
      Tensor partial = make_tensor({outer * k}, out.dtype(), x.device());
      cuda::reduce_last(op, cuda::arg(partial), cuda::arg(rows), outer * k, inner / k);
      cuda::reduce_last(op, cuda::arg(out), cuda::arg(partial), outer, k);
    } else {
      cuda::reduce_last(op, cuda::arg(out), cuda::arg(rows), outer, inner);
    }
#else
    fail_no_cuda(name);
#endif
  } else {
    // A sum over one block of consecutive dims that is not trailing (e.g. the batch dim): column
    // accumulation on the contiguous input instead of a permuted copy.
    bool middle = op == ReduceOp::Sum && !dims.empty() && dims.back() < x.dim() - 1 && xs.is_contiguous();
    for (int64_t k = 1; middle && k < dims.size(); ++k) middle = dims[k] == dims[0] + k;
    int64_t before = 1;
    for (int64_t d = 0; middle && d < dims[0]; ++d) before *= x.size(d);
    // A sum over leading and trailing dims around one kept block (NCHW over N, H, W).
    int64_t lead = 0;
    while (lead < dims.size() && dims[lead] == lead) ++lead;
    bool outer_inner = op == ReduceOp::Sum && !middle && lead > 0 && lead < dims.size() && xs.is_contiguous();
    for (int64_t k = lead; outer_inner && k < dims.size(); ++k) outer_inner = dims[k] == x.dim() - (dims.size() - k);
    int64_t lead_n = 1;
    for (int64_t d = 0; outer_inner && d < lead; ++d) lead_n *= x.size(d);
    visit_dtype(compute_dt, name, [&]<typename T>() {
      using Acc = std::conditional_t<std::is_floating_point_v<T>, double, T>;
      if constexpr (std::is_same_v<T, bool>) {
        EMBER_FAIL(name, ": not supported for bool tensors");  // unreachable: bool runs as uint8
      } else if (outer_inner) {
        detail::sum_outer_inner_cpu<T, Acc>(xs.data_ptr<T>(), out.data_ptr<T>(), lead_n, outer, inner / lead_n);
      } else if (middle) {
        detail::sum_middle_cpu<T, Acc>(xs.data_ptr<T>(), out.data_ptr<T>(), before, inner, outer / before);
      } else {
        Tensor rows = xs.permute(perm).contiguous();
        detail::reduce_rows_cpu<T, Acc>(op, rows.data_ptr<T>(), out.raw_data(), outer, inner);
      }
    });
  }
  return out.dtype() == out_dt ? out : out.to(out_dt);
}

/// Sum over `dims` (all dims when empty). Integral inputs sum to int64.
inline Tensor sum(const Tensor& x, const Shape& dims, bool keepdim = false) {
  Tensor out = reduce_kernel(ReduceOp::Sum, x, dims, keepdim, "sum");
  if (autograd::needs_grad(x)) {
    Shape in = x.sizes();
    Shape kd = detail::keepdim_shape(x, dims, "sum");
    autograd::record("SumBackward", out, {x}, {}, [in, kd](const Tensor& g, const autograd::BackwardCtx&) -> tensor_list {
      return {g.reshape(kd).expand(in)};
    });
  }
  return out;
}
inline Tensor sum(const Tensor& x) { return sum(x, Shape{}, false); }

/// Sums a broadcast gradient back to `shape` (the inverse of expand). Differentiable.
inline Tensor sum_to(const Tensor& t, const Shape& shape) {
  if (t.sizes() == shape) return t;
  int64_t lead = t.dim() - shape.size();
  EMBER_CHECK(lead >= 0, "sum_to: cannot reduce shape ", t.sizes(), " to ", shape);
  Shape dims;
  for (int64_t d = 0; d < t.dim(); ++d) {
    if (d < lead) dims.push_back(d);
    else if (shape[d - lead] == 1 && t.size(d) != 1) dims.push_back(d);
    else EMBER_CHECK(shape[d - lead] == t.size(d) || shape[d - lead] == 1, "sum_to: cannot reduce shape ", t.sizes(), " to ", shape);
  }
  Tensor r = dims.empty() ? t : sum(t, dims, true);
  return r.reshape(shape);
}

namespace detail {
inline void check_floating_reduce(const Tensor& x, const char* op) {
  EMBER_CHECK(x.defined(), op, ": undefined tensor argument");
  EMBER_CHECK(x.is_floating_point(), op, ": could not infer output dtype. Input dtype must be either a "
              "floating point or complex dtype. Got: ", x.dtype());
}

/// x ** e for a constant exponent, recorded with its own differentiable backward
/// (g * e * x ** (e - 1)). Private: ops/unary.hpp owns the public pow; this header sits below it.
inline Tensor pow_scalar(const Tensor& x, double e) {
  Tensor out = binary_kernel(BinaryOp::Pow, x, wrap_scalar(x, e));
  if (autograd::needs_grad(x)) {
    autograd::record("PowBackward", out, {x}, {x}, [e](const Tensor& g, const autograd::BackwardCtx& c) -> tensor_list {
      if (e == 0) return {mul(g, Scalar(0.0))};
      return {mul(g, pow_scalar(c.saved(0), e - 1)) * Scalar(e)};
    });
  }
  return out;
}

/// sign(x) as a constant of x's dtype (no gradient: the derivative of sign is zero a.e.).
inline Tensor sign_const(const Tensor& x) {
  return sub(gt(x, Scalar(0)).to(x.dtype()), lt(x, Scalar(0)).to(x.dtype()));
}
/// |x| = x * sign(x): its gradient is sign(x), which is 0 at 0 (as torch.abs).
inline Tensor abs_diff(const Tensor& x) { return mul(x, sign_const(x)); }
/// r where r != 0, else 1 (a constant shift, so divisions by it are safe where the numerator is 0).
inline Tensor nonzero_or_one(const Tensor& r) { return add(r, eq(r, Scalar(0)).to(r.dtype())); }
}  // namespace detail

/// Mean over `dims` (all dims when empty). Floating point only, as in PyTorch.
inline Tensor mean(const Tensor& x, const Shape& dims, bool keepdim = false) {
  detail::check_floating_reduce(x, "mean");
  int64_t n = detail::reduced_count(x, dims, "mean");
  return div(sum(x, dims, keepdim), Scalar(static_cast<double>(n)));
}
inline Tensor mean(const Tensor& x) { return mean(x, Shape{}, false); }

/// Product over `dims` (all dims when empty); integral inputs give int64.
///
/// Gradient: prod / x where the reduced slice has no zero. A slice with exactly one zero gets
/// the product of the other elements at the zero and 0 elsewhere (written so that its second
/// derivative is exact too); a slice with two or more zeros gets a zero gradient, which is the
/// correct first derivative but drops the (nonzero) mixed second derivatives of such slices.
inline Tensor prod(const Tensor& x, const Shape& dims, bool keepdim = false) {
  Tensor out = reduce_kernel(ReduceOp::Prod, x, dims, keepdim, "prod");
  if (autograd::needs_grad(x)) {
    Shape kd = detail::keepdim_shape(x, dims, "prod");
    Shape rd = detail::reduce_dims(dims, x.dim(), "prod");
    autograd::record("ProdBackward", out, {x}, {x}, [kd, rd](const Tensor& g, const autograd::BackwardCtx& c) -> tensor_list {
      const Tensor& x = c.saved(0);
      Tensor gk = g.reshape(kd);
      DType dt = x.dtype();
      Tensor zero = eq(x, Scalar(0)).to(dt);
      Tensor nzeros = sum(zero, rd, true);
      if (sum(nzeros).item<double>() == 0) return {div(mul(gk, c.result().reshape(kd)), x)};
      Tensor nonzero = ne(x, Scalar(0)).to(dt);
      Tensor x1 = add(mul(x, nonzero), zero);  // zeros replaced by a constant 1
      Tensor p1 = prod(x1, rd, true);           // product of the nonzero elements
      Tensor none = eq(nzeros, Scalar(0)).to(dt), one = eq(nzeros, Scalar(1)).to(dt);
      // With exactly one zero z in the slice: d/dx_j = p1 * z / x_j off the zero (value 0, but
      // its derivative in z is what second derivatives need), p1 at the zero.
      Tensor z = sum(mul(x, zero), rd, true);
      Tensor single = mul(p1, add(zero, div(mul(nonzero, z), x1)));
      return {mul(gk, add(mul(none, div(p1, x1)), mul(one, single)))};
    }, /*save_result=*/true);
  }
  return out;
}
inline Tensor prod(const Tensor& x) { return prod(x, Shape{}, false); }

namespace detail {
/// amax/amin and the whole-tensor max/min: the gradient is split evenly among the elements equal
/// to the result (ties), as in PyTorch.
inline Tensor extreme(ReduceOp op, const Tensor& x, const Shape& dims, bool keepdim, const char* name) {
  Tensor out = reduce_kernel(op, x, dims, keepdim, name);
  if (autograd::needs_grad(x)) {
    Shape kd = keepdim_shape(x, dims, name);
    Shape rd = reduce_dims(dims, x.dim(), name);
    autograd::record(op == ReduceOp::Max ? "AmaxBackward" : "AminBackward", out, {x}, {x},
                     [kd, rd](const Tensor& g, const autograd::BackwardCtx& c) -> tensor_list {
      const Tensor& x = c.saved(0);
      Tensor mask = eq(x, c.result().detach().reshape(kd)).to(x.dtype());
      return {div(mul(g.reshape(kd), mask), sum(mask, rd, true))};
    }, /*save_result=*/true);
  }
  return out;
}

/// max/min along one dim with indices; the gradient goes to the selected element only.
inline std::tuple<Tensor, Tensor> extreme_dim(ReduceOp op, ReduceOp arg_op, const Tensor& x, int64_t dim,
                                              bool keepdim, const char* name) {
  int64_t d = wrap_dim(dim, x.dim(), name);
  Tensor values = reduce_kernel(op, x, Shape{d}, keepdim, name);
  Tensor indices = reduce_kernel(arg_op, x, Shape{d}, keepdim, name);
  if (autograd::needs_grad(x)) {
    Shape kd = keepdim_shape(x, Shape{d}, name);
    int64_t n = x.dim() == 0 ? 1 : x.size(d);
    Shape pos_shape = Shape::filled(x.dim(), 1);
    if (x.dim() > 0) pos_shape[d] = n;
    Tensor idx = indices.reshape(kd);
    autograd::record(op == ReduceOp::Max ? "MaxBackward" : "MinBackward", values, {x}, {idx},
                     [kd, pos_shape, n](const Tensor& g, const autograd::BackwardCtx& c) -> tensor_list {
      const Tensor& idx = c.saved(0);
      // One-hot of the selected position along dim: arange(n) (shaped to broadcast along dim) == index.
      Tensor pos = arange(n, TensorOptions(kInt64).device(idx.device())).reshape(pos_shape);
      return {mul(g.reshape(kd), eq(pos, idx).to(g.dtype()))};
    });
  }
  return {values, indices};
}
}  // namespace detail

/// Maximum over `dims` (all dims when empty); ties share the gradient evenly.
inline Tensor amax(const Tensor& x, const Shape& dims = {}, bool keepdim = false) {
  return detail::extreme(ReduceOp::Max, x, dims, keepdim, "amax");
}
/// Minimum over `dims` (all dims when empty); ties share the gradient evenly.
inline Tensor amin(const Tensor& x, const Shape& dims = {}, bool keepdim = false) {
  return detail::extreme(ReduceOp::Min, x, dims, keepdim, "amin");
}
/// The largest element (a 0-dim tensor); NaN if any element is NaN. Errors on an empty tensor.
inline Tensor max(const Tensor& x) { return detail::extreme(ReduceOp::Max, x, Shape{}, false, "max"); }
/// The smallest element (a 0-dim tensor); NaN if any element is NaN. Errors on an empty tensor.
inline Tensor min(const Tensor& x) { return detail::extreme(ReduceOp::Min, x, Shape{}, false, "min"); }
/// (values, int64 indices) of the maximum along `dim`; the first occurrence wins ties, and the
/// gradient flows to that element only: `auto [v, i] = ember::max(x, 1);`
inline std::tuple<Tensor, Tensor> max(const Tensor& x, int64_t dim, bool keepdim = false) {
  return detail::extreme_dim(ReduceOp::Max, ReduceOp::ArgMax, x, dim, keepdim, "max");
}
/// (values, int64 indices) of the minimum along `dim`.
inline std::tuple<Tensor, Tensor> min(const Tensor& x, int64_t dim, bool keepdim = false) {
  return detail::extreme_dim(ReduceOp::Min, ReduceOp::ArgMin, x, dim, keepdim, "min");
}
/// Index (int64) of the first maximum along `dim`.
inline Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false) {
  return reduce_kernel(ReduceOp::ArgMax, x, Shape{wrap_dim(dim, x.dim(), "argmax")}, keepdim, "argmax");
}
/// Index of the first maximum in the flattened tensor (a 0-dim int64 tensor).
inline Tensor argmax(const Tensor& x) { return reduce_kernel(ReduceOp::ArgMax, x, Shape{}, false, "argmax"); }
/// Index (int64) of the first minimum along `dim`.
inline Tensor argmin(const Tensor& x, int64_t dim, bool keepdim = false) {
  return reduce_kernel(ReduceOp::ArgMin, x, Shape{wrap_dim(dim, x.dim(), "argmin")}, keepdim, "argmin");
}
/// Index of the first minimum in the flattened tensor (a 0-dim int64 tensor).
inline Tensor argmin(const Tensor& x) { return reduce_kernel(ReduceOp::ArgMin, x, Shape{}, false, "argmin"); }

/// Variance over `dims` (all when empty) with Bessel's correction by default:
/// sum((x - mean)^2) / (N - correction), as torch.var. N - correction <= 0 gives inf/NaN.
inline Tensor var(const Tensor& x, const Shape& dims = {}, double correction = 1, bool keepdim = false) {
  detail::check_floating_reduce(x, "var");
  Shape rd = detail::reduce_dims(dims, x.dim(), "var");
  int64_t n = detail::reduced_count(x, dims, "var");
  Tensor d = sub(x, mean(x, rd, true));
  return div(sum(mul(d, d), rd, keepdim), Scalar(std::max(0.0, static_cast<double>(n) - correction)));
}

/// Standard deviation: sqrt(var(x, dims, correction, keepdim)), unbiased by default (torch.std).
/// Its gradient is NaN where the deviation is 0, as in PyTorch.
inline Tensor std(const Tensor& x, const Shape& dims = {}, double correction = 1, bool keepdim = false) {
  detail::check_floating_reduce(x, "std");
  return detail::pow_scalar(var(x, dims, correction, keepdim), 0.5);
}

/// Vector p-norm over `dims` (all when empty): p = 2 (default), 1, inf, -inf, 0 (count of
/// nonzeros) or any other p >= 1 as (sum |x|^p)^(1/p). The gradient at a zero norm is 0 (the
/// subgradient PyTorch picks), never NaN.
inline Tensor norm(const Tensor& x, double p = 2, const Shape& dims = {}, bool keepdim = false) {
  EMBER_CHECK(x.defined(), "norm: undefined tensor argument");
  EMBER_CHECK(x.is_floating_point(), "norm: expected a floating point tensor as input, got ", x.dtype());
  EMBER_CHECK(!std::isnan(p), "norm: p must not be NaN");
  if (std::isinf(p)) {
    Tensor a = detail::abs_diff(x);
    return p > 0 ? amax(a, dims, keepdim) : amin(a, dims, keepdim);
  }
  if (p == 1) return sum(detail::abs_diff(x), dims, keepdim);
  if (p == 0) {
    Tensor out = sum(ne(x, Scalar(0)).to(x.dtype()), dims, keepdim);
    if (autograd::needs_grad(x)) {
      // The count of nonzeros is piecewise constant: a zero gradient, but still part of the graph.
      autograd::record("NormBackward", out, {x}, {}, [](const Tensor&, const autograd::BackwardCtx&) -> tensor_list {
        return {Tensor()};
      });
    }
    return out;
  }
  EMBER_CHECK(p >= 1, "norm: p must be >= 1, 0 or +-inf, got ", p, " (p < 1 is not a norm)");
  Tensor out;
  {
    NoGradGuard ng;
    Tensor s = p == 2 ? sum(mul(x, x), dims, keepdim) : sum(detail::pow_scalar(detail::abs_diff(x), p), dims, keepdim);
    out = detail::pow_scalar(s, 1.0 / p);
  }
  if (autograd::needs_grad(x)) {
    Shape kd = detail::keepdim_shape(x, dims, "norm");
    autograd::record("NormBackward", out, {x}, {x}, [kd, p](const Tensor& g, const autograd::BackwardCtx& c) -> tensor_list {
      const Tensor& x = c.saved(0);
      // d||x||/dx = sign(x) |x|^(p-1) / ||x||^(p-1); written with the (re-attached) result so the
      // formula differentiates again. Where the norm is 0, x is 0 too: dividing by 1 there gives 0.
      Tensor r = detail::nonzero_or_one(c.result().reshape(kd));
      Tensor gk = g.reshape(kd);
      if (p == 2) return {mul(gk, div(x, r))};
      Tensor num = mul(detail::sign_const(x), detail::pow_scalar(detail::abs_diff(x), p - 1));
      return {mul(gk, div(num, detail::pow_scalar(r, p - 1)))};
    }, /*save_result=*/true);
  }
  return out;
}

inline Tensor Tensor::sum() const { return ember::sum(*this); }
inline Tensor Tensor::sum(const Shape& dims, bool keepdim) const { return ember::sum(*this, dims, keepdim); }
inline Tensor Tensor::mean() const { return ember::mean(*this); }
inline Tensor Tensor::mean(const Shape& dims, bool keepdim) const { return ember::mean(*this, dims, keepdim); }
inline Tensor Tensor::max() const { return ember::max(*this); }
inline Tensor Tensor::min() const { return ember::min(*this); }
inline Tensor Tensor::argmax(int64_t dim, bool keepdim) const { return ember::argmax(*this, dim, keepdim); }
inline Tensor Tensor::argmin(int64_t dim, bool keepdim) const { return ember::argmin(*this, dim, keepdim); }

}  // namespace ember

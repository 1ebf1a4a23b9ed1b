#pragma once
/// Reductions over any set of dims with keepdim, and whole-tensor versions.
///
/// One kernel shape serves every reduction on both devices: the reduced dims are permuted to the
/// end and the input made contiguous, so a reduction is always "rows of length inner" → one value
/// per row (`reduce_kernel`). Composite reductions (mean, var, norm, logsumexp) are written from
/// primitives so their gradients come for free.
#include <limits>

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

template <typename T, typename Acc>
void reduce_rows_cpu(ReduceOp op, const T* in, void* out, int64_t outer, int64_t inner) {
  parallel_for(0, outer, std::max<int64_t>(1, kGrainSize / std::max<int64_t>(inner, 1)), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const T* row = in + r * inner;
      switch (op) {
        case ReduceOp::Sum: {
          Acc s = 0;
          for (int64_t i = 0; i < inner; ++i) s += static_cast<Acc>(row[i]);
          static_cast<T*>(out)[r] = static_cast<T>(s);
          break;
        }
        case ReduceOp::Prod: {
          Acc s = 1;
          for (int64_t i = 0; i < inner; ++i) s *= static_cast<Acc>(row[i]);
          static_cast<T*>(out)[r] = static_cast<T>(s);
          break;
        }
        case ReduceOp::Max:
        case ReduceOp::Min:
        case ReduceOp::ArgMax:
        case ReduceOp::ArgMin: {
          bool is_max = op == ReduceOp::Max || op == ReduceOp::ArgMax;
          int64_t best = 0;
          for (int64_t i = 1; i < inner; ++i) {
            T v = row[i], cur = row[best];
            if constexpr (std::is_floating_point_v<T>) {
              if (std::isnan(cur)) break;  // NaN propagates, as in PyTorch
              if (std::isnan(v)) {
                best = i;
                break;
              }
            }
            if (is_max ? v > cur : v < cur) best = i;
          }
          if (op == ReduceOp::Max || op == ReduceOp::Min) static_cast<T*>(out)[r] = row[best];
          else static_cast<int64_t*>(out)[r] = best;
          break;
        }
      }
    }
  });
}

}  // namespace detail

/// The dispatch point for reductions (no autograd). Reduces `dims` (empty: all) of x.
inline Tensor reduce_kernel(ReduceOp op, const Tensor& x, const Shape& dims_in, bool keepdim, const char* name) {
  Shape dims = detail::reduce_dims(dims_in, x.dim(), name);
  Shape out_shape = detail::reduced_shape(x.sizes(), dims, keepdim);
  bool arg = op == ReduceOp::ArgMax || op == ReduceOp::ArgMin;
  int64_t inner = 1;
  for (int64_t d : dims) inner *= x.size(d);
  int64_t outer = x.numel() / std::max<int64_t>(inner, 1);
  if (inner == 0) outer = out_shape.numel();
  if (op != ReduceOp::Sum && op != ReduceOp::Prod) {
    EMBER_CHECK(inner > 0, name, ": cannot reduce over a dimension of size 0 (shape ", x.sizes(), ")");
  }
  DType in_dt = x.dtype();
  DType out_dt = arg ? kInt64 : in_dt;
  if ((op == ReduceOp::Sum || op == ReduceOp::Prod) && is_integral(in_dt, true)) out_dt = kInt64;  // as in PyTorch
  // Permute reduced dims last and make rows contiguous.
  Shape perm;
  for (int64_t d = 0, k = 0; d < x.dim(); ++d) {
    if (k < dims.size() && dims[k] == d) { ++k; continue; }
    perm.push_back(d);
  }
  for (int64_t d : dims) perm.push_back(d);
  Tensor xs = x.detach();
  if (out_dt != in_dt && !arg) xs = xs.to(out_dt);
  Tensor rows = xs.permute(perm).contiguous();
  Tensor out = make_tensor(out_shape, out_dt, x.device());
  if (out.numel() == 0) return out;
  if (inner == 0) return out.fill_(op == ReduceOp::Prod ? 1 : 0);
  if (x.is_cuda()) {
#ifdef EMBER_WITH_CUDA
    cuda::reduce_last(op, cuda::arg(out), cuda::arg(rows), outer, inner);
#else
    fail_no_cuda(name);
#endif
    return out;
  }
  visit_dtype(rows.dtype(), name, [&]<typename T>() {
    using Acc = std::conditional_t<std::is_floating_point_v<T>, double, T>;
    if constexpr (std::is_same_v<T, bool>) {
      EMBER_FAIL(name, ": not supported for bool tensors");
    } else {
      detail::reduce_rows_cpu<T, Acc>(op, rows.data_ptr<T>(), out.raw_data(), outer, inner);
    }
  });
  return out;
}

/// Sum over `dims` (all dims when empty). Integral inputs sum to int64.
inline Tensor sum(const Tensor& x, const Shape& dims, bool keepdim = false) {
  Tensor out = reduce_kernel(ReduceOp::Sum, x, dims, keepdim, "sum");
  if (autograd::needs_grad(x)) {
    Shape in = x.sizes();
    Shape kd = detail::reduced_shape(in, detail::reduce_dims(dims, x.dim(), "sum"), true);
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

inline Tensor Tensor::sum() const { return ember::sum(*this); }
inline Tensor Tensor::sum(const Shape& dims, bool keepdim) const { return ember::sum(*this, dims, keepdim); }

}  // namespace ember

#pragma once
/// Views that share storage (view, reshape, flatten, permute, transpose, t, narrow, slice, select,
/// expand, squeeze, unsqueeze) and their backward formulas. Each view records a node whose
/// backward is again a differentiable op, so double backward passes through views.
#include <numeric>

#include "ember/ops/binary.hpp"

namespace ember {

inline Tensor sum_to(const Tensor& t, const Shape& shape);  // ops/reduce.hpp

namespace detail {

/// Strides for viewing (sizes, strides) as `shape` without copying, if possible (PyTorch's
/// computeStride): each run of input dims that is contiguous in memory may be regrouped.
inline std::optional<Shape> view_strides(const Shape& sizes, const Shape& strides, const Shape& shape) {
  if (sizes.numel() <= 1) return contiguous_strides(shape);
  Shape out = Shape::filled(shape.size(), 0);
  int64_t view_d = shape.size() - 1;
  int64_t chunk_base_stride = strides.empty() ? 1 : strides.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t d = sizes.size() - 1; d >= 0; --d) {
    tensor_numel *= sizes[d];
    if (d == 0 || (sizes[d - 1] != 1 && strides[d - 1] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || shape[view_d] == 1)) {
        out[view_d] = view_numel * chunk_base_stride;
        view_numel *= shape[view_d];
        --view_d;
      }
      if (view_numel != tensor_numel) return std::nullopt;
      if (d > 0) {
        chunk_base_stride = strides[d - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  if (view_d != -1) return std::nullopt;
  return out;
}

/// Resolves one -1 entry from the element count.
inline Shape infer_size(const Shape& shape, int64_t numel, const char* op) {
  Shape out = shape;
  int64_t known = 1, infer = -1;
  for (int64_t i = 0; i < out.size(); ++i) {
    if (out[i] == -1) {
      EMBER_CHECK(infer < 0, op, ": only one dimension can be inferred, got shape ", shape);
      infer = i;
    } else {
      EMBER_CHECK(out[i] >= 0, op, ": invalid shape dimension ", out[i], " in ", shape);
      known *= out[i];
    }
  }
  if (infer >= 0) {
    EMBER_CHECK(known != 0 && numel % known == 0, op, ": shape ", shape, " is invalid for input of size ", numel);
    out[infer] = numel / known;
  }
  EMBER_CHECK(out.numel() == numel, op, ": shape ", shape, " is invalid for input of size ", numel);
  return out;
}

}  // namespace detail

inline Tensor Tensor::view(const Shape& shape) const {
  Shape s = detail::infer_size(shape, numel(), "view");
  auto st = detail::view_strides(sizes(), strides(), s);
  EMBER_CHECK(st.has_value(), "view: shape ", shape, " is not compatible with input of size ", sizes(),
              " and stride ", strides(), " (at least one dimension spans two contiguous subspaces); use reshape");
  Tensor out = make_view(*this, s, *st, storage_offset());
  if (autograd::needs_grad(*this)) {
    Shape in = sizes();
    autograd::record("ViewBackward", out, {*this}, {}, [in](const Tensor& g, const autograd::BackwardCtx&) -> tensor_list {
      return {g.reshape(in)};
    });
  }
  return out;
}

inline Tensor Tensor::reshape(const Shape& shape) const {
  Shape s = detail::infer_size(shape, numel(), "reshape");
  if (detail::view_strides(sizes(), strides(), s)) return view(s);
  return contiguous().view(s);
}

inline Tensor Tensor::flatten(int64_t start_dim, int64_t end_dim) const {
  if (dim() == 0) return reshape({1});
  int64_t s = wrap_dim(start_dim, dim(), "flatten"), e = wrap_dim(end_dim, dim(), "flatten");
  EMBER_CHECK(s <= e, "flatten: start_dim ", start_dim, " cannot come after end_dim ", end_dim);
  Shape out;
  for (int64_t d = 0; d < s; ++d) out.push_back(size(d));
  int64_t p = 1;
  for (int64_t d = s; d <= e; ++d) p *= size(d);
  out.push_back(p);
  for (int64_t d = e + 1; d < dim(); ++d) out.push_back(size(d));
  return reshape(out);
}

inline Tensor Tensor::unflatten(int64_t d, const Shape& sz) const {
  d = wrap_dim(d, dim(), "unflatten");
  Shape s = detail::infer_size(sz, size(d), "unflatten");
  Shape out;
  for (int64_t i = 0; i < d; ++i) out.push_back(size(i));
  for (int64_t v : s) out.push_back(v);
  for (int64_t i = d + 1; i < dim(); ++i) out.push_back(size(i));
  return view(out);
}

inline Tensor Tensor::permute(const Shape& dims) const {
  EMBER_CHECK(dims.size() == dim(), "permute: number of dims ", dims.size(), " does not match the tensor's ", dim(),
              " dims (shape ", sizes(), ")");
  Shape ns, nst, inv = Shape::filled(dim(), -1);
  for (int64_t i = 0; i < dims.size(); ++i) {
    int64_t d = wrap_dim(dims[i], dim(), "permute");
    EMBER_CHECK(inv[d] == -1, "permute: dim ", d, " repeated in ", dims);
    inv[d] = i;
    ns.push_back(size(d));
    nst.push_back(stride(d));
  }
  Tensor out = make_view(*this, ns, nst, storage_offset());
  if (autograd::needs_grad(*this)) {
    autograd::record("PermuteBackward", out, {*this}, {}, [inv](const Tensor& g, const autograd::BackwardCtx&) -> tensor_list {
      return {g.permute(inv)};
    });
  }
  return out;
}

inline Tensor Tensor::transpose(int64_t d0, int64_t d1) const {
  if (dim() == 0) return *this;
  d0 = wrap_dim(d0, dim(), "transpose");
  d1 = wrap_dim(d1, dim(), "transpose");
  Shape p;
  for (int64_t i = 0; i < dim(); ++i) p.push_back(i);
  std::swap(p[d0], p[d1]);
  return permute(p);
}

inline Tensor Tensor::t() const {
  EMBER_CHECK(dim() <= 2, "t: expects a tensor with <= 2 dimensions, got ", dim(), " (shape ", sizes(), ")");
  return dim() < 2 ? *this : transpose(0, 1);
}

/// The inverse of slice: a zero tensor of `in` shape with g written at [start:end:step] along dim.
/// Differentiable (its backward is the slice), so double backward passes through slicing.
inline Tensor slice_backward(const Tensor& g, const Shape& in, int64_t dim, int64_t start, int64_t end, int64_t step);

inline Tensor Tensor::slice(int64_t d, int64_t start, int64_t end, int64_t step) const {
  EMBER_CHECK(dim() > 0, "slice: cannot slice a 0-dim tensor");
  d = wrap_dim(d, dim(), "slice");
  EMBER_CHECK(step > 0, "slice: step must be positive, got ", step);
  int64_t n = size(d);
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::clamp<int64_t>(start, 0, n);
  end = std::clamp<int64_t>(end, start, n);
  Shape ns = sizes(), nst = strides();
  ns[d] = (end - start + step - 1) / step;
  nst[d] = stride(d) * step;
  Tensor out = make_view(*this, ns, nst, storage_offset() + start * stride(d));
  if (autograd::needs_grad(*this)) {
    Shape in = sizes();
    autograd::record("SliceBackward", out, {*this}, {},
                     [in, d, start, end, step](const Tensor& g, const autograd::BackwardCtx&) -> tensor_list {
                       return {slice_backward(g, in, d, start, end, step)};
                     });
  }
  return out;
}

inline Tensor slice_backward(const Tensor& g, const Shape& in, int64_t dim, int64_t start, int64_t end, int64_t step) {
  Tensor out = zeros(in, g.options());
  {
    NoGradGuard ng;
    out.slice(dim, start, end, step).copy_(g);
  }
  if (autograd::needs_grad(g)) {
    autograd::record("SliceBackwardBackward", out, {g}, {},
                     [dim, start, end, step](const Tensor& gg, const autograd::BackwardCtx&) -> tensor_list {
                       return {gg.slice(dim, start, end, step)};
                     });
  }
  return out;
}

inline Tensor Tensor::narrow(int64_t d, int64_t start, int64_t length) const {
  EMBER_CHECK(dim() > 0, "narrow: cannot narrow a 0-dim tensor");
  d = wrap_dim(d, dim(), "narrow");
  int64_t n = size(d);
  if (start < 0) start += n;
  EMBER_CHECK(start >= 0 && length >= 0 && start + length <= n, "narrow: start ", start, " + length ", length,
              " exceeds dimension ", d, " of size ", n, " (shape ", sizes(), ")");
  return slice(d, start, start + length);
}

inline Tensor Tensor::select(int64_t d, int64_t index) const {
  EMBER_CHECK(dim() > 0, "select: cannot select from a 0-dim tensor");
  d = wrap_dim(d, dim(), "select");
  int64_t n = size(d);
  EMBER_CHECK(index >= -n && index < n, "select: index ", index, " out of range for dimension ", d, " of size ", n,
              " (shape ", sizes(), ")");
  if (index < 0) index += n;
  return slice(d, index, index + 1).squeeze(d);
}

inline Tensor Tensor::expand(const Shape& shape) const {
  EMBER_CHECK(shape.size() >= dim(), "expand: the number of sizes provided (", shape.size(),
              ") must be greater or equal to the number of dimensions in the tensor (", dim(), ")");
  Shape ns = shape, nst = Shape::filled(shape.size(), 0);
  int64_t off = shape.size() - dim();
  for (int64_t i = 0; i < shape.size(); ++i) {
    int64_t td = i - off;
    if (td < 0) {
      EMBER_CHECK(shape[i] >= 0, "expand: -1 is not allowed in a leading, non-existing dimension");
      continue;
    }
    int64_t s = size(td);
    EMBER_CHECK(ns[i] >= -1, "expand: invalid target size ", ns[i], " at dimension ", i, " (sizes must be >= 0, or -1 to keep the existing size). Target sizes: ", shape);
    if (ns[i] == -1) ns[i] = s;
    EMBER_CHECK(s == ns[i] || s == 1, "expand: the expanded size of the tensor (", ns[i],
                ") must match the existing size (", s, ") at non-singleton dimension ", i, ". Target sizes: ", shape,
                ". Tensor sizes: ", sizes());
    nst[i] = s == 1 && ns[i] != 1 ? 0 : stride(td);
  }
  Tensor out = make_view(*this, ns, nst, storage_offset());
  if (autograd::needs_grad(*this)) {
    Shape in = sizes();
    autograd::record("ExpandBackward", out, {*this}, {}, [in](const Tensor& g, const autograd::BackwardCtx&) -> tensor_list {
      return {sum_to(g, in)};
    });
  }
  return out;
}
inline Tensor Tensor::expand_as(const Tensor& o) const { return expand(o.sizes()); }

inline Tensor Tensor::squeeze() const {
  Shape s;
  for (int64_t v : sizes())
    if (v != 1) s.push_back(v);
  return s.size() == dim() ? *this : reshape(s);
}
inline Tensor Tensor::squeeze(int64_t d) const {
  if (dim() == 0) return *this;
  d = wrap_dim(d, dim(), "squeeze");
  if (size(d) != 1) return *this;
  Shape ns = sizes(), nst = strides();
  ns.erase(d);
  nst.erase(d);
  Tensor out = make_view(*this, ns, nst, storage_offset());
  if (autograd::needs_grad(*this)) {
    autograd::record("SqueezeBackward", out, {*this}, {}, [d](const Tensor& g, const autograd::BackwardCtx&) -> tensor_list {
      return {g.unsqueeze(d)};
    });
  }
  return out;
}
inline Tensor Tensor::unsqueeze(int64_t d) const {
  d = wrap_dim(d, dim() + 1, "unsqueeze");
  Shape ns = sizes(), nst = strides();
  int64_t st = d < dim() ? size(d) * stride(d) : 1;
  ns.insert(d, 1);
  nst.insert(d, st);
  Tensor out = make_view(*this, ns, nst, storage_offset());
  if (autograd::needs_grad(*this)) {
    autograd::record("UnsqueezeBackward", out, {*this}, {}, [d](const Tensor& g, const autograd::BackwardCtx&) -> tensor_list {
      return {g.squeeze(d)};
    });
  }
  return out;
}

}  // namespace ember

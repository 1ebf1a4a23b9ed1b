#pragma once
/// Joining and splitting along a dimension: cat, stack, split (by size or by sizes), chunk.
///
/// cat writes each input into a narrow() view of one fresh output with the ordinary copy
/// (so it works for every dtype and device without a kernel of its own); its backward hands each
/// input the matching narrow() of the gradient, which is again a differentiable view. split and
/// chunk return narrow() views, so each piece is its own single-output node.
///
/// Example:
/// ```
///   auto a = ember::ones({2, 3}), b = ember::zeros({1, 3});
///   auto c = ember::cat({a, b}, 0);          // [3, 3]
///   auto parts = c.split(1, 0);              // three [1, 3] views of c
///   auto s = ember::stack({a, a}, 1);        // [2, 2, 3]
/// ```
#include <vector>

#include "ember/ops/reduce.hpp"
#include "ember/ops/shape.hpp"

namespace ember {

namespace detail {
inline std::string shapes_of(const tensor_list& ts) {
  std::ostringstream os;
  for (size_t i = 0; i < ts.size(); ++i) os << (i ? ", " : "") << ts[i].sizes();
  return os.str();
}
}  // namespace detail

/// Concatenates tensors along `dim` (torch.cat). Inputs must agree in every other dimension and
/// live on one device; dtypes are promoted. 1-d empty tensors of shape [0] are skipped, as in
/// PyTorch. Differentiable with respect to every input.
inline Tensor cat(const tensor_list& tensors, int64_t dim = 0) {
  EMBER_CHECK(!tensors.empty(), "cat: expected a non-empty list of tensors");
  for (size_t i = 0; i < tensors.size(); ++i)
    EMBER_CHECK(tensors[i].defined(), "cat: tensor ", i, " is undefined");
  // The reference tensor fixes the rank: the first one that is not a legacy empty [0] tensor.
  auto skipped = [](const Tensor& t) { return t.dim() == 1 && t.size(0) == 0; };
  const Tensor* ref = &tensors[0];
  for (const auto& t : tensors)
    if (!skipped(t)) {
      ref = &t;
      break;
    }
  EMBER_CHECK(ref->dim() > 0, "cat: zero-dimensional tensor cannot be concatenated (shapes ",
              detail::shapes_of(tensors), ")");
  int64_t d = wrap_dim(dim, ref->dim(), "cat");
  DType dt = ref->dtype();
  Shape out_shape = ref->sizes();
  out_shape[d] = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    EMBER_CHECK(t.device() == ref->device(), "cat: expected all tensors on the same device, got ", ref->device(),
                " and ", t.device(), " for tensor ", i);
    dt = promote_types(dt, t.dtype());
    if (skipped(t) && !skipped(*ref)) continue;
    EMBER_CHECK(t.dim() == ref->dim(), "cat: tensors must have the same number of dimensions: got shapes ",
                detail::shapes_of(tensors));
    for (int64_t k = 0; k < t.dim(); ++k) {
      EMBER_CHECK(k == d || t.size(k) == ref->size(k), "cat: sizes of tensors must match except in dimension ", d,
                  ": tensor ", i, " has size ", t.size(k), " in dimension ", k, " but expected ", ref->size(k),
                  " (shapes ", detail::shapes_of(tensors), ")");
    }
    out_shape[d] += t.size(d);
  }

  Tensor out = make_tensor(out_shape, dt, ref->device());
  // lengths[i] < 0 marks a skipped legacy-empty input.
  std::vector<int64_t> offsets(tensors.size(), 0), lengths(tensors.size(), -1);
  {
    NoGradGuard ng;
    int64_t off = 0;
    for (size_t i = 0; i < tensors.size(); ++i) {
      const Tensor& t = tensors[i];
      if (skipped(t) && !skipped(*ref)) continue;
      offsets[i] = off;
      lengths[i] = t.size(d);
      if (lengths[i] > 0) detail::copy_into(out.narrow(d, off, lengths[i]), t);
      off += lengths[i];
    }
  }
  if (autograd::needs_grad_list(tensors)) {
    autograd::record("CatBackward", out, tensors, {},
                     [d, offsets, lengths](const Tensor& g, const autograd::BackwardCtx& c) -> tensor_list {
                       tensor_list grads(offsets.size());
                       for (size_t i = 0; i < offsets.size(); ++i) {
                         if (!c.needs(i)) continue;
                         grads[i] = lengths[i] < 0 ? zeros({0}, g.options()) : g.narrow(d, offsets[i], lengths[i]);
                       }
                       return grads;
                     });
  }
  return out;
}

/// Stacks same-shaped tensors along a new dimension `dim` (torch.stack). Differentiable.
inline Tensor stack(const tensor_list& tensors, int64_t dim = 0) {
  EMBER_CHECK(!tensors.empty(), "stack: expected a non-empty list of tensors");
  for (size_t i = 0; i < tensors.size(); ++i) {
    EMBER_CHECK(tensors[i].defined(), "stack: tensor ", i, " is undefined");
    EMBER_CHECK(tensors[i].sizes() == tensors[0].sizes(), "stack: expects each tensor to be equal size, but got ",
                tensors[0].sizes(), " at entry 0 and ", tensors[i].sizes(), " at entry ", i);
  }
  int64_t d = wrap_dim(dim, tensors[0].dim() + 1, "stack");
  tensor_list parts;
  parts.reserve(tensors.size());
  for (const auto& t : tensors) parts.push_back(t.unsqueeze(d));
  return cat(parts, d);
}

/// Splits into views of `split_size` along `dim`; the last piece is smaller when the size does
/// not divide evenly (torch.split).
inline tensor_list split(const Tensor& x, int64_t split_size, int64_t dim = 0) {
  EMBER_CHECK(x.dim() > 0, "split: expected at least a 1-dimensional tensor");
  int64_t d = wrap_dim(dim, x.dim(), "split");
  int64_t n = x.size(d);
  EMBER_CHECK(split_size > 0 || (split_size == 0 && n == 0), "split: split_size must be positive, got ",
              split_size, " for dimension ", d, " of size ", n);
  tensor_list out;
  if (n == 0) {
    out.push_back(x.narrow(d, 0, 0));
    return out;
  }
  for (int64_t start = 0; start < n; start += split_size) out.push_back(x.narrow(d, start, std::min(split_size, n - start)));
  return out;
}

/// Splits into views with the given sizes along `dim`; the sizes must add up to x.size(dim).
inline tensor_list split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim = 0) {
  EMBER_CHECK(x.dim() > 0, "split: expected at least a 1-dimensional tensor");
  int64_t d = wrap_dim(dim, x.dim(), "split");
  int64_t total = 0;
  for (int64_t s : sizes) {
    EMBER_CHECK(s >= 0, "split: split sizes must be non-negative, got ", Shape(sizes));
    total += s;
  }
  EMBER_CHECK(total == x.size(d), "split: split sizes ", Shape(sizes), " must sum to the size of dimension ", d,
              " (", x.size(d), "), but they sum to ", total, " (shape ", x.sizes(), ")");
  tensor_list out;
  out.reserve(sizes.size());
  int64_t start = 0;
  for (int64_t s : sizes) {
    out.push_back(x.narrow(d, start, s));
    start += s;
  }
  return out;
}

/// Splits into at most `chunks` views of equal size ceil(n / chunks) along `dim` (torch.chunk).
inline tensor_list chunk(const Tensor& x, int64_t chunks, int64_t dim = 0) {
  EMBER_CHECK(x.dim() > 0, "chunk: expected at least a 1-dimensional tensor");
  EMBER_CHECK(chunks > 0, "chunk: number of chunks must be positive, got ", chunks);
  int64_t d = wrap_dim(dim, x.dim(), "chunk");
  int64_t n = x.size(d);
  int64_t size = (n + chunks - 1) / chunks;
  if (size == 0) {
    // Every piece is empty: PyTorch returns `chunks` empty views.
    tensor_list out;
    for (int64_t i = 0; i < chunks; ++i) out.push_back(x.narrow(d, 0, 0));
    return out;
  }
  return split(x, size, d);
}

inline tensor_list Tensor::split(int64_t split_size, int64_t dim) const { return ember::split(*this, split_size, dim); }
inline tensor_list Tensor::chunk(int64_t chunks, int64_t dim) const { return ember::chunk(*this, chunks, dim); }

}  // namespace ember

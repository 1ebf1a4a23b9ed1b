#pragma once
/// Indexing with integer tensors: index_select, index_add, gather, scatter_add, one_hot, embedding.
///
/// Each kernel works on contiguous operands viewed as [outer, dim, inner] (the layout the CUDA
/// launchers in cuda/launch.hpp take), so the CPU loops and the GPU kernels see the same thing.
/// The backward pairs are each other's adjoints and are themselves recorded, so double
/// backward works: index_select <-> index_add into zeros, gather <-> scatter_add into zeros.
/// Indices are checked on the host with an error naming the bad index and the size.
///
/// Example:
/// ```
///   auto w = ember::randn({10, 4});
///   auto idx = ember::tensor<int64_t>({1, 3, 3});
///   auto rows = ember::index_select(w, 0, idx);          // [3, 4]
///   auto e = ember::embedding(w, idx.view({1, 3}));      // [1, 3, 4]
/// ```
#include <cstring>
#include <vector>

#include "ember/ops/join.hpp"
#include "ember/ops/reduce.hpp"
#include "ember/ops/shape.hpp"

namespace ember {

namespace detail {

/// The index as a contiguous int64 tensor on its own device, after checking its dtype.
inline Tensor index_as_int64(const Tensor& index, const char* op) {
  EMBER_CHECK(index.defined(), op, ": index tensor is undefined");
  EMBER_CHECK(index.dtype() == kInt64 || index.dtype() == kInt32, op,
              ": expected an int64 or int32 index tensor, got ", index.dtype());
  Tensor i = index.dtype() == kInt64 ? index.detach() : index.detach().to(kInt64);
  return i.contiguous();
}

/// Throws unless every index lies in [0, size). Reads the values on the host (a device sync on
/// CUDA: an out-of-range index must be a clear error, never an out-of-bounds access).
inline void check_index_range(const Tensor& idx64, int64_t size, int64_t dim, const char* op) {
  if (idx64.numel() == 0) return;
  std::vector<int64_t> host;
  const int64_t* p;
  if (idx64.is_cuda()) {
    host = idx64.to_vector<int64_t>();
    p = host.data();
  } else {
    p = idx64.data_ptr<int64_t>();
  }
  for (int64_t k = 0; k < idx64.numel(); ++k) {
    EMBER_CHECK(p[k] >= 0 && p[k] < size, op, ": index ", p[k], " is out of bounds for dimension ", dim,
                " with size ", size);
  }
}

/// outer = product of sizes before dim, inner = product after.
inline std::pair<int64_t, int64_t> outer_inner(const Shape& s, int64_t dim) {
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < dim; ++d) outer *= s[d];
  for (int64_t d = dim + 1; d < s.size(); ++d) inner *= s[d];
  return {outer, inner};
}

/// Elements of the inner run a CPU task handles when accumulating (tasks must not share rows).
inline constexpr int64_t kIndexBlock = 256;

/// out[o, j, :] = in[o, idx[j], :]; all contiguous, in viewed as [outer, in_dim, inner].
inline void index_select_kernel(const Tensor& out, const Tensor& in, const Tensor& idx, int64_t outer,
                                int64_t in_dim, int64_t inner) {
  if (out.numel() == 0) return;
  if (out.is_cuda()) {
#ifdef EMBER_WITH_CUDA
    cuda::index_select(cuda::arg(out), cuda::arg(in), cuda::arg(idx), outer, in_dim, inner);
#else
    fail_no_cuda("index_select");
#endif
    return;
  }
  // A byte copy per row: works for every dtype, float16/bfloat16 included.
  const int64_t n = idx.numel(), es = static_cast<int64_t>(in.element_size());
  const int64_t* ip = idx.data_ptr<int64_t>();
  const char* src = static_cast<const char*>(in.raw_data());
  char* dst = static_cast<char*>(out.raw_data());
  parallel_for(0, outer * n, std::max<int64_t>(1, kGrainSize / std::max<int64_t>(inner, 1)), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      int64_t o = r / n, j = r % n;
      std::memcpy(dst + r * inner * es, src + (o * in_dim + ip[j]) * inner * es, static_cast<size_t>(inner * es));
    }
  });
}

/// out (zeros, contiguous, [outer, out_dim, inner]) [o, idx[j], :] += src[o, j, :].
inline void index_add_kernel(const Tensor& out, const Tensor& src, const Tensor& idx, int64_t outer, int64_t out_dim,
                             int64_t inner) {
  if (src.numel() == 0) return;
  if (out.is_cuda()) {
#ifdef EMBER_WITH_CUDA
    cuda::index_add(cuda::arg(out), cuda::arg(src), cuda::arg(idx), outer, out_dim, inner);
#else
    fail_no_cuda("index_add");
#endif
    return;
  }
  visit_dtype(out.dtype(), "index_add", [&]<typename T>() {
    const int64_t n = idx.numel(), blocks = (inner + kIndexBlock - 1) / kIndexBlock;
    const int64_t* ip = idx.data_ptr<int64_t>();
    const T* s = src.data_ptr<T>();
    T* o = out.data_ptr<T>();
    // Tasks own disjoint (outer, inner-block) pairs, so repeated indices never race.
    int64_t grain = std::max<int64_t>(1, kGrainSize / std::max<int64_t>(n * kIndexBlock, 1));
    parallel_for(0, outer * blocks, grain, [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) {
        int64_t oo = t / blocks, i0 = (t % blocks) * kIndexBlock, i1 = std::min(inner, i0 + kIndexBlock);
        for (int64_t j = 0; j < n; ++j) {
          T* dst = o + (oo * out_dim + ip[j]) * inner;
          const T* sr = s + (oo * n + j) * inner;
          for (int64_t i = i0; i < i1; ++i) dst[i] = static_cast<T>(dst[i] + sr[i]);
        }
      }
    });
  });
}

/// out[o, j, i] = in[o, idx[o, j, i], i]; in [outer, in_dim, inner], idx/out [outer, idx_dim, inner].
inline void gather_kernel(const Tensor& out, const Tensor& in, const Tensor& idx, int64_t outer, int64_t in_dim,
                          int64_t idx_dim, int64_t inner) {
  if (out.numel() == 0) return;
  if (out.is_cuda()) {
#ifdef EMBER_WITH_CUDA
    cuda::gather(cuda::arg(out), cuda::arg(in), cuda::arg(idx), outer, in_dim, idx_dim, inner);
#else
    fail_no_cuda("gather");
#endif
    return;
  }
  visit_all_dtypes(out.dtype(), "gather", [&]<typename T>() {
    const int64_t* ip = idx.data_ptr<int64_t>();
    const T* s = static_cast<const T*>(in.raw_data());
    T* o = static_cast<T*>(out.raw_data());
    parallel_for(0, outer * idx_dim, std::max<int64_t>(1, kGrainSize / std::max<int64_t>(inner, 1)), [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        int64_t oo = r / idx_dim;
        for (int64_t i = 0; i < inner; ++i) o[r * inner + i] = s[(oo * in_dim + ip[r * inner + i]) * inner + i];
      }
    });
  });
}

/// out[o, idx[o, j, i], i] += src[o, j, i]; out [outer, out_dim, inner] holds the base values.
inline void scatter_add_kernel(const Tensor& out, const Tensor& idx, const Tensor& src, int64_t outer, int64_t out_dim,
                               int64_t idx_dim, int64_t inner) {
  if (src.numel() == 0) return;
  if (out.is_cuda()) {
#ifdef EMBER_WITH_CUDA
    cuda::scatter_add(cuda::arg(out), cuda::arg(idx), cuda::arg(src), outer, out_dim, idx_dim, inner);
#else
    fail_no_cuda("scatter_add");
#endif
    return;
  }
  visit_dtype(out.dtype(), "scatter_add", [&]<typename T>() {
    const int64_t* ip = idx.data_ptr<int64_t>();
    const T* s = src.data_ptr<T>();
    T* o = out.data_ptr<T>();
    const int64_t blocks = (inner + kIndexBlock - 1) / kIndexBlock;
    // Column i of out is written only from column i of src: tasks own (outer, inner-block) pairs.
    int64_t grain = std::max<int64_t>(1, kGrainSize / std::max<int64_t>(idx_dim * kIndexBlock, 1));
    parallel_for(0, outer * blocks, grain, [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) {
        int64_t oo = t / blocks, i0 = (t % blocks) * kIndexBlock, i1 = std::min(inner, i0 + kIndexBlock);
        for (int64_t j = 0; j < idx_dim; ++j) {
          int64_t row = (oo * idx_dim + j) * inner;
          for (int64_t i = i0; i < i1; ++i) {
            T& dst = o[(oo * out_dim + ip[row + i]) * inner + i];
            dst = static_cast<T>(dst + s[row + i]);
          }
        }
      }
    });
  });
}

/// `t` narrowed to `sizes` in every dimension except `skip` (a view; no autograd).
inline Tensor narrow_to(const Tensor& t, const Shape& sizes, int64_t skip) {
  Tensor r = t.detach();
  for (int64_t d = 0; d < t.dim(); ++d)
    if (d != skip && r.size(d) != sizes[d]) r = r.narrow(d, 0, sizes[d]);
  return r;
}

}  // namespace detail

inline Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);

/// A zero tensor of shape `sizes` with g's slices added at `index` along `dim`: the adjoint of
/// index_select (its backward). Differentiable: its own backward is index_select.
inline Tensor index_select_backward(const Tensor& g, const Shape& sizes, int64_t dim, const Tensor& index) {
  const char* op = "index_add";
  dim = wrap_dim(dim, sizes.size(), op);
  Tensor idx = detail::index_as_int64(index, op);
  EMBER_CHECK(idx.dim() <= 1, op, ": index must be 0-d or 1-d, got shape ", index.sizes());
  check_same_device(op, {&g, &idx});
  Shape expect = sizes;
  expect[dim] = idx.numel();
  EMBER_CHECK(g.sizes() == expect, op, ": source of shape ", g.sizes(), " does not match ", expect,
              " (destination ", sizes, " with ", idx.numel(), " indices along dimension ", dim, ")");
  detail::check_index_range(idx, sizes[dim], dim, op);
  Tensor out = zeros(sizes, g.options());
  auto [outer, inner] = detail::outer_inner(sizes, dim);
  detail::index_add_kernel(out, g.detach().contiguous(), idx, outer, sizes[dim], inner);
  if (autograd::needs_grad(g)) {
    autograd::record("IndexAddBackward", out, {g}, {idx}, [dim](const Tensor& gg, const autograd::BackwardCtx& c) -> tensor_list {
      return {index_select(gg, dim, c.saved(0))};
    });
  }
  return out;
}

/// The slices of x at `index` (an int64/int32 0-d or 1-d tensor) along `dim` (torch.index_select).
/// Differentiable in x.
inline Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) {
  const char* op = "index_select";
  EMBER_CHECK(x.defined(), op, ": input tensor is undefined");
  Tensor idx = detail::index_as_int64(index, op);
  EMBER_CHECK(idx.dim() <= 1, op, ": index must be 0-d or 1-d, got shape ", index.sizes());
  check_same_device(op, {&x, &idx});
  if (x.dim() == 0) {
    // A scalar behaves as a 1-element vector (PyTorch accepts dim 0 on it).
    wrap_dim(dim, 0, op);
    Tensor r = index_select(x.reshape({1}), 0, index);
    return index.dim() == 0 ? r.reshape({}) : r;
  }
  int64_t d = wrap_dim(dim, x.dim(), op);
  detail::check_index_range(idx, x.size(d), d, op);
  Shape out_shape = x.sizes();
  out_shape[d] = idx.numel();
  Tensor out = make_tensor(out_shape, x.dtype(), x.device());
  auto [outer, inner] = detail::outer_inner(x.sizes(), d);
  detail::index_select_kernel(out, x.detach().contiguous(), idx, outer, x.size(d), inner);
  if (autograd::needs_grad(x)) {
    Shape in = x.sizes();
    autograd::record("IndexSelectBackward", out, {x}, {idx}, [in, d](const Tensor& g, const autograd::BackwardCtx& c) -> tensor_list {
      return {index_select_backward(g, in, d, c.saved(0))};
    });
  }
  return out;
}

/// x with `alpha * src` slices added at `index` along `dim` (out-of-place torch.index_add).
/// Repeated indices accumulate. Differentiable in x and src.
inline Tensor index_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src, Scalar alpha = 1) {
  EMBER_CHECK(x.defined() && src.defined(), "index_add: undefined tensor argument");
  EMBER_CHECK(x.dtype() == src.dtype(), "index_add: self (", x.dtype(), ") and source (", src.dtype(),
              ") must have the same dtype");
  EMBER_CHECK(x.dim() > 0, "index_add: expected at least a 1-dimensional tensor");
  EMBER_CHECK(src.dim() == x.dim(), "index_add: source of shape ", src.sizes(), " must have as many dimensions as self ",
              x.sizes());
  Tensor s = alpha.to_double() == 1.0 ? src : src * alpha;
  return x + index_select_backward(s, x.sizes(), dim, index);
}

/// out = x; out[..., index[..., j, ...], ...] += src[..., j, ...] along `dim` (out-of-place
/// torch.scatter_add). index has x's rank with index.size(d) <= src.size(d) for all d and
/// <= x.size(d) for d != dim. Differentiable in x and src.
inline Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src) {
  const char* op = "scatter_add";
  EMBER_CHECK(x.defined() && src.defined(), op, ": undefined tensor argument");
  EMBER_CHECK(x.dtype() == src.dtype(), op, ": self (", x.dtype(), ") and source (", src.dtype(),
              ") must have the same dtype");
  Tensor idx = detail::index_as_int64(index, op);
  check_same_device(op, {&x, &idx, &src});
  EMBER_CHECK(x.dim() > 0, op, ": expected at least a 1-dimensional tensor");
  int64_t d = wrap_dim(dim, x.dim(), op);
  EMBER_CHECK(idx.dim() == x.dim() && src.dim() == x.dim(), op, ": index ", index.sizes(), ", self ", x.sizes(),
              " and source ", src.sizes(), " must have the same number of dimensions");
  for (int64_t k = 0; k < x.dim(); ++k) {
    EMBER_CHECK(idx.size(k) <= src.size(k) && (k == d || idx.size(k) <= x.size(k)), op, ": index ", index.sizes(),
                " is larger than source ", src.sizes(), " or than self ", x.sizes(), " in dimension ", k);
  }
  detail::check_index_range(idx, x.size(d), d, op);

  Tensor out = make_tensor(x.sizes(), x.dtype(), x.device());
  detail::copy_into(out, x);
  if (idx.numel() > 0) {
    Shape region = idx.sizes();
    region[d] = x.size(d);
    // The kernels want out as [outer, out_dim, inner] with index's other dims: work in a
    // contiguous copy of that region when index is smaller than x.
    Tensor target = region == x.sizes() ? out : detail::narrow_to(out, region, d).contiguous();
    Tensor s = detail::narrow_to(src, idx.sizes(), -1).contiguous();
    auto [outer, inner] = detail::outer_inner(idx.sizes(), d);
    detail::scatter_add_kernel(target, idx, s, outer, x.size(d), idx.size(d), inner);
    if (!target.is_same(out)) detail::copy_into(detail::narrow_to(out, region, d), target);
  }
  if (autograd::needs_grad(x, src)) {
    Shape src_shape = src.sizes();
    autograd::record("ScatterAddBackward", out, {x, src}, {idx}, [d, src_shape](const Tensor& g, const autograd::BackwardCtx& c) -> tensor_list {
      Tensor gs;
      if (c.needs(1)) {
        gs = g.gather(d, c.saved(0));
        // Source positions beyond the index's extent were not used: their gradient is zero.
        for (int64_t k = 0; k < gs.dim(); ++k) {
          if (gs.size(k) == src_shape[k]) continue;
          Shape padded = gs.sizes();
          padded[k] = src_shape[k];
          gs = slice_backward(gs, padded, k, 0, gs.size(k), 1);
        }
      }
      return {c.needs(0) ? g : Tensor(), gs};
    });
  }
  return out;
}

/// out[i][j][k] = x[i][index[i][j][k]][k] for dim 1, likewise for other dims (torch.gather).
/// index has x's rank and index.size(d) <= x.size(d) for d != dim; out has index's shape.
/// Differentiable in x (backward: scatter_add into zeros).
inline Tensor gather(const Tensor& x, int64_t dim, const Tensor& index) {
  const char* op = "gather";
  EMBER_CHECK(x.defined(), op, ": input tensor is undefined");
  Tensor idx = detail::index_as_int64(index, op);
  check_same_device(op, {&x, &idx});
  EMBER_CHECK(x.dim() > 0, op, ": expected at least a 1-dimensional tensor");
  int64_t d = wrap_dim(dim, x.dim(), op);
  EMBER_CHECK(idx.dim() == x.dim(), op, ": index ", index.sizes(), " and input ", x.sizes(),
              " must have the same number of dimensions");
  for (int64_t k = 0; k < x.dim(); ++k) {
    EMBER_CHECK(k == d || idx.size(k) <= x.size(k), op, ": index ", index.sizes(), " is larger than input ",
                x.sizes(), " in dimension ", k);
  }
  detail::check_index_range(idx, x.size(d), d, op);
  Tensor out = make_tensor(idx.sizes(), x.dtype(), x.device());
  if (idx.numel() > 0) {
    Shape region = idx.sizes();
    region[d] = x.size(d);
    Tensor in = detail::narrow_to(x, region, d).contiguous();
    auto [outer, inner] = detail::outer_inner(idx.sizes(), d);
    detail::gather_kernel(out, in, idx, outer, x.size(d), idx.size(d), inner);
  }
  if (autograd::needs_grad(x)) {
    Shape in = x.sizes();
    autograd::record("GatherBackward", out, {x}, {idx}, [in, d](const Tensor& g, const autograd::BackwardCtx& c) -> tensor_list {
      return {scatter_add(zeros(in, g.options()), d, c.saved(0), g)};
    });
  }
  return out;
}

/// indices (int64/int32, any shape) -> int64 tensor of shape indices.shape + [num_classes] with a
/// 1 at each index (torch.nn.functional.one_hot). num_classes = -1 takes max(indices) + 1.
inline Tensor one_hot(const Tensor& indices, int64_t num_classes = -1) {
  const char* op = "one_hot";
  Tensor idx = detail::index_as_int64(indices, op);
  std::vector<int64_t> v = idx.to_vector<int64_t>();
  if (num_classes < 0) {
    EMBER_CHECK(!v.empty(), op, ": can not infer the total number of classes from an empty tensor");
    num_classes = *std::max_element(v.begin(), v.end()) + 1;
  }
  for (int64_t k : v)
    EMBER_CHECK(k >= 0 && k < num_classes, op, ": class value ", k, " is out of range for num_classes ", num_classes,
                " (expected values in [0, ", num_classes, "))");
  // A broadcast comparison against 0..C-1 runs on whichever device holds the indices.
  Tensor classes = arange(num_classes, TensorOptions(kInt64).device(idx.device()));
  return eq(idx.unsqueeze(-1), classes).to(kInt64);
}

/// Rows of `weight` ([num_embeddings, dim]) looked up by `indices` (any shape):
/// shape indices.shape + [dim]. Differentiable in weight. (padding_idx lives in nn::Embedding.)
inline Tensor embedding(const Tensor& weight, const Tensor& indices) {
  EMBER_CHECK(weight.defined() && weight.dim() == 2, "embedding: weight must be 2-d [num_embeddings, dim], got ",
              weight.defined() ? weight.sizes() : Shape{});
  EMBER_CHECK(indices.defined(), "embedding: indices tensor is undefined");
  EMBER_CHECK(indices.dtype() == kInt64 || indices.dtype() == kInt32,
              "embedding: expected int64 or int32 indices, got ", indices.dtype());
  Shape out_shape = indices.sizes();
  out_shape.push_back(weight.size(1));
  return index_select(weight, 0, indices.reshape({-1})).view(out_shape);
}

inline Tensor Tensor::index_select(int64_t dim, const Tensor& index) const { return ember::index_select(*this, dim, index); }
inline Tensor Tensor::gather(int64_t dim, const Tensor& index) const { return ember::gather(*this, dim, index); }
inline Tensor Tensor::scatter_add(int64_t dim, const Tensor& index, const Tensor& src) const {
  return ember::scatter_add(*this, dim, index, src);
}

}  // namespace ember

#pragma once
/// CPU elementwise loops over strided, broadcast operands.
///
/// `cpu::map<Out, In...>(out, f, in...)` computes out[i] = f(in[i]...) where every input has
/// already been broadcast to out's shape (stride 0 on broadcast dims). Dimensions that are
/// contiguous in every operand are merged first, so the common cases (all contiguous, or a
/// scalar broadcast) become one flat inner loop the compiler vectorises.
#include <array>
#include <cstdint>
#include <utility>

#include "ember/core/parallel.hpp"
#include "ember/core/tensor.hpp"

namespace ember::cpu {

/// Sizes and per-operand strides (in elements) after broadcasting and merging dimensions.
template <size_t N>
struct Geometry {
  int ndim = 0;
  std::array<int64_t, kMaxDims> sizes{};
  std::array<std::array<int64_t, kMaxDims>, N> strides{};
};

/// Strides of `t` viewed in `shape` (right-aligned broadcasting: stride 0 where t has size 1).
inline Shape broadcast_strides(const Tensor& t, const Shape& shape) {
  Shape st = Shape::filled(shape.size(), 0);
  int64_t off = shape.size() - t.dim();
  for (int64_t d = 0; d < t.dim(); ++d) st[d + off] = t.size(d) == 1 ? 0 : t.stride(d);
  return st;
}

template <size_t N>
Geometry<N> make_geometry(const Shape& shape, const std::array<Shape, N>& strides) {
  Geometry<N> g;
  // Drop size-1 dims, then merge d into d-1 when contiguous in every operand.
  for (int64_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    if (g.ndim > 0) {
      bool mergeable = true;
      for (size_t k = 0; k < N; ++k)
        if (strides[k][d] * shape[d] != g.strides[k][g.ndim - 1]) mergeable = false;
      if (mergeable) {
        g.sizes[g.ndim - 1] *= shape[d];
        for (size_t k = 0; k < N; ++k) g.strides[k][g.ndim - 1] = strides[k][d];
        continue;
      }
    }
    g.sizes[g.ndim] = shape[d];
    for (size_t k = 0; k < N; ++k) g.strides[k][g.ndim] = strides[k][d];
    ++g.ndim;
  }
  if (g.ndim == 0) {  // a single element
    g.ndim = 1;
    g.sizes[0] = 1;
    for (size_t k = 0; k < N; ++k) g.strides[k][0] = 0;
  }
  return g;
}

/// Visits the linear range [begin, end) of g's index space in runs along the innermost dim:
/// inner(ptrs, count) with ptrs[k] pointing at operand k's first element of the run.
template <size_t N, typename F>
void for_each_run(const Geometry<N>& g, std::array<char*, N> base, const std::array<int64_t, N>& elsize,
                  int64_t begin, int64_t end, const F& inner) {
  const int last = g.ndim - 1;
  std::array<int64_t, kMaxDims> idx{};
  int64_t rem = begin;
  for (int d = last; d >= 0; --d) {
    idx[d] = rem % g.sizes[d];
    rem /= g.sizes[d];
  }
  std::array<char*, N> p;
  for (size_t k = 0; k < N; ++k) {
    int64_t off = 0;
    for (int d = 0; d <= last; ++d) off += idx[d] * g.strides[k][d];
    p[k] = base[k] + off * elsize[k];
  }
  int64_t pos = begin;
  while (pos < end) {
    int64_t count = std::min<int64_t>(g.sizes[last] - idx[last], end - pos);
    inner(p, count);
    pos += count;
    if (pos >= end) break;
    // Advance: the innermost index wrapped; carry into outer dims.
    for (size_t k = 0; k < N; ++k) p[k] += count * g.strides[k][last] * elsize[k];
    idx[last] += count;
    for (int d = last; d > 0 && idx[d] == g.sizes[d]; --d) {
      idx[d] = 0;
      ++idx[d - 1];
      for (size_t k = 0; k < N; ++k)
        p[k] += (g.strides[k][d - 1] - g.sizes[d] * g.strides[k][d]) * elsize[k];
    }
  }
}

namespace detail {
template <typename Out, typename... In, typename F, size_t... I>
void map_run(const std::array<char*, sizeof...(In) + 1>& p, const std::array<int64_t, sizeof...(In) + 1>& s,
             int64_t n, const F& f, std::index_sequence<I...>) {
  Out* o = reinterpret_cast<Out*>(p[0]);
  bool unit = s[0] == 1 && (... && (s[I + 1] == 1));
  if (unit) {
    for (int64_t i = 0; i < n; ++i) o[i] = static_cast<Out>(f(reinterpret_cast<const In*>(p[I + 1])[i]...));
  } else if (s[0] == 1 && (... && (s[I + 1] <= 1))) {
    // Contiguous output with some inputs broadcast along the run (stride 0).
    for (int64_t i = 0; i < n; ++i)
      o[i] = static_cast<Out>(f(reinterpret_cast<const In*>(p[I + 1])[i * s[I + 1]]...));
  } else {
    for (int64_t i = 0; i < n; ++i)
      o[i * s[0]] = static_cast<Out>(f(reinterpret_cast<const In*>(p[I + 1])[i * s[I + 1]]...));
  }
}
}  // namespace detail

/// out[i] = f(in[i]...), with every input broadcast to out's shape. Dtypes must equal Out/In.
template <typename Out, typename... In, typename F>
void map(const Tensor& out, const F& f, const std::conditional_t<true, Tensor, In>&... in) {
  constexpr size_t N = sizeof...(In) + 1;
  const Shape& shape = out.sizes();
  std::array<Shape, N> strides{out.strides(), broadcast_strides(in, shape)...};
  auto g = make_geometry<N>(shape, strides);
  std::array<char*, N> base{static_cast<char*>(out.raw_data()),
                            static_cast<char*>(const_cast<void*>(in.raw_data()))...};
  std::array<int64_t, N> elsize{static_cast<int64_t>(sizeof(Out)), static_cast<int64_t>(sizeof(In))...};
  std::array<int64_t, N> inner_stride;
  for (size_t k = 0; k < N; ++k) inner_stride[k] = g.strides[k][g.ndim - 1];
  int64_t numel = shape.numel();
  parallel_for(0, numel, kGrainSize, [&](int64_t b, int64_t e) {
    for_each_run<N>(g, base, elsize, b, e, [&](const std::array<char*, N>& p, int64_t n) {
      detail::map_run<Out, In...>(p, inner_stride, n, f, std::index_sequence_for<In...>{});
    });
  });
}

}  // namespace ember::cpu

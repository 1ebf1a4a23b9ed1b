/// index_select / index_add (its backward) and gather / scatter_add (its backward) on contiguous
/// tensors viewed as [outer, dim, inner]. Indices are int64 or int32; the op headers validate
/// them on the host, and the kernels wrap negatives and skip anything still out of range rather
/// than touch memory they don't own.
#include "common.cuh"

namespace ember::cuda {

namespace {

using detail::cast;

// ---- atomic add for every dtype -----------------------------------------------------------------

/// Adds v to the byte at p with a compare-and-swap on its aligned 32-bit word.
template <typename F>
__device__ void atomic_byte_update(uint8_t* p, F f) {
  auto addr = reinterpret_cast<uintptr_t>(p);
  unsigned int* word = reinterpret_cast<unsigned int*>(addr & ~uintptr_t{3});
  unsigned int shift = static_cast<unsigned int>(addr & 3u) * 8u;
  unsigned int old = *word, assumed;
  do {
    assumed = old;
    uint8_t cur = static_cast<uint8_t>((assumed >> shift) & 0xffu);
    uint8_t next = f(cur);
    unsigned int repl = (assumed & ~(0xffu << shift)) | (static_cast<unsigned int>(next) << shift);
    old = atomicCAS(word, assumed, repl);
  } while (old != assumed);
}

template <typename T>
__device__ __forceinline__ void atomic_add(T* p, T v) {
  if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double> || std::is_same_v<T, int32_t> ||
                std::is_same_v<T, detail::half> || std::is_same_v<T, detail::bf16>) {
    atomicAdd(p, v);
  } else if constexpr (std::is_same_v<T, int64_t>) {
    // Two's complement: unsigned wrap-around addition gives the signed sum.
    atomicAdd(reinterpret_cast<unsigned long long*>(p), static_cast<unsigned long long>(v));
  } else if constexpr (std::is_same_v<T, uint8_t>) {
    atomic_byte_update(p, [v](uint8_t cur) { return static_cast<uint8_t>(cur + v); });
  } else {  // bool: addition saturates at true (logical or)
    if (v) atomic_byte_update(reinterpret_cast<uint8_t*>(p), [](uint8_t) { return uint8_t{1}; });
  }
}

template <typename I>
__device__ __forceinline__ int64_t load_index(const I* idx, int64_t k, int64_t dim) {
  int64_t i = static_cast<int64_t>(idx[k]);
  return i < 0 ? i + dim : i;
}

// ---- kernels ----------------------------------------------------------------------------------

template <typename T, typename I>
__global__ void index_select_kernel(T* out, const T* in, const I* index, int64_t n_idx, int64_t in_dim, int64_t inner,
                                    int64_t total) {
  int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < total; t += step) {
    int64_t i = t % inner, rest = t / inner;
    int64_t j = rest % n_idx, o = rest / n_idx;
    int64_t src = load_index(index, j, in_dim);
    out[t] = (src >= 0 && src < in_dim) ? in[(o * in_dim + src) * inner + i] : T{};
  }
}

template <typename T, typename I>
__global__ void index_add_kernel(T* out, const T* src, const I* index, int64_t n_idx, int64_t out_dim, int64_t inner,
                                 int64_t total) {
  int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < total; t += step) {
    int64_t i = t % inner, rest = t / inner;
    int64_t j = rest % n_idx, o = rest / n_idx;
    int64_t dst = load_index(index, j, out_dim);
    if (dst >= 0 && dst < out_dim) atomic_add(&out[(o * out_dim + dst) * inner + i], src[t]);
  }
}

template <typename T, typename I>
__global__ void gather_kernel(T* out, const T* in, const I* index, int64_t in_dim, int64_t idx_dim, int64_t inner,
                              int64_t total) {
  int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < total; t += step) {
    int64_t i = t % inner, o = t / inner / idx_dim;
    int64_t src = load_index(index, t, in_dim);
    out[t] = (src >= 0 && src < in_dim) ? in[(o * in_dim + src) * inner + i] : T{};
  }
}

template <typename T, typename I>
__global__ void scatter_add_kernel(T* out, const I* index, const T* src, int64_t out_dim, int64_t idx_dim, int64_t inner,
                                   int64_t total) {
  int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < total; t += step) {
    int64_t i = t % inner, o = t / inner / idx_dim;
    int64_t dst = load_index(index, t, out_dim);
    if (dst >= 0 && dst < out_dim) atomic_add(&out[(o * out_dim + dst) * inner + i], src[t]);
  }
}

template <typename F>
void dispatch_index(DType t, const char* op, F&& f) {
  if (t == kInt64) return f(detail::tag<int64_t>{});
  if (t == kInt32) return f(detail::tag<int32_t>{});
  EMBER_FAIL(op, ": index must be an int64 or int32 tensor, got ", t);
}

}  // namespace

void index_select(const TensorArg& out, const TensorArg& in, const TensorArg& index, int64_t outer, int64_t in_dim,
                  int64_t inner) {
  const char* name = "index_select (cuda)";
  int64_t n_idx = index.numel(), total = outer * n_idx * inner;
  if (total == 0) return;
  EMBER_CHECK(out.dtype == in.dtype, name, ": output dtype ", out.dtype, " differs from input dtype ", in.dtype);
  detail::dispatch_all(in.dtype, name, [&](auto tt) {
    using T = typename decltype(tt)::type;
    dispatch_index(index.dtype, name, [&](auto it) {
      using I = typename decltype(it)::type;
      index_select_kernel<T, I><<<detail::grid_for(total), detail::kBlock, 0, detail::stream()>>>(
          static_cast<T*>(out.data), static_cast<const T*>(in.data), static_cast<const I*>(index.data), n_idx, in_dim,
          inner, total);
      detail::check_launch(name);
    });
  });
}

void index_add(const TensorArg& out, const TensorArg& src, const TensorArg& index, int64_t outer, int64_t out_dim,
               int64_t inner) {
  const char* name = "index_add (cuda)";
  EMBER_CHECK(out.dtype == src.dtype, name, ": output dtype ", out.dtype, " differs from source dtype ", src.dtype);
  int64_t out_total = outer * out_dim * inner;
  if (out_total == 0) return;
  detail::check(cudaMemsetAsync(out.data, 0, static_cast<size_t>(out_total) * element_size(out.dtype), detail::stream()),
                name);
  int64_t n_idx = index.numel(), total = outer * n_idx * inner;
  if (total == 0) return;
  detail::dispatch_all(out.dtype, name, [&](auto tt) {
    using T = typename decltype(tt)::type;
    dispatch_index(index.dtype, name, [&](auto it) {
      using I = typename decltype(it)::type;
      index_add_kernel<T, I><<<detail::grid_for(total), detail::kBlock, 0, detail::stream()>>>(
          static_cast<T*>(out.data), static_cast<const T*>(src.data), static_cast<const I*>(index.data), n_idx, out_dim,
          inner, total);
      detail::check_launch(name);
    });
  });
}

void gather(const TensorArg& out, const TensorArg& in, const TensorArg& index, int64_t outer, int64_t in_dim,
            int64_t idx_dim, int64_t inner) {
  const char* name = "gather (cuda)";
  int64_t total = outer * idx_dim * inner;
  if (total == 0) return;
  EMBER_CHECK(out.dtype == in.dtype, name, ": output dtype ", out.dtype, " differs from input dtype ", in.dtype);
  detail::dispatch_all(in.dtype, name, [&](auto tt) {
    using T = typename decltype(tt)::type;
    dispatch_index(index.dtype, name, [&](auto it) {
      using I = typename decltype(it)::type;
      gather_kernel<T, I><<<detail::grid_for(total), detail::kBlock, 0, detail::stream()>>>(
          static_cast<T*>(out.data), static_cast<const T*>(in.data), static_cast<const I*>(index.data), in_dim, idx_dim,
          inner, total);
      detail::check_launch(name);
    });
  });
}

void scatter_add(const TensorArg& out, const TensorArg& index, const TensorArg& src, int64_t outer, int64_t out_dim,
                 int64_t idx_dim, int64_t inner) {
  const char* name = "scatter_add (cuda)";
  int64_t total = outer * idx_dim * inner;
  if (total == 0) return;
  EMBER_CHECK(out.dtype == src.dtype, name, ": output dtype ", out.dtype, " differs from source dtype ", src.dtype);
  detail::dispatch_all(out.dtype, name, [&](auto tt) {
    using T = typename decltype(tt)::type;
    dispatch_index(index.dtype, name, [&](auto it) {
      using I = typename decltype(it)::type;
      scatter_add_kernel<T, I><<<detail::grid_for(total), detail::kBlock, 0, detail::stream()>>>(
          static_cast<T*>(out.data), static_cast<const I*>(index.data), static_cast<const T*>(src.data), out_dim,
          idx_dim, inner, total);
      detail::check_launch(name);
    });
  });
}

}  // namespace ember::cuda

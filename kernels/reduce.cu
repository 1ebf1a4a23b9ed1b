/// Row reductions (sum, prod, max, min, argmax, argmin) and (log-)softmax over the last dim of a
/// contiguous [outer, inner] input. Long rows get a block each, short rows a warp each; partial
/// results combine with warp shuffles, then across warps through shared memory.
///
/// Accumulation matches the CPU (ops/reduce.hpp): floating sums and products in double (float for
/// float16/bfloat16 is not enough for long rows either, so they use double too), integers in
/// their own type; max/min/arg* return the first NaN if there is one, else the first extremum.
#include <cfloat>

#include "common.cuh"

namespace ember::cuda {

namespace {

using detail::cast;

constexpr int kWarp = 32;
constexpr int kRowBlock = 256;  // threads per block for one long row
constexpr int kWarpsPerBlock = 8;

/// Accumulator: double for floating types, uint32 for 8-bit integers (same result modulo 256 as
/// the CPU's uint8 arithmetic, and shuffle-able), the type itself otherwise.
template <typename T>
using acc_t = std::conditional_t<detail::is_float_like<T>, double, std::conditional_t<(sizeof(T) < 4), uint32_t, T>>;

// ---- combiners --------------------------------------------------------------------------------

/// A candidate for max/min/arg*: its value (in compute type) and index; idx < 0 means "none".
template <typename C>
struct Best {
  C v;
  int64_t idx;
};

/// Picks the winner with the CPU's rule: NaN first (earliest), then the extremum, ties to the
/// earlier index.
template <typename C>
__device__ __forceinline__ Best<C> pick(Best<C> a, Best<C> b, bool is_max) {
  if (a.idx < 0) return b;
  if (b.idx < 0) return a;
  bool na = detail::is_nan(a.v), nb = detail::is_nan(b.v);
  if (na || nb) {
    if (na && nb) return a.idx < b.idx ? a : b;
    return na ? a : b;
  }
  if (a.v == b.v) return a.idx < b.idx ? a : b;
  bool a_better = is_max ? a.v > b.v : a.v < b.v;
  return a_better ? a : b;
}

template <typename A>
__device__ __forceinline__ A warp_sum(A v) {
#pragma unroll
  for (int o = kWarp / 2; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  return v;
}
template <typename A>
__device__ __forceinline__ A warp_prod(A v) {
#pragma unroll
  for (int o = kWarp / 2; o > 0; o >>= 1) v *= __shfl_down_sync(0xffffffffu, v, o);
  return v;
}
template <typename C>
__device__ __forceinline__ Best<C> warp_best(Best<C> v, bool is_max) {
#pragma unroll
  for (int o = kWarp / 2; o > 0; o >>= 1) {
    Best<C> other{__shfl_down_sync(0xffffffffu, v.v, o), __shfl_down_sync(0xffffffffu, v.idx, o)};
    v = pick(v, other, is_max);
  }
  return v;
}

/// Shuffle-able compute type for the value of Best (bool/uint8 widen to int).
template <typename T>
using best_t = std::conditional_t<detail::is_float_like<T>, detail::compute_t<T>,
                                  std::conditional_t<(sizeof(T) < 4), int, T>>;

// ---- one row per warp (lane-strided) or per block (thread-strided) ------------------------------

/// Reduces row `r` with `nthreads` cooperating threads of index `tid`; the result is valid in
/// thread 0 of the group. `shared` is null for warp groups.
template <typename T>
struct RowReducer {
  ReduceOp op;
  const T* in;
  void* out;
  int64_t inner;

  template <typename A>
  __device__ A combine_sum(A v, A* shared, bool block) const {
    v = warp_sum(v);
    if (!block) return v;
    int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
    __syncthreads();
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    if (warp == 0) {
      v = lane < static_cast<int>(blockDim.x / kWarp) ? shared[lane] : A(0);
      v = warp_sum(v);
    }
    return v;
  }
  template <typename A>
  __device__ A combine_prod(A v, A* shared, bool block) const {
    v = warp_prod(v);
    if (!block) return v;
    int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
    __syncthreads();
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    if (warp == 0) {
      v = lane < static_cast<int>(blockDim.x / kWarp) ? shared[lane] : A(1);
      v = warp_prod(v);
    }
    return v;
  }
  template <typename C>
  __device__ Best<C> combine_best(Best<C> v, Best<C>* shared, bool block, bool is_max) const {
    v = warp_best(v, is_max);
    if (!block) return v;
    int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
    __syncthreads();
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    if (warp == 0) {
      v = lane < static_cast<int>(blockDim.x / kWarp) ? shared[lane] : Best<C>{C(0), -1};
      v = warp_best(v, is_max);
    }
    return v;
  }

  /// `scratch` holds kRowBlock / kWarp doubles' worth (or Best) of shared memory.
  __device__ void run(int64_t r, int tid, int nthreads, void* scratch, bool block) const {
    const T* row = in + r * inner;
    using A = acc_t<T>;
    if (op == ReduceOp::Sum || op == ReduceOp::Prod) {
      bool sum = op == ReduceOp::Sum;
      A acc = sum ? A(0) : A(1);
      for (int64_t i = tid; i < inner; i += nthreads) {
        A x = cast<A>(row[i]);
        acc = sum ? static_cast<A>(acc + x) : static_cast<A>(acc * x);
      }
      acc = sum ? combine_sum(acc, static_cast<A*>(scratch), block) : combine_prod(acc, static_cast<A*>(scratch), block);
      if (tid == 0) static_cast<T*>(out)[r] = cast<T>(acc);
      return;
    }
    using C = best_t<T>;
    bool is_max = op == ReduceOp::Max || op == ReduceOp::ArgMax;
    Best<C> best{C(0), -1};
    for (int64_t i = tid; i < inner; i += nthreads) best = pick(best, Best<C>{cast<C>(row[i]), i}, is_max);
    best = combine_best(best, static_cast<Best<C>*>(scratch), block, is_max);
    if (tid == 0) {
      if (op == ReduceOp::Max || op == ReduceOp::Min) static_cast<T*>(out)[r] = row[best.idx];
      else static_cast<int64_t*>(out)[r] = best.idx;
    }
  }
};

union alignas(16) Scratch {
  double d[kRowBlock / kWarp];
  int64_t i[kRowBlock / kWarp];
  char b[kRowBlock / kWarp * 16];
};

template <typename T>
__global__ void reduce_block_kernel(RowReducer<T> red, int64_t outer) {
  __shared__ Scratch scratch;
  for (int64_t r = blockIdx.x; r < outer; r += gridDim.x) red.run(r, threadIdx.x, blockDim.x, &scratch, true);
}

template <typename T>
__global__ void reduce_warp_kernel(RowReducer<T> red, int64_t outer) {
  int lane = threadIdx.x % kWarp;
  int64_t warp = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / kWarp;
  int64_t nwarps = static_cast<int64_t>(gridDim.x) * kWarpsPerBlock;
  for (int64_t r = warp; r < outer; r += nwarps) red.run(r, lane, kWarp, nullptr, false);
}

// ---- softmax ----------------------------------------------------------------------------------

/// Block-wide max then sum of a double; every thread gets the result.
__device__ double block_max(double v, double* shared) {
#pragma unroll
  for (int o = kWarp / 2; o > 0; o >>= 1) v = fmax(v, __shfl_down_sync(0xffffffffu, v, o));
  int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  __syncthreads();
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  double r = shared[0];
  for (int w = 1; w < static_cast<int>(blockDim.x / kWarp); ++w) r = fmax(r, shared[w]);
  return r;
}
__device__ double block_sum(double v, double* shared) {
  v = warp_sum(v);
  int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  __syncthreads();
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  double r = 0;
  for (int w = 0; w < static_cast<int>(blockDim.x / kWarp); ++w) r += shared[w];
  return r;
}

/// One block per row: max, then sum of exp(x - max) in double, then the outputs.
/// A NaN anywhere in a row makes the whole row NaN, as it does in PyTorch.
template <typename T>
__global__ void softmax_kernel(T* out, const T* in, int64_t outer, int64_t inner, bool log_out) {
  using C = detail::compute_t<T>;
  __shared__ double shared[kRowBlock / kWarp];
  for (int64_t r = blockIdx.x; r < outer; r += gridDim.x) {
    const T* row = in + r * inner;
    T* orow = out + r * inner;
    double m = -INFINITY;
    bool nan = false;
    for (int64_t i = threadIdx.x; i < inner; i += blockDim.x) {
      double x = static_cast<double>(cast<C>(row[i]));
      nan |= x != x;
      m = fmax(m, x);
    }
    bool any_nan = __syncthreads_or(nan) != 0;
    m = block_max(m, shared);  // fmax drops NaN, so the flag restores it
    if (any_nan) m = NAN;
    double s = 0;
    for (int64_t i = threadIdx.x; i < inner; i += blockDim.x) s += exp(static_cast<double>(cast<C>(row[i])) - m);
    s = block_sum(s, shared);
    double ls = log(s);
    for (int64_t i = threadIdx.x; i < inner; i += blockDim.x) {
      double z = static_cast<double>(cast<C>(row[i])) - m;
      orow[i] = cast<T>(static_cast<C>(log_out ? z - ls : exp(z) / s));
    }
    __syncthreads();  // shared is reused by the next row
  }
}

}  // namespace

void reduce_last(ReduceOp op, const TensorArg& out, const TensorArg& in, int64_t outer, int64_t inner) {
  const char* name = "reduce (cuda)";
  if (outer <= 0) return;
  bool arg = op == ReduceOp::ArgMax || op == ReduceOp::ArgMin;
  EMBER_CHECK(inner > 0 || op == ReduceOp::Sum || op == ReduceOp::Prod, name,
              ": cannot reduce over a dimension of size 0 with max/min/argmax/argmin");
  EMBER_CHECK(out.dtype == (arg ? kInt64 : in.dtype), name, ": expected a ", (arg ? kInt64 : in.dtype),
              " output for a ", in.dtype, " input, got ", out.dtype);
  EMBER_CHECK(in.dtype != kBool, name, ": not supported for bool tensors");
  detail::dispatch_all(in.dtype, name, [&](auto t) {
    using T = typename decltype(t)::type;
    if constexpr (!std::is_same_v<T, bool>) {
      RowReducer<T> red{op, static_cast<const T*>(in.data), out.data, inner};
      if (inner <= 256) {
        int64_t blocks = (outer + kWarpsPerBlock - 1) / kWarpsPerBlock;
        reduce_warp_kernel<T><<<detail::grid_for(blocks, 1), kWarp * kWarpsPerBlock, 0, detail::stream()>>>(red, outer);
      } else {
        reduce_block_kernel<T><<<detail::grid_for(outer, 1), kRowBlock, 0, detail::stream()>>>(red, outer);
      }
      detail::check_launch(name);
    }
  });
}

void softmax_last(const TensorArg& out, const TensorArg& in, int64_t outer, int64_t inner, bool log) {
  const char* name = log ? "log_softmax (cuda)" : "softmax (cuda)";
  if (outer <= 0 || inner <= 0) return;
  EMBER_CHECK(out.dtype == in.dtype, name, ": output dtype ", out.dtype, " differs from input dtype ", in.dtype);
  detail::dispatch_floating(in.dtype, name, [&](auto t) {
    using T = typename decltype(t)::type;
    softmax_kernel<T><<<detail::grid_for(outer, 1), kRowBlock, 0, detail::stream()>>>(
        static_cast<T*>(out.data), static_cast<const T*>(in.data), outer, inner, log);
    detail::check_launch(name);
  });
}

}  // namespace ember::cuda

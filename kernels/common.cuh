#pragma once
/// Shared pieces of the CUDA kernels: error checks that throw ember::Error, the device scalar
/// type of each DType, value conversion, the strided offset calculator with dimension merging,
/// and the one generic grid-stride elementwise loop that every pointwise kernel runs on.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "ember/core/error.hpp"
#include "ember/cuda/launch.hpp"

namespace ember::cuda::detail {

// ---- errors --------------------------------------------------------------------------------------

/// Throws ember::Error naming the op and CUDA's description when `err` is not cudaSuccess.
inline void check(cudaError_t err, const char* op) {
  if (err != cudaSuccess) [[unlikely]] {
    cudaGetLastError();  // clear the sticky-free error so the next call starts clean
    EMBER_FAIL(op, ": CUDA error ", static_cast<int>(err), " (", cudaGetErrorName(err), "): ",
               cudaGetErrorString(err));
  }
}
/// Checks the launch of the kernel just queued.
inline void check_launch(const char* op) { check(cudaGetLastError(), op); }

/// The stream every Ember kernel and copy runs on (the legacy default stream: all work is ordered,
/// which is what lets the caching allocator reuse a freed block at once).
inline cudaStream_t stream() { return nullptr; }

/// Makes `device` current for the calls in its scope (a no-op for -1 or the current device).
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    if (device < 0) return;
    check(cudaGetDevice(&prev_), "cuda device guard");
    if (prev_ != device) {
      check(cudaSetDevice(device), "cuda device guard");
      switched_ = true;
    }
  }
  ~DeviceGuard() {
    if (switched_) cudaSetDevice(prev_);
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int prev_ = 0;
  bool switched_ = false;
};

// ---- types ---------------------------------------------------------------------------------------

using half = __half;
using bf16 = __nv_bfloat16;

/// The type arithmetic is done in: float for the 16-bit floats, the type itself otherwise.
template <typename T> struct compute_type { using type = T; };
template <> struct compute_type<half> { using type = float; };
template <> struct compute_type<bf16> { using type = float; };
template <typename T> using compute_t = typename compute_type<T>::type;

template <typename T>
inline constexpr bool is_half_like = std::is_same_v<T, half> || std::is_same_v<T, bf16>;
template <typename T>
inline constexpr bool is_float_like = std::is_floating_point_v<T> || is_half_like<T>;

/// v converted to D with the CPU backend's rules (ops/copy.hpp convert_value): 16-bit floats go
/// through float, anything to bool is `!= 0` (NaN is true).
template <typename D, typename S>
__host__ __device__ __forceinline__ D cast(S v) {
  if constexpr (std::is_same_v<D, S>) {
    return v;
  } else if constexpr (std::is_same_v<S, half>) {
    return cast<D>(__half2float(v));
  } else if constexpr (std::is_same_v<S, bf16>) {
    return cast<D>(__bfloat162float(v));
  } else if constexpr (std::is_same_v<D, bool>) {
    return v != S(0);
  } else if constexpr (std::is_same_v<D, uint8_t> && std::is_floating_point_v<S>) {
    // Through int64 so negatives wrap (-2.0 -> 254) as on the CPU, where the conversion goes
    // through a wider integer; the GPU's direct float -> uint8 conversion would saturate to 0.
    return static_cast<D>(static_cast<int64_t>(v));
  } else if constexpr (std::is_same_v<D, half>) {
    return __float2half_rn(static_cast<float>(v));
  } else if constexpr (std::is_same_v<D, bf16>) {
    return __float2bfloat16_rn(static_cast<float>(v));
  } else {
    return static_cast<D>(v);
  }
}

/// Runtime dtype → device scalar type: `dispatch(t, "op", [&](auto tag) { using T = decltype(tag)::type; })`.
template <typename T> struct tag { using type = T; };

template <typename F>
void dispatch_all(DType t, const char* op, F&& f) {
  switch (t) {
    case DType::Bool: return f(tag<bool>{});
    case DType::UInt8: return f(tag<uint8_t>{});
    case DType::Int32: return f(tag<int32_t>{});
    case DType::Int64: return f(tag<int64_t>{});
    case DType::Float16: return f(tag<half>{});
    case DType::BFloat16: return f(tag<bf16>{});
    case DType::Float32: return f(tag<float>{});
    case DType::Float64: return f(tag<double>{});
  }
  EMBER_FAIL(op, ": unknown dtype");
}

template <typename F>
void dispatch_floating(DType t, const char* op, F&& f) {
  switch (t) {
    case DType::Float16: return f(tag<half>{});
    case DType::BFloat16: return f(tag<bf16>{});
    case DType::Float32: return f(tag<float>{});
    case DType::Float64: return f(tag<double>{});
    default: break;
  }
  EMBER_FAIL(op, ": expected a floating point tensor (float16, bfloat16, float32, float64) on CUDA, got ", t);
}

// ---- strided indexing -------------------------------------------------------------------------

inline constexpr int kMaxDims = 8;

/// Element offsets of N operands that share one iteration shape.
template <int N>
struct Offsets {
  int64_t v[N];
};

/// Maps a linear index in the iteration shape to each operand's element offset. Built on the
/// host from TensorArgs with size-1 dims dropped and dims that are contiguous in every operand
/// merged, so the common cases (all contiguous, scalar broadcast) become ndim == 1: no division.
template <int N>
struct Indexer {
  int ndim = 0;
  int64_t sizes[kMaxDims] = {};
  int64_t strides[N][kMaxDims] = {};

  __device__ __forceinline__ Offsets<N> get(int64_t i) const {
    Offsets<N> o;
#pragma unroll
    for (int k = 0; k < N; ++k) o.v[k] = 0;
    for (int d = ndim - 1; d >= 1; --d) {
      int64_t q = i / sizes[d];
      int64_t r = i - q * sizes[d];
#pragma unroll
      for (int k = 0; k < N; ++k) o.v[k] += r * strides[k][d];
      i = q;
    }
    if (ndim >= 1) {
#pragma unroll
      for (int k = 0; k < N; ++k) o.v[k] += i * strides[k][0];
    }
    return o;
  }
};

/// Builds the Indexer for operands given in the shape of `args[0]` (ops pass inputs already in the
/// output's shape, stride 0 on broadcast dims).
template <int N>
Indexer<N> make_indexer(const TensorArg* const (&args)[N]) {
  Indexer<N> ix;
  const TensorArg& shape = *args[0];
  for (int d = 0; d < shape.ndim; ++d) {
    int64_t s = shape.sizes[d];
    if (s == 1) continue;
    if (ix.ndim > 0) {
      // Merge into the previous (outer) kept dim when every operand steps contiguously across.
      bool merge = true;
      for (int k = 0; k < N; ++k)
        if (ix.strides[k][ix.ndim - 1] != args[k]->strides[d] * s) merge = false;
      if (merge) {
        ix.sizes[ix.ndim - 1] *= s;
        for (int k = 0; k < N; ++k) ix.strides[k][ix.ndim - 1] = args[k]->strides[d];
        continue;
      }
    }
    ix.sizes[ix.ndim] = s;
    for (int k = 0; k < N; ++k) ix.strides[k][ix.ndim] = args[k]->strides[d];
    ++ix.ndim;
  }
  return ix;
}

// ---- launch helpers ----------------------------------------------------------------------------

inline constexpr int kBlock = 256;

inline unsigned grid_for(int64_t n, int block = kBlock) {
  int64_t g = (n + block - 1) / block;
  if (g < 1) g = 1;
  const int64_t cap = int64_t{1} << 20;  // grid-stride loops cover the rest
  return static_cast<unsigned>(g < cap ? g : cap);
}

/// out-of-line body: f(offsets) for every element of the iteration space.
template <int N, typename F>
__global__ void elementwise_kernel(int64_t n, Indexer<N> ix, F f) {
  int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) f(ix.get(i));
}

/// Runs functor f over N operands (args[0] gives the shape); f gets each operand's element offset.
template <int N, typename F>
void launch_elementwise(const TensorArg* const (&args)[N], F f, const char* op) {
  int64_t n = args[0]->numel();
  if (n == 0) return;
  Indexer<N> ix = make_indexer<N>(args);
  elementwise_kernel<N, F><<<grid_for(n), kBlock, 0, stream()>>>(n, ix, f);
  check_launch(op);
}

// ---- math helpers (float overloads of the C math library on the device) -------------------------

template <typename C> __device__ __forceinline__ bool is_nan(C x) {
  if constexpr (std::is_floating_point_v<C>) return x != x;
  else return false;
}

}  // namespace ember::cuda::detail

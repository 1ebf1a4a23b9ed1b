/// uniform_ and normal_ on the GPU with the CPU's Philox formulas (ops/factory.hpp): element i
/// of a draw is a pure function of (seed, offset + i), computed in double exactly as there, so
/// both devices produce the same numbers after manual_seed.
#include <cmath>

#include "common.cuh"
#include "ember/core/philox.hpp"

namespace ember::cuda {

namespace {

using detail::cast;

template <typename T>
__global__ void uniform_kernel(T* out, int64_t n, uint64_t seed, uint64_t offset, double lo, double hi) {
  int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    philox::Uint4 r = philox::philox4x32(seed, offset + static_cast<uint64_t>(i));
    double u = std::is_same_v<T, double> ? philox::to_uniform_double(r.x, r.y)
                                         : static_cast<double>(philox::to_uniform_float(r.x));
    // Explicit roundings: a fused multiply-add would differ from the CPU in the last bit.
    out[i] = cast<T>(__dadd_rn(lo, __dmul_rn(hi - lo, u)));
  }
}

template <typename T>
__global__ void normal_kernel(T* out, int64_t n, uint64_t seed, uint64_t offset, double mean, double std) {
  const double two_pi = 6.283185307179586476925286766559;  // 2 * std::numbers::pi, rounded the same
  int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    philox::Uint4 r = philox::philox4x32(seed, offset + static_cast<uint64_t>(i));
    double u1, u2;
    if (std::is_same_v<T, double>) {
      u1 = 1.0 - philox::to_uniform_double(r.x, r.y);
      u2 = philox::to_uniform_double(r.z, r.w);
    } else {
      u1 = 1.0 - static_cast<double>(philox::to_uniform_float(r.x));
      u2 = static_cast<double>(philox::to_uniform_float(r.y));
    }
    double z = __dmul_rn(__dmul_rn(std, sqrt(-2.0 * log(u1))), cos(__dmul_rn(two_pi, u2)));
    out[i] = cast<T>(__dadd_rn(mean, z));
  }
}

void check_dense(const TensorArg& out, const char* name) {
  int64_t expected = 1;
  for (int d = out.ndim - 1; d >= 0; --d) {
    EMBER_CHECK(out.sizes[d] == 1 || out.strides[d] == expected, name,
                ": expected a contiguous output (the op passes a contiguous temporary)");
    expected *= out.sizes[d];
  }
}

}  // namespace

void uniform(const TensorArg& out, uint64_t seed, uint64_t offset, double lo, double hi) {
  const char* name = "uniform_ (cuda)";
  int64_t n = out.numel();
  if (n == 0) return;
  check_dense(out, name);
  detail::dispatch_floating(out.dtype, name, [&](auto t) {
    using T = typename decltype(t)::type;
    uniform_kernel<T><<<detail::grid_for(n), detail::kBlock, 0, detail::stream()>>>(static_cast<T*>(out.data), n, seed,
                                                                                   offset, lo, hi);
    detail::check_launch(name);
  });
}

void normal(const TensorArg& out, uint64_t seed, uint64_t offset, double mean, double std) {
  const char* name = "normal_ (cuda)";
  int64_t n = out.numel();
  if (n == 0) return;
  check_dense(out, name);
  detail::dispatch_floating(out.dtype, name, [&](auto t) {
    using T = typename decltype(t)::type;
    normal_kernel<T><<<detail::grid_for(n), detail::kBlock, 0, detail::stream()>>>(static_cast<T*>(out.data), n, seed,
                                                                                  offset, mean, std);
    detail::check_launch(name);
  });
}

}  // namespace ember::cuda

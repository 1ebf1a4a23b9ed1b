/// 2-d max and average pooling on the GPU (include/ember/cuda/dnn.hpp), with PyTorch's semantics:
/// max pooling returns the argmax as an index into the h*w plane, takes the first maximum on ties
/// and lets NaN win; average pooling divides by the window clipped to the padded input
/// (count_include_pad) or to the input itself. One thread per output element forward; the max
/// backward scatters with atomicAdd (windows may overlap), the average backward gathers (no atomics).
#include <string>

#include "common.cuh"
#include "ember/cuda/dnn.hpp"

namespace ember::cuda {

namespace {

using detail::cast;
using detail::compute_t;

/// Geometry as plain values for the kernels.
struct PoolGeo {
  int64_t h, w, oh, ow, kh, kw, sh, sw, ph, pw, dh, dw;
  bool count_include_pad;
};

void check_params(const PoolParams& p, const char* op, bool is_max) {
  auto geometry = [&] {
    return std::string("x [") + std::to_string(p.n) + ", " + std::to_string(p.c) + ", " + std::to_string(p.h) + ", " +
           std::to_string(p.w) + "] -> y [" + std::to_string(p.oh) + ", " + std::to_string(p.ow) + "], kernel (" +
           std::to_string(p.kh) + ", " + std::to_string(p.kw) + "), stride (" + std::to_string(p.stride[0]) + ", " +
           std::to_string(p.stride[1]) + "), padding (" + std::to_string(p.pad[0]) + ", " + std::to_string(p.pad[1]) +
           "), dilation (" + std::to_string(p.dil[0]) + ", " + std::to_string(p.dil[1]) + ")";
  };
  EMBER_CHECK(is_floating(p.dtype), op, ": expected float16, bfloat16, float32 or float64 on CUDA, got ", p.dtype);
  EMBER_CHECK(p.n >= 0 && p.c >= 0 && p.h >= 0 && p.w >= 0 && p.oh >= 0 && p.ow >= 0 && p.kh >= 1 && p.kw >= 1, op,
              ": invalid sizes: ", geometry());
  for (int i = 0; i < 2; ++i)
    EMBER_CHECK(p.stride[i] >= 1 && p.dil[i] >= 1 && p.pad[i] >= 0, op,
                ": stride and dilation must be >= 1 and padding >= 0: ", geometry());
  EMBER_CHECK(2 * p.pad[0] <= (p.kh - 1) * p.dil[0] + 1 && 2 * p.pad[1] <= (p.kw - 1) * p.dil[1] + 1, op,
              ": padding must be at most half the (dilated) kernel size: ", geometry());
  EMBER_CHECK(is_max || (p.dil[0] == 1 && p.dil[1] == 1), op, ": average pooling has no dilation: ", geometry());
}

PoolGeo geo_of(const PoolParams& p) {
  return PoolGeo{p.h,         p.w,         p.oh,     p.ow,     p.kh,     p.kw,     p.stride[0],
                 p.stride[1], p.pad[0],    p.pad[1], p.dil[0], p.dil[1], p.count_include_pad};
}

template <typename T>
__device__ __forceinline__ void atomic_add(T* p, T v) {
  atomicAdd(p, v);  // float, double, __half (sm_70+), __nv_bfloat16 (sm_80+; emulated below that)
}

// ---- max pooling ------------------------------------------------------------------------------

template <typename C>
__device__ __forceinline__ C neg_inf() {
  if constexpr (std::is_same_v<C, double>) return __longlong_as_double(static_cast<long long>(0xfff0000000000000ULL));
  else return __int_as_float(static_cast<int>(0xff800000u));
}

template <typename T>
__global__ void max_pool_forward_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t* __restrict__ idx,
                                        PoolGeo g, int64_t total) {
  using C = compute_t<T>;
  int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < total; t += step) {
    int64_t ox = t % g.ow, r = t / g.ow;
    int64_t oy = r % g.oh, plane = r / g.oh;
    const T* xp = x + plane * g.h * g.w;
    int64_t y0 = oy * g.sh - g.ph, x0 = ox * g.sw - g.pw;
    int64_t y1 = min(y0 + (g.kh - 1) * g.dh + 1, g.h), x1 = min(x0 + (g.kw - 1) * g.dw + 1, g.w);
    while (y0 < 0) y0 += g.dh;
    while (x0 < 0) x0 += g.dw;
    // As PyTorch: start below every value, keep the first maximum, and let any NaN take over.
    C best = neg_inf<C>();
    int64_t best_i = y0 * g.w + x0;
    for (int64_t iy = y0; iy < y1; iy += g.dh) {
      for (int64_t ix = x0; ix < x1; ix += g.dw) {
        C v = cast<C>(xp[iy * g.w + ix]);
        if (v > best || v != v) {
          best = v;
          best_i = iy * g.w + ix;
        }
      }
    }
    y[t] = cast<T>(best);
    idx[t] = best_i;
  }
}

template <typename T>
__global__ void max_pool_backward_kernel(const T* __restrict__ dy, const int64_t* __restrict__ idx, T* __restrict__ dx,
                                         int64_t out_plane, int64_t in_plane, int64_t total) {
  int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < total; t += step) {
    int64_t i = idx[t];
    if (i < 0 || i >= in_plane) continue;  // never touch memory outside the plane
    atomic_add(dx + (t / out_plane) * in_plane + i, dy[t]);
  }
}

// ---- average pooling --------------------------------------------------------------------------

/// The window of output (oy, ox) clipped to the input, and its divisor.
struct AvgWindow {
  int64_t y0, y1, x0, x1, divisor;
};

__device__ __forceinline__ AvgWindow avg_window(const PoolGeo& g, int64_t oy, int64_t ox) {
  int64_t y0 = oy * g.sh - g.ph, x0 = ox * g.sw - g.pw;
  int64_t y1 = min(y0 + g.kh, g.h + g.ph), x1 = min(x0 + g.kw, g.w + g.pw);
  int64_t padded = (y1 - y0) * (x1 - x0);  // the window clipped to the padded input
  y0 = max(y0, int64_t{0});
  x0 = max(x0, int64_t{0});
  y1 = min(y1, g.h);
  x1 = min(x1, g.w);
  int64_t divisor = g.count_include_pad ? padded : (y1 - y0) * (x1 - x0);
  return AvgWindow{y0, y1, x0, x1, divisor};
}

template <typename T>
__global__ void avg_pool_forward_kernel(const T* __restrict__ x, T* __restrict__ y, PoolGeo g, int64_t total) {
  using C = compute_t<T>;
  int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < total; t += step) {
    int64_t ox = t % g.ow, r = t / g.ow;
    int64_t oy = r % g.oh, plane = r / g.oh;
    const T* xp = x + plane * g.h * g.w;
    AvgWindow win = avg_window(g, oy, ox);
    if (win.y0 >= win.y1 || win.x0 >= win.x1 || win.divisor <= 0) {
      y[t] = cast<T>(0.0f);  // a window entirely in the padding (ceil mode): PyTorch writes 0
      continue;
    }
    C sum = C(0);
    for (int64_t iy = win.y0; iy < win.y1; ++iy)
      for (int64_t ix = win.x0; ix < win.x1; ++ix) sum += cast<C>(xp[iy * g.w + ix]);
    y[t] = cast<T>(sum / static_cast<C>(win.divisor));
  }
}

/// dx[iy, ix] = sum over the windows containing (iy, ix) of dy / divisor: a gather, deterministic.
template <typename T>
__global__ void avg_pool_backward_kernel(const T* __restrict__ dy, T* __restrict__ dx, PoolGeo g, int64_t total) {
  using C = compute_t<T>;
  int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < total; t += step) {
    int64_t ix = t % g.w, r = t / g.w;
    int64_t iy = r % g.h, plane = r / g.h;
    const T* dyp = dy + plane * g.oh * g.ow;
    // Windows start at o*s - p and span k: (iy + p - k) / s < o <= (iy + p) / s.
    int64_t py = iy + g.ph, px = ix + g.pw;
    int64_t oy0 = py < g.kh ? 0 : (py - g.kh) / g.sh + 1, oy1 = min(py / g.sh + 1, g.oh);
    int64_t ox0 = px < g.kw ? 0 : (px - g.kw) / g.sw + 1, ox1 = min(px / g.sw + 1, g.ow);
    C sum = C(0);
    for (int64_t oy = oy0; oy < oy1; ++oy) {
      for (int64_t ox = ox0; ox < ox1; ++ox) {
        AvgWindow win = avg_window(g, oy, ox);
        if (win.divisor <= 0) continue;
        sum += cast<C>(dyp[oy * g.ow + ox]) / static_cast<C>(win.divisor);
      }
    }
    dx[t] = cast<T>(sum);
  }
}

}  // namespace

// ---- public entry points ----------------------------------------------------------------------

void max_pool2d_forward(const PoolParams& p, const void* x, void* y, int64_t* indices) {
  const char* op = "max_pool2d (cuda)";
  check_params(p, op, true);
  int64_t total = p.n * p.c * p.oh * p.ow;
  if (total == 0) return;
  EMBER_CHECK(p.h * p.w > 0, op, ": the input planes are empty but the output is not");
  detail::dispatch_floating(p.dtype, op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    max_pool_forward_kernel<T><<<detail::grid_for(total), detail::kBlock, 0, detail::stream()>>>(
        static_cast<const T*>(x), static_cast<T*>(y), indices, geo_of(p), total);
  });
  detail::check_launch(op);
}

void max_pool2d_backward(const PoolParams& p, const void* dy, const int64_t* indices, void* dx) {
  const char* op = "max_pool2d backward (cuda)";
  check_params(p, op, true);
  int64_t total = p.n * p.c * p.oh * p.ow;
  if (total == 0 || p.h * p.w == 0) return;
  detail::dispatch_floating(p.dtype, op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    max_pool_backward_kernel<T><<<detail::grid_for(total), detail::kBlock, 0, detail::stream()>>>(
        static_cast<const T*>(dy), indices, static_cast<T*>(dx), p.oh * p.ow, p.h * p.w, total);
  });
  detail::check_launch(op);
}

void avg_pool2d_forward(const PoolParams& p, const void* x, void* y) {
  const char* op = "avg_pool2d (cuda)";
  check_params(p, op, false);
  int64_t total = p.n * p.c * p.oh * p.ow;
  if (total == 0) return;
  detail::dispatch_floating(p.dtype, op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    avg_pool_forward_kernel<T><<<detail::grid_for(total), detail::kBlock, 0, detail::stream()>>>(
        static_cast<const T*>(x), static_cast<T*>(y), geo_of(p), total);
  });
  detail::check_launch(op);
}

void avg_pool2d_backward(const PoolParams& p, const void* dy, void* dx) {
  const char* op = "avg_pool2d backward (cuda)";
  check_params(p, op, false);
  int64_t total = p.n * p.c * p.h * p.w;
  if (total == 0) return;
  detail::dispatch_floating(p.dtype, op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    avg_pool_backward_kernel<T><<<detail::grid_for(total), detail::kBlock, 0, detail::stream()>>>(
        static_cast<const T*>(dy), static_cast<T*>(dx), geo_of(p), total);
  });
  detail::check_launch(op);
}

}  // namespace ember::cuda

/// Strided copy with dtype conversion (any of the 8 dtypes to any other, broadcast sources) and fill.
#include "common.cuh"

namespace ember::cuda {

namespace {

template <typename D, typename S>
struct CopyFn {
  D* dst;
  const S* src;
  __device__ __forceinline__ void operator()(detail::Offsets<2> o) const {
    dst[o.v[0]] = detail::cast<D>(src[o.v[1]]);
  }
};

template <typename T>
struct FillFn {
  T* out;
  T value;
  __device__ __forceinline__ void operator()(detail::Offsets<1> o) const { out[o.v[0]] = value; }
};

bool is_contiguous(const TensorArg& t) {
  int64_t expected = 1;
  for (int d = t.ndim - 1; d >= 0; --d) {
    if (t.sizes[d] == 1) continue;
    if (t.strides[d] != expected) return false;
    expected *= t.sizes[d];
  }
  return true;
}

}  // namespace

void copy(const TensorArg& dst, const TensorArg& src) {
  int64_t n = dst.numel();
  if (n == 0) return;
  EMBER_CHECK(src.ndim == dst.ndim, "copy_ (cuda): source given with ", src.ndim,
              " dims for a destination with ", dst.ndim, " (expected the destination's shape)");
  // Same dtype, both dense in the same order: one device-to-device memcpy.
  if (dst.dtype == src.dtype && is_contiguous(dst) && is_contiguous(src)) {
    bool same_shape = true;
    for (int d = 0; d < dst.ndim; ++d) same_shape &= src.sizes[d] == dst.sizes[d];
    bool broadcast = false;
    for (int d = 0; d < src.ndim; ++d) broadcast |= src.sizes[d] != 1 && src.strides[d] == 0;
    if (same_shape && !broadcast) {
      detail::check(cudaMemcpyAsync(dst.data, src.data, static_cast<size_t>(n) * element_size(dst.dtype),
                                    cudaMemcpyDeviceToDevice, detail::stream()),
                    "copy_ (cuda)");
      return;
    }
  }
  const TensorArg* args[2] = {&dst, &src};
  detail::dispatch_all(dst.dtype, "copy_ (cuda)", [&](auto dt) {
    using D = typename decltype(dt)::type;
    detail::dispatch_all(src.dtype, "copy_ (cuda)", [&](auto st) {
      using S = typename decltype(st)::type;
      detail::launch_elementwise<2>(args, CopyFn<D, S>{static_cast<D*>(dst.data), static_cast<const S*>(src.data)},
                                    "copy_ (cuda)");
    });
  });
}

void fill(const TensorArg& out, double value) {
  if (out.numel() == 0) return;
  const TensorArg* args[1] = {&out};
  detail::dispatch_all(out.dtype, "fill_ (cuda)", [&](auto t) {
    using T = typename decltype(t)::type;
    T v;
    if constexpr (std::is_same_v<T, bool>) v = value != 0.0;
    else v = detail::cast<T>(value);
    detail::launch_elementwise<1>(args, FillFn<T>{static_cast<T*>(out.data), v}, "fill_ (cuda)");
  });
}

}  // namespace ember::cuda

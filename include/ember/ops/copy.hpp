#pragma once
/// Copies and conversions: copy_, to(dtype), to(device), clone, contiguous, item, to_vector.
#include <cstring>
#include <vector>

#include "ember/autograd/function.hpp"
#include "ember/ops/cpu_loop.hpp"
#include "ember/ops/dispatch.hpp"

namespace ember {

namespace detail {

template <typename D, typename S>
D convert_value(S v) {
  if constexpr (std::is_same_v<D, bool>) return static_cast<float>(v) != 0.0f || v != S{};
  else if constexpr (std::is_same_v<S, Half> || std::is_same_v<S, BFloat16>) return static_cast<D>(static_cast<float>(v));
  else if constexpr (std::is_same_v<D, Half> || std::is_same_v<D, BFloat16>) return D(static_cast<float>(v));
  else return static_cast<D>(v);
}

inline void copy_cpu(const Tensor& dst, const Tensor& src) {
  visit_all_dtypes(dst.dtype(), "copy_", [&]<typename D>() {
    visit_all_dtypes(src.dtype(), "copy_", [&]<typename S>() {
      if constexpr (std::is_same_v<D, S>) {
        if (dst.is_contiguous() && src.is_contiguous() && dst.sizes() == src.sizes()) {
          std::memcpy(dst.raw_data(), src.raw_data(), dst.numel() * sizeof(D));
          return;
        }
      }
      cpu::map<D, S>(dst, [](S v) { return convert_value<D, S>(v); }, src);
    });
  });
}

/// dst[...] = src (broadcast to dst's shape, converted to dst's dtype), across devices.
inline void copy_into(const Tensor& dst, const Tensor& src) {
  EMBER_CHECK(broadcast_shapes(dst.sizes(), src.sizes(), "copy_") == dst.sizes(), "copy_: source of shape ",
              src.sizes(), " cannot be broadcast to destination of shape ", dst.sizes());
  if (dst.numel() == 0) return;
  Device dd = dst.device(), sd = src.device();
  if (dd.is_cpu() && sd.is_cpu()) return copy_cpu(dst, src);
#ifdef EMBER_WITH_CUDA
  if (dd.is_cuda() && sd.is_cuda() && dd == sd) return cuda::copy(cuda::arg(dst), cuda::arg(src, dst.sizes()));
  if (dd.is_cuda() && sd.is_cpu()) {
    // Convert and lay out on the host, then one transfer.
    Tensor host = make_tensor(dst.sizes(), dst.dtype(), kCPU);
    copy_cpu(host, src);
    if (dst.is_contiguous()) {
      cuda::memcpy_h2d(dst.raw_data(), host.raw_data(), host.numel() * host.element_size(), dd.index);
    } else {
      Tensor tmp = make_tensor(dst.sizes(), dst.dtype(), dd);
      cuda::memcpy_h2d(tmp.raw_data(), host.raw_data(), host.numel() * host.element_size(), dd.index);
      cuda::copy(cuda::arg(dst), cuda::arg(tmp));
    }
    return;
  }
  if (dd.is_cpu() && sd.is_cuda()) {
    Tensor dev = src;
    if (src.dtype() != dst.dtype() || !src.is_contiguous() || src.sizes() != dst.sizes()) {
      dev = make_tensor(dst.sizes(), dst.dtype(), sd);
      cuda::copy(cuda::arg(dev), cuda::arg(src, dst.sizes()));
    }
    if (dst.is_contiguous()) {
      cuda::memcpy_d2h(dst.raw_data(), dev.raw_data(), dev.numel() * dev.element_size(), sd.index);
    } else {
      Tensor host = make_tensor(dst.sizes(), dst.dtype(), kCPU);
      cuda::memcpy_d2h(host.raw_data(), dev.raw_data(), dev.numel() * dev.element_size(), sd.index);
      copy_cpu(dst, host);
    }
    return;
  }
  // Between two GPUs: stage through the host (peer copies are not needed by the tutorials).
  Tensor host = make_tensor(src.sizes(), src.dtype(), kCPU);
  copy_into(host, src);
  copy_into(dst, host);
#else
  fail_no_cuda("copy_");
#endif
}

}  // namespace detail

inline Tensor empty(const Shape& sizes, const TensorOptions& opts = {});

inline Tensor& Tensor::copy_(const Tensor& src) {
  EMBER_CHECK(src.defined(), "copy_: source tensor is undefined");
  EMBER_CHECK(!(is_grad_enabled() && is_leaf() && requires_grad()),
              "copy_: a leaf tensor that requires grad is being used in an in-place operation "
              "(wrap it in NoGradGuard, as optimizers do)");
  detail::copy_into(*this, src);
  storage()->bump_version();
  return *this;
}

/// A copy on `device` with dtype `dtype`; returns self when nothing changes. Differentiable.
inline Tensor to_impl(const Tensor& self, Device device, DType dtype) {
  if (self.device() == device && self.dtype() == dtype) return self;
  Tensor out = make_tensor(self.sizes(), dtype, device);
  detail::copy_into(out, self);
  if (is_floating(dtype) && autograd::needs_grad(self)) {
    Device src_dev = self.device();
    DType src_dt = self.dtype();
    autograd::record("ToCopyBackward", out, {self}, {},
                     [src_dev, src_dt](const Tensor& g, const autograd::BackwardCtx&) -> tensor_list {
                       return {g.to(src_dev, src_dt)};
                     });
  }
  return out;
}

inline Tensor Tensor::to(DType t) const { return to_impl(*this, device(), t); }
inline Tensor Tensor::to(Device d) const { return to_impl(*this, d, dtype()); }
inline Tensor Tensor::to(Device d, DType t) const { return to_impl(*this, d, t); }

inline Tensor Tensor::clone() const {
  Tensor out = make_tensor(sizes(), dtype(), device());
  detail::copy_into(out, *this);
  if (autograd::needs_grad(*this)) {
    autograd::record("CloneBackward", out, {*this}, {},
                     [](const Tensor& g, const autograd::BackwardCtx&) -> tensor_list { return {g}; });
  }
  return out;
}

inline Tensor Tensor::contiguous() const { return is_contiguous() ? *this : clone(); }

template <typename T>
std::vector<T> Tensor::to_vector() const {
  Tensor host = make_tensor(sizes(), dtype_v<T>, kCPU);
  detail::copy_into(host, *this);
  const T* p = host.data_ptr<T>();
  return std::vector<T>(p, p + host.numel());
}

template <typename T>
T Tensor::item() const {
  EMBER_CHECK(numel() == 1, "item: a tensor with ", numel(), " elements (shape ", sizes(),
              ") cannot be converted to a scalar");
  return to_vector<T>()[0];
}

}  // namespace ember

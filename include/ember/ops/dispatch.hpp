#pragma once
/// Shared pieces of the per-op dispatch point (device x dtype): device checks with clear errors,
/// and the TensorArg views passed to CUDA launchers.
#include <initializer_list>

#include "ember/core/tensor.hpp"
#include "ember/cuda/launch.hpp"
#ifdef EMBER_WITH_CUDA
#include "ember/cuda/runtime.hpp"
#endif

namespace ember {

/// Throws unless all defined tensors live on the same device.
inline void check_same_device(const char* op, std::initializer_list<const Tensor*> ts) {
  const Tensor* first = nullptr;
  for (const Tensor* t : ts) {
    if (!t->defined()) continue;
    if (!first) {
      first = t;
      continue;
    }
    EMBER_CHECK(t->device() == first->device(), op, ": expected all tensors on the same device, got ",
                first->device(), " and ", t->device(), " (move one with .to(device))");
  }
}

/// True when Ember was compiled with the CUDA backend (ember::cuda linked).
inline constexpr bool built_with_cuda() {
#ifdef EMBER_WITH_CUDA
  return true;
#else
  return false;
#endif
}

[[noreturn]] inline void fail_no_cuda(const char* op) {
  EMBER_FAIL(op, ": tensor is on a CUDA device but Ember was built without CUDA (link ember::cuda)");
}

namespace cuda {
/// The kernel's view of a tensor, in its own geometry.
inline TensorArg arg(const Tensor& t) {
  TensorArg a;
  a.data = t.raw_data();
  a.dtype = t.dtype();
  a.ndim = static_cast<int>(t.dim());
  for (int d = 0; d < a.ndim; ++d) {
    a.sizes[d] = t.size(d);
    a.strides[d] = t.stride(d);
  }
  return a;
}
/// The kernel's view of `t` broadcast to `shape` (stride 0 on broadcast dims).
inline TensorArg arg(const Tensor& t, const Shape& shape) {
  TensorArg a;
  a.data = t.raw_data();
  a.dtype = t.dtype();
  a.ndim = static_cast<int>(shape.size());
  int64_t off = shape.size() - t.dim();
  for (int d = 0; d < a.ndim; ++d) {
    a.sizes[d] = shape[d];
    int64_t td = d - off;
    a.strides[d] = (td < 0 || t.size(td) == 1) ? 0 : t.stride(td);
  }
  return a;
}
}  // namespace cuda

}  // namespace ember

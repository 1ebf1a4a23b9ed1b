#pragma once
/// `ember::cuda_is_available()`: true when Ember was built with the CUDA backend (ember::cuda
/// linked) and a GPU is visible. Safe to call on any machine: without a driver it is false.
///
/// Example:
/// ```
///   ember::Device dev = ember::cuda_is_available() ? ember::kCUDA : ember::kCPU;
/// ```
#ifdef EMBER_WITH_CUDA
#include "ember/cuda/runtime.hpp"
#endif

namespace ember {

/// True when CUDA tensors can be created in this process.
inline bool cuda_is_available() {
#ifdef EMBER_WITH_CUDA
  return cuda::is_available();
#else
  return false;
#endif
}

/// Number of visible CUDA devices (0 without the CUDA backend or a GPU).
inline int cuda_device_count() {
#ifdef EMBER_WITH_CUDA
  return cuda::device_count();
#else
  return 0;
#endif
}

}  // namespace ember

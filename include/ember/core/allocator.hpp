#pragma once
/// Raw memory for tensor storage: 64-byte aligned host memory on the CPU, and the CUDA caching
/// allocator (kernels/allocator.cu) on the GPU when Ember is built with CUDA.
#include <cstddef>
#include <cstdlib>
#include <new>

#include "ember/core/device.hpp"
#include "ember/core/error.hpp"

#ifdef EMBER_WITH_CUDA
#include "ember/cuda/runtime.hpp"
#endif

namespace ember {

inline constexpr size_t kCpuAlignment = 64;  // a cache line, and enough for any SIMD load

inline void* allocate_bytes(size_t nbytes, Device device) {
  if (nbytes == 0) return nullptr;
  if (device.is_cpu()) {
    size_t rounded = (nbytes + kCpuAlignment - 1) / kCpuAlignment * kCpuAlignment;
    void* p = std::aligned_alloc(kCpuAlignment, rounded);
    EMBER_CHECK(p != nullptr, "out of memory: failed to allocate ", nbytes, " bytes on the CPU");
    return p;
  }
#ifdef EMBER_WITH_CUDA
  return cuda::allocate(nbytes, device.index);
#else
  EMBER_FAIL("cannot allocate on ", device, ": Ember was built without CUDA (link ember::cuda)");
#endif
}

inline void free_bytes(void* p, Device device) noexcept {
  if (p == nullptr) return;
  if (device.is_cpu()) {
    std::free(p);
    return;
  }
#ifdef EMBER_WITH_CUDA
  cuda::deallocate(p, device.index);
#endif
}

}  // namespace ember

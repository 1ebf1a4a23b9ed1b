#pragma once
/// Raw memory for tensor storage: a caching allocator for host memory, and the CUDA caching
/// allocator (kernels/allocator.cu) on the GPU when Ember is built with CUDA.
///
/// Why cache on the CPU too: a training step allocates the same activation and gradient sizes
/// every step. Returning freed blocks to size-class free lists makes a warm step allocate nothing
/// from the system (no page faults on large outputs, no memalign cost on tiny ones).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "ember/core/device.hpp"
#include "ember/core/error.hpp"

#ifdef EMBER_WITH_CUDA
#include "ember/cuda/runtime.hpp"
#endif

namespace ember {

inline constexpr size_t kCpuAlignment = 64;  // a cache line, and enough for any SIMD load

/// Host memory statistics (like torch.cuda.memory_stats, for the CPU).
struct CpuMemoryStats {
  uint64_t system_allocations = 0;  // blocks obtained from the system allocator
  size_t allocated_bytes = 0;       // in use by tensors (rounded to size classes)
  size_t cached_bytes = 0;          // freed and kept for reuse
  size_t peak_allocated_bytes = 0;
};

namespace detail {

class CpuCachingAllocator {
 public:
  /// EMBER_DISABLE_CPU_CACHE=1 turns caching off, so AddressSanitizer sees every use-after-free.
  CpuCachingAllocator() {
    const char* v = std::getenv("EMBER_DISABLE_CPU_CACHE");
    caching_ = !(v && *v && *v != '0');
  }

  /// Freed blocks beyond this many bytes go back to the system.
  static constexpr size_t kCacheLimit = size_t{512} << 20;

  /// Size classes: multiples of 64 B up to 4 KiB, then four classes per power of two (<= 25% slack).
  static size_t round_size(size_t n) {
    if (n <= 4096) return (n + 63) / 64 * 64;
    size_t p = size_t{1} << (63 - __builtin_clzll(n - 1));  // largest power of two below n
    size_t step = p / 4;
    return (n + step - 1) / step * step;
  }

  void* allocate(size_t nbytes) {
    size_t r = round_size(nbytes);
    {
      std::lock_guard<std::mutex> lock(mu_);
      stats_.allocated_bytes += r;
      if (stats_.allocated_bytes > stats_.peak_allocated_bytes) stats_.peak_allocated_bytes = stats_.allocated_bytes;
      auto it = free_.find(r);
      if (it != free_.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        stats_.cached_bytes -= r;
        return p;
      }
      ++stats_.system_allocations;
    }
    void* p = std::aligned_alloc(kCpuAlignment, r);
    if (p == nullptr) {
      empty_cache();
      p = std::aligned_alloc(kCpuAlignment, r);
    }
    if (p == nullptr) {
      std::lock_guard<std::mutex> lock(mu_);
      stats_.allocated_bytes -= r;
      EMBER_FAIL("out of memory: failed to allocate ", nbytes, " bytes on the CPU");
    }
    return p;
  }

  void deallocate(void* p, size_t nbytes) noexcept {
    size_t r = round_size(nbytes);
    {
      std::lock_guard<std::mutex> lock(mu_);
      stats_.allocated_bytes -= r;
      if (caching_ && stats_.cached_bytes + r <= kCacheLimit) {
        try {
          free_[r].push_back(p);
          stats_.cached_bytes += r;
          return;
        } catch (...) {  // the free list could not grow: give the block back instead
        }
      }
    }
    std::free(p);
  }

  void empty_cache() noexcept {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [size, blocks] : free_)
      for (void* p : blocks) std::free(p);
    free_.clear();
    stats_.cached_bytes = 0;
  }

  CpuMemoryStats stats() {
    std::lock_guard<std::mutex> lock(mu_);
    return stats_;
  }
  void reset_peak() {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.peak_allocated_bytes = stats_.allocated_bytes;
  }

 private:
  std::mutex mu_;
  bool caching_ = true;
  std::unordered_map<size_t, std::vector<void*>> free_;
  CpuMemoryStats stats_;
};

/// Never destroyed: tensors freed during static destruction still find it.
inline CpuCachingAllocator& cpu_allocator() {
  static auto* a = new CpuCachingAllocator();
  return *a;
}

}  // namespace detail

/// Statistics of the host caching allocator.
inline CpuMemoryStats cpu_memory_stats() { return detail::cpu_allocator().stats(); }
inline void reset_cpu_peak_memory() { detail::cpu_allocator().reset_peak(); }
/// Returns cached host blocks to the system.
inline void cpu_empty_cache() { detail::cpu_allocator().empty_cache(); }

inline void* allocate_bytes(size_t nbytes, Device device) {
  if (nbytes == 0) return nullptr;
  if (device.is_cpu()) return detail::cpu_allocator().allocate(nbytes);
#ifdef EMBER_WITH_CUDA
  return cuda::allocate(nbytes, device.index);
#else
  EMBER_FAIL("cannot allocate on ", device, ": Ember was built without CUDA (link ember::cuda)");
#endif
}

inline void free_bytes(void* p, size_t nbytes, Device device) noexcept {
  if (p == nullptr) return;
  if (device.is_cpu()) {
    detail::cpu_allocator().deallocate(p, nbytes);
    return;
  }
#ifdef EMBER_WITH_CUDA
  cuda::deallocate(p, device.index);
#else
  (void)nbytes;
#endif
}

}  // namespace ember

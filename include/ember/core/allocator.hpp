#pragma once
/// Raw memory for tensor storage: a caching allocator for host memory, and the CUDA caching
/// allocator (kernels/allocator.cu) on the GPU when Ember is built with CUDA.
///
/// Why cache on the CPU too: a training step allocates the same activation and gradient sizes
/// every step. Returning freed blocks to size-class free lists makes a warm step allocate nothing
/// from the system (no page faults on large outputs, no memalign cost on tiny ones).
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <new>
#include <string>
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
  uint64_t system_allocations = 0;  // blocks obtained from the system allocator (cache misses)
  size_t allocated_bytes = 0;       // in use by tensors (rounded to size classes)
  size_t cached_bytes = 0;          // freed and kept for reuse
  size_t peak_allocated_bytes = 0;
};

// ---- the allocation cap ---------------------------------------------------------------------------
// One tensor larger than the machine's memory is always a bug or a hostile file (an IDX header
// announcing 2^36 bytes, a safetensors shape of 2^40 elements). Refusing it with a clear error
// before asking the system beats an OOM kill minutes later, or Linux's overcommit handing out
// address space that faults on first touch.

/// "123", "64G", "512MiB", "1.5g" -> bytes; 0 when `text` is not a size.
inline size_t parse_byte_size(const std::string& text) {
  size_t pos = 0;
  double v = 0;
  try {
    v = std::stod(text, &pos);
  } catch (...) {
    return 0;
  }
  if (!(v > 0)) return 0;
  std::string unit = text.substr(pos);
  while (!unit.empty() && unit.front() == ' ') unit.erase(0, 1);
  double scale = 1;
  if (!unit.empty()) {
    switch (unit[0]) {
      case 'k': case 'K': scale = 1024.0; break;
      case 'm': case 'M': scale = 1024.0 * 1024; break;
      case 'g': case 'G': scale = 1024.0 * 1024 * 1024; break;
      case 't': case 'T': scale = 1024.0 * 1024 * 1024 * 1024; break;
      case 'b': case 'B': break;
      default: return 0;
    }
  }
  double bytes = v * scale;
  return bytes >= 1.8e19 ? SIZE_MAX : static_cast<size_t>(bytes);
}

namespace detail {
/// Default cap: EMBER_MAX_ALLOC_BYTES when set (bytes, or with a K/M/G/T suffix), otherwise the
/// machine's physical memory (64 GiB when it cannot be read).
inline size_t default_max_allocation_bytes() {
  if (const char* env = std::getenv("EMBER_MAX_ALLOC_BYTES"); env && *env) {
    size_t v = parse_byte_size(env);
    if (v > 0) return v;
  }
  long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
  if (pages > 0 && page > 0) return static_cast<size_t>(pages) * static_cast<size_t>(page);
  return size_t{64} << 30;
}
inline std::atomic<size_t>& max_allocation_ref() {
  static std::atomic<size_t> cap{default_max_allocation_bytes()};
  return cap;
}
}  // namespace detail

/// The largest single allocation (one tensor's storage, any device) Ember will attempt; larger
/// requests throw ember::Error before touching the allocator. Returns the previous cap.
inline size_t set_max_allocation_bytes(size_t nbytes) {
  EMBER_CHECK(nbytes > 0, "set_max_allocation_bytes: the cap must be positive");
  return detail::max_allocation_ref().exchange(nbytes, std::memory_order_relaxed);
}
/// The current cap (see set_max_allocation_bytes; default EMBER_MAX_ALLOC_BYTES or physical memory).
inline size_t max_allocation_bytes() { return detail::max_allocation_ref().load(std::memory_order_relaxed); }

/// "1.50 GiB"-style text for messages.
inline std::string format_bytes(size_t n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 6) {
    v /= 1024;
    ++u;
  }
  char buf[48];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.2f %s", v, units[u]);
  return buf;
}

namespace detail {

class CpuCachingAllocator {
 public:
  /// EMBER_DISABLE_CPU_CACHE=1 turns caching off, so AddressSanitizer sees every use-after-free.
  CpuCachingAllocator() {
    const char* v = std::getenv("EMBER_DISABLE_CPU_CACHE");
    caching_ = !(v && *v && *v != '0');
  }

  /// Freed blocks beyond this many bytes, or beyond the peak of bytes in use if that is larger,
  /// go back to the system. The peak term: a training step whose working set exceeds a fixed
  /// limit (the cat/dog CNN's is ~1 GB) would otherwise give blocks back and fetch them again on
  /// every step; caching up to what the program has already used at once costs no new memory.
  static constexpr size_t kCacheLimit = size_t{512} << 20;

  /// Size classes: multiples of 64 B up to 4 KiB, then four classes per power of two (<= 25% slack).
  static size_t round_size(size_t n) {
    if (n > (size_t{1} << 62)) return n;  // beyond any cap; rounding up would overflow
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
      empty_cache();  // the cached blocks may be what the system is missing
      p = std::aligned_alloc(kCpuAlignment, r);
    }
    if (p == nullptr) {
      std::lock_guard<std::mutex> lock(mu_);
      stats_.allocated_bytes -= r;
      EMBER_FAIL("out of memory: failed to allocate ", nbytes, " bytes (", format_bytes(nbytes),
                 ") on the CPU; ", format_bytes(stats_.allocated_bytes), " are in use by tensors");
    }
    return p;
  }

  void deallocate(void* p, size_t nbytes) noexcept {
    size_t r = round_size(nbytes);
    {
      std::lock_guard<std::mutex> lock(mu_);
      stats_.allocated_bytes -= r;
      if (caching_ && stats_.cached_bytes + r <= std::max(kCacheLimit, stats_.peak_allocated_bytes)) {
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

  bool caching() const { return caching_; }

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
/// False when EMBER_DISABLE_CPU_CACHE was set at start-up (every free goes back to the system).
inline bool cpu_cache_enabled() { return detail::cpu_allocator().caching(); }

/// Raw bytes for a tensor's storage on `device` (nullptr for 0 bytes). Throws ember::Error above
/// max_allocation_bytes() or when the system is out of memory; never lets std::bad_alloc escape.
inline void* allocate_bytes(size_t nbytes, Device device) {
  if (nbytes == 0) return nullptr;
  const size_t cap = max_allocation_bytes();
  EMBER_CHECK(nbytes <= cap, "allocation of ", nbytes, " bytes (", format_bytes(nbytes), ") on ", device,
              " exceeds the limit of ", format_bytes(cap), " per tensor (set_max_allocation_bytes or the "
              "EMBER_MAX_ALLOC_BYTES environment variable raise it)");
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

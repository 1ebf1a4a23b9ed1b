/// The CUDA caching allocator (after PyTorch's CUDACachingAllocator, much simplified).
///
/// Requests are rounded up to 512 bytes. Requests up to 1 MiB come from the small pool, whose
/// segments are 2 MiB cudaMalloc's split into blocks; larger ones from the large pool, whose
/// segments are the request rounded up to 2 MiB. A freed block goes back to its pool's free set
/// (ordered by size, then address) and is merged with free neighbours of the same segment; the
/// next request takes the smallest free block that fits and splits off the remainder. So a
/// training step that allocates what the last step allocated calls cudaMalloc zero times.
///
/// All kernels run on one stream, so a block freed on the host can be handed out again at once:
/// any kernel that still reads it was queued before any kernel that will write it.
#include <map>
#include <mutex>
#include <set>
#include <unordered_map>
#include <vector>

#include "common.cuh"
#include "ember/cuda/runtime.hpp"

namespace ember::cuda {

namespace {

constexpr size_t kRound = 512;                 // every block is a multiple of this
constexpr size_t kSmallSize = size_t{1} << 20;  // requests up to this go to the small pool
constexpr size_t kSmallSegment = size_t{2} << 20;
constexpr size_t kLargeRound = size_t{2} << 20;
constexpr size_t kMinLargeSplit = size_t{1} << 20;  // don't split a large block for less than this

struct Block {
  char* ptr = nullptr;
  size_t size = 0;
  bool small = false;
  bool allocated = false;
  Block* prev = nullptr;  // neighbours inside the same cudaMalloc segment
  Block* next = nullptr;
};

struct BySize {
  bool operator()(const Block* a, const Block* b) const {
    if (a->size != b->size) return a->size < b->size;
    return a->ptr < b->ptr;
  }
};

struct DeviceStats {
  size_t allocated = 0;
  size_t max_allocated = 0;
  size_t reserved = 0;
  uint64_t mallocs = 0;
};

struct DeviceCache {
  std::set<Block*, BySize> small_free, large_free;
  std::unordered_map<void*, Block*> active;
  DeviceStats stats;
};

size_t round_size(size_t n) { return (n + kRound - 1) / kRound * kRound; }

class CachingAllocator {
 public:
  void* allocate(size_t nbytes, int device) {
    if (nbytes == 0) return nullptr;
    std::lock_guard<std::mutex> lock(mu_);
    DeviceCache& dc = cache(device, "cuda allocate");
    size_t size = round_size(nbytes);
    bool small = size <= kSmallSize;
    auto& pool = small ? dc.small_free : dc.large_free;

    Block key;
    key.size = size;
    key.ptr = nullptr;
    auto it = pool.lower_bound(&key);
    Block* b = nullptr;
    if (it != pool.end()) {
      b = *it;
      pool.erase(it);
    } else {
      b = new_segment(dc, device, small ? kSmallSegment : (size + kLargeRound - 1) / kLargeRound * kLargeRound,
                      small, nbytes);
    }
    // Split off the tail when it is worth keeping as a block of its own.
    size_t rest = b->size - size;
    if (rest >= (small ? kRound : kMinLargeSplit)) {
      Block* tail = new Block;
      tail->ptr = b->ptr + size;
      tail->size = rest;
      tail->small = small;
      tail->prev = b;
      tail->next = b->next;
      if (b->next) b->next->prev = tail;
      b->next = tail;
      b->size = size;
      pool.insert(tail);
    }
    b->allocated = true;
    dc.active[b->ptr] = b;
    dc.stats.allocated += b->size;
    if (dc.stats.allocated > dc.stats.max_allocated) dc.stats.max_allocated = dc.stats.allocated;
    return b->ptr;
  }

  void deallocate(void* ptr, int device) noexcept {
    if (ptr == nullptr) return;
    std::lock_guard<std::mutex> lock(mu_);
    if (device < 0 || device >= static_cast<int>(caches_.size())) return;
    DeviceCache& dc = caches_[device];
    auto it = dc.active.find(ptr);
    if (it == dc.active.end()) return;  // not ours: nothing sensible to do in a noexcept path
    Block* b = it->second;
    dc.active.erase(it);
    b->allocated = false;
    dc.stats.allocated -= b->size;
    auto& pool = b->small ? dc.small_free : dc.large_free;
    // Merge with free neighbours of the same segment so large requests can reuse the space.
    if (b->prev && !b->prev->allocated) {
      Block* p = b->prev;
      pool.erase(p);
      p->size += b->size;
      p->next = b->next;
      if (b->next) b->next->prev = p;
      delete b;
      b = p;
    }
    if (b->next && !b->next->allocated) {
      Block* n = b->next;
      pool.erase(n);
      b->size += n->size;
      b->next = n->next;
      if (n->next) n->next->prev = b;
      delete n;
    }
    pool.insert(b);
  }

  void empty_cache() {
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t d = 0; d < caches_.size(); ++d) release_free_segments(caches_[d], static_cast<int>(d));
  }

  DeviceStats stats(int device) {
    std::lock_guard<std::mutex> lock(mu_);
    if (device < 0 || device >= static_cast<int>(caches_.size())) return {};
    return caches_[device].stats;
  }

  void reset_peak(int device) {
    std::lock_guard<std::mutex> lock(mu_);
    if (device < 0 || device >= static_cast<int>(caches_.size())) return;
    caches_[device].stats.max_allocated = caches_[device].stats.allocated;
  }

 private:
  DeviceCache& cache(int device, const char* op) {
    int n = device_count();
    EMBER_CHECK(n > 0, op, ": no CUDA device is visible (cuda::is_available() is false)");
    EMBER_CHECK(device >= 0 && device < n, op, ": invalid device index ", device, " (", n, " CUDA device",
                n == 1 ? "" : "s", " visible)");
    if (caches_.empty()) caches_.resize(static_cast<size_t>(n));
    return caches_[device];
  }

  Block* new_segment(DeviceCache& dc, int device, size_t seg_size, bool small, size_t requested) {
    detail::DeviceGuard guard(device);
    void* p = nullptr;
    cudaError_t err = cudaMalloc(&p, seg_size);
    if (err == cudaErrorMemoryAllocation) {
      // Give every cached block back to the driver and try once more.
      cudaGetLastError();
      release_free_segments(dc, device);
      err = cudaMalloc(&p, seg_size);
    }
    if (err != cudaSuccess) {
      cudaGetLastError();
      size_t free_b = 0, total_b = 0;
      cudaMemGetInfo(&free_b, &total_b);
      cudaGetLastError();
      auto mib = [](size_t b) { return static_cast<double>(b) / (1024.0 * 1024.0); };
      EMBER_FAIL("CUDA out of memory: tried to allocate ", mib(requested), " MiB (segment of ", mib(seg_size),
                 " MiB) on cuda:", device, "; ", mib(free_b), " MiB free of ", mib(total_b), " MiB total; Ember holds ",
                 mib(dc.stats.allocated), " MiB in tensors and ", mib(dc.stats.reserved),
                 " MiB reserved by its caching allocator (", cudaGetErrorString(err), ")");
    }
    ++dc.stats.mallocs;
    dc.stats.reserved += seg_size;
    Block* b = new Block;
    b->ptr = static_cast<char*>(p);
    b->size = seg_size;
    b->small = small;
    return b;
  }

  /// cudaFree's every free block that spans a whole segment (no neighbours).
  void release_free_segments(DeviceCache& dc, int device) {
    detail::DeviceGuard guard(device);
    for (auto* pool : {&dc.small_free, &dc.large_free}) {
      for (auto it = pool->begin(); it != pool->end();) {
        Block* b = *it;
        if (b->prev == nullptr && b->next == nullptr) {
          cudaFree(b->ptr);
          cudaGetLastError();
          dc.stats.reserved -= b->size;
          delete b;
          it = pool->erase(it);
        } else {
          ++it;
        }
      }
    }
  }

  std::mutex mu_;
  std::vector<DeviceCache> caches_;
};

/// Never destroyed: tensors held by other static objects may be freed after main returns, and
/// the driver tears its context down on its own at exit.
CachingAllocator& allocator() {
  static CachingAllocator* a = new CachingAllocator;
  return *a;
}

}  // namespace

void* allocate(size_t nbytes, int device) { return allocator().allocate(nbytes, device); }
void deallocate(void* ptr, int device) noexcept { allocator().deallocate(ptr, device); }
void empty_cache() { allocator().empty_cache(); }
size_t memory_allocated(int device) { return allocator().stats(device).allocated; }
size_t max_memory_allocated(int device) { return allocator().stats(device).max_allocated; }
size_t memory_reserved(int device) { return allocator().stats(device).reserved; }
void reset_peak_memory_stats(int device) { allocator().reset_peak(device); }
uint64_t num_device_mallocs(int device) { return allocator().stats(device).mallocs; }

}  // namespace ember::cuda

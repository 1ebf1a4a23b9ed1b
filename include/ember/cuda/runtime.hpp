#pragma once
/// CUDA runtime services used by the core: device queries, the caching allocator and copies.
/// Declarations only; kernels/runtime.cu and kernels/allocator.cu define them.
#include <cstddef>
#include <cstdint>

namespace ember::cuda {

bool is_available();
int device_count();
/// Waits for all work queued on the device (-1: the current device).
void synchronize(int device = -1);

// ---- caching allocator (kernels/allocator.cu) ---------------------------------------------------
void* allocate(size_t nbytes, int device);
void deallocate(void* ptr, int device) noexcept;
/// Returns cached blocks to the driver (torch.cuda.empty_cache).
void empty_cache();
size_t memory_allocated(int device = 0);
size_t max_memory_allocated(int device = 0);
size_t memory_reserved(int device = 0);
void reset_peak_memory_stats(int device = 0);
/// How many times the allocator called cudaMalloc (a warm training step should add none).
uint64_t num_device_mallocs(int device = 0);

// ---- copies (kernels/runtime.cu), on the current stream; d2h waits for completion -------------
void memcpy_h2d(void* dst, const void* src, size_t nbytes, int device);
void memcpy_d2h(void* dst, const void* src, size_t nbytes, int device);
void memcpy_d2d(void* dst, const void* src, size_t nbytes, int device);

/// TF32 tensor cores for float32 GEMM (off by default, for float32 exactness).
void set_allow_tf32(bool on);
bool allow_tf32();

}  // namespace ember::cuda

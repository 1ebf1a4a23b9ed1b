/// Device queries, synchronisation, host/device copies and the TF32 switch.
#include <atomic>
#include <mutex>

#include "common.cuh"
#include "ember/cuda/runtime.hpp"

namespace ember::cuda {

namespace {
/// Asked once: cudaGetDeviceCount fails (no driver, no device) on CPU-only machines, and that
/// must read as "no GPU", never as an error.
int query_device_count() {
  static int count = [] {
    int n = 0;
    cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess) {
      cudaGetLastError();
      return 0;
    }
    return n;
  }();
  return count;
}

std::atomic<bool> g_allow_tf32{false};

}  // namespace

bool is_available() { return query_device_count() > 0; }

int device_count() { return query_device_count(); }

void synchronize(int device) {
  if (!is_available()) return;
  detail::DeviceGuard g(device);
  detail::check(cudaDeviceSynchronize(), "cuda::synchronize");
}

void memcpy_h2d(void* dst, const void* src, size_t nbytes, int device) {
  if (nbytes == 0) return;
  detail::DeviceGuard g(device);
  // Synchronous: the source is ordinary pageable host memory that the caller may free at once.
  detail::check(cudaMemcpy(dst, src, nbytes, cudaMemcpyHostToDevice), "copy to cuda (memcpy_h2d)");
}

void memcpy_d2h(void* dst, const void* src, size_t nbytes, int device) {
  if (nbytes == 0) return;
  detail::DeviceGuard g(device);
  // cudaMemcpy waits for the queued kernels that produce src, then for the copy itself.
  detail::check(cudaMemcpy(dst, src, nbytes, cudaMemcpyDeviceToHost), "copy to cpu (memcpy_d2h)");
}

void memcpy_d2d(void* dst, const void* src, size_t nbytes, int device) {
  if (nbytes == 0) return;
  detail::DeviceGuard g(device);
  detail::check(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDeviceToDevice, detail::stream()),
                "copy on cuda (memcpy_d2d)");
}

void set_allow_tf32(bool on) { g_allow_tf32.store(on); }
bool allow_tf32() { return g_allow_tf32.load(); }

}  // namespace ember::cuda

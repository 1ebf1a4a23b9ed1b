#include <doctest/doctest.h>

#include "ember/ember.hpp"

using namespace ember;

TEST_CASE("cpu allocator: size classes bound the slack") {
  using A = detail::CpuCachingAllocator;
  CHECK(A::round_size(1) == 64);
  CHECK(A::round_size(64) == 64);
  CHECK(A::round_size(65) == 128);
  CHECK(A::round_size(4096) == 4096);
  CHECK(A::round_size(4097) == 5120);
  CHECK(A::round_size(size_t{1} << 20) == size_t{1} << 20);
  for (size_t n : {size_t{5000}, size_t{123457}, size_t{10000001}}) {
    size_t r = A::round_size(n);
    CHECK(r >= n);
    CHECK(static_cast<double>(r) <= 1.25 * static_cast<double>(n) + 64);
    CHECK(r % 64 == 0);
  }
}

TEST_CASE("cpu allocator: a warm loop takes no new memory from the system") {
  auto step = [] {
    Tensor x = randn({64, 256}), w = randn({256, 128}, TensorOptions().requires_grad(true));
    Tensor loss = matmul(x, w).relu().sum();
    loss.backward();
  };
  step();
  step();
  uint64_t before = cpu_memory_stats().system_allocations;
  for (int i = 0; i < 10; ++i) step();
  CHECK(cpu_memory_stats().system_allocations == before);
}

TEST_CASE("cpu allocator: statistics follow tensor lifetimes") {
  reset_cpu_peak_memory();
  size_t base = cpu_memory_stats().allocated_bytes;
  {
    Tensor t = empty({1 << 20});  // 4 MiB
    CHECK(cpu_memory_stats().allocated_bytes == base + (size_t{4} << 20));
    CHECK(cpu_memory_stats().peak_allocated_bytes >= base + (size_t{4} << 20));
  }
  CHECK(cpu_memory_stats().allocated_bytes == base);
  CHECK(cpu_memory_stats().cached_bytes >= (size_t{4} << 20));
  cpu_empty_cache();
  CHECK(cpu_memory_stats().cached_bytes == 0);
  // Freed memory is reused and can be written again.
  Tensor a = full({1000}, 3.0f);
  CHECK(a.sum().item<float>() == 3000.0f);
}

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
  if (!cpu_cache_enabled()) {
    MESSAGE("skipped: EMBER_DISABLE_CPU_CACHE is set (sanitizer runs), so nothing is cached");
    return;
  }
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

TEST_CASE("cpu allocator: a working set above the fixed cache limit is still reused") {
  if (!cpu_cache_enabled()) {
    MESSAGE("skipped: EMBER_DISABLE_CPU_CACHE is set (sanitizer runs), so nothing is cached");
    return;
  }
  // Two 400 MiB blocks alive at once (never touched, so they cost address space, not RAM): their
  // sum exceeds the 512 MiB floor, but the peak in use allows caching both, so the next "step"
  // takes nothing from the system.
  cpu_empty_cache();
  auto step = [] {
    Tensor a = empty({100 << 20}), b = empty({100 << 20});
    return a.numel() + b.numel();
  };
  step();
  uint64_t before = cpu_memory_stats().system_allocations;
  CHECK(cpu_memory_stats().cached_bytes >= (size_t{800} << 20));
  step();
  CHECK(cpu_memory_stats().system_allocations == before);
  cpu_empty_cache();
}

TEST_CASE("cpu allocator: statistics follow tensor lifetimes") {
  if (!cpu_cache_enabled()) {
    MESSAGE("skipped: EMBER_DISABLE_CPU_CACHE is set (sanitizer runs), so nothing is cached");
    return;
  }
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

// ---- resource limits ---------------------------------------------------------------------------

namespace {
/// Sets the allocation cap for one test and restores the previous one.
struct CapGuard {
  size_t old;
  explicit CapGuard(size_t cap) : old(set_max_allocation_bytes(cap)) {}
  ~CapGuard() { set_max_allocation_bytes(old); }
};
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no ember::Error)";
}
}  // namespace

TEST_CASE("resource limits: negative sizes and int64 overflow throw before allocating") {
  uint64_t before = cpu_memory_stats().system_allocations;
  std::string msg = error_of([] { empty({2, -3}); });
  CHECK(msg.find("negative dimension") != std::string::npos);
  CHECK(msg.find("[2, -3]") != std::string::npos);
  // 2^32 * 2^32 elements: the product wraps to 0 in int64 arithmetic, which used to allocate nothing
  // and hand out a tensor claiming 2^64 elements.
  msg = error_of([] { empty({int64_t{1} << 32, int64_t{1} << 32}); });
  CHECK(msg.find("more elements than int64") != std::string::npos);
  CHECK(msg.find("[4294967296, 4294967296]") != std::string::npos);
  // Fits int64 as a count, not as bytes.
  msg = error_of([] { zeros({int64_t{1} << 62}, TensorOptions(kFloat64)); });
  CHECK(msg.find("byte size overflows") != std::string::npos);
  CHECK(msg.find("float64") != std::string::npos);
  CHECK_THROWS_AS(from_blob(nullptr, {int64_t{1} << 40, int64_t{1} << 40}), Error);
  CHECK_THROWS_AS(arange(0.0, 1e30), Error);
  CHECK_THROWS_AS(arange(0.0, std::numeric_limits<double>::infinity()), Error);
  CHECK(cpu_memory_stats().system_allocations == before);
}

TEST_CASE("resource limits: the allocation cap names shape, dtype and size") {
  CapGuard cap(size_t{1} << 20);  // 1 MiB
  CHECK(max_allocation_bytes() == size_t{1} << 20);
  CHECK(empty({256, 1024}).numel() == 256 * 1024);  // exactly 1 MiB of float32 is allowed
  std::string msg = error_of([] { empty({257, 1024}); });
  CHECK(msg.find("[257, 1024]") != std::string::npos);
  CHECK(msg.find("float32") != std::string::npos);
  CHECK(msg.find("1.00 MiB") != std::string::npos);
  CHECK(msg.find("EMBER_MAX_ALLOC_BYTES") != std::string::npos);
  // Every path that makes storage goes through the check: ops' outputs too.
  Tensor a = ones({512, 512});
  CHECK_THROWS_AS(cat({a, a}, 0), Error);
  // The raw allocator refuses as well (for storage made outside make_tensor).
  CHECK_THROWS_AS(allocate_bytes(size_t{2} << 20, kCPU), Error);
}

TEST_CASE("resource limits: a failing system allocation becomes ember::Error with the size") {
  // Above the cap is refused early; to reach the system allocator's failure path, lift the cap to
  // a size no machine has (2^61 bytes): aligned_alloc returns null and the message names the size.
  CapGuard cap(size_t{1} << 62);
  std::string msg = error_of([] { empty({int64_t{1} << 59}, TensorOptions(kFloat32)); });
  CHECK(msg.find("out of memory") != std::string::npos);
  CHECK(msg.find("2305843009213693952 bytes") != std::string::npos);
  // The statistics did not keep the failed request.
  CHECK(cpu_memory_stats().allocated_bytes < (size_t{1} << 40));
}

TEST_CASE("resource limits: byte sizes parse with units; the default cap is positive") {
  CHECK(parse_byte_size("4096") == 4096);
  CHECK(parse_byte_size("64G") == size_t{64} << 30);
  CHECK(parse_byte_size("512MiB") == size_t{512} << 20);
  CHECK(parse_byte_size("1.5k") == 1536);
  CHECK(parse_byte_size("") == 0);
  CHECK(parse_byte_size("lots") == 0);
  CHECK(parse_byte_size("-5") == 0);
  CHECK(parse_byte_size("12Q") == 0);
  CHECK(detail::default_max_allocation_bytes() >= (size_t{256} << 20));
  CHECK_THROWS_AS(set_max_allocation_bytes(0), Error);
}

TEST_CASE("cpu allocator: system_allocations counts cache misses only") {
  cpu_empty_cache();
  uint64_t s0 = cpu_memory_stats().system_allocations;
  { Tensor t = empty({3000}); }
  uint64_t s1 = cpu_memory_stats().system_allocations;
  CHECK(s1 == s0 + 1);
  { Tensor t = empty({3000}); }  // same size class: served from the cache, unless caching is off
  CHECK(cpu_memory_stats().system_allocations == s1 + (cpu_cache_enabled() ? 0 : 1));
}

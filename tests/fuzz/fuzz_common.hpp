#pragma once
/// Shared helpers of the libFuzzer targets: the readers under test take file paths, so each input
/// is written to one scratch file per process (in /dev/shm when it exists, so no disk I/O).
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>

// Only what the readers need, so a target builds while other parts of the library are being
// edited. The autograd engine defines AccumulateGrad's virtual functions, which io/safetensors.hpp
// reaches through nn/state_dict.hpp without including it (a link error otherwise).
#include "ember/autograd/engine.hpp"
#include "ember/core/allocator.hpp"
#include "ember/core/error.hpp"

namespace ember::fuzz {

/// The scratch path of this process for `tag` (stable, so the file is overwritten, not leaked).
inline std::string scratch_path(const char* tag) {
  static const std::string dir = [] {
    std::error_code ec;
    return std::filesystem::is_directory("/dev/shm", ec) ? std::string("/dev/shm") : std::string("/tmp");
  }();
  return dir + "/ember_fuzz_" + tag + "_" + std::to_string(::getpid());
}

/// Writes `size` bytes to the scratch file of `tag`; returns its path.
inline std::string write_scratch(const char* tag, const uint8_t* data, size_t size) {
  std::string path = scratch_path(tag);
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) __builtin_trap();  // the harness itself is broken, not the reader
  if (size > 0 && std::fwrite(data, 1, size, f) != size) __builtin_trap();
  std::fclose(f);
  return path;
}

/// Reads a fuzz input as a stream of choices (as libFuzzer's FuzzedDataProvider): past the end
/// every read returns zeros or an empty string, so a harness never needs to check the length.
struct Bytes {
  const uint8_t* p;
  size_t n;
  uint8_t byte() {
    if (n == 0) return 0;
    --n;
    return *p++;
  }
  int small(int lo, int hi) { return lo + byte() % (hi - lo + 1); }
  double real(double lo, double hi) { return lo + (hi - lo) * (byte() * 256 + byte()) / 65535.0; }
  std::string take(size_t k) {
    k = k < n ? k : n;
    std::string s(reinterpret_cast<const char*>(p), k);
    p += k;
    n -= k;
    return s;
  }
};

/// Runs once per process: caps single tensors (and decoded images) at 64 MiB, as a program reading
/// untrusted files should, so a header announcing gigabytes throws ember::Error instead of tripping
/// -rss_limit_mb, and an 86-byte RLE image cannot keep a slow sanitized build busy for seconds.
/// Readers must still not depend on it: fuzz_idx found a 16-byte file that allocates what its
/// header announces before reading (docs/RELIABILITY.md).
inline void initialize() { ember::set_max_allocation_bytes(size_t{64} << 20); }

}  // namespace ember::fuzz

// fuzz_all.cpp, which includes every target, has its own.
#ifndef EMBER_FUZZ_ALL
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  ember::fuzz::initialize();
  return 0;
}
#endif

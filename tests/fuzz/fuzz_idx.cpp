// libFuzzer target: data::read_idx on arbitrary bytes (plain IDX; zlib also reads gzip streams,
// so gzip seeds in the corpus exercise the decompressing path too). Every input must either
// parse or throw ember::Error; anything else (a crash, a sanitizer report, another exception
// type escaping, memory over -rss_limit_mb) is a bug.
#include "ember/data/mnist.hpp"
#include "fuzz_common.hpp"

// Known bug filter (remove once data/mnist.hpp checks before multiplying): read_idx computes the
// element count as `total *= s` and checks it afterwards, so three 2^30 dimensions overflow int64
// (UB, reported by UBSan). The input is committed in tests/fuzz/regressions/fuzz_idx/; skipping
// such headers here lets the fuzzer go on exploring instead of stopping on the same report.
// Build with -DEMBER_FUZZ_NO_KNOWN_BUG_FILTERS to see it.
static bool known_bug(const uint8_t* data, size_t size) {
#ifdef EMBER_FUZZ_NO_KNOWN_BUG_FILTERS
  (void)data, (void)size;
  return false;
#else
  if (size < 4 || data[0] != 0 || data[1] != 0) return false;  // gzip streams are not filtered
  const int ndim = data[3];
  using u128 = unsigned __int128;
  u128 total = 1;
  for (int d = 0; d < ndim && 4 + 4 * d + 4 <= static_cast<int>(size); ++d) {
    const uint8_t* b = data + 4 + 4 * d;
    uint32_t s = (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | b[3];
    if (s > (1u << 30)) return false;  // rejected before the multiplication
    total *= s;
    if (total > (u128{1} << 36)) return total > static_cast<u128>(INT64_MAX);
  }
  return false;
#endif
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (known_bug(data, size)) return 0;
  const std::string& path = ember::fuzz::write_scratch("idx", data, size);
  // The file's own dimension byte picks the expected magic, so both the images and the labels
  // layouts are reached (a gzip stream starts 1F 8B 08 00: images).
  uint32_t magic = size >= 4 && data[3] == 1 ? ember::data::kIdxLabelsMagic : ember::data::kIdxImagesMagic;
  try {
    ember::Tensor t = ember::data::read_idx(path, magic, "fuzz");
    if (t.numel() > 0 && t.data_ptr<uint8_t>()[t.numel() - 1] == 0x5A) return 0;  // touch the last byte
  } catch (const ember::Error&) {
  }
  return 0;
}

#pragma once
/// CRC-32C (Castagnoli), the checksum Ember writes into every safetensors file and checkpoint so
/// that a flipped bit or a truncated copy is caught on load. Written here rather than taken from
/// zlib (whose crc32 is the other polynomial) because the core must not depend on zlib; the
/// slice-by-8 tables are built at compile time and run at ~1-2 GB/s, small next to the fsync a
/// checkpoint save already pays.
///
/// Example:
/// ```
///   ember::io::Crc32c crc;
///   crc.update(header.data(), header.size());
///   crc.update(data, n);
///   uint32_t v = crc.value();                      // == ember::io::crc32c(all bytes)
/// ```
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace ember::io {

namespace detail {

/// The reflected Castagnoli polynomial (iSCSI, ext4, SSE4.2's crc32 instruction).
inline constexpr uint32_t kCrc32cPolynomial = 0x82F63B78u;

struct Crc32cTables {
  uint32_t t[8][256];
};

constexpr Crc32cTables make_crc32c_tables() {
  Crc32cTables x{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1u) ? (c >> 1) ^ kCrc32cPolynomial : c >> 1;
    x.t[0][i] = c;
  }
  // t[s][i]: the CRC of byte i followed by s zero bytes, so eight bytes fold in one step.
  for (int s = 1; s < 8; ++s)
    for (uint32_t i = 0; i < 256; ++i) x.t[s][i] = (x.t[s - 1][i] >> 8) ^ x.t[0][x.t[s - 1][i] & 0xFFu];
  return x;
}

inline constexpr Crc32cTables kCrc32cTables = make_crc32c_tables();

}  // namespace detail

/// Incremental CRC-32C: feed bytes in any number of update() calls, read value() at the end.
class Crc32c {
 public:
  void update(const void* data, size_t n) {
    const auto& t = detail::kCrc32cTables.t;
    const auto* p = static_cast<const unsigned char*>(data);
    uint32_t c = state_;
    for (; n >= 8; n -= 8, p += 8) {
      uint32_t lo, hi;  // little-endian words (safetensors.hpp asserts a little-endian host)
      std::memcpy(&lo, p, 4);
      std::memcpy(&hi, p + 4, 4);
      lo ^= c;
      c = t[7][lo & 0xFFu] ^ t[6][(lo >> 8) & 0xFFu] ^ t[5][(lo >> 16) & 0xFFu] ^ t[4][lo >> 24] ^
          t[3][hi & 0xFFu] ^ t[2][(hi >> 8) & 0xFFu] ^ t[1][(hi >> 16) & 0xFFu] ^ t[0][hi >> 24];
    }
    for (; n > 0; --n, ++p) c = t[0][(c ^ *p) & 0xFFu] ^ (c >> 8);
    state_ = c;
  }
  void update(std::string_view s) { update(s.data(), s.size()); }
  /// The CRC of everything fed so far.
  uint32_t value() const { return ~state_; }

 private:
  uint32_t state_ = 0xFFFFFFFFu;
};

/// The CRC-32C of `n` bytes (crc32c("123456789") == 0xE3069283).
inline uint32_t crc32c(const void* data, size_t n) {
  Crc32c c;
  c.update(data, n);
  return c.value();
}
inline uint32_t crc32c(std::string_view s) { return crc32c(s.data(), s.size()); }

/// Eight lowercase hex digits, the form stored in file metadata.
inline std::string crc32c_hex(uint32_t v) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s(8, '0');
  for (int i = 7; i >= 0; --i, v >>= 4) s[static_cast<size_t>(i)] = kDigits[v & 0xFu];
  return s;
}

}  // namespace ember::io

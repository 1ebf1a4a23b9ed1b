#pragma once
/// UTF-8 for the text pipeline: decoding to code points, encoding back, and the character
/// classes the segmenter and the preprocessing need (CJK ideographs, ASCII letters/digits,
/// Python's `\s` and `\d`).
///
/// Invalid input is **replaced, not rejected** by default: each maximal ill-formed subpart
/// (Unicode 15, §3.9 "U+FFFD Substitution of Maximal Subparts" — the practice of Python's
/// `bytes.decode('utf-8', 'replace')`, WHATWG and ICU) becomes one U+FFFD. So a stray continuation
/// byte, an overlong form (`C0 AF`), an encoded surrogate (`ED A0 80`), a code point above
/// U+10FFFF (`F4 90 80 80`) and a sequence cut short by the end of the text never stop a
/// pipeline over millions of reviews; `Utf8Errors::kStrict` throws an ember::Error naming the byte
/// offset instead, for callers that must not alter their input.
///
/// Example:
/// ```
///   namespace utf8 = ember::text::utf8;
///   std::u32string cps = utf8::decode("电影\xff好");      // U"电影\uFFFD好"
///   std::string s = utf8::encode(cps);                    // "电影\xEF\xBF\xBD好"
///   bool ok = utf8::is_valid(s);                          // true
///   bool han = utf8::is_cjk_ideograph(U'电');             // true
/// ```
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "ember/core/error.hpp"

namespace ember::text::utf8 {

/// U+FFFD REPLACEMENT CHARACTER, what an ill-formed sequence decodes to.
inline constexpr char32_t kReplacement = 0xFFFD;

enum class Utf8Errors {
  kReplace,  ///< each maximal ill-formed subpart → one U+FFFD (Python's errors='replace')
  kStrict,   ///< throw ember::Error naming the byte offset
};

/// Decodes the code point starting at s[pos] and advances `pos` past it. On an ill-formed
/// sequence returns kReplacement, sets `valid` to false and advances over the maximal subpart
/// (at least one byte), so decoding always makes progress. Requires pos < s.size().
inline char32_t decode_next(std::string_view s, size_t& pos, bool& valid) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  unsigned char b0 = p[pos];
  valid = true;
  if (b0 < 0x80) {
    ++pos;
    return b0;
  }
  // Fast path for the common 3-byte case (all of CJK): lead E1..EC or EE..EF, two continuations.
  if (b0 >= 0xE1 && b0 != 0xED && b0 <= 0xEF && pos + 2 < n && (p[pos + 1] & 0xC0) == 0x80 &&
      (p[pos + 2] & 0xC0) == 0x80) {
    char32_t cp = (char32_t{b0 & 0x0Fu} << 12) | (char32_t{p[pos + 1] & 0x3Fu} << 6) | (p[pos + 2] & 0x3Fu);
    pos += 3;
    return cp;
  }
  // Well-formed sequences (Unicode Table 3-7): the lead byte fixes the length and the range
  // of the second byte; later bytes are plain continuations 80..BF.
  int len;
  unsigned char lo = 0x80, hi = 0xBF;
  char32_t cp;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
    cp = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3;
    cp = b0 & 0x0F;
    if (b0 == 0xE0) lo = 0xA0;        // no overlongs
    else if (b0 == 0xED) hi = 0x9F;   // no surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4;
    cp = b0 & 0x07;
    if (b0 == 0xF0) lo = 0x90;        // no overlongs
    else if (b0 == 0xF4) hi = 0x8F;   // nothing above U+10FFFF
  } else {                            // 80..C1 (continuation or overlong lead), F5..FF
    ++pos;
    valid = false;
    return kReplacement;
  }
  size_t i = pos + 1;
  for (int k = 1; k < len; ++k, ++i) {
    if (i >= n || p[i] < lo || p[i] > hi) {  // maximal subpart ends before the bad byte
      pos = i;
      valid = false;
      return kReplacement;
    }
    cp = (cp << 6) | (p[i] & 0x3F);
    lo = 0x80;
    hi = 0xBF;
  }
  pos = i;
  return cp;
}

/// Byte offset of the first ill-formed sequence, or npos when `s` is valid UTF-8.
inline size_t find_invalid(std::string_view s) {
  size_t pos = 0;
  const size_t n = s.size();
  bool ok;
  while (pos < n) {
    if (static_cast<unsigned char>(s[pos]) < 0x80) {
      ++pos;
      continue;
    }
    size_t at = pos;
    decode_next(s, pos, ok);
    if (!ok) return at;
  }
  return std::string_view::npos;
}
inline bool is_valid(std::string_view s) { return find_invalid(s) == std::string_view::npos; }

/// Calls f(code_point, byte_begin, byte_end) for each code point (or U+FFFD for each ill-formed
/// subpart under kReplace).
template <typename F>
void for_each_code_point(std::string_view s, F&& f, Utf8Errors errors = Utf8Errors::kReplace) {
  size_t pos = 0;
  bool ok;
  while (pos < s.size()) {
    size_t at = pos;
    char32_t cp = decode_next(s, pos, ok);
    if (!ok && errors == Utf8Errors::kStrict) {
      EMBER_FAIL("utf8::decode: invalid UTF-8 at byte ", at, " (byte 0x", std::hex,
                 static_cast<int>(static_cast<unsigned char>(s[at])), std::dec, ") of a ", s.size(), "-byte text");
    }
    f(cp, at, pos);
  }
}

inline std::u32string decode(std::string_view s, Utf8Errors errors = Utf8Errors::kReplace) {
  std::u32string out;
  out.reserve(s.size());
  for_each_code_point(s, [&](char32_t cp, size_t, size_t) { out.push_back(cp); }, errors);
  return out;
}

/// Number of code points (each ill-formed subpart counts as one, as it decodes to U+FFFD).
inline size_t length(std::string_view s) {
  size_t n = 0;
  for_each_code_point(s, [&](char32_t, size_t, size_t) { ++n; });
  return n;
}

/// True for Unicode scalar values: code points that are not surrogates and not above U+10FFFF.
constexpr bool is_scalar_value(char32_t cp) { return cp < 0xD800 || (cp > 0xDFFF && cp <= 0x10FFFF); }

/// Appends the UTF-8 encoding of `cp`; a surrogate or a value above U+10FFFF has no encoding
/// and is an error.
inline void append(std::string& out, char32_t cp) {
  EMBER_CHECK(is_scalar_value(cp), "utf8::encode: U+", std::hex, static_cast<uint32_t>(cp), std::dec,
              " is not a Unicode scalar value (a surrogate or above U+10FFFF)");
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}
inline std::string encode(std::u32string_view cps) {
  std::string out;
  out.reserve(cps.size() * 3);
  for (char32_t cp : cps) append(out, cp);
  return out;
}
inline std::string encode(char32_t cp) {
  std::string out;
  append(out, cp);
  return out;
}

/// `s` itself when valid; otherwise a copy with every ill-formed subpart replaced by U+FFFD.
inline std::string sanitize(std::string_view s) {
  size_t bad = find_invalid(s);
  if (bad == std::string_view::npos) return std::string(s);
  std::string out(s.substr(0, bad));
  out.reserve(s.size() + 8);
  for_each_code_point(s.substr(bad), [&](char32_t cp, size_t, size_t) { append(out, cp); });
  return out;
}

// ---------------------------------------------------------------------------------------------
// Character classes

/// CJK Unified Ideographs (the main block and extensions A–H) and the compatibility
/// ideographs: what "a Chinese character" means for statistics and filters. jieba's own notion
/// is narrower, see is_jieba_han.
constexpr bool is_cjk_ideograph(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0xF900 && c <= 0xFAFF) ||
         (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2EBEF) || (c >= 0x2F800 && c <= 0x2FA1F) ||
         (c >= 0x30000 && c <= 0x323AF);
}

/// jieba's han range `[\u4E00-\u9FD5]` (the URO as of Unicode 8): characters outside it are
/// never segmented by the dictionary or the HMM, whatever they are.
constexpr bool is_jieba_han(char32_t c) { return c >= 0x4E00 && c <= 0x9FD5; }

constexpr bool is_ascii_alpha(char32_t c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
constexpr bool is_ascii_digit(char32_t c) { return c >= '0' && c <= '9'; }
constexpr bool is_ascii_alnum(char32_t c) { return is_ascii_alpha(c) || is_ascii_digit(c); }

/// Python 3's `str.isspace()`, which is what `\s` matches in a `str` regex: ASCII whitespace,
/// the information separators 1C–1F, NEL, NBSP and the Unicode space separators (U+3000, the
/// ideographic space, is common in Chinese text).
constexpr bool is_space(char32_t c) {
  if (c < 0x80) return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20);
  return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
         c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

namespace detail {
// General category Nd (decimal digits) in Unicode 14.0, the version of Python 3.11's
// unicodedata: each range is ten digits except the mathematical digits U+1D7CE..1D7FF.
inline constexpr char32_t kDecimalDigitRanges[][2] = {
    {0x30, 0x39},       {0x660, 0x669},     {0x6F0, 0x6F9},     {0x7C0, 0x7C9},     {0x966, 0x96F},
    {0x9E6, 0x9EF},     {0xA66, 0xA6F},     {0xAE6, 0xAEF},     {0xB66, 0xB6F},     {0xBE6, 0xBEF},
    {0xC66, 0xC6F},     {0xCE6, 0xCEF},     {0xD66, 0xD6F},     {0xDE6, 0xDEF},     {0xE50, 0xE59},
    {0xED0, 0xED9},     {0xF20, 0xF29},     {0x1040, 0x1049},   {0x1090, 0x1099},   {0x17E0, 0x17E9},
    {0x1810, 0x1819},   {0x1946, 0x194F},   {0x19D0, 0x19D9},   {0x1A80, 0x1A89},   {0x1A90, 0x1A99},
    {0x1B50, 0x1B59},   {0x1BB0, 0x1BB9},   {0x1C40, 0x1C49},   {0x1C50, 0x1C59},   {0xA620, 0xA629},
    {0xA8D0, 0xA8D9},   {0xA900, 0xA909},   {0xA9D0, 0xA9D9},   {0xA9F0, 0xA9F9},   {0xAA50, 0xAA59},
    {0xABF0, 0xABF9},   {0xFF10, 0xFF19},   {0x104A0, 0x104A9}, {0x10D30, 0x10D39}, {0x11066, 0x1106F},
    {0x110F0, 0x110F9}, {0x11136, 0x1113F}, {0x111D0, 0x111D9}, {0x112F0, 0x112F9}, {0x11450, 0x11459},
    {0x114D0, 0x114D9}, {0x11650, 0x11659}, {0x116C0, 0x116C9}, {0x11730, 0x11739}, {0x118E0, 0x118E9},
    {0x11950, 0x11959}, {0x11C50, 0x11C59}, {0x11D50, 0x11D59}, {0x11DA0, 0x11DA9}, {0x16A60, 0x16A69},
    {0x16AC0, 0x16AC9}, {0x16B50, 0x16B59}, {0x1D7CE, 0x1D7FF}, {0x1E140, 0x1E149}, {0x1E2F0, 0x1E2F9},
    {0x1E950, 0x1E959}, {0x1FBF0, 0x1FBF9},
};
}  // namespace detail

/// Python 3's `\d` in a `str` regex (category Nd): ASCII digits, full-width digits U+FF10..FF19,
/// Arabic-Indic, Devanagari, … — but not ², ① or 〇, which are not Nd.
constexpr bool is_decimal_digit(char32_t c) {
  if (c < 0x80) return c >= '0' && c <= '9';
  if (c >= 0x1C5A && c < 0xA620) return false;  // no digits there, and it holds all of common CJK
  for (const auto& r : detail::kDecimalDigitRanges) {
    if (c < r[0]) return false;
    if (c <= r[1]) return true;
  }
  return false;
}

}  // namespace ember::text::utf8

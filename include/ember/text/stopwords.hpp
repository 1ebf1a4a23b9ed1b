#pragma once
/// text::StopWords: a set of words to drop after segmentation, read from a file with one word
/// per line (e.g. ../shared/data/stopwords/cn_stopwords.txt).
///
/// Each line is trimmed as Python's `str.strip()` would (ASCII and Unicode whitespace, so a
/// CRLF file or a line padded with U+3000 still gives the bare word); empty lines and a UTF-8
/// byte order mark on the first line are skipped. A line that is not valid UTF-8 is an error
/// naming the file and line. Lookup takes a string_view (no allocation).
///
/// Example:
/// ```
///   auto stop = ember::text::StopWords::load("../shared/data/stopwords/cn_stopwords.txt");
///   if (!stop.contains(token)) kept.push_back(token);
/// ```
#include <cstdint>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <sstream>
#include <string>
#include <string_view>
#include <unordered_set>

#include "ember/core/error.hpp"
#include "ember/text/utf8.hpp"

namespace ember::text {

namespace detail {
/// Transparent hash so unordered containers of std::string are searched with a string_view.
/// FNV-1a: tokens are a few bytes long, where it beats std::hash's murmur (a measurable share of
/// the preprocessing, which looks up every token in the stopword set).
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept {
    uint64_t h = 0xCBF29CE484222325ull;
    for (unsigned char c : s) h = (h ^ c) * 0x100000001B3ull;
    return static_cast<size_t>(h ^ (h >> 29));
  }
};

/// `s` without leading and trailing whitespace as Python's str.strip() defines it (utf8::is_space).
inline std::string_view strip(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e) {
    size_t pos = b;
    bool ok;
    char32_t cp = utf8::decode_next(s, pos, ok);
    if (!ok || !utf8::is_space(cp)) break;
    b = pos;
  }
  while (e > b) {
    // Step back to the start of the last code point (at most 4 bytes).
    size_t start = e - 1;
    while (start > b && e - start < 4 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
    size_t pos = start;
    bool ok;
    char32_t cp = utf8::decode_next(s, pos, ok);
    if (!ok || pos != e || !utf8::is_space(cp)) break;
    e = start;
  }
  return s.substr(b, e - b);
}

/// Reads a whole file; the error names what the file was for.
inline std::string read_text_file(const std::string& path, std::string_view what) {
  std::ifstream in(path, std::ios::binary);
  EMBER_CHECK(in.good(), what, ": cannot open '", path, "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  EMBER_CHECK(!in.bad(), what, ": error reading '", path, "'");
  return std::move(ss).str();
}
}  // namespace detail

class StopWords {
 public:
  StopWords() = default;
  StopWords(std::initializer_list<std::string_view> words) {
    for (auto w : words) add(w);
  }

  /// Reads one word per line; see the header comment for trimming.
  static StopWords load(const std::string& path) {
    return parse(detail::read_text_file(path, "StopWords::load"), "'" + path + "'");
  }

  /// The words of `text`, one per line, as load() reads a file (`source` names it in errors; e.g.
  /// a stopword list stored inside a checkpoint).
  static StopWords parse(std::string_view text, const std::string& source = "the text") {
    StopWords sw;
    size_t begin = 0;
    for (size_t line = 1; begin <= text.size(); ++line) {
      size_t nl = text.find('\n', begin);
      size_t end = nl == std::string::npos ? text.size() : nl;
      std::string_view raw(text.data() + begin, end - begin);
      if (line == 1 && raw.starts_with("\xEF\xBB\xBF")) raw.remove_prefix(3);
      EMBER_CHECK(utf8::is_valid(raw), "StopWords: ", source, " line ", line, " is not valid UTF-8");
      std::string_view w = detail::strip(raw);
      if (!w.empty()) sw.add(w);
      if (nl == std::string::npos) break;
      begin = nl + 1;
    }
    return sw;
  }

  void add(std::string_view word) { words_.emplace(word); }
  bool contains(std::string_view word) const { return words_.find(word) != words_.end(); }
  size_t size() const { return words_.size(); }
  bool empty() const { return words_.empty(); }

 private:
  std::unordered_set<std::string, detail::StringHash, std::equal_to<>> words_;
};

}  // namespace ember::text

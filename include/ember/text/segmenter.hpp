#pragma once
/// text::Segmenter: Chinese word segmentation that reproduces jieba 0.42's default mode,
/// `jieba.cut(text, HMM=True)`, token for token, reading jieba's own data files (Debian
/// `python3-jieba`: /usr/lib/python3/dist-packages/jieba/dict.txt and finalseg/prob_*.py; they
/// are read at load time, never copied into Ember).
///
/// The algorithm, as in jieba/__init__.py and jieba/finalseg/__init__.py:
/// 1. The text is split into blocks of `[\u4E00-\u9FD5a-zA-Z0-9+#&._%-]+` (re_han_default).
///    Every other character is a token of its own ("\r\n" is one token; whitespace characters
///    — Python's `\s` — are tokens too: `segment()` drops them, `cut()` keeps them as jieba does).
/// 2. In a block, the prefix dictionary (every word of dict.txt with its frequency, plus every
///    prefix of a word with frequency 0: jieba's `gen_pfdict`) gives the DAG of dictionary words
///    starting at each character; the route maximises the sum of log(freq) - log(total) by
///    dynamic programming from the end, ties going to the longer word (Python's max over
///    (logprob, end) tuples). A character with no word gets log(1) - log(total).
/// 3. Runs of single-character steps of the route are buffered. A run of one character, or one
///    that is itself a dictionary word, is emitted character by character; any other run goes to
///    finalseg: its han characters `[\u4E00-\u9FD5]+` are labelled B/M/E/S by Viterbi with
///    jieba's start/transition/emission log-probabilities (ties between states broken as
///    Python's max over (prob, state) tuples), and its other characters are split by
///    `([a-zA-Z0-9]+(?:\.\d+)?%?)`, keeping the pieces in between whole. Words added with
///    frequency 0 (`add_word(w, 0)`, jieba's Force_Split_Words) are split back into characters
///    when the HMM proposes them.
/// The arithmetic is done in the same order in doubles, so routes and Viterbi paths, including
/// ties, match Python's exactly (tests/test_segmenter.cpp checks goldens produced by jieba).
///
/// Input is UTF-8; ill-formed bytes are replaced by U+FFFD first (see utf8.hpp), which is then
/// an ordinary non-han character: one token "\uFFFD". Token offsets from `for_each_token` refer
/// to the (sanitised) text.
///
/// Threads: segmentation is const and may run from any number of threads at once; `add_word`
/// and `load_userdict` modify the dictionary and must not run concurrently with anything else.
/// `segment_many` segments a list of texts on several threads.
///
/// Example:
/// ```
///   ember::text::Segmenter seg;                               // jieba's files from python3-jieba
///   auto words = seg.segment("这部电影太好看了，强烈推荐！");    // 这部 电影 太 好看 了 ， 强烈推荐 ！
///   seg.add_word("强烈推荐", 0);                               // force "强烈 推荐"
///   auto all = seg.segment_many(texts, /*threads=*/2);
/// ```
#include <algorithm>
#include <atomic>
#include <bit>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <exception>
#include <filesystem>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_set>
#include <vector>

#include "ember/core/error.hpp"
#include "ember/text/stopwords.hpp"
#include "ember/text/trie.hpp"
#include "ember/text/utf8.hpp"

namespace ember::text {

/// Where Debian's python3-jieba keeps dict.txt and finalseg/.
inline constexpr const char* kJiebaDir = "/usr/lib/python3/dist-packages/jieba";

namespace detail {

/// Runs f(worker, begin, end) over chunks of [0, n) on `threads` threads (0: all cores), handing
/// out chunks dynamically because texts differ in length. The first exception is rethrown here.
template <typename F>
void parallel_over(size_t n, int threads, size_t chunk, const F& f) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  size_t workers = std::min<size_t>(static_cast<size_t>(threads), (n + chunk - 1) / std::max<size_t>(chunk, 1));
  if (workers <= 1) {
    if (n > 0) f(size_t{0}, size_t{0}, n);
    return;
  }
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::exception_ptr error;
  std::atomic_flag error_set = ATOMIC_FLAG_INIT;
  auto work = [&](size_t w) {
    try {
      for (size_t b; !failed.load(std::memory_order_relaxed) && (b = next.fetch_add(chunk)) < n;) {
        f(w, b, std::min(n, b + chunk));
      }
    } catch (...) {
      if (!error_set.test_and_set()) error = std::current_exception();
      failed = true;
    }
  };
  std::vector<std::thread> pool;
  pool.reserve(workers - 1);
  try {
    for (size_t w = 1; w < workers; ++w) pool.emplace_back(work, w);
  } catch (...) {  // no more threads: the ones started and this one finish the work
  }
  work(0);
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

/// Reads the `P = {...}` literal of jieba's finalseg/prob_*.py: nested dicts whose keys are
/// one-character strings and whose leaves are floats. Calls leaf(k1, k2, value), with k2 = 0
/// for a one-level dict. Only the literal syntax those files use is accepted: string keys with
/// \uXXXX / \UXXXXXXXX / \xXX / simple escapes or plain UTF-8, float literals, commas, comments.
class PyProbTable {
 public:
  template <typename Leaf>
  static void parse(const std::string& path, const Leaf& leaf) {
    std::string text = read_text_file(path, "Segmenter: jieba HMM table");
    PyProbTable p(text, path);
    p.seek_assignment();
    char32_t keys[2] = {0, 0};
    p.dict(0, keys, leaf);
    p.skip_space();
    EMBER_CHECK(p.pos_ == p.s_.size(), "Segmenter: ", path, ": unexpected text after the table at byte ", p.pos_);
  }

 private:
  PyProbTable(std::string_view s, std::string_view path) : s_(s), path_(path) {}

  [[noreturn]] void fail(std::string_view what) const {
    EMBER_FAIL("Segmenter: cannot read jieba's HMM table ", path_, ": ", what, " at byte ", pos_);
  }
  void skip_space() {
    while (pos_ < s_.size()) {
      char c = s_[pos_];
      if (c == '#') {
        while (pos_ < s_.size() && s_[pos_] != '\n') ++pos_;
      } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
        ++pos_;
      } else {
        break;
      }
    }
  }
  void expect(char c) {
    skip_space();
    if (pos_ >= s_.size() || s_[pos_] != c) fail(std::string("expected '") + c + "'");
    ++pos_;
  }
  // The line `P = {` (after the `from __future__` import).
  void seek_assignment() {
    size_t line = 0;
    while (line < s_.size()) {
      size_t p = line;
      if (s_[p] == 'P') {
        ++p;
        while (p < s_.size() && s_[p] == ' ') ++p;
        if (p < s_.size() && s_[p] == '=') {
          pos_ = p + 1;
          return;
        }
      }
      size_t nl = s_.find('\n', line);
      if (nl == std::string_view::npos) break;
      line = nl + 1;
    }
    fail("no 'P = {...}' assignment");
  }
  uint32_t hex(int digits) {
    if (pos_ + static_cast<size_t>(digits) > s_.size()) fail("truncated escape");
    uint32_t v = 0;
    auto r = std::from_chars(s_.data() + pos_, s_.data() + pos_ + digits, v, 16);
    if (r.ec != std::errc() || r.ptr != s_.data() + pos_ + digits) fail("bad hexadecimal escape");
    pos_ += static_cast<size_t>(digits);
    return v;
  }
  char32_t key() {
    skip_space();
    if (pos_ >= s_.size() || (s_[pos_] != '\'' && s_[pos_] != '"')) fail("expected a string key");
    char quote = s_[pos_++];
    std::u32string k;
    while (true) {
      if (pos_ >= s_.size()) fail("unterminated string");
      char c = s_[pos_];
      if (c == quote) {
        ++pos_;
        break;
      }
      if (c == '\\') {
        ++pos_;
        if (pos_ >= s_.size()) fail("unterminated string");
        char e = s_[pos_++];
        switch (e) {
          case 'u': k.push_back(hex(4)); break;
          case 'U': k.push_back(hex(8)); break;
          case 'x': k.push_back(hex(2)); break;
          case 'n': k.push_back('\n'); break;
          case 't': k.push_back('\t'); break;
          case 'r': k.push_back('\r'); break;
          case '\\': case '\'': case '"': k.push_back(static_cast<unsigned char>(e)); break;
          default: fail("unsupported escape");
        }
      } else {
        bool ok;
        k.push_back(utf8::decode_next(s_, pos_, ok));
        if (!ok) fail("invalid UTF-8");
      }
    }
    if (k.size() != 1) fail("expected a one-character key");
    return k[0];
  }
  double number() {
    skip_space();
    if (pos_ >= s_.size()) fail("expected a number");
    size_t b = pos_;
    if (s_[pos_] == '-' || s_[pos_] == '+') ++pos_;
    while (pos_ < s_.size() && (std::isdigit(static_cast<unsigned char>(s_[pos_])) || s_[pos_] == '.' ||
                                s_[pos_] == 'e' || s_[pos_] == 'E' || s_[pos_] == '-' || s_[pos_] == '+'))
      ++pos_;
    const char* first = s_.data() + b + (s_[b] == '+' ? 1 : 0);
    double v = 0;
    auto r = std::from_chars(first, s_.data() + pos_, v);  // correctly rounded, as Python's float()
    if (r.ec != std::errc() || r.ptr != s_.data() + pos_) {
      pos_ = b;
      fail("expected a number");
    }
    return v;
  }
  template <typename Leaf>
  void dict(int depth, char32_t* keys, const Leaf& leaf) {
    if (depth > 1) fail("tables nest at most two levels");
    expect('{');
    skip_space();
    if (pos_ < s_.size() && s_[pos_] == '}') {
      ++pos_;
      return;
    }
    while (true) {
      keys[depth] = key();
      expect(':');
      skip_space();
      if (pos_ < s_.size() && s_[pos_] == '{') {
        dict(depth + 1, keys, leaf);
      } else {
        leaf(keys[0], depth == 1 ? keys[1] : char32_t{0}, number());
      }
      skip_space();
      if (pos_ < s_.size() && s_[pos_] == ',') {
        ++pos_;
        skip_space();
        if (pos_ < s_.size() && s_[pos_] == '}') {  // trailing comma
          ++pos_;
          return;
        }
        continue;
      }
      expect('}');
      return;
    }
  }

  std::string_view s_;
  std::string_view path_;
  size_t pos_ = 0;
};

}  // namespace detail

class Segmenter {
 public:
  /// Loads jieba's data. `path` is a jieba directory (holding dict.txt and finalseg/prob_*.py)
  /// or the path of a dict.txt; `hmm_dir` is where prob_start.py, prob_trans.py and
  /// prob_emit.py are (default: finalseg/ beside the dictionary).
  explicit Segmenter(const std::string& path = kJiebaDir, const std::string& hmm_dir = {}) {
    namespace fs = std::filesystem;
    std::error_code ec;
    fs::path dict = path;
    if (fs::is_directory(dict, ec)) dict /= "dict.txt";
    EMBER_CHECK(fs::is_regular_file(dict, ec), "Segmenter: jieba's dictionary '", dict.string(),
                "' not found (apt-get install python3-jieba, or pass the path of a jieba dict.txt, e.g. --dict PATH)");
    fs::path hmm = hmm_dir.empty() ? dict.parent_path() / "finalseg" : fs::path(hmm_dir);
    load_dictionary(dict.string());
    load_hmm(hmm);
  }

  /// Whether jieba's files are where Debian puts them (for tests and programs that fall back).
  static bool default_available() {
    std::error_code ec;
    return std::filesystem::is_regular_file(std::string(kJiebaDir) + "/dict.txt", ec) &&
           std::filesystem::is_regular_file(std::string(kJiebaDir) + "/finalseg/prob_emit.py", ec);
  }

  // -------------------------------------------------------------------------------------------
  // Segmentation

  /// Calls on_token(std::string_view token) for each token of `jieba.cut(text, HMM=hmm)`,
  /// whitespace included. The view is valid during the call only.
  template <typename F>
  void for_each_token(std::string_view text, F&& on_token, bool hmm = true) const {
    Workspace ws;
    for_each_token(text, on_token, ws, hmm);
  }

  /// Scratch buffers reused across calls (one per thread) to avoid allocations per text.
  struct Workspace {
    std::u32string cps;
    std::vector<size_t> offs;
    std::vector<double> route_p;
    std::vector<int32_t> route_x;
    std::vector<uint8_t> back;    // Viterbi back pointers [n][4]
    std::vector<uint8_t> labels;  // Viterbi states [n]
  };

  template <typename F>
  void for_each_token(std::string_view text, F&& on_token, Workspace& ws, bool hmm = true) const {
    if (!utf8::is_valid(text)) {
      const std::string own = utf8::sanitize(text);
      cut_valid(own, ws, hmm, [&](size_t b, size_t e) { on_token(std::string_view(own).substr(b, e - b)); });
      return;
    }
    cut_valid(text, ws, hmm, [&](size_t b, size_t e) { on_token(text.substr(b, e - b)); });
  }

  /// The tokens of `jieba.cut(text, HMM=hmm)`, whitespace tokens included.
  std::vector<std::string> cut(std::string_view text, bool hmm = true) const {
    std::vector<std::string> out;
    for_each_token(text, [&](std::string_view t) { out.emplace_back(t); }, hmm);
    return out;
  }

  /// The tokens of `jieba.cut(text, HMM=True)` without the whitespace-only ones.
  std::vector<std::string> segment(std::string_view text) const {
    Workspace ws;
    return segment(text, ws);
  }
  std::vector<std::string> segment(std::string_view text, Workspace& ws) const {
    std::vector<std::string> out;
    for_each_token(text, [&](std::string_view t) {
      if (!is_whitespace_token(t)) out.emplace_back(t);
    }, ws);
    return out;
  }

  /// segment() of each text on `threads` threads (0: all cores); the result is in input order.
  template <typename Texts>
  std::vector<std::vector<std::string>> segment_many(const Texts& texts, int threads = 0) const {
    std::vector<std::vector<std::string>> out(texts.size());
    detail::parallel_over(texts.size(), threads, 64, [&](size_t, size_t b, size_t e) {
      Workspace ws;
      for (size_t i = b; i < e; ++i) out[i] = segment(std::string_view(texts[i]), ws);
    });
    return out;
  }

  /// A token made only of whitespace (what `segment` drops): Python's str.isspace().
  static bool is_whitespace_token(std::string_view t) {
    if (t.empty()) return false;
    size_t pos = 0;
    bool ok;
    while (pos < t.size())
      if (!utf8::is_space(utf8::decode_next(t, pos, ok))) return false;
    return true;
  }

  // -------------------------------------------------------------------------------------------
  // Dictionary

  /// jieba's `add_word(word, freq)`: sets the word's frequency (adding its prefixes) and adds it
  /// to the total. Frequency 0 removes the word and makes the HMM split it into characters.
  /// Without a frequency, jieba's `suggest_freq(word)`: just enough for the word to be cut out.
  void add_word(std::string_view word, std::optional<int64_t> freq = std::nullopt) {
    EMBER_CHECK(!word.empty() && utf8::is_valid(word), "Segmenter::add_word: the word must be non-empty valid UTF-8");
    EMBER_CHECK(!freq || *freq >= 0, "Segmenter::add_word: frequency must be >= 0, got ", *freq);
    int64_t f = freq ? *freq : suggest_freq(word);
    std::u32string cps = utf8::decode(word);
    set_word(cps, f);
    total_ += f;
    logtotal_ = std::log(static_cast<double>(total_));
    if (f == 0) force_split_.emplace(word);
  }
  /// jieba's `del_word`: add_word(word, 0).
  void del_word(std::string_view word) { add_word(word, 0); }

  /// jieba's `suggest_freq(word, tune=False)` for a word to be kept whole.
  int64_t suggest_freq(std::string_view word) const {
    const double ftotal = static_cast<double>(total_);
    double f = 1.0;
    for (const auto& seg : cut(word, /*hmm=*/false)) f *= static_cast<double>(freq_or(seg, 1)) / ftotal;
    return std::max(static_cast<int64_t>(f * static_cast<double>(total_)) + 1, freq_or(word, 1));
  }

  /// jieba's `load_userdict`: lines `word [freq] [tag]` (tag ignored), parsed with jieba's
  /// regex `^(.+?)( [0-9]+)?( [a-z]+)?$` after stripping; empty lines skipped.
  void load_userdict(const std::string& path) {
    std::string text = detail::read_text_file(path, "Segmenter::load_userdict");
    size_t begin = 0;
    for (size_t line = 1; begin < text.size(); ++line) {
      size_t nl = text.find('\n', begin);
      size_t end = nl == std::string::npos ? text.size() : nl;
      std::string_view raw(text.data() + begin, end - begin);
      begin = end + 1;
      EMBER_CHECK(utf8::is_valid(raw), "Segmenter::load_userdict: '", path, "' line ", line, " must be UTF-8");
      if (line == 1 && raw.starts_with("\xEF\xBB\xBF")) raw.remove_prefix(3);
      std::string_view l = detail::strip(raw);
      if (l.empty()) continue;
      auto [word, freq] = parse_userdict_line(l);
      add_word(word, freq);
    }
  }

  /// The frequency of `word` in the prefix dictionary (0 for a prefix or an unknown word).
  int64_t frequency(std::string_view word) const { return freq_or(word, 0); }
  int64_t total() const { return total_; }
  /// Number of entries of the prefix dictionary (words and their prefixes).
  size_t num_entries() const { return freq_.size() - 1; }

 private:
  static constexpr double kMinFloat = -3.14e100;  // finalseg's MIN_FLOAT
  static constexpr char32_t kHanBegin = 0x4E00, kHanEnd = 0x9FD5;
  static constexpr size_t kHanCount = kHanEnd - kHanBegin + 1;
  enum State : int { kB = 0, kM = 1, kE = 2, kS = 3 };  // finalseg's 'BMES' order

  // ---- trie --------------------------------------------------------------------------------
  int32_t child(int32_t node, char32_t cp) const {
    if (node == 0 && cp < 0x10000) return root_[cp];
    return edges_.find(node, cp);
  }
  int32_t add_child(int32_t node, char32_t cp) {
    int32_t c = child(node, cp);
    if (c >= 0) return c;
    EMBER_CHECK(freq_.size() < (size_t{1} << 31) - 1, "Segmenter: dictionary too large");
    c = static_cast<int32_t>(freq_.size());
    freq_.push_back(0);
    logf_.push_back(-1.0);
    if (node == 0 && cp < 0x10000) root_[cp] = c;
    else edges_.insert(node, cp, c);
    return c;
  }
  void set_word(std::u32string_view cps, int64_t f) {
    int32_t node = 0;
    for (char32_t cp : cps) node = add_child(node, cp);
    freq_[node] = f;
    logf_[node] = f > 0 ? std::log(static_cast<double>(f)) : -1.0;
  }
  int32_t lookup(const char32_t* cps, size_t n) const {
    int32_t node = 0;
    for (size_t i = 0; i < n && node >= 0; ++i) node = child(node, cps[i]);
    return node;
  }
  int64_t freq_or(std::string_view word, int64_t absent) const {
    std::u32string cps = utf8::decode(word);
    int32_t node = lookup(cps.data(), cps.size());
    return node > 0 ? freq_[node] : absent;
  }

  void load_dictionary(const std::string& path) {
    std::string text = detail::read_text_file(path, "Segmenter: jieba dictionary");
    root_.assign(0x10000, -1);
    freq_.assign(1, 0);
    logf_.assign(1, -1.0);
    freq_.reserve(text.size() / 8);
    logf_.reserve(text.size() / 8);
    edges_.reserve(text.size() / 8);
    total_ = 0;
    std::u32string cps;
    size_t begin = 0;
    for (size_t line = 1; begin < text.size(); ++line) {
      const char* nlp = static_cast<const char*>(std::memchr(text.data() + begin, '\n', text.size() - begin));
      size_t end = nlp ? static_cast<size_t>(nlp - text.data()) : text.size();
      std::string_view l(text.data() + begin, end - begin);
      begin = end + 1;
      // jieba: line.strip() (ASCII whitespace), then `word, freq = line.split(' ')[:2]`.
      auto is_ws = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; };
      while (!l.empty() && is_ws(l.front())) l.remove_prefix(1);
      while (!l.empty() && is_ws(l.back())) l.remove_suffix(1);
      if (l.empty()) continue;  // jieba would fail on an empty line; a blank line carries nothing
      size_t sp = l.find(' ');
      auto bad = [&](std::string_view why) {
        EMBER_FAIL("Segmenter: invalid dictionary entry in ", path, " at line ", line, " (", why, "): ", l);
      };
      if (sp == std::string_view::npos || sp == 0) bad("expected 'word freq [tag]'");
      std::string_view word = l.substr(0, sp), rest = l.substr(sp + 1);
      std::string_view fs = rest.substr(0, rest.find(' '));
      int64_t f = 0;
      auto r = std::from_chars(fs.data(), fs.data() + fs.size(), f);
      if (fs.empty() || r.ec != std::errc() || r.ptr != fs.data() + fs.size() || f < 0)
        bad("the frequency must be a non-negative integer");
      cps.clear();
      size_t pos = 0;
      bool ok;
      while (pos < word.size()) {
        cps.push_back(utf8::decode_next(word, pos, ok));
        if (!ok) bad("not UTF-8");
      }
      set_word(cps, f);
      total_ += f;
    }
    EMBER_CHECK(total_ > 0, "Segmenter: jieba dictionary ", path, " has no word with a positive frequency");
    logtotal_ = std::log(static_cast<double>(total_));
  }

  void load_hmm(const std::filesystem::path& dir) {
    auto file = [&](const char* name) {
      std::error_code ec;
      auto p = dir / name;
      EMBER_CHECK(std::filesystem::is_regular_file(p, ec), "Segmenter: jieba's HMM table '", p.string(),
                  "' not found (apt-get install python3-jieba, or pass the directory holding prob_start.py, "
                  "prob_trans.py and prob_emit.py)");
      return p.string();
    };
    auto state = [](char32_t c, const std::string& where) -> int {
      switch (c) {
        case 'B': return kB;
        case 'M': return kM;
        case 'E': return kE;
        case 'S': return kS;
        default: EMBER_FAIL("Segmenter: ", where, ": unknown HMM state U+", std::hex, static_cast<uint32_t>(c));
      }
    };
    for (auto& s : start_) s = kMinFloat;
    for (auto& row : trans_)
      for (auto& t : row) t = kMinFloat;
    emit_.assign(4 * kHanCount, kMinFloat);
    std::string ps = file("prob_start.py"), pt = file("prob_trans.py"), pe = file("prob_emit.py");
    int seen = 0;
    detail::PyProbTable::parse(ps, [&](char32_t k1, char32_t k2, double v) {
      EMBER_CHECK(k2 == 0, "Segmenter: ", ps, ": expected a one-level table");
      start_[state(k1, ps)] = v;
      ++seen;
    });
    EMBER_CHECK(seen == 4, "Segmenter: ", ps, ": expected the 4 states B, M, E, S, got ", seen, " entries");
    detail::PyProbTable::parse(pt, [&](char32_t k1, char32_t k2, double v) {
      EMBER_CHECK(k2 != 0, "Segmenter: ", pt, ": expected a two-level table");
      trans_[state(k1, pt)][state(k2, pt)] = v;
    });
    seen = 0;
    detail::PyProbTable::parse(pe, [&](char32_t k1, char32_t k2, double v) {
      EMBER_CHECK(k2 != 0, "Segmenter: ", pe, ": expected a two-level table");
      int s = state(k1, pe);
      // Only han characters ever reach the HMM (finalseg splits on [\u4E00-\u9FD5]+ first), so
      // a dense table over that range is exact; entries outside it can never be looked up.
      if (k2 >= kHanBegin && k2 <= kHanEnd) emit_[static_cast<size_t>(s) * kHanCount + (k2 - kHanBegin)] = v;
      ++seen;
    });
    EMBER_CHECK(seen > 0, "Segmenter: ", pe, ": empty emission table");
  }

  // ---- userdict ----------------------------------------------------------------------------
  // ^(.+?)( [0-9]+)?( [a-z]+)?$ : the shortest word (>= 1 character) whose remainder is an
  // optional " digits" followed by an optional " lowercase".
  static std::pair<std::string_view, std::optional<int64_t>> parse_userdict_line(std::string_view l) {
    auto run_to = [&](size_t p, char lo, char hi) {
      while (p < l.size() && l[p] >= lo && l[p] <= hi) ++p;
      return p;
    };
    // `( [a-z]+)?$` from p
    auto tag_or_end = [&](size_t p) {
      return p == l.size() || (l[p] == ' ' && p + 1 < l.size() && run_to(p + 1, 'a', 'z') == l.size() &&
                               l[p + 1] >= 'a' && l[p + 1] <= 'z');
    };
    size_t p = 0;
    bool ok;
    while (p < l.size()) {
      utf8::decode_next(l, p, ok);  // the shortest word first, one character longer each time
      if (p + 1 < l.size() && l[p] == ' ' && l[p + 1] >= '0' && l[p + 1] <= '9') {
        size_t q = run_to(p + 1, '0', '9');
        if (tag_or_end(q)) {
          int64_t f = 0;
          auto r = std::from_chars(l.data() + p + 1, l.data() + q, f);
          EMBER_CHECK(r.ec == std::errc(), "Segmenter::load_userdict: frequency out of range in: ", l);
          return {l.substr(0, p), f};
        }
      }
      if (tag_or_end(p)) return {l.substr(0, p), std::nullopt};
    }
    return {l, std::nullopt};
  }

  // ---- segmentation ------------------------------------------------------------------------
  static bool in_han_default(char32_t c) {
    // [\u4E00-\u9FD5a-zA-Z0-9+#&\._%\-]
    if (c < 0x80) return utf8::is_ascii_alnum(c) || c == '+' || c == '#' || c == '&' || c == '.' || c == '_' ||
                         c == '%' || c == '-';
    return c >= kHanBegin && c <= kHanEnd;
  }

  // Tokens of a valid UTF-8 text as byte ranges: emit(begin, end).
  template <typename Emit>
  void cut_valid(std::string_view text, Workspace& ws, bool hmm, const Emit& emit) const {
    // Decode once: code points and the byte offset of each (plus the end).
    ws.cps.clear();
    ws.offs.clear();
    size_t pos = 0;
    bool ok;
    while (pos < text.size()) {
      ws.offs.push_back(pos);
      ws.cps.push_back(utf8::decode_next(text, pos, ok));
    }
    ws.offs.push_back(text.size());
    const size_t n = ws.cps.size();
    size_t i = 0;
    while (i < n) {
      if (in_han_default(ws.cps[i])) {
        size_t j = i + 1;
        while (j < n && in_han_default(ws.cps[j])) ++j;
        cut_block(ws, i, j, hmm, emit);
        i = j;
      } else if (ws.cps[i] == '\r' && i + 1 < n && ws.cps[i + 1] == '\n') {  // re_skip's \r\n
        emit(ws.offs[i], ws.offs[i + 2]);
        i += 2;
      } else {
        emit(ws.offs[i], ws.offs[i + 1]);
        ++i;
      }
    }
  }

  // jieba's __cut_DAG (hmm) / __cut_DAG_NO_HMM on the block [b, e) of ws.cps.
  template <typename Emit>
  void cut_block(Workspace& ws, size_t b, size_t e, bool hmm, const Emit& emit) const {
    const char32_t* s = ws.cps.data() + b;
    const size_t* off = ws.offs.data() + b;
    const size_t N = e - b;
    // calc(): route[idx] = max over the DAG of (log(freq or 1) - logtotal + route[x + 1], x).
    ws.route_p.resize(N + 1);
    ws.route_x.resize(N + 1);
    double* rp = ws.route_p.data();
    int32_t* rx = ws.route_x.data();
    rp[N] = 0.0;
    rx[N] = 0;
    for (size_t k = N; k-- > 0;) {
      double best = 0;
      int32_t bx = -1;
      int32_t node = child(0, s[k]);
      for (size_t x = k; node >= 0;) {
        if (logf_[node] >= 0) {
          double p = (logf_[node] - logtotal_) + rp[x + 1];
          if (bx < 0 || p >= best) {  // >=: equal probabilities go to the larger end, as max((p, x))
            best = p;
            bx = static_cast<int32_t>(x);
          }
        }
        if (++x >= N) break;
        node = child(node, s[x]);
      }
      if (bx < 0) {  // no word starts here: the character alone, log(1) - logtotal
        best = (0.0 - logtotal_) + rp[k + 1];
        bx = static_cast<int32_t>(k);
      }
      rp[k] = best;
      rx[k] = bx;
    }
    auto word = [&](size_t x, size_t y) { emit(off[x], off[y]); };
    size_t x = 0, buf = 0;  // the buffered single characters are [buf, x)
    if (hmm) {
      auto flush = [&](size_t a, size_t z) {
        if (z - a == 0) return;
        if (z - a == 1) {
          word(a, z);
        } else if (int32_t node = lookup(s + a, z - a); node <= 0 || freq_[node] == 0) {
          finalseg(ws, s, off, a, z, emit);
        } else {
          for (size_t c = a; c < z; ++c) word(c, c + 1);
        }
      };
      while (x < N) {
        size_t y = static_cast<size_t>(rx[x]) + 1;
        if (y - x != 1) {  // a word ends the run of single characters before it
          flush(buf, x);
          word(x, y);
          buf = y;
        }
        x = y;
      }
      flush(buf, N);
    } else {
      // Single ASCII letters/digits are joined (re_eng); everything else as routed.
      while (x < N) {
        size_t y = static_cast<size_t>(rx[x]) + 1;
        if (y - x == 1 && utf8::is_ascii_alnum(s[x])) {
          x = y;
          continue;
        }
        if (x > buf) word(buf, x);
        word(x, y);
        x = buf = y;
      }
      if (x > buf) word(buf, x);
    }
  }

  // finalseg.cut on s[a, z): han runs through the HMM, the rest split by
  // ([a-zA-Z0-9]+(?:\.\d+)?%?) with the pieces between matches kept whole.
  template <typename Emit>
  void finalseg(Workspace& ws, const char32_t* s, const size_t* off, size_t a, size_t z, const Emit& emit) const {
    size_t i = a;
    while (i < z) {
      size_t j = i;
      if (s[i] >= kHanBegin && s[i] <= kHanEnd) {
        while (j < z && s[j] >= kHanBegin && s[j] <= kHanEnd) ++j;
        viterbi_cut(ws, s, off, i, j, emit);
      } else {
        while (j < z && !(s[j] >= kHanBegin && s[j] <= kHanEnd)) ++j;
        size_t p = i;  // start of the text not yet emitted
        size_t q = i;
        while (q < j) {
          if (!utf8::is_ascii_alnum(s[q])) {
            ++q;
            continue;
          }
          size_t m = q;
          while (m < j && utf8::is_ascii_alnum(s[m])) ++m;
          if (m + 1 < j && s[m] == '.' && utf8::is_ascii_digit(s[m + 1])) {
            m += 2;
            while (m < j && utf8::is_ascii_digit(s[m])) ++m;
          }
          if (m < j && s[m] == '%') ++m;
          if (q > p) emit(off[p], off[q]);
          emit(off[q], off[m]);
          p = q = m;
        }
        if (j > p) emit(off[p], off[j]);
      }
      i = j;
    }
  }

  // finalseg.__cut: Viterbi over B/M/E/S, then words from the labels.
  template <typename Emit>
  void viterbi_cut(Workspace& ws, const char32_t* s, const size_t* off, size_t a, size_t z, const Emit& emit) const {
    const size_t n = z - a;
    ws.back.resize(n * 4);
    uint8_t* back = ws.back.data();
    auto em = [&](int st, char32_t c) { return emit_[static_cast<size_t>(st) * kHanCount + (c - kHanBegin)]; };
    double v[4], w[4];
    for (int y = 0; y < 4; ++y) v[y] = start_[y] + em(y, s[a]);
    // PrevStatus: B ← E,S; M ← M,B; E ← B,M; S ← S,E. Python's max over (prob, state) tuples
    // breaks a tie by the larger state letter (B < E < M < S).
    static constexpr int kPrev[4][2] = {{kE, kS}, {kM, kB}, {kB, kM}, {kS, kE}};
    static constexpr char kLetter[4] = {'B', 'M', 'E', 'S'};
    for (size_t t = 1; t < n; ++t) {
      char32_t c = s[a + t];
      for (int y = 0; y < 4; ++y) {
        double e = em(y, c);
        int y0 = kPrev[y][0], y1 = kPrev[y][1];
        double p0 = v[y0] + trans_[y0][y] + e;
        double p1 = v[y1] + trans_[y1][y] + e;
        int pick = (p0 > p1 || (p0 == p1 && kLetter[y0] > kLetter[y1])) ? y0 : y1;
        w[y] = pick == y0 ? p0 : p1;
        back[t * 4 + static_cast<size_t>(y)] = static_cast<uint8_t>(pick);
      }
      std::copy(w, w + 4, v);
    }
    int last = v[kS] >= v[kE] ? kS : kE;  // max((V[E], 'E'), (V[S], 'S'))
    ws.labels.resize(n);
    uint8_t* labels = ws.labels.data();
    for (size_t t = n; t-- > 0;) {
      labels[t] = static_cast<uint8_t>(last);
      if (t > 0) last = back[t * 4 + static_cast<size_t>(last)];
    }
    size_t begin = 0, nexti = 0;
    for (size_t i = 0; i < n; ++i) {
      int pos = labels[i];
      if (pos == kB) {
        begin = i;
      } else if (pos == kE) {
        hmm_word(s, off, a + begin, a + i + 1, emit);
        nexti = i + 1;
      } else if (pos == kS) {
        emit(off[a + i], off[a + i + 1]);
        nexti = i + 1;
      }
    }
    if (nexti < n) hmm_word(s, off, a + nexti, z, emit);
  }

  template <typename Emit>
  void hmm_word(const char32_t* s, const size_t* off, size_t a, size_t z, const Emit& emit) const {
    (void)s;
    if (!force_split_.empty() && z - a > 1) {
      // Force_Split_Words hold UTF-8 words; compare on the bytes of the original text via offsets.
      // The caller's text is reachable only through emit, so rebuild the word from code points.
      std::string w;
      for (size_t c = a; c < z; ++c) utf8::append(w, s[c]);
      if (force_split_.count(w)) {
        for (size_t c = a; c < z; ++c) emit(off[c], off[c + 1]);
        return;
      }
    }
    emit(off[a], off[z]);
  }

  std::vector<int32_t> root_;  // root's children for code points < U+10000 (dense: every lookup starts here)
  detail::TrieEdges edges_;    // all other edges
  std::vector<int64_t> freq_;  // per node; 0 for a prefix that is not a word
  std::vector<double> logf_;   // log(freq), or -1 when freq == 0
  int64_t total_ = 0;
  double logtotal_ = 0;
  double start_[4];
  double trans_[4][4];
  std::vector<double> emit_;  // [4][kHanCount]
  std::unordered_set<std::string, detail::StringHash, std::equal_to<>> force_split_;
};

}  // namespace ember::text

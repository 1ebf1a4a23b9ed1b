#pragma once
/// text::BertTokenizer: Hugging Face's BERT tokenizer (BasicTokenizer + WordPiece), id for id.
///
/// The pipeline is the one of Hugging Face `tokenizers` (`BertTokenizerFast` in transformers 4,
/// `BertTokenizer` in transformers 5, and what a `tokenizer.json` converted from vocab.txt does):
///   1. the special tokens ([CLS] [SEP] [PAD] [UNK] [MASK]) written in the raw text are kept whole;
///   2. BertNormalizer: drop NUL, U+FFFD and control characters (category C*, except \t \n \r),
///      map whitespace (' ', \t, \n, \r, Zs) to ' ', put a space around every CJK ideograph (HF's
///      _is_chinese_char blocks), then, with do_lower_case, lower-case (Python's str.lower(), final
///      sigma included) and strip accents (NFD, then drop the Mn marks);
///   3. BertPreTokenizer: split on whitespace and isolate every punctuation character (ASCII
///      !"#$%&'()*+,-./ :;<=>?@ [\]^_` {|}~ and Unicode P*);
///   4. WordPiece: greedy longest match first, later pieces prefixed "##"; a word that cannot be
///      covered, or has more than max_input_chars_per_word (100) code points, is one [UNK];
///   5. [CLS] A [SEP] (token_type 0) and, for a pair, B [SEP] (token_type 1); truncation and
///      padding as Hugging Face's `truncation=True` (longest_first) and `padding=...`.
/// Unicode data comes from Python's unicodedata (unicode_tables.hpp, Unicode 14), the data
/// Hugging Face's Python tokenizer consults. Goldens: tests/golden/bert_tokenizer/.
///
/// Where transformers 4's *slow* Python BertTokenizer differs from this (documented, rare):
/// it NFC-normalises the text first (so "e\u0301" is "é" there), and on a pair truncated from
/// equal lengths it gives the extra token to the first text rather than the second.
///
/// Inputs are never rejected: invalid UTF-8 becomes U+FFFD (which cleaning then drops), an
/// empty text gives [CLS] [SEP], a text longer than max_length is truncated and the tokenizer
/// prints a one-line notice on stderr the first time (BertEncoding::num_truncated counts the
/// tokens dropped; BertTokenizerOptions::warn(false) silences it).
///
/// Example:
/// ```
///   auto tok = ember::text::BertTokenizer::from_pretrained("../shared/data/bert-base-chinese");
///   auto e = tok.encode("这部电影很好看!", BertEncodeOptions().max_length(128).padding(Padding::kMaxLength));
///   // e.input_ids: 101 ... 102 0 0 ...; e.attention_mask: 1 ... 1 0 0 ...
///   BertBatch b = tok.encode_batch(texts, BertEncodeOptions().max_length(128).padding(Padding::kLongest));
///   // b.input_ids, b.attention_mask, b.token_type_ids: int64 [B, L]
///   std::string s = tok.decode(e.input_ids, /*skip_special_tokens=*/true);   // "这 部 电 影 很 好 看!"
/// ```
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "ember/core/error.hpp"
#include "ember/nn/options.hpp"
#include "ember/ops/factory.hpp"
#include "ember/text/unicode_tables.hpp"
#include "ember/text/utf8.hpp"
#include "ember/text/vocab.hpp"

namespace ember::text {

// ---------------------------------------------------------------------------------------------
// Character classes and normalisation, as Hugging Face's BERT tokenizer defines them

namespace bert_unicode {

template <size_t N>
constexpr bool in_ranges(const uint32_t (&table)[N][2], char32_t c) {
  size_t lo = 0, hi = N;  // first range whose last >= c
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (table[mid][1] < c) lo = mid + 1;
    else hi = mid;
  }
  return lo < N && table[lo][0] <= c;
}

/// HF `_is_whitespace`: ' ', \t, \n, \r and the space separators (Zs).
inline bool is_whitespace(char32_t c) {
  if (c == ' ' || c == '\t' || c == '\n' || c == '\r') return true;
  return c >= 0xA0 && in_ranges(unicode_tables::kSpaceSeparator, c);
}

/// HF `_is_control`: general category C* (Cc Cf Cs Co Cn), except \t \n \r (whitespace there).
inline bool is_control(char32_t c) {
  if (c == '\t' || c == '\n' || c == '\r') return false;
  if (c < 0x80) return c < 0x20 || c == 0x7F;
  if (c >= 0x4E00 && c <= 0x9FFF) return false;  // the bulk of Chinese text
  return in_ranges(unicode_tables::kOther, c);
}

/// HF `_is_punctuation`: every non-alphanumeric ASCII graphic (so ^ $ ` + < = > | ~ count, though
/// Unicode calls them symbols) and Unicode P*.
inline bool is_punctuation(char32_t c) {
  if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126)) return true;
  if (c < 0x80 || (c >= 0x4E00 && c <= 0x9FFF)) return false;
  return in_ranges(unicode_tables::kPunctuation, c);
}

/// HF `_is_chinese_char`: the CJK Unified Ideographs blocks (main, A–E) and the compatibility
/// ideographs. Not Hiragana, Katakana nor Hangul, which BERT tokenizes like any other letters.
constexpr bool is_chinese_char(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

/// What the pre-tokenizer splits on (Rust's char::is_whitespace, Unicode White_Space): after
/// cleaning this adds only U+2028 and U+2029, which Python's str.split() also splits on.
constexpr bool is_split_space(char32_t c) {
  return (c >= 9 && c <= 13) || c == ' ' || c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
         c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

inline bool is_nonspacing_mark(char32_t c) { return c >= 0x300 && in_ranges(unicode_tables::kNonspacingMark, c); }

inline uint32_t combining_class(char32_t c) {
  const auto& t = unicode_tables::kCombiningClass;
  constexpr size_t n = std::size(unicode_tables::kCombiningClass);
  if (c < t[0][0]) return 0;
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (t[mid][1] < c) lo = mid + 1;
    else hi = mid;
  }
  return lo < n && t[lo][0] <= c ? t[lo][2] : 0;
}

/// Python's str.lower() of one code point whose lower case is one code point (all but U+0130).
inline char32_t simple_lower(char32_t c) {
  if (c < 0x80) return (c >= 'A' && c <= 'Z') ? c + 32 : c;
  const auto& t = unicode_tables::kLower;
  constexpr size_t n = std::size(unicode_tables::kLower);
  size_t lo = 0, hi = n;  // first run whose last >= c
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (static_cast<char32_t>(t[mid][1]) < c) lo = mid + 1;
    else hi = mid;
  }
  if (lo < n && static_cast<char32_t>(t[lo][0]) <= c && (c - static_cast<char32_t>(t[lo][0])) % t[lo][3] == 0) {
    return static_cast<char32_t>(static_cast<int64_t>(c) + t[lo][2]);
  }
  return c;
}

/// Python's str.lower(): per code point, İ → "i̇", and Σ → ς at the end of a word (Final_Sigma:
/// a cased letter before it and none after, case-ignorable characters skipped both ways).
inline void lower(std::u32string& s) {
  auto ignorable = [](char32_t c) { return in_ranges(unicode_tables::kCaseIgnorable, c); };
  auto cased = [](char32_t c) { return in_ranges(unicode_tables::kCasedNotIgnorable, c); };
  const std::u32string& in = s;
  std::u32string result;
  result.reserve(s.size() + 8);
  for (size_t i = 0; i < in.size(); ++i) {
    char32_t c = in[i];
    if (c == 0x3A3) {
      size_t j = i;
      while (j > 0 && ignorable(in[j - 1])) --j;
      bool final_sigma = j > 0 && cased(in[j - 1]);
      if (final_sigma) {
        size_t k = i + 1;
        while (k < in.size() && ignorable(in[k])) ++k;
        final_sigma = k == in.size() || !cased(in[k]);
      }
      result.push_back(final_sigma ? 0x3C2 : 0x3C3);
    } else if (c == 0x130) {
      result.push_back('i');
      result.push_back(0x307);
    } else {
      result.push_back(simple_lower(c));
    }
  }
  s = std::move(result);
}

inline void append_decomposition(std::u32string& out, char32_t c) {
  // Hangul syllables, Unicode §3.12.
  constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
  constexpr char32_t kTCount = 28, kNCount = 21 * 28, kSCount = 19 * 21 * 28;
  if (c >= kSBase && c < kSBase + kSCount) {
    char32_t s = c - kSBase;
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount != 0) out.push_back(kTBase + s % kTCount);
    return;
  }
  const auto& t = unicode_tables::kDecomposition;
  if (c >= t[0][0]) {
    auto it = std::lower_bound(std::begin(t), std::end(t), c,
                               [](const uint32_t(&e)[3], char32_t v) { return e[0] < v; });
    if (it != std::end(t) && (*it)[0] == c) {
      append_decomposition(out, (*it)[1]);
      if ((*it)[2] != 0) append_decomposition(out, (*it)[2]);
      return;
    }
  }
  out.push_back(c);
}

/// unicodedata.normalize("NFD", s) with every Mn character removed (HF `_run_strip_accents`).
inline void strip_accents(std::u32string& s) {
  std::u32string d;
  d.reserve(s.size() + 8);
  for (char32_t c : s) {
    if (c < 0xC0) d.push_back(c);
    else append_decomposition(d, c);
  }
  // Canonical ordering: stable sort of each run of non-starters by combining class.
  for (size_t i = 0; i < d.size();) {
    if (d[i] < 0x300 || combining_class(d[i]) == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < d.size() && d[j] >= 0x300 && combining_class(d[j]) != 0) ++j;
    std::stable_sort(d.begin() + static_cast<std::ptrdiff_t>(i), d.begin() + static_cast<std::ptrdiff_t>(j),
                     [](char32_t a, char32_t b) { return combining_class(a) < combining_class(b); });
    i = j;
  }
  s.clear();
  for (char32_t c : d) {
    if (!is_nonspacing_mark(c)) s.push_back(c);
  }
}

}  // namespace bert_unicode

// ---------------------------------------------------------------------------------------------
// Options and results

struct BertTokenizerOptions {
  /// Lower-case the text (Hugging Face's default; bert-base-chinese's tokenizer_config says false).
  EMBER_ARG(bool, do_lower_case) = true;
  /// Strip accents; unset: do it exactly when lower-casing (Hugging Face's strip_accents=None).
  EMBER_ARG(std::optional<bool>, strip_accents) = std::nullopt;
  EMBER_ARG(bool, tokenize_chinese_chars) = true;
  EMBER_ARG(bool, clean_text) = true;
  /// A word of more code points than this is one [UNK].
  EMBER_ARG(int64_t, max_input_chars_per_word) = 100;
  /// The longest input the model takes: the default max_length (config.json's max_position_embeddings).
  EMBER_ARG(int64_t, model_max_length) = 512;
  /// Print a one-line notice on stderr the first time a text is truncated or too long for the model.
  EMBER_ARG(bool, warn) = true;
  EMBER_ARG(std::string, unk_token) = "[UNK]";
  EMBER_ARG(std::string, sep_token) = "[SEP]";
  EMBER_ARG(std::string, pad_token) = "[PAD]";
  EMBER_ARG(std::string, cls_token) = "[CLS]";
  EMBER_ARG(std::string, mask_token) = "[MASK]";
};

enum class Padding {
  kNone,       ///< no padding (Hugging Face's padding=False)
  kLongest,    ///< to the longest sequence of the batch (padding=True / "longest")
  kMaxLength,  ///< to max_length (padding="max_length")
};

struct BertEncodeOptions {
  /// Longest output, special tokens included; -1: the tokenizer's model_max_length.
  EMBER_ARG(int64_t, max_length) = -1;
  /// Cut texts to max_length (pairs: longest_first). Without it a longer text is kept whole (and
  /// noticed once if it exceeds model_max_length, as Hugging Face warns).
  EMBER_ARG(bool, truncation) = true;
  EMBER_ARG(Padding, padding) = Padding::kNone;
  EMBER_ARG(bool, add_special_tokens) = true;
};

/// One encoded text (or pair), as Hugging Face's BatchEncoding for one input.
struct BertEncoding {
  std::vector<int64_t> input_ids;
  std::vector<int64_t> attention_mask;  ///< 1 for tokens, 0 for padding
  std::vector<int64_t> token_type_ids;  ///< 0 for [CLS] A [SEP], 1 for B [SEP], 0 for padding
  int64_t num_truncated = 0;            ///< tokens dropped by truncation
};

/// A batch as int64 [B, L] tensors.
struct BertBatch {
  Tensor input_ids;
  Tensor attention_mask;
  Tensor token_type_ids;
  int64_t num_truncated_texts = 0;  ///< how many rows lost tokens to truncation
};

// ---------------------------------------------------------------------------------------------

class BertTokenizer {
 public:
  /// `vocab`: the tokens of vocab.txt in order (id = position). Every special token must be in it.
  explicit BertTokenizer(Vocab vocab, BertTokenizerOptions options = {}, std::string source = "the vocabulary")
      : vocab_(std::move(vocab)), options_(std::move(options)), noticed_(std::make_shared<std::atomic<bool>>(false)) {
    EMBER_CHECK(options_.max_input_chars_per_word() >= 1, "BertTokenizer: max_input_chars_per_word must be >= 1, got ",
                options_.max_input_chars_per_word());
    EMBER_CHECK(options_.model_max_length() >= 2, "BertTokenizer: model_max_length must be >= 2, got ",
                options_.model_max_length());
    auto special = [&](const std::string& name, const char* role) {
      EMBER_CHECK(!name.empty(), "BertTokenizer: the ", role, " token name is empty");
      auto id = vocab_.find(name);
      EMBER_CHECK(id.has_value(), "BertTokenizer: the ", role, " token '", name, "' is not in ", source, " (",
                  vocab_.size(), " tokens); a BERT vocabulary needs [PAD] [UNK] [CLS] [SEP] [MASK]");
      specials_.emplace_back(name, *id);
      return *id;
    };
    unk_id_ = special(options_.unk_token(), "unknown");
    sep_id_ = special(options_.sep_token(), "separator");
    pad_id_ = special(options_.pad_token(), "padding");
    cls_id_ = special(options_.cls_token(), "classifier");
    mask_id_ = special(options_.mask_token(), "mask");
  }

  /// Reads vocab.txt: one token per line, in id order; an empty line or a token seen twice is an
  /// error naming the file and the lines (Hugging Face would silently shift or merge ids).
  static BertTokenizer from_vocab_file(const std::string& path, BertTokenizerOptions options = {}) {
    Vocab v;
    try {
      v = Vocab::load(path, options.pad_token(), options.unk_token());
    } catch (const Error& e) {
      EMBER_FAIL("BertTokenizer: bad vocabulary file: ", e.what());
    }
    return BertTokenizer(std::move(v), std::move(options), "'" + path + "'");
  }

  /// A Hugging Face tokenizer folder: vocab.txt, and when present tokenizer_config.json
  /// (do_lower_case, strip_accents, tokenize_chinese_chars, model_max_length, special token names)
  /// and config.json (max_position_embeddings, the model_max_length when the former lacks it).
  static BertTokenizer from_pretrained(const std::string& dir) {
    namespace fs = std::filesystem;
    BertTokenizerOptions o;
    auto read_json = [&](const std::string& name) -> std::optional<nlohmann::json> {
      fs::path p = fs::path(dir) / name;
      std::error_code ec;
      if (!fs::exists(p, ec)) return std::nullopt;
      std::string text = detail::read_text_file(p.string(), "BertTokenizer::from_pretrained");
      auto j = nlohmann::json::parse(text, nullptr, false);
      EMBER_CHECK(!j.is_discarded() && j.is_object(), "BertTokenizer::from_pretrained: '", p.string(),
                  "' is not a JSON object");
      return j;
    };
    auto get_bool = [](const nlohmann::json& j, const char* key, const std::string& file) -> std::optional<bool> {
      if (!j.contains(key) || j[key].is_null()) return std::nullopt;
      EMBER_CHECK(j[key].is_boolean(), "BertTokenizer::from_pretrained: '", file, "': ", key,
                  " must be true, false or null, got ", j[key].dump());
      return j[key].get<bool>();
    };
    auto get_token = [](const nlohmann::json& j, const char* key, std::string& out) {
      if (!j.contains(key) || j[key].is_null()) return;
      const auto& v = j[key];
      if (v.is_string()) out = v.get<std::string>();
      else if (v.is_object() && v.contains("content") && v["content"].is_string()) out = v["content"].get<std::string>();
    };
    if (auto cfg = read_json("config.json")) {
      if (cfg->contains("max_position_embeddings") && (*cfg)["max_position_embeddings"].is_number_integer()) {
        int64_t m = (*cfg)["max_position_embeddings"].get<int64_t>();
        EMBER_CHECK(m >= 2 && m <= (int64_t{1} << 24), "BertTokenizer::from_pretrained: '", dir,
                    "/config.json': max_position_embeddings ", m, " is absurd (expected 2 .. 2^24)");
        o.model_max_length(m);
      }
    }
    if (auto tc = read_json("tokenizer_config.json")) {
      std::string f = (fs::path(dir) / "tokenizer_config.json").string();
      if (auto b = get_bool(*tc, "do_lower_case", f)) o.do_lower_case(*b);
      if (tc->contains("strip_accents")) o.strip_accents(get_bool(*tc, "strip_accents", f));
      if (auto b = get_bool(*tc, "tokenize_chinese_chars", f)) o.tokenize_chinese_chars(*b);
      // Hugging Face writes 1e30 for "no limit"; keep the model's own limit then.
      if (tc->contains("model_max_length") && (*tc)["model_max_length"].is_number_integer()) {
        int64_t m = (*tc)["model_max_length"].get<int64_t>();
        if (m >= 2 && m <= (int64_t{1} << 24)) o.model_max_length(m);
      }
      get_token(*tc, "unk_token", o.unk_token());
      get_token(*tc, "sep_token", o.sep_token());
      get_token(*tc, "pad_token", o.pad_token());
      get_token(*tc, "cls_token", o.cls_token());
      get_token(*tc, "mask_token", o.mask_token());
    }
    return from_vocab_file((fs::path(dir) / "vocab.txt").string(), std::move(o));
  }

  const Vocab& vocab() const { return vocab_; }
  int64_t vocab_size() const { return vocab_.size(); }
  const BertTokenizerOptions& options() const { return options_; }
  int64_t pad_token_id() const { return pad_id_; }
  int64_t unk_token_id() const { return unk_id_; }
  int64_t cls_token_id() const { return cls_id_; }
  int64_t sep_token_id() const { return sep_id_; }
  int64_t mask_token_id() const { return mask_id_; }
  bool is_special_id(int64_t id) const {
    return id == pad_id_ || id == unk_id_ || id == cls_id_ || id == sep_id_ || id == mask_id_;
  }

  /// The WordPiece ids of `text`, no special tokens added (Hugging Face's
  /// `encode(text, add_special_tokens=False)`).
  std::vector<int64_t> token_ids(std::string_view text) const {
    std::vector<int64_t> ids;
    for_each_piece(text, [&](int64_t id) { ids.push_back(id); });
    return ids;
  }

  /// The WordPiece tokens of `text` (Hugging Face's `tokenize`): "##"-prefixed continuations,
  /// "[UNK]" for what the vocabulary cannot cover.
  std::vector<std::string> tokenize(std::string_view text) const {
    std::vector<std::string> out;
    for_each_piece(text, [&](int64_t id) { out.push_back(vocab_.token(id)); });
    return out;
  }

  std::vector<int64_t> convert_tokens_to_ids(const std::vector<std::string>& tokens) const {
    std::vector<int64_t> ids;
    ids.reserve(tokens.size());
    for (const auto& t : tokens) ids.push_back(vocab_.find(t).value_or(unk_id_));
    return ids;
  }
  std::vector<std::string> convert_ids_to_tokens(const std::vector<int64_t>& ids) const {
    std::vector<std::string> out;
    out.reserve(ids.size());
    for (int64_t id : ids) out.push_back(token_of(id, "convert_ids_to_tokens"));
    return out;
  }

  /// [CLS] text [SEP], truncated and padded per `options`.
  BertEncoding encode(std::string_view text, const BertEncodeOptions& options = {}) const {
    return build(token_ids(text), nullptr, options);
  }
  /// [CLS] text [SEP] pair [SEP]; truncation removes tokens from the longer text first.
  BertEncoding encode(std::string_view text, std::string_view pair, const BertEncodeOptions& options = {}) const {
    std::vector<int64_t> b = token_ids(pair);
    return build(token_ids(text), &b, options);
  }

  /// Texts as [B, L] int64 tensors. Rows of different lengths need padding kLongest or kMaxLength.
  BertBatch encode_batch(const std::vector<std::string>& texts, const BertEncodeOptions& options = {}) const {
    std::vector<BertEncoding> rows;
    rows.reserve(texts.size());
    for (const auto& t : texts) rows.push_back(build(token_ids(t), nullptr, options));
    return to_batch(rows, options);
  }
  BertBatch encode_batch(const std::vector<std::pair<std::string, std::string>>& pairs,
                         const BertEncodeOptions& options = {}) const {
    std::vector<BertEncoding> rows;
    rows.reserve(pairs.size());
    for (const auto& [a, b] : pairs) {
      std::vector<int64_t> ib = token_ids(b);
      rows.push_back(build(token_ids(a), &ib, options));
    }
    return to_batch(rows, options);
  }

  /// Text of `ids` as Hugging Face's decode: tokens joined by spaces, "##" pieces glued to the
  /// previous one, then clean_up_tokenization (" ." → ".", " ," → ",", " 's" → "'s", ...).
  /// Chinese comes back with a space between characters, as in Hugging Face.
  std::string decode(const std::vector<int64_t>& ids, bool skip_special_tokens = false,
                     bool clean_up_tokenization_spaces = true) const {
    std::string out;
    bool first = true;
    for (int64_t id : ids) {
      const std::string& tok = token_of(id, "decode");
      if (skip_special_tokens && is_special_id(id)) continue;
      if (first) {
        out += tok;
      } else if (tok.size() >= 2 && tok[0] == '#' && tok[1] == '#') {
        out.append(tok, 2, std::string::npos);
      } else {
        out += ' ';
        out += tok;
      }
      first = false;
    }
    if (clean_up_tokenization_spaces) out = clean_up_tokenization(out);
    return out;
  }
  /// Decodes each row of an int64 [B, L] tensor (padding included unless skip_special_tokens).
  std::vector<std::string> batch_decode(const Tensor& ids, bool skip_special_tokens = true) const {
    EMBER_CHECK(ids.dim() == 2 && ids.dtype() == kInt64, "BertTokenizer::batch_decode: expected an int64 [B, L] tensor");
    Tensor c = ids.contiguous();
    const int64_t B = c.size(0), L = c.size(1);
    const int64_t* p = c.data_ptr<int64_t>();
    std::vector<std::string> out;
    for (int64_t b = 0; b < B; ++b) out.push_back(decode(std::vector<int64_t>(p + b * L, p + (b + 1) * L), skip_special_tokens));
    return out;
  }

  /// transformers' `clean_up_tokenization`.
  static std::string clean_up_tokenization(std::string s) {
    static constexpr std::pair<std::string_view, std::string_view> kRules[] = {
        {" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"}, {" n't", "n't"},
        {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
    for (const auto& [from, to] : kRules) {
      std::string r;
      r.reserve(s.size());
      size_t pos = 0;
      while (true) {
        size_t at = s.find(from, pos);
        if (at == std::string::npos) break;
        r.append(s, pos, at - pos);
        r += to;
        pos = at + from.size();
      }
      if (pos == 0) continue;
      r.append(s, pos, std::string::npos);
      s = std::move(r);
    }
    return s;
  }

 private:
  const std::string& token_of(int64_t id, const char* op) const {
    EMBER_CHECK(id >= 0 && id < vocab_.size(), "BertTokenizer::", op, ": id ", id, " is out of range for a vocabulary of ",
                vocab_.size(), " tokens");
    return vocab_.token(id);
  }

  /// Calls emit(id) for each WordPiece id of `text`, special tokens written in the text kept whole.
  template <typename F>
  void for_each_piece(std::string_view text, F&& emit) const {
    // Split around special tokens, leftmost first, longest at a position (Hugging Face matches
    // them in the raw text: they are added tokens with normalized=false).
    size_t start = 0, pos = 0;
    while (pos < text.size()) {
      size_t at = text.find('[', pos);
      if (at == std::string_view::npos) break;
      size_t best_len = 0;
      int64_t best_id = -1;
      for (const auto& [name, id] : specials_) {
        if (name.size() > best_len && text.substr(at, name.size()) == name) {
          best_len = name.size();
          best_id = id;
        }
      }
      if (best_len == 0) {
        pos = at + 1;
        continue;
      }
      pieces_of(text.substr(start, at - start), emit);
      emit(best_id);
      start = pos = at + best_len;
    }
    pieces_of(text.substr(start), emit);
  }

  template <typename F>
  void pieces_of(std::string_view text, F&& emit) const {
    if (text.empty()) return;
    std::u32string s = normalize(text);
    std::string word;  // UTF-8 of the current word
    size_t word_chars = 0;
    auto flush = [&] {
      if (!word.empty()) wordpiece(word, word_chars, emit);
      word.clear();
      word_chars = 0;
    };
    for (char32_t c : s) {
      if (bert_unicode::is_split_space(c)) {
        flush();
      } else if (bert_unicode::is_punctuation(c)) {
        flush();
        utf8::append(word, c);
        word_chars = 1;
        flush();
      } else {
        utf8::append(word, c);
        ++word_chars;
      }
    }
    flush();
  }

  /// BertNormalizer on one span of text, as code points.
  std::u32string normalize(std::string_view text) const {
    std::u32string s;
    s.reserve(text.size() + 16);
    const bool clean = options_.clean_text(), chinese = options_.tokenize_chinese_chars();
    utf8::for_each_code_point(text, [&](char32_t c, size_t, size_t) {
      if (clean) {
        if (c == 0 || c == utf8::kReplacement || bert_unicode::is_control(c)) return;
        if (bert_unicode::is_whitespace(c)) c = ' ';
      }
      if (chinese && bert_unicode::is_chinese_char(c)) {
        s.push_back(' ');
        s.push_back(c);
        s.push_back(' ');
      } else {
        s.push_back(c);
      }
    });
    if (options_.do_lower_case()) {
      bert_unicode::lower(s);
      if (options_.strip_accents().value_or(true)) bert_unicode::strip_accents(s);
    } else if (options_.strip_accents().value_or(false)) {
      bert_unicode::strip_accents(s);
    }
    return s;
  }

  /// Greedy longest-match-first WordPiece of one word (UTF-8, `chars` code points).
  template <typename F>
  void wordpiece(const std::string& word, size_t chars, F&& emit) const {
    if (static_cast<int64_t>(chars) > options_.max_input_chars_per_word()) {
      emit(unk_id_);
      return;
    }
    if (auto id = vocab_.find(word)) {  // the common case: the whole word is a token
      emit(*id);
      return;
    }
    // Code point boundaries, so candidate pieces never split a UTF-8 sequence.
    std::vector<size_t> cuts;
    cuts.reserve(chars + 1);
    for (size_t i = 0; i < word.size(); ++i) {
      if ((static_cast<unsigned char>(word[i]) & 0xC0) != 0x80) cuts.push_back(i);
    }
    cuts.push_back(word.size());
    std::vector<int64_t> pieces;
    std::string candidate;
    size_t begin = 0;  // index into cuts
    const size_t n = cuts.size() - 1;
    while (begin < n) {
      std::optional<int64_t> found;
      size_t end = n;
      for (; end > begin; --end) {
        std::string_view sub(word.data() + cuts[begin], cuts[end] - cuts[begin]);
        if (begin == 0) {
          found = vocab_.find(sub);
        } else {
          candidate.assign("##");
          candidate.append(sub);
          found = vocab_.find(candidate);
        }
        if (found) break;
      }
      if (!found) {
        emit(unk_id_);
        return;
      }
      pieces.push_back(*found);
      begin = end;
    }
    for (int64_t id : pieces) emit(id);
  }

  BertEncoding build(std::vector<int64_t> a, std::vector<int64_t>* b, const BertEncodeOptions& o) const {
    const int64_t max_length = o.max_length() < 0 ? options_.model_max_length() : o.max_length();
    const int64_t specials = o.add_special_tokens() ? (b ? 3 : 2) : 0;
    EMBER_CHECK(o.max_length() >= -1, "BertTokenizer::encode: max_length must be >= 0 or -1 (the model's ",
                options_.model_max_length(), "), got ", o.max_length());
    const int64_t na = static_cast<int64_t>(a.size()), nb = b ? static_cast<int64_t>(b->size()) : 0;
    BertEncoding e;
    if (o.truncation() && na + nb + specials > max_length) {
      EMBER_CHECK(max_length >= specials, "BertTokenizer::encode: max_length ", max_length,
                  " leaves no room for the text: the special tokens alone take ", specials);
      const int64_t room = max_length - specials;
      int64_t ka = na, kb = nb;
      if (!b) {
        ka = room;
      } else {
        // tokenizers' longest_first: the shorter text keeps what it can, the rest goes to the
        // longer; when both must be cut, an even split with the odd token to the second.
        int64_t n1 = std::min(na, nb), n2 = std::max(na, nb);
        n2 = n1 > room ? n1 : std::max(n1, room - n1);
        if (n1 + n2 > room) {
          n1 = room / 2;
          n2 = n1 + room % 2;
        }
        if (na > nb) std::swap(n1, n2);
        ka = std::min(na, n1);
        kb = std::min(nb, n2);
      }
      e.num_truncated = (na - ka) + (nb - kb);
      a.resize(static_cast<size_t>(ka));
      if (b) b->resize(static_cast<size_t>(kb));
      notice("a text of ", na + nb + specials, " tokens was truncated to max_length ", max_length,
             " (BertEncoding::num_truncated counts the tokens dropped)");
    } else if (na + nb + specials > options_.model_max_length()) {
      notice("a text of ", na + nb + specials, " tokens is longer than the model's maximum of ",
             options_.model_max_length(), " (no truncation asked): running it through the model will fail");
    }
    auto& ids = e.input_ids;
    ids.reserve(static_cast<size_t>(std::max<int64_t>(max_length, na + nb + specials)));
    if (o.add_special_tokens()) ids.push_back(cls_id_);
    ids.insert(ids.end(), a.begin(), a.end());
    if (o.add_special_tokens()) ids.push_back(sep_id_);
    size_t first_len = ids.size();
    if (b) {
      ids.insert(ids.end(), b->begin(), b->end());
      if (o.add_special_tokens()) ids.push_back(sep_id_);
    }
    e.token_type_ids.assign(ids.size(), 0);
    std::fill(e.token_type_ids.begin() + static_cast<std::ptrdiff_t>(first_len), e.token_type_ids.end(), 1);
    e.attention_mask.assign(ids.size(), 1);
    if (o.padding() == Padding::kMaxLength) pad_to(e, max_length);
    return e;
  }

  void pad_to(BertEncoding& e, int64_t length) const {
    if (static_cast<int64_t>(e.input_ids.size()) >= length) return;
    const auto n = static_cast<size_t>(length);
    e.input_ids.resize(n, pad_id_);
    e.attention_mask.resize(n, 0);
    e.token_type_ids.resize(n, 0);
  }

  BertBatch to_batch(std::vector<BertEncoding>& rows, const BertEncodeOptions& o) const {
    int64_t L = 0;
    BertBatch out;
    for (const auto& r : rows) {
      L = std::max<int64_t>(L, static_cast<int64_t>(r.input_ids.size()));
      out.num_truncated_texts += r.num_truncated > 0;
    }
    for (auto& r : rows) {
      EMBER_CHECK(o.padding() != Padding::kNone || static_cast<int64_t>(r.input_ids.size()) == L,
                  "BertTokenizer::encode_batch: rows have different lengths (", r.input_ids.size(), " and ", L,
                  ") and padding is kNone; pass BertEncodeOptions().padding(Padding::kLongest) or kMaxLength");
      pad_to(r, L);
    }
    const auto B = static_cast<int64_t>(rows.size());
    out.input_ids = empty({B, L}, TensorOptions(kInt64));
    out.attention_mask = empty({B, L}, TensorOptions(kInt64));
    out.token_type_ids = empty({B, L}, TensorOptions(kInt64));
    int64_t* ip = out.input_ids.data_ptr<int64_t>();
    int64_t* mp = out.attention_mask.data_ptr<int64_t>();
    int64_t* tp = out.token_type_ids.data_ptr<int64_t>();
    for (int64_t i = 0; i < B; ++i) {
      const auto& r = rows[static_cast<size_t>(i)];
      std::copy(r.input_ids.begin(), r.input_ids.end(), ip + i * L);
      std::copy(r.attention_mask.begin(), r.attention_mask.end(), mp + i * L);
      std::copy(r.token_type_ids.begin(), r.token_type_ids.end(), tp + i * L);
    }
    return out;
  }

  template <typename... Args>
  void notice(Args&&... args) const {
    if (!options_.warn() || noticed_->exchange(true)) return;
    std::cerr << "BertTokenizer: " << ::ember::detail::str_cat(std::forward<Args>(args)...)
              << "; this notice is printed once per tokenizer\n";
  }

  Vocab vocab_;
  BertTokenizerOptions options_;
  std::vector<std::pair<std::string, int64_t>> specials_;
  int64_t unk_id_ = 0, sep_id_ = 0, pad_id_ = 0, cls_id_ = 0, mask_id_ = 0;
  std::shared_ptr<std::atomic<bool>> noticed_;  // shared by copies: one notice per tokenizer
};

}  // namespace ember::text

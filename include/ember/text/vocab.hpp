#pragma once
/// text::Vocab: token ↔ index, built from counts, saved as text, and the encoding of a batch of
/// token sequences into a padded int64 index tensor [B, T] plus a lengths tensor [B].
///
/// Order (deterministic): the specials first, in the order given (`<PAD>` = 0, `<UNK>` = 1 by
/// default), then the counted tokens by count, highest first; equal counts keep the order in
/// which the tokens were first seen (`VocabOrder::kFirstSeen`, what gensim's Word2Vec
/// vocabulary does with its stable sort) or go in byte-lexical order (`kLexical`, independent of
/// the corpus order). `min_count` drops rarer tokens, `max_size` caps the total size **including
/// the specials**.
///
/// Text format (save/load): one token per line in index order, UTF-8, '\n' line ends (a '\r'
/// before the '\n' is accepted on load). A token cannot be empty nor contain '\n' or '\r'
/// (save refuses it), and load refuses empty lines and duplicates, naming file and lines.
/// Which tokens are the padding and unknown tokens is not stored: load takes their names
/// (default `<PAD>`, `<UNK>`; a name not in the file means "none").
///
/// Lengths: a sequence can be empty (a review made only of stopwords or digits). With
/// `EncodeOptions::min_length(1)` (the default) it is encoded as one `<PAD>` token with length 1,
/// so every length is >= 1, which recurrent layers with lengths (and pack_padded_sequence)
/// require and which keeps a mean over valid steps finite. With `min_length(0)` its length is 0
/// and the row is all padding: the caller must then handle it (mask it out of a loss, or give
/// it a fixed output).
///
/// Example:
/// ```
///   using namespace ember::text;
///   TokenCounter counts;
///   for (const auto& doc : docs) counts.update(doc);
///   Vocab vocab = Vocab::build(counts, VocabOptions().min_count(2).max_size(50000));
///   EncodedBatch b = vocab.encode_batch(batch_docs, EncodeOptions().max_len(100));
///   // b.indices: int64 [B, 100], padded with vocab.pad_index(); b.lengths: int64 [B], each in [1, 100]
/// ```
#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "ember/core/error.hpp"
#include "ember/io/atomic_file.hpp"
#include "ember/nn/options.hpp"
#include "ember/ops/factory.hpp"
#include "ember/text/stopwords.hpp"

namespace ember::text {

/// Token counts that remember the order in which tokens were first seen.
class TokenCounter {
 public:
  void add(std::string_view token, int64_t n = 1) {
    auto it = index_.find(token);
    if (it == index_.end()) {
      index_.emplace(std::string(token), entries_.size());
      entries_.emplace_back(std::string(token), n);
    } else {
      entries_[it->second].second += n;
    }
  }
  template <typename Tokens>
  void update(const Tokens& tokens) {
    for (const auto& t : tokens) add(t);
  }
  int64_t count(std::string_view token) const {
    auto it = index_.find(token);
    return it == index_.end() ? 0 : entries_[it->second].second;
  }
  size_t size() const { return entries_.size(); }
  /// (token, count) in first-seen order.
  const std::vector<std::pair<std::string, int64_t>>& entries() const { return entries_; }

 private:
  std::unordered_map<std::string, size_t, detail::StringHash, std::equal_to<>> index_;
  std::vector<std::pair<std::string, int64_t>> entries_;
};

enum class VocabOrder { kFirstSeen, kLexical };

struct VocabOptions {
  /// Tokens seen fewer times are left out.
  EMBER_ARG(int64_t, min_count) = 1;
  /// Most entries in the vocabulary, specials included; -1: no limit.
  EMBER_ARG(int64_t, max_size) = -1;
  /// Tokens placed first, in this order, whatever their counts.
  EMBER_ARG(std::vector<std::string>, specials) = {"<PAD>", "<UNK>"};
  /// Names of the padding and unknown tokens; a name that is not in the vocabulary means none.
  EMBER_ARG(std::string, pad_token) = "<PAD>";
  EMBER_ARG(std::string, unk_token) = "<UNK>";
  /// How tokens with equal counts are ordered.
  EMBER_ARG(VocabOrder, order) = VocabOrder::kFirstSeen;
};

/// What encode does with a token that is not in the vocabulary.
enum class OnUnknown {
  kUnk,    ///< map it to the unknown token (an error if the vocabulary has none)
  kSkip,   ///< leave it out (the sequence gets shorter)
  kError,  ///< throw, naming the token
};

enum class Truncation {
  kKeepFirst,  ///< keep the first max_len tokens (`seq[:max_len]`)
  kKeepLast,   ///< keep the last max_len tokens (`seq[-max_len:]`)
};

struct EncodeOptions {
  /// Longest sequence kept; longer ones are truncated.
  EMBER_ARG(int64_t, max_len) = 100;
  /// true: T = max_len for every batch; false: T = the longest (truncated) length in the batch.
  EMBER_ARG(bool, pad_to_max_len) = true;
  /// 0 or 1: an empty sequence gets length 0 (all padding), or length 1 holding the pad token.
  EMBER_ARG(int64_t, min_length) = 1;
  EMBER_ARG(Truncation, truncation) = Truncation::kKeepFirst;
  EMBER_ARG(OnUnknown, on_unknown) = OnUnknown::kUnk;
  /// The padding index; by default the vocabulary's pad token (an error when it has none).
  EMBER_ARG(std::optional<int64_t>, pad_index) = std::nullopt;
};

/// A batch of token sequences as tensors: `indices` int64 [B, T] (right-padded), `lengths` int64 [B].
struct EncodedBatch {
  Tensor indices;
  Tensor lengths;
};

class Vocab {
 public:
  Vocab() = default;

  /// A vocabulary holding `tokens` in this order; tokens must be non-empty and distinct.
  explicit Vocab(std::vector<std::string> tokens, std::string_view pad_token = "<PAD>",
                 std::string_view unk_token = "<UNK>")
      : tokens_(std::move(tokens)) {
    index_.reserve(tokens_.size());
    for (size_t i = 0; i < tokens_.size(); ++i) {
      EMBER_CHECK(!tokens_[i].empty(), "Vocab: token ", i, " is empty");
      auto [it, inserted] = index_.emplace(tokens_[i], static_cast<int64_t>(i));
      EMBER_CHECK(inserted, "Vocab: token '", tokens_[i], "' appears twice (indices ", it->second, " and ", i, ")");
    }
    pad_ = find(pad_token);
    unk_ = find(unk_token);
  }

  static Vocab build(const TokenCounter& counts, const VocabOptions& options = {}) {
    EMBER_CHECK(options.max_size() == -1 || options.max_size() >= static_cast<int64_t>(options.specials().size()),
                "Vocab::build: max_size ", options.max_size(), " is smaller than the ", options.specials().size(),
                " specials (use -1 for no limit)");
    std::vector<std::string> tokens = options.specials();
    std::unordered_map<std::string_view, int, std::hash<std::string_view>> special_set;
    for (const auto& s : tokens) special_set.emplace(s, 0);
    std::vector<const std::pair<std::string, int64_t>*> kept;
    for (const auto& e : counts.entries()) {
      if (e.second >= options.min_count() && !special_set.count(e.first)) kept.push_back(&e);
    }
    auto by_count = [&](const auto* a, const auto* b) {
      if (a->second != b->second) return a->second > b->second;
      return options.order() == VocabOrder::kLexical && a->first < b->first;
    };
    std::stable_sort(kept.begin(), kept.end(), by_count);  // stable: first-seen order among equals
    size_t limit = options.max_size() < 0 ? kept.size() + tokens.size() : static_cast<size_t>(options.max_size());
    for (const auto* e : kept) {
      if (tokens.size() >= limit) break;
      tokens.push_back(e->first);
    }
    return Vocab(std::move(tokens), options.pad_token(), options.unk_token());
  }
  /// Counts every token of `docs` (first-seen order across docs, then within each), then builds.
  static Vocab build(const std::vector<std::vector<std::string>>& docs, const VocabOptions& options = {}) {
    TokenCounter counts;
    for (const auto& d : docs) counts.update(d);
    return build(counts, options);
  }

  int64_t size() const { return static_cast<int64_t>(tokens_.size()); }
  bool contains(std::string_view token) const { return index_.find(token) != index_.end(); }
  std::optional<int64_t> find(std::string_view token) const {
    auto it = index_.find(token);
    if (it == index_.end()) return std::nullopt;
    return it->second;
  }
  /// The token's index, or the unknown token's; an error when it is absent and there is no
  /// unknown token.
  int64_t index(std::string_view token) const {
    auto it = index_.find(token);
    if (it != index_.end()) return it->second;
    EMBER_CHECK(unk_.has_value(), "Vocab: token '", token, "' is not in the vocabulary of ", size(),
                " tokens, which has no unknown token");
    return *unk_;
  }
  int64_t operator[](std::string_view token) const { return index(token); }
  const std::string& token(int64_t index) const {
    EMBER_CHECK(index >= 0 && index < size(), "Vocab: index ", index, " is out of range for a vocabulary of ",
                size(), " tokens");
    return tokens_[static_cast<size_t>(index)];
  }
  const std::vector<std::string>& tokens() const { return tokens_; }
  std::optional<int64_t> pad_index() const { return pad_; }
  std::optional<int64_t> unk_index() const { return unk_; }

  /// One token per line (atomic replace of `path`).
  void save(const std::string& path) const {
    std::string text;
    for (size_t i = 0; i < tokens_.size(); ++i) {
      EMBER_CHECK(tokens_[i].find_first_of("\r\n") == std::string::npos, "Vocab::save: token ", i,
                  " contains a line break and cannot be written one per line to '", path, "'");
      text += tokens_[i];
      text += '\n';
    }
    io::write_file_atomic(path, "Vocab::save", [&](io::FileWriter& w) { w.write(text.data(), text.size()); });
  }

  static Vocab load(const std::string& path, std::string_view pad_token = "<PAD>",
                    std::string_view unk_token = "<UNK>") {
    std::string text = detail::read_text_file(path, "Vocab::load");
    // An empty file is a truncated or wrong one far more often than a vocabulary meant to be empty.
    EMBER_CHECK(!text.empty(), "Vocab::load: '", path, "' is empty (expected one token per line)");
    std::vector<std::string> tokens;
    std::unordered_map<std::string_view, size_t> seen;  // token → line
    size_t begin = 0;
    for (size_t line = 1; begin < text.size(); ++line) {
      size_t nl = text.find('\n', begin);
      size_t end = nl == std::string::npos ? text.size() : nl;
      std::string_view tok(text.data() + begin, end - begin);
      if (!tok.empty() && tok.back() == '\r') tok.remove_suffix(1);
      EMBER_CHECK(!tok.empty(), "Vocab::load: '", path, "' line ", line, " is empty (expected one token per line)");
      auto [it, inserted] = seen.emplace(tok, line);
      EMBER_CHECK(inserted, "Vocab::load: '", path, "' line ", line, ": token '", tok, "' already appeared on line ",
                  it->second);
      tokens.emplace_back(tok);
      if (nl == std::string::npos) break;
      begin = nl + 1;
    }
    return Vocab(std::move(tokens), pad_token, unk_token);
  }

  /// Indices of one sequence (no truncation or padding).
  template <typename Tokens>
  std::vector<int64_t> encode(const Tokens& tokens, OnUnknown on_unknown = OnUnknown::kUnk) const {
    std::vector<int64_t> out;
    out.reserve(tokens.size());
    for (const auto& t : tokens) append_index(out, t, on_unknown);
    return out;
  }

  /// The batch as `indices` int64 [B, T] and `lengths` int64 [B]; see EncodeOptions and the
  /// header comment on empty sequences.
  template <typename Tokens>
  EncodedBatch encode_batch(const std::vector<Tokens>& batch, const EncodeOptions& options = {}) const {
    EMBER_CHECK(options.max_len() >= 1, "Vocab::encode_batch: max_len must be >= 1, got ", options.max_len());
    EMBER_CHECK(options.min_length() == 0 || options.min_length() == 1,
                "Vocab::encode_batch: min_length must be 0 or 1, got ", options.min_length());
    std::optional<int64_t> pad = options.pad_index() ? options.pad_index() : pad_;
    EMBER_CHECK(pad.has_value(), "Vocab::encode_batch: the vocabulary has no padding token; pass "
                                 "EncodeOptions().pad_index(i)");
    EMBER_CHECK(*pad >= 0 && *pad < size(), "Vocab::encode_batch: pad_index ", *pad,
                " is out of range for a vocabulary of ", size(), " tokens");
    const auto B = static_cast<int64_t>(batch.size());
    std::vector<std::vector<int64_t>> rows(batch.size());
    int64_t longest = options.min_length();
    for (size_t b = 0; b < batch.size(); ++b) {
      rows[b] = encode(batch[b], options.on_unknown());
      auto& r = rows[b];
      if (static_cast<int64_t>(r.size()) > options.max_len()) {
        if (options.truncation() == Truncation::kKeepFirst) r.resize(static_cast<size_t>(options.max_len()));
        else r.erase(r.begin(), r.end() - options.max_len());
      }
      longest = std::max<int64_t>(longest, static_cast<int64_t>(r.size()));
    }
    const int64_t T = options.pad_to_max_len() ? options.max_len() : longest;
    Tensor indices = empty({B, T}, TensorOptions(kInt64));
    Tensor lengths = empty({B}, TensorOptions(kInt64));
    int64_t* ip = indices.data_ptr<int64_t>();
    int64_t* lp = lengths.data_ptr<int64_t>();
    for (int64_t b = 0; b < B; ++b) {
      const auto& r = rows[static_cast<size_t>(b)];
      std::copy(r.begin(), r.end(), ip + b * T);
      std::fill(ip + b * T + static_cast<int64_t>(r.size()), ip + (b + 1) * T, *pad);
      lp[b] = std::max<int64_t>(static_cast<int64_t>(r.size()), options.min_length());
    }
    return {indices, lengths};
  }

 private:
  template <typename Token>
  void append_index(std::vector<int64_t>& out, const Token& t, OnUnknown on_unknown) const {
    auto it = index_.find(std::string_view(t));
    if (it != index_.end()) {
      out.push_back(it->second);
      return;
    }
    switch (on_unknown) {
      case OnUnknown::kSkip: return;
      case OnUnknown::kError: EMBER_FAIL("Vocab::encode: token '", std::string_view(t), "' is not in the vocabulary");
      case OnUnknown::kUnk:
        EMBER_CHECK(unk_.has_value(), "Vocab::encode: token '", std::string_view(t),
                    "' is not in the vocabulary, which has no unknown token (use OnUnknown::kSkip)");
        out.push_back(*unk_);
        return;
    }
  }

  std::vector<std::string> tokens_;
  std::unordered_map<std::string, int64_t, detail::StringHash, std::equal_to<>> index_;
  std::optional<int64_t> pad_, unk_;
};

}  // namespace ember::text

#pragma once
/// text::KeyedVectors (gensim.models.KeyedVectors): words with one float32 vector each, looked up
/// by word or index, queried by cosine similarity, and saved/loaded in the word2vec C tool's text
/// and binary formats byte for byte as gensim 4.2 writes them:
///   header  "count dim\n"
///   text    "word v1 v2 ... vdim\n"   values as numpy's repr of a float32 (shortest round trip)
///   binary  "word " + dim little-endian float32   (gensim writes no newline after the vector;
///            the reader also accepts word2vec.c's "\n" there)
/// Loading never trusts the header: the count is checked against the file size before anything
/// is allocated, and a short, long or malformed file is an ember::Error naming file and entry.
///
/// Example:
/// ```
///   auto kv = ember::text::KeyedVectors::load_word2vec_format("vectors.bin", /*binary=*/true);
///   for (auto& [w, sim] : kv.most_similar("好看", 5)) std::cout << w << ' ' << sim << '\n';
///   auto emb = ember::nn::Embedding::from_pretrained(kv.vectors());  // [V, dim] float32
/// ```
#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "ember/core/error.hpp"
#include "ember/core/tensor.hpp"
#include "ember/ops/factory.hpp"

namespace ember::text {

namespace kv_detail {

/// Hash that lets an unordered_map<std::string, ...> be searched with a string_view (no
/// allocation per token in the training and lookup loops).
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};
using WordIndex = std::unordered_map<std::string, int64_t, StringHash, std::equal_to<>>;

/// A float32 as numpy 1.24 `repr(np.float32(v))` prints it, which is what gensim's text format
/// holds: the shortest digits that round-trip, positional for 1e-4 <= |v| < 1e16 (and 0) with at
/// least one fractional digit ("1.0", "123456790.0"), otherwise scientific with a two-digit
/// exponent ("1e-05", "-2.5e-07").
inline void append_float_repr(std::string& out, float v) {
  if (std::isnan(v)) {
    out += "nan";
    return;
  }
  if (std::isinf(v)) {
    out += v < 0 ? "-inf" : "inf";
    return;
  }
  if (std::signbit(v)) out += '-';
  float a = std::fabs(v);
  if (a == 0.0f) {
    out += "0.0";
    return;
  }
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, a, std::chars_format::scientific);
  std::string_view sci(buf, static_cast<size_t>(res.ptr - buf));  // "d.ddde-XX" or "de+XX"
  size_t epos = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, epos))
    if (c != '.') digits += c;
  int exp10 = 0;
  std::string_view es = sci.substr(epos + 1);
  if (!es.empty() && es[0] == '+') es.remove_prefix(1);
  std::from_chars(es.data(), es.data() + es.size(), exp10);
  const double ad = a;
  if (ad >= 1e-4 && ad < 1e16) {
    const int n = static_cast<int>(digits.size());
    if (exp10 >= 0) {
      if (n <= exp10 + 1) {
        out += digits;
        out.append(static_cast<size_t>(exp10 + 1 - n), '0');
        out += ".0";
      } else {
        out.append(digits, 0, static_cast<size_t>(exp10 + 1));
        out += '.';
        out.append(digits, static_cast<size_t>(exp10 + 1));
      }
    } else {
      out += "0.";
      out.append(static_cast<size_t>(-exp10 - 1), '0');
      out += digits;
    }
  } else {
    out += digits[0];
    if (digits.size() > 1) {
      out += '.';
      out.append(digits, 1);
    }
    out += 'e';
    out += exp10 < 0 ? '-' : '+';
    int e = exp10 < 0 ? -exp10 : exp10;
    if (e < 10) out += '0';
    out += std::to_string(e);
  }
}

inline void store_le(float v, char* dst) {
  uint32_t u = std::bit_cast<uint32_t>(v);
  if constexpr (std::endian::native == std::endian::big) u = __builtin_bswap32(u);
  std::memcpy(dst, &u, 4);
}
inline float load_le(const char* src) {
  uint32_t u;
  std::memcpy(&u, src, 4);
  if constexpr (std::endian::native == std::endian::big) u = __builtin_bswap32(u);
  return std::bit_cast<float>(u);
}

}  // namespace kv_detail

/// Words and their vectors, in index order (a trained model's order: most frequent first).
class KeyedVectors {
 public:
  KeyedVectors() = default;
  /// `vectors` holds words.size() rows of `dim` floats, row-major. Duplicate words are an error.
  KeyedVectors(std::vector<std::string> words, std::vector<float> vectors, int64_t dim)
      : words_(std::move(words)), data_(std::move(vectors)), dim_(dim) {
    EMBER_CHECK(dim_ > 0, "KeyedVectors: dim must be positive, got ", dim_);
    EMBER_CHECK(data_.size() == words_.size() * static_cast<size_t>(dim_), "KeyedVectors: ", words_.size(),
                " words of dim ", dim_, " need ", words_.size() * static_cast<size_t>(dim_), " floats, got ",
                data_.size());
    index_.reserve(words_.size());
    for (size_t i = 0; i < words_.size(); ++i) {
      bool fresh = index_.emplace(words_[i], static_cast<int64_t>(i)).second;
      EMBER_CHECK(fresh, "KeyedVectors: duplicate word '", words_[i], "' at index ", i);
    }
    refresh_norms();
  }

  int64_t size() const { return static_cast<int64_t>(words_.size()); }
  int64_t dim() const { return dim_; }
  const std::vector<std::string>& words() const { return words_; }
  const std::string& word(int64_t index) const {
    EMBER_CHECK(index >= 0 && index < size(), "KeyedVectors: index ", index, " out of range for ", size(), " words");
    return words_[static_cast<size_t>(index)];
  }
  bool contains(std::string_view word) const { return index_.find(word) != index_.end(); }
  /// The word's index, or nullopt when it is not in the vocabulary.
  std::optional<int64_t> find(std::string_view word) const {
    auto it = index_.find(word);
    if (it == index_.end()) return std::nullopt;
    return it->second;
  }
  /// The word's index; an error naming the word when it is absent.
  int64_t index_of(std::string_view word) const {
    auto it = index_.find(word);
    EMBER_CHECK(it != index_.end(), "KeyedVectors: word '", word, "' not in vocabulary (", size(), " words)");
    return it->second;
  }
  /// The row of a word (a view into this object; valid while it lives and is not reassigned).
  std::span<const float> row(int64_t index) const {
    (void)word(index);  // range check
    return {data_.data() + index * dim_, static_cast<size_t>(dim_)};
  }
  std::span<const float> row(std::string_view word) const { return row(index_of(word)); }
  /// A copy of one word's vector as a [dim] float32 tensor.
  Tensor vector(std::string_view word) const {
    auto r = row(word);
    return tensor(std::vector<float>(r.begin(), r.end()), Shape{dim_});
  }
  /// A copy of all vectors as a [size, dim] float32 tensor, rows in index order
  /// (e.g. for nn::Embedding::from_pretrained).
  Tensor vectors() const {
    Tensor t = empty({size(), dim_}, TensorOptions(kFloat32));
    if (!data_.empty()) std::memcpy(t.data_ptr<float>(), data_.data(), data_.size() * sizeof(float));
    return t;
  }
  /// The raw row-major storage (size * dim floats).
  const std::vector<float>& data() const { return data_; }

  /// Cosine similarity of two words.
  float similarity(std::string_view a, std::string_view b) const {
    int64_t i = index_of(a), j = index_of(b);
    return static_cast<float>(dot(row_ptr(i), row_ptr(j)) * inv_norm_[i] * inv_norm_[j]);
  }

  /// The `topn` words nearest to `word` by cosine similarity, best first, the word itself left out
  /// (gensim's most_similar(word, topn)).
  std::vector<std::pair<std::string, float>> most_similar(std::string_view word, int64_t topn = 10) const {
    return most_similar(std::vector<std::string>{std::string(word)}, {}, topn);
  }
  /// gensim's most_similar(positive, negative, topn): the mean of the unit vectors of `positive`
  /// minus those of `negative` (king - man + woman), normalised, against every word but the inputs.
  std::vector<std::pair<std::string, float>> most_similar(const std::vector<std::string>& positive,
                                                          const std::vector<std::string>& negative,
                                                          int64_t topn = 10) const {
    EMBER_CHECK(topn >= 0, "KeyedVectors::most_similar: topn must be non-negative, got ", topn);
    EMBER_CHECK(!positive.empty() || !negative.empty(), "KeyedVectors::most_similar: no words given");
    std::vector<double> mean(static_cast<size_t>(dim_), 0.0);
    std::vector<int64_t> exclude;
    auto add = [&](const std::string& w, double sign) {
      int64_t i = index_of(w);
      exclude.push_back(i);
      const float* r = row_ptr(i);
      for (int64_t d = 0; d < dim_; ++d) mean[d] += sign * r[d] * inv_norm_[i];
    };
    for (const auto& w : positive) add(w, 1.0);
    for (const auto& w : negative) add(w, -1.0);
    double n2 = 0;
    for (double m : mean) n2 += m * m;
    std::vector<float> query(static_cast<size_t>(dim_));
    const double inv = n2 > 0 ? 1.0 / std::sqrt(n2) : 0.0;
    for (int64_t d = 0; d < dim_; ++d) query[d] = static_cast<float>(mean[d] * inv);
    return nearest(query.data(), exclude, topn);
  }
  /// The `topn` words nearest to an arbitrary vector of length dim (nothing excluded).
  std::vector<std::pair<std::string, float>> similar_by_vector(std::span<const float> v, int64_t topn = 10) const {
    EMBER_CHECK(static_cast<int64_t>(v.size()) == dim_, "KeyedVectors::similar_by_vector: expected ", dim_,
                " values, got ", v.size());
    double n2 = 0;
    for (float x : v) n2 += double(x) * x;
    std::vector<float> query(v.begin(), v.end());
    if (n2 > 0)
      for (auto& x : query) x = static_cast<float>(x / std::sqrt(n2));
    return nearest(query.data(), {}, topn);
  }

  // ---- word2vec file formats ---------------------------------------------------------------------

  /// Writes the word2vec text (binary=false) or binary format in index order, the bytes
  /// gensim 4.2's save_word2vec_format writes for the same words and float32 values.
  void save_word2vec_format(const std::string& path, bool binary = false) const {
    for (size_t i = 0; i < words_.size(); ++i) {
      const std::string& w = words_[i];
      EMBER_CHECK(!w.empty() && w.find_first_of(" \n") == std::string::npos, "save_word2vec_format: ", path,
                  ": word ", i, " ('", w, "') is empty or holds a space or newline, which the format cannot store");
    }
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    EMBER_CHECK(out.good(), "save_word2vec_format: cannot open '", path, "' for writing");
    std::string buf = std::to_string(size()) + " " + std::to_string(dim_) + "\n";
    for (int64_t i = 0; i < size(); ++i) {
      buf += words_[i];
      const float* r = row_ptr(i);
      if (binary) {
        buf += ' ';
        size_t at = buf.size();
        buf.resize(at + 4 * static_cast<size_t>(dim_));
        for (int64_t d = 0; d < dim_; ++d) kv_detail::store_le(r[d], buf.data() + at + 4 * d);
      } else {
        for (int64_t d = 0; d < dim_; ++d) {
          buf += ' ';
          kv_detail::append_float_repr(buf, r[d]);
        }
        buf += '\n';
      }
      if (buf.size() > (1u << 20)) {
        out.write(buf.data(), static_cast<std::streamsize>(buf.size()));
        buf.clear();
      }
    }
    out.write(buf.data(), static_cast<std::streamsize>(buf.size()));
    out.flush();
    EMBER_CHECK(out.good(), "save_word2vec_format: writing '", path, "' failed (disk full?)");
  }

  /// Reads a word2vec text or binary file (gensim's load_word2vec_format). `limit` reads only the
  /// first entries. A later duplicate of a word is skipped, as gensim does. Everything else that
  /// does not match the header (short file, a line with the wrong number of values, bytes left
  /// after the last entry, a header whose count cannot fit in the file) is an ember::Error.
  static KeyedVectors load_word2vec_format(const std::string& path, bool binary = false,
                                           std::optional<int64_t> limit = std::nullopt) {
    constexpr const char* kOp = "load_word2vec_format: ";
    std::error_code ec;
    const uint64_t file_size = std::filesystem::file_size(path, ec);
    EMBER_CHECK(!ec, kOp, "cannot read '", path, "': ", ec.message());
    std::ifstream in(path, std::ios::binary);
    EMBER_CHECK(in.good(), kOp, "cannot open '", path, "'");

    std::string header;
    bool newline = false;
    for (char c; header.size() <= 256 && in.get(c);) {
      if (c == '\n') {
        newline = true;
        break;
      }
      header += c;
    }
    EMBER_CHECK(newline, kOp, path, ": bad header: expected a first line \"count dim\", got '",
                header.substr(0, 80), header.size() > 80 ? "...'" : "'");
    int64_t count = -1, dim = -1;
    {
      const char* p = header.data();
      const char* end = p + header.size();
      auto skip = [&] {
        while (p < end && (*p == ' ' || *p == '\t' || *p == '\r')) ++p;
      };
      skip();
      auto r1 = std::from_chars(p, end, count);
      p = r1.ptr;
      skip();
      auto r2 = std::from_chars(p, end, dim);
      p = r2.ptr;
      skip();
      EMBER_CHECK(r1.ec == std::errc() && r2.ec == std::errc() && p == end, kOp, path,
                  ": bad header '", header.substr(0, 80), "', expected \"count dim\" (two integers)");
    }
    EMBER_CHECK(count >= 0 && dim > 0 && dim <= (int64_t{1} << 24), kOp, path, ": bad header: count ", count,
                " and dim ", dim, " (expected count >= 0 and 0 < dim <= 16777216)");
    // Each binary entry needs at least a space and 4*dim bytes, each text entry at least a
    // one-character value and a separator per dimension: a header that claims more is wrong
    // (or the file is cut), and is refused before any allocation.
    const uint64_t body = file_size - header.size() - 1;
    const uint64_t min_entry = binary ? 1 + 4 * static_cast<uint64_t>(dim) : 2 * static_cast<uint64_t>(dim);
    EMBER_CHECK(static_cast<uint64_t>(count) <= body / min_entry, kOp, path, ": header says ", count,
                " vectors of dim ", dim, " but the file holds only ", body,
                " bytes after the header (truncated file or wrong header)");
    const int64_t want = limit ? std::min(count, std::max<int64_t>(*limit, 0)) : count;

    std::vector<std::string> words;
    std::vector<float> data;
    words.reserve(static_cast<size_t>(want));
    data.reserve(static_cast<size_t>(want) * static_cast<size_t>(dim));
    kv_detail::WordIndex seen;
    seen.reserve(static_cast<size_t>(want));
    std::string word, line;
    std::vector<char> raw(binary ? 4 * static_cast<size_t>(dim) : 0);
    std::vector<float> vec(static_cast<size_t>(dim));
    constexpr size_t kMaxWord = 1 << 16;
    for (int64_t e = 0; e < want; ++e) {
      if (binary) {
        word.clear();
        char c;
        while (in.get(c) && c != ' ') {
          if (c == '\n' && word.empty()) continue;  // word2vec.c puts "\n" after each vector
          word += c;
          EMBER_CHECK(word.size() <= kMaxWord, kOp, path, ": entry ", e, " has no space within ", kMaxWord,
                      " bytes: not a binary word2vec file, or the header's dim (", dim, ") is wrong");
        }
        EMBER_CHECK(in.good(), kOp, path, ": truncated: header says ", count, " vectors, the file ends in entry ",
                    e);
        in.read(raw.data(), static_cast<std::streamsize>(raw.size()));
        EMBER_CHECK(in.good(), kOp, path, ": truncated: header says ", count, " vectors of dim ", dim,
                    ", the file ends inside the vector of entry ", e, " ('", word, "')");
        for (int64_t d = 0; d < dim; ++d) vec[d] = kv_detail::load_le(raw.data() + 4 * d);
      } else {
        EMBER_CHECK(static_cast<bool>(std::getline(in, line)), kOp, path, ": truncated: header says ", count,
                    " vectors, the file ends after ", e);
        size_t endp = line.find_last_not_of(" \t\r\n");
        line.resize(endp == std::string::npos ? 0 : endp + 1);
        size_t sp = line.find(' ');
        word = line.substr(0, sp);
        int64_t d = 0;
        const char* p = sp == std::string::npos ? line.data() + line.size() : line.data() + sp;
        const char* end = line.data() + line.size();
        while (p < end) {
          while (p < end && (*p == ' ' || *p == '\t')) ++p;
          if (p == end) break;
          float v = 0;
          auto r = std::from_chars(p, end, v);
          EMBER_CHECK(r.ec == std::errc() && (r.ptr == end || *r.ptr == ' ' || *r.ptr == '\t'), kOp, path,
                      ": line ", e + 2, " ('", word, "'): value ", d + 1, " is not a number: '",
                      std::string(p, std::min<size_t>(static_cast<size_t>(end - p), 24)), "'");
          EMBER_CHECK(d < dim, kOp, path, ": line ", e + 2, " ('", word, "') has more than the header's ", dim,
                      " values");
          vec[d++] = v;
          p = r.ptr;
        }
        EMBER_CHECK(d == dim, kOp, path, ": line ", e + 2, " ('", word, "') has ", d, " values, the header says ",
                    dim);
      }
      if (!seen.emplace(word, static_cast<int64_t>(words.size())).second) continue;  // gensim: first one wins
      words.push_back(word);
      data.insert(data.end(), vec.begin(), vec.end());
    }
    if (!limit) {
      char c;
      while (in.get(c)) {
        EMBER_CHECK(c == '\n' || c == ' ' || c == '\r' || c == '\t', kOp, path, ": data after the ", count,
                    " vectors the header announces: wrong count or dim in the header?");
      }
    }
    KeyedVectors kv;
    kv.words_ = std::move(words);
    kv.data_ = std::move(data);
    kv.dim_ = dim;
    kv.index_ = std::move(seen);
    kv.refresh_norms();
    return kv;
  }

 private:
  friend class Word2Vec;

  const float* row_ptr(int64_t i) const { return data_.data() + i * dim_; }
  double dot(const float* a, const float* b) const {
    double s = 0;
    for (int64_t d = 0; d < dim_; ++d) s += double(a[d]) * b[d];
    return s;
  }
  /// 1/|v| per row (0 for a zero row, whose similarities are then 0); recomputed after training.
  void refresh_norms() {
    inv_norm_.assign(words_.size(), 0.0f);
    for (int64_t i = 0; i < size(); ++i) {
      double n = std::sqrt(dot(row_ptr(i), row_ptr(i)));
      inv_norm_[i] = n > 0 ? static_cast<float>(1.0 / n) : 0.0f;
    }
  }
  std::vector<std::pair<std::string, float>> nearest(const float* unit_query, const std::vector<int64_t>& exclude,
                                                     int64_t topn) const {
    std::vector<std::pair<float, int64_t>> scored;
    scored.reserve(words_.size());
    for (int64_t i = 0; i < size(); ++i) {
      if (std::find(exclude.begin(), exclude.end(), i) != exclude.end()) continue;
      float s = 0;
      const float* r = row_ptr(i);
      for (int64_t d = 0; d < dim_; ++d) s += unit_query[d] * r[d];
      s *= inv_norm_[i];
      // A NaN (from a file holding "nan") would break the sort's ordering: rank it last instead.
      scored.emplace_back(std::isnan(s) ? -std::numeric_limits<float>::infinity() : s, i);
    }
    const size_t k = std::min<size_t>(static_cast<size_t>(topn), scored.size());
    // Best first; equal scores keep index order, so results are reproducible.
    auto better = [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); };
    std::partial_sort(scored.begin(), scored.begin() + static_cast<std::ptrdiff_t>(k), scored.end(), better);
    std::vector<std::pair<std::string, float>> out;
    out.reserve(k);
    for (size_t i = 0; i < k; ++i) out.emplace_back(words_[scored[i].second], scored[i].first);
    return out;
  }

  std::vector<std::string> words_;
  std::vector<float> data_;
  int64_t dim_ = 0;
  kv_detail::WordIndex index_;
  std::vector<float> inv_norm_;
};

}  // namespace ember::text

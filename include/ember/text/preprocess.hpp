#pragma once
/// text::Preprocessor: the tutorial's per-review pipeline — remove digit runs, Traditional →
/// Simplified (OpenCC t2s), segment (jieba's default mode), drop stopwords and whitespace
/// tokens — over one text or many texts in parallel.
///
/// Each step is optional. `remove_digits` is Python's `re.sub(r'\d+', '', text)` on a `str`:
/// `\d` is every Unicode decimal digit (ASCII, full-width ０-９, Arabic-Indic, …), not ² or ①.
/// A review made only of digits and stopwords yields no tokens: Vocab::encode_batch decides how
/// such an empty sequence is represented (see vocab.hpp).
///
/// Example:
/// ```
///   using namespace ember::text;
///   auto seg = std::make_shared<Segmenter>();
///   Preprocessor prep(seg, PreprocessOptions()
///                              .t2s(OpenCC("t2s.json"))
///                              .stopwords(StopWords::load("../shared/data/stopwords/cn_stopwords.txt")));
///   auto tokens = prep("這部電影2019年上映，太好看了");  // 这部 电影 年 上映 好看
///   auto all = prep.process_many(texts, /*threads=*/2);
/// ```
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ember/nn/options.hpp"
#include "ember/text/opencc.hpp"
#include "ember/text/segmenter.hpp"
#include "ember/text/stopwords.hpp"
#include "ember/text/utf8.hpp"

namespace ember::text {

/// `re.sub(r'\d+', '', text)` of Python 3: drops every Unicode decimal digit (category Nd).
/// Ill-formed UTF-8 is replaced by U+FFFD on the way.
inline std::string remove_digits(std::string_view text) {
  if (!utf8::is_valid(text)) return remove_digits(utf8::sanitize(text));
  std::string out;
  size_t copied = 0;  // text[copied, pos) is kept but not yet appended
  size_t pos = 0;
  bool ok;
  while (pos < text.size()) {
    size_t at = pos;
    unsigned char byte = static_cast<unsigned char>(text[pos]);
    char32_t cp = byte < 0x80 ? (++pos, char32_t{byte}) : utf8::decode_next(text, pos, ok);
    if (utf8::is_decimal_digit(cp)) {
      if (out.empty()) out.reserve(text.size());
      out.append(text.data() + copied, at - copied);
      copied = pos;
    }
  }
  if (copied == 0) return std::string(text);
  out.append(text.data() + copied, text.size() - copied);
  return out;
}

struct PreprocessOptions {
  /// Remove digit runs first (the recipe's `re.sub(r'\d+', '', text)`).
  EMBER_ARG(bool, remove_digits) = true;
  /// Traditional → Simplified before segmenting; none: keep the text as it is.
  EMBER_ARG(std::optional<OpenCC>, t2s) = std::nullopt;
  /// Tokens to drop after segmenting; none: keep every token.
  EMBER_ARG(std::optional<StopWords>, stopwords) = std::nullopt;
  /// Use the HMM for unknown words (jieba.cut's HMM=True).
  EMBER_ARG(bool, hmm) = true;
};

class Preprocessor {
 public:
  explicit Preprocessor(std::shared_ptr<const Segmenter> segmenter, PreprocessOptions options = {})
      : seg_(std::move(segmenter)), options_(std::move(options)) {
    EMBER_CHECK(seg_ != nullptr, "Preprocessor: a segmenter is required");
  }

  /// The tokens of one text (whitespace-only tokens are always dropped).
  std::vector<std::string> operator()(std::string_view text) const {
    Segmenter::Workspace ws;
    return process(text, ws);
  }

  std::vector<std::string> process(std::string_view text, Segmenter::Workspace& ws) const {
    std::string owned;
    if (options_.remove_digits()) {
      owned = remove_digits(text);
      text = owned;
    }
    if (options_.t2s()) {
      owned = options_.t2s()->convert(text);
      text = owned;
    }
    std::vector<std::string> out;
    const StopWords* stop = options_.stopwords() ? &*options_.stopwords() : nullptr;
    seg_->for_each_token(text, [&](std::string_view tok) {
      if (Segmenter::is_whitespace_token(tok)) return;
      if (stop && stop->contains(tok)) return;
      out.emplace_back(tok);
    }, ws, options_.hmm());
    return out;
  }

  /// process() of each text on `threads` threads (0: all cores), in input order.
  template <typename Texts>
  std::vector<std::vector<std::string>> process_many(const Texts& texts, int threads = 0) const {
    std::vector<std::vector<std::string>> out(texts.size());
    detail::parallel_over(texts.size(), threads, 64, [&](size_t, size_t b, size_t e) {
      Segmenter::Workspace ws;
      for (size_t i = b; i < e; ++i) out[i] = process(std::string_view(texts[i]), ws);
    });
    return out;
  }

  const Segmenter& segmenter() const { return *seg_; }
  const PreprocessOptions& options() const { return options_; }

 private:
  std::shared_ptr<const Segmenter> seg_;
  PreprocessOptions options_;
};

}  // namespace ember::text

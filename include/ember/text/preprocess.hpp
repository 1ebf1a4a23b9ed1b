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
  // Fast path: nothing to remove in a valid text without a digit.
  bool maybe = false;
  for (char c : text) {
    unsigned char u = static_cast<unsigned char>(c);
    if ((u >= '0' && u <= '9') || u >= 0x80) {
      maybe = true;
      break;
    }
  }
  if (!maybe) return std::string(text);
  std::string out;
  out.reserve(text.size());
  bool valid = utf8::is_valid(text);
  utf8::for_each_code_point(text, [&](char32_t cp, size_t b, size_t e) {
    if (utf8::is_decimal_digit(cp)) return;
    if (valid) out.append(text.data() + b, e - b);
    else utf8::append(out, cp);
  });
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

#pragma once
/// text::Word2Vec (gensim.models.Word2Vec, 4.2): word vectors trained on tokenized sentences with
/// CBOW (default; the mean of the context vectors predicts the centre word) or skip-gram, negative
/// sampling from the unigram^0.75 table, subsampling of frequent words, a randomly shrunk window
/// per position and a learning rate decaying linearly from alpha to min_alpha over all epochs.
/// Training is Hogwild, as in word2vec.c, gensim and fastText: `workers` threads take jobs of about
/// `batch_words` words and update the shared float32 tables without locks (a deliberate race that
/// ThreadSanitizer reports, suppressed for CI's TSan run in scripts/tsan.supp; rows rarely collide
/// and a lost update only adds noise). With
/// workers = 1 there is no race and the result is a function of the corpus, options and seed.
/// The inner loop allocates nothing: per-thread scratch rows, vocabulary ids computed once per
/// train() call, and a precomputed sigmoid table as word2vec.c and gensim use.
///
/// What follows gensim exactly: the vocabulary (min_count, max_vocab_size pruning, max_final_vocab,
/// order by descending count), the subsampling probabilities (`sample`), the cumulative
/// negative-sampling table over a 2^31-1 domain and its bisect_left draw, the 48-bit LCG of the
/// inner loop, the job batching and the alpha of each job, the initialisation (input rows uniform
/// in [-1, 1) / vector_size as gensim 4's prep_vectors, output rows zero), the CBOW update (with
/// cbow_mean the error is added unscaled to every context row), and the sigmoid table (1000
/// entries over [-6, 6], no update where |dot| >= 6). What differs, so vectors are not bitwise
/// gensim's: the random streams (gensim draws the reduced windows from numpy and reseeds each
/// job's LCG from numpy; Ember draws everything from the LCG, seeded per job from (seed, epoch,
/// job) with splitmix64, so jobs are the same whatever the thread count), ties in the count order (Ember
/// keeps first-seen order; gensim's unstable numpy argsort leaves it unspecified), and a sentence
/// of more than 10000 kept words is trained in 10000-word pieces (gensim drops the rest).
///
/// Example:
/// ```
///   namespace text = ember::text;
///   std::vector<std::vector<std::string>> sentences = ...;   // already tokenized
///   text::Word2Vec w2v(sentences, text::Word2VecOptions().vector_size(64).window(8).min_count(1));
///   auto near = w2v.wv().most_similar("好看", 10);
///   w2v.wv().save_word2vec_format("douban.w2v.bin", /*binary=*/true);
/// ```
#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "ember/core/error.hpp"
#include "ember/nn/options.hpp"
#include "ember/text/keyed_vectors.hpp"

namespace ember::text {

struct Word2VecOptions {
  /// Dimensionality of the vectors.
  EMBER_ARG(int64_t, vector_size) = 100;
  /// Largest distance between the centre word and a context word (each position uses a random
  /// window of 1..window when shrink_windows).
  EMBER_ARG(int64_t, window) = 5;
  /// Words seen fewer times are dropped from the vocabulary.
  EMBER_ARG(int64_t, min_count) = 5;
  /// Skip-gram when true, CBOW when false.
  EMBER_ARG(bool, sg) = false;
  /// CBOW: average (true) or sum (false) the context vectors.
  EMBER_ARG(bool, cbow_mean) = true;
  /// Noise words per positive example (hierarchical softmax is not implemented: must be >= 1).
  EMBER_ARG(int64_t, negative) = 5;
  /// The noise distribution is count^ns_exponent.
  EMBER_ARG(double, ns_exponent) = 0.75;
  /// Subsampling threshold: words whose frequency exceeds it are randomly skipped (0 = off; >= 1
  /// is gensim's absolute-count form).
  EMBER_ARG(double, sample) = 1e-3;
  EMBER_ARG(double, alpha) = 0.025;
  EMBER_ARG(double, min_alpha) = 0.0001;
  EMBER_ARG(int64_t, epochs) = 5;
  EMBER_ARG(uint64_t, seed) = 1;
  /// Training threads (Hogwild). 1 gives reproducible vectors.
  EMBER_ARG(int64_t, workers) = 3;
  /// While counting, prune the rarest words whenever more than this many are held (gensim's
  /// max_vocab_size: bounds memory on huge corpora).
  EMBER_ARG(std::optional<int64_t>, max_vocab_size) = std::nullopt;
  /// Raise min_count so that at most this many words are kept.
  EMBER_ARG(std::optional<int64_t>, max_final_vocab) = std::nullopt;
  /// Words per job (the unit of work of a thread and of the learning-rate schedule).
  EMBER_ARG(int64_t, batch_words) = 10000;
  /// Draw a reduced window per position (word2vec.c, gensim's shrink_windows).
  EMBER_ARG(bool, shrink_windows) = true;
};

/// What one call of Word2Vec::train did.
struct Word2VecTrainStats {
  int64_t raw_words = 0;        ///< corpus words × epochs, including out-of-vocabulary ones
  int64_t effective_words = 0;  ///< words actually trained (in vocabulary, not subsampled)
  double seconds = 0;           ///< wall time of train(), including the corpus-to-index pass
  double raw_words_per_second() const { return seconds > 0 ? raw_words / seconds : 0; }
  double effective_words_per_second() const { return seconds > 0 ? effective_words / seconds : 0; }
};

class Word2Vec {
 public:
  explicit Word2Vec(Word2VecOptions options = {}) : options_(std::move(options)) { check_options(); }
  /// Builds the vocabulary from `sentences` and trains on them (gensim's Word2Vec(sentences, ...)).
  template <typename Sentences>
  Word2Vec(const Sentences& sentences, Word2VecOptions options) : Word2Vec(std::move(options)) {
    build_vocab(sentences);
    train(sentences);
  }

  const Word2VecOptions& options() const { return options_; }
  /// The trained vectors (syn0), in vocabulary order (most frequent first).
  const KeyedVectors& wv() const { return wv_; }
  /// The output ("context") vectors of negative sampling (syn1neg), [vocab, vector_size] row-major.
  const std::vector<float>& syn1neg() const { return syn1neg_; }
  /// Count of a vocabulary word in the corpus given to build_vocab.
  int64_t count(std::string_view word) const { return counts_[static_cast<size_t>(wv_.index_of(word))]; }
  const std::vector<int64_t>& counts() const { return counts_; }
  /// Words (raw, incl. dropped ones) and sentences seen by build_vocab.
  int64_t corpus_total_words() const { return corpus_total_words_; }
  int64_t corpus_count() const { return corpus_count_; }

  /// Counts the words of `sentences` (a range of ranges of anything convertible to
  /// std::string_view), keeps those with count >= min_count, orders them by descending count and
  /// initialises the weights. Replaces any earlier vocabulary and weights.
  template <typename Sentences>
  void build_vocab(const Sentences& sentences) {
    kv_detail::WordIndex slot;
    std::vector<std::pair<std::string, int64_t>> raw;  // first-seen order, as gensim's dict
    int64_t total = 0, n_sent = 0, min_reduce = 1;
    for (const auto& sentence : sentences) {
      ++n_sent;
      for (const auto& token : sentence) {
        std::string_view w(token);
        auto it = slot.find(w);
        if (it == slot.end()) {
          slot.emplace(std::string(w), static_cast<int64_t>(raw.size()));
          raw.emplace_back(std::string(w), 1);
        } else {
          ++raw[static_cast<size_t>(it->second)].second;
        }
        ++total;
      }
      if (options_.max_vocab_size() && static_cast<int64_t>(raw.size()) > *options_.max_vocab_size()) {
        prune(raw, slot, min_reduce);  // gensim's utils.prune_vocab: drop counts < min_reduce
        ++min_reduce;
      }
    }
    corpus_total_words_ = total;
    corpus_count_ = n_sent;

    int64_t min_count = options_.min_count();
    if (options_.max_final_vocab() && *options_.max_final_vocab() < static_cast<int64_t>(raw.size())) {
      std::vector<int64_t> c;
      c.reserve(raw.size());
      for (auto& e : raw) c.push_back(e.second);
      std::sort(c.begin(), c.end(), std::greater<>());
      min_count = std::max(min_count, c[static_cast<size_t>(*options_.max_final_vocab())] + 1);
    }
    std::vector<std::pair<std::string, int64_t>> kept;
    int64_t retain_total = 0;
    for (auto& e : raw)
      if (e.second >= min_count) {
        retain_total += e.second;
        kept.push_back(std::move(e));
      }
    EMBER_CHECK(!kept.empty(), "Word2Vec::build_vocab: no word occurs min_count=", min_count, " times in ", total,
                " words of ", n_sent, " sentences; the vocabulary would be empty");
    EMBER_CHECK(kept.size() < static_cast<size_t>(std::numeric_limits<int32_t>::max()), "Word2Vec::build_vocab: ",
                kept.size(), " words exceed the 2^31-1 that the training ids hold");
    // Descending count, ties in first-seen order. (gensim reverses an unstable numpy argsort, which
    // leaves ties in no particular order: reversed first-seen for small vocabularies.)
    std::stable_sort(kept.begin(), kept.end(), [](const auto& a, const auto& b) { return a.second > b.second; });

    // Subsampling: keep probability (sqrt(c/t) + 1) * t/c, as a threshold on a 32-bit draw.
    const double sample = options_.sample();
    double threshold = sample <= 0 ? double(retain_total)
                       : sample < 1 ? sample * double(retain_total)
                                    : std::floor(sample * (3 + std::sqrt(5.0)) / 2);
    const size_t V = kept.size();
    std::vector<std::string> words(V);
    counts_.assign(V, 0);
    sample_int_.assign(V, 0);
    for (size_t i = 0; i < V; ++i) {
      double c = double(kept[i].second);
      double p = std::min(1.0, (std::sqrt(c / threshold) + 1) * (threshold / c));
      sample_int_[i] = static_cast<uint32_t>(p * 4294967295.0);
      counts_[i] = kept[i].second;
      words[i] = std::move(kept[i].first);
    }
    make_cum_table();

    // Weights: input rows uniform in [-1, 1) / vector_size (gensim 4 prep_vectors), output rows 0.
    const int64_t dim = options_.vector_size();
    std::vector<float> syn0(V * static_cast<size_t>(dim));
    uint64_t state = options_.seed() ^ 0x5DEECE66DULL;
    for (float& v : syn0) {
      double u = double(splitmix64(state) >> 40) * 0x1.0p-24;
      v = static_cast<float>((u * 2 - 1) / double(dim));
    }
    wv_ = KeyedVectors(std::move(words), std::move(syn0), dim);
    syn1neg_.assign(V * static_cast<size_t>(dim), 0.0f);
  }

  /// Trains `options().epochs` epochs over `sentences` (build_vocab first). Words not in the
  /// vocabulary are skipped (they do not take a place in the window).
  template <typename Sentences>
  Word2VecTrainStats train(const Sentences& sentences) {
    EMBER_CHECK(wv_.size() > 0, "Word2Vec::train: build_vocab(sentences) must come first");
    auto t0 = std::chrono::steady_clock::now();
    Corpus corpus;
    for (const auto& sentence : sentences) {
      int64_t raw = 0;
      for (const auto& token : sentence) {
        ++raw;
        if (auto i = wv_.index_.find(std::string_view(token)); i != wv_.index_.end())
          corpus.ids.push_back(static_cast<int32_t>(i->second));
      }
      corpus.add_sentence(raw);
    }
    Word2VecTrainStats stats = run(corpus);
    wv_.refresh_norms();
    stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return stats;
  }

 private:
  static constexpr int kExpTableSize = 1000;
  static constexpr float kMaxExp = 6.0f;
  static constexpr int64_t kMaxSentence = 10000;
  static constexpr uint64_t kLcgMask = (uint64_t{1} << 48) - 1;

  /// Sentences as vocabulary ids, with the raw length (OOV included) that the schedule counts.
  struct Corpus {
    std::vector<int32_t> ids;
    std::vector<int64_t> offsets{0};
    std::vector<int64_t> raw_len;
    void add_sentence(int64_t raw) {
      offsets.push_back(static_cast<int64_t>(ids.size()));
      raw_len.push_back(raw);
    }
  };
  struct Job {
    int64_t sent_begin, sent_end, raw_before;
  };

  static uint64_t splitmix64(uint64_t& x) {
    uint64_t z = (x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  /// word2vec.c's generator: 48-bit LCG, 32 bits returned per draw.
  static uint32_t lcg_next(uint64_t& r) {
    uint32_t out = static_cast<uint32_t>(r >> 16);
    r = (r * 25214903917ULL + 11) & kLcgMask;
    return out;
  }

  void check_options() const {
    const auto& o = options_;
    EMBER_CHECK(o.vector_size() > 0, "Word2Vec: vector_size must be positive, got ", o.vector_size());
    EMBER_CHECK(o.window() > 0, "Word2Vec: window must be positive, got ", o.window());
    EMBER_CHECK(o.min_count() >= 1, "Word2Vec: min_count must be >= 1, got ", o.min_count());
    EMBER_CHECK(o.negative() >= 1, "Word2Vec: negative must be >= 1 (hierarchical softmax is not implemented), got ",
                o.negative());
    EMBER_CHECK(o.sample() >= 0, "Word2Vec: sample must be >= 0, got ", o.sample());
    EMBER_CHECK(o.alpha() > 0 && o.min_alpha() >= 0 && o.min_alpha() <= o.alpha(),
                "Word2Vec: expected 0 <= min_alpha <= alpha and alpha > 0, got alpha=", o.alpha(),
                " min_alpha=", o.min_alpha());
    EMBER_CHECK(o.epochs() >= 1, "Word2Vec: epochs must be >= 1, got ", o.epochs());
    EMBER_CHECK(o.workers() >= 1, "Word2Vec: workers must be >= 1, got ", o.workers());
    EMBER_CHECK(o.batch_words() >= 1, "Word2Vec: batch_words must be >= 1, got ", o.batch_words());
    EMBER_CHECK(!o.max_vocab_size() || *o.max_vocab_size() >= 1, "Word2Vec: max_vocab_size must be >= 1, got ",
                o.max_vocab_size().value_or(0));
    EMBER_CHECK(!o.max_final_vocab() || *o.max_final_vocab() >= 1, "Word2Vec: max_final_vocab must be >= 1, got ",
                o.max_final_vocab().value_or(0));
  }

  static void prune(std::vector<std::pair<std::string, int64_t>>& raw, kv_detail::WordIndex& slot,
                    int64_t min_reduce) {
    size_t w = 0;
    for (size_t r = 0; r < raw.size(); ++r)
      if (raw[r].second >= min_reduce) {
        if (w != r) raw[w] = std::move(raw[r]);  // never self-move: it empties a std::string
        ++w;
      }
    raw.resize(w);
    slot.clear();
    for (size_t i = 0; i < raw.size(); ++i) slot.emplace(raw[i].first, static_cast<int64_t>(i));
  }

  /// gensim's make_cum_table (round half to even, as Python's round), plus a guide table so a
  /// draw starts its bisect_left from the right bucket instead of searching all of it.
  void make_cum_table() {
    constexpr double kDomain = 2147483647.0;
    const size_t V = counts_.size();
    double total = 0;
    for (int64_t c : counts_) total += std::pow(double(c), options_.ns_exponent());
    cum_table_.assign(V, 0);
    double cum = 0;
    for (size_t i = 0; i < V; ++i) {
      cum += std::pow(double(counts_[i]), options_.ns_exponent());
      cum_table_[i] = static_cast<uint32_t>(std::nearbyint(cum / total * kDomain));
    }
    guide_bits_ = 1;
    while ((size_t{1} << guide_bits_) < 2 * V && guide_bits_ < 22) ++guide_bits_;
    guide_.assign((size_t{1} << guide_bits_) + 1, 0);
    size_t idx = 0;
    for (size_t g = 0; g < guide_.size(); ++g) {
      const uint64_t lo = static_cast<uint64_t>(g) << (31 - guide_bits_);
      while (idx + 1 < V && cum_table_[idx] < lo) ++idx;
      guide_[g] = static_cast<int32_t>(idx);
    }
  }
  /// bisect_left(cum_table, (r >> 16) % cum_table[-1]) through the guide table.
  int32_t draw_negative(uint64_t& r) const {
    const uint32_t x = static_cast<uint32_t>((r >> 16) % cum_table_.back());
    r = (r * 25214903917ULL + 11) & kLcgMask;
    int32_t i = guide_[x >> (31 - guide_bits_)];
    while (cum_table_[static_cast<size_t>(i)] < x) ++i;
    return i;
  }

  static const float* sigmoid_table() {
    static const auto table = [] {
      std::vector<float> t(kExpTableSize);
      for (int i = 0; i < kExpTableSize; ++i) {
        double e = std::exp((double(i) / kExpTableSize * 2 - 1) * kMaxExp);
        t[i] = static_cast<float>(e / (e + 1));
      }
      return t;
    }();
    return table.data();
  }

  static float dot(const float* __restrict a, const float* __restrict b, int64_t n) {
    float s = 0;
#ifdef _OPENMP  // the pragma lets the reduction be reordered into SIMD lanes
#pragma omp simd reduction(+ : s)
#endif
    for (int64_t d = 0; d < n; ++d) s += a[d] * b[d];
    return s;
  }
  static void axpy(float g, const float* __restrict x, float* __restrict y, int64_t n) {
#ifdef _OPENMP
#pragma omp simd
#endif
    for (int64_t d = 0; d < n; ++d) y[d] += g * x[d];
  }

  /// Per-thread scratch, allocated once per worker (nothing is allocated per word).
  struct Scratch {
    std::vector<int32_t> sentence;
    std::vector<float> neu1, work;
    uint64_t rng = 0;
    int64_t effective = 0;
  };

  /// One positive + `negative` noise updates of the output rows against the hidden vector `h`,
  /// accumulating the error for `h` in `work` (gensim's fast_sentence_*_neg).
  void negative_step(int32_t target, const float* h, float* work, float alpha, uint64_t& rng) {
    const int64_t dim = wv_.dim_;
    const float* sig = sigmoid_table();
    float* syn1 = syn1neg_.data();
    for (int64_t d = 0; d <= options_.negative(); ++d) {
      int32_t t;
      float label;
      if (d == 0) {
        t = target;
        label = 1.0f;
      } else {
        t = draw_negative(rng);
        if (t == target) continue;
        label = 0.0f;
      }
      float* out = syn1 + static_cast<int64_t>(t) * dim;
      const float f = dot(h, out, dim);
      if (f <= -kMaxExp || f >= kMaxExp) continue;
      const float s = sig[static_cast<int>((f + kMaxExp) * (kExpTableSize / kMaxExp / 2))];
      const float g = (label - s) * alpha;
      axpy(g, out, work, dim);
      axpy(g, h, out, dim);
    }
  }

  void train_piece(const int32_t* w, int64_t n, float alpha, Scratch& s) {
    const int64_t dim = wv_.dim_, window = options_.window();
    float* syn0 = wv_.data_.data();
    float* neu1 = s.neu1.data();
    float* work = s.work.data();
    for (int64_t i = 0; i < n; ++i) {
      const int64_t b = options_.shrink_windows() ? static_cast<int64_t>(lcg_next(s.rng) % window) : 0;
      const int64_t j0 = std::max<int64_t>(0, i - window + b), j1 = std::min<int64_t>(n, i + window + 1 - b);
      if (options_.sg()) {
        for (int64_t j = j0; j < j1; ++j) {
          if (j == i) continue;
          float* in = syn0 + static_cast<int64_t>(w[j]) * dim;
          std::fill(work, work + dim, 0.0f);
          negative_step(w[i], in, work, alpha, s.rng);
          axpy(1.0f, work, in, dim);
        }
      } else {
        std::fill(neu1, neu1 + dim, 0.0f);
        int64_t count = 0;
        for (int64_t j = j0; j < j1; ++j) {
          if (j == i) continue;
          axpy(1.0f, syn0 + static_cast<int64_t>(w[j]) * dim, neu1, dim);
          ++count;
        }
        if (count == 0) continue;
        const float inv = 1.0f / static_cast<float>(count);
        if (options_.cbow_mean())
          for (int64_t d = 0; d < dim; ++d) neu1[d] *= inv;
        std::fill(work, work + dim, 0.0f);
        negative_step(w[i], neu1, work, alpha, s.rng);
        if (!options_.cbow_mean())
          for (int64_t d = 0; d < dim; ++d) work[d] *= inv;
        for (int64_t j = j0; j < j1; ++j)
          if (j != i) axpy(1.0f, work, syn0 + static_cast<int64_t>(w[j]) * dim, dim);
      }
    }
    s.effective += n;
  }

  void train_job(const Corpus& c, const Job& job, float alpha, Scratch& s) {
    const bool subsample = options_.sample() > 0;
    for (int64_t si = job.sent_begin; si < job.sent_end; ++si) {
      int64_t n = 0;
      for (int64_t k = c.offsets[si]; k < c.offsets[si + 1]; ++k) {
        const int32_t id = c.ids[static_cast<size_t>(k)];
        if (subsample && sample_int_[static_cast<size_t>(id)] < lcg_next(s.rng)) continue;
        s.sentence[static_cast<size_t>(n++)] = id;
        if (n == kMaxSentence) {
          train_piece(s.sentence.data(), n, alpha, s);
          n = 0;
        }
      }
      train_piece(s.sentence.data(), n, alpha, s);
    }
  }

  Word2VecTrainStats run(const Corpus& c) {
    // Jobs as gensim's producer cuts them: whole sentences, up to batch_words raw words each.
    std::vector<Job> jobs;
    const int64_t n_sent = static_cast<int64_t>(c.raw_len.size());
    int64_t total_raw = 0;
    for (int64_t s = 0; s < n_sent;) {
      Job j{s, s, total_raw};
      int64_t words = 0;
      while (j.sent_end < n_sent &&
             (j.sent_end == s || words + c.raw_len[j.sent_end] <= options_.batch_words()))
        words += c.raw_len[j.sent_end++];
      total_raw += words;
      s = j.sent_end;
      jobs.push_back(j);
    }
    const int64_t epochs = options_.epochs();
    const int64_t n_jobs = static_cast<int64_t>(jobs.size()) * epochs;
    std::atomic<int64_t> next{0}, effective{0};
    auto worker = [&] {
      Scratch s;
      s.sentence.resize(kMaxSentence);
      s.neu1.resize(static_cast<size_t>(wv_.dim_));
      s.work.resize(static_cast<size_t>(wv_.dim_));
      for (int64_t g; (g = next.fetch_add(1, std::memory_order_relaxed)) < n_jobs;) {
        const int64_t epoch = g / static_cast<int64_t>(jobs.size());
        const Job& job = jobs[static_cast<size_t>(g % static_cast<int64_t>(jobs.size()))];
        // gensim's _get_next_alpha: linear in the raw words pushed before this job.
        const double progress =
            total_raw > 0 ? (double(epoch) + double(job.raw_before) / double(total_raw)) / double(epochs) : 0;
        const double a = std::max(options_.min_alpha(),
                                  options_.alpha() - (options_.alpha() - options_.min_alpha()) * progress);
        uint64_t seed = options_.seed() * 0x2545F4914F6CDD1DULL + static_cast<uint64_t>(g);
        s.rng = splitmix64(seed) & kLcgMask;
        train_job(c, job, static_cast<float>(a), s);
      }
      effective.fetch_add(s.effective, std::memory_order_relaxed);
    };
    const int64_t n_threads = std::min<int64_t>(options_.workers(), std::max<int64_t>(n_jobs, 1));
    if (n_threads <= 1) {
      worker();
    } else {
      std::vector<std::thread> threads;
      for (int64_t t = 0; t < n_threads; ++t) threads.emplace_back(worker);
      for (auto& t : threads) t.join();
    }
    Word2VecTrainStats stats;
    stats.raw_words = total_raw * epochs;
    stats.effective_words = effective.load();
    return stats;
  }

  Word2VecOptions options_;
  KeyedVectors wv_;
  std::vector<float> syn1neg_;
  std::vector<int64_t> counts_;
  std::vector<uint32_t> sample_int_;
  std::vector<uint32_t> cum_table_;
  std::vector<int32_t> guide_;
  int guide_bits_ = 1;
  int64_t corpus_total_words_ = 0, corpus_count_ = 0;
};

/// Sentences from a text file, one per line, tokens separated by whitespace (gensim's
/// LineSentence, without its 10000-token line cut). Empty lines give empty sentences.
inline std::vector<std::vector<std::string>> read_line_sentences(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EMBER_CHECK(in.good(), "read_line_sentences: cannot open '", path, "'");
  std::vector<std::vector<std::string>> out;
  std::string line;
  while (std::getline(in, line)) {
    auto& s = out.emplace_back();
    size_t p = 0;
    while (p < line.size()) {
      while (p < line.size() && std::isspace(static_cast<unsigned char>(line[p]))) ++p;
      size_t q = p;
      while (q < line.size() && !std::isspace(static_cast<unsigned char>(line[q]))) ++q;
      if (q > p) s.emplace_back(line, p, q - p);
      p = q;
    }
  }
  return out;
}

}  // namespace ember::text

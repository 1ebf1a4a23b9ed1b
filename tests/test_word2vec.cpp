#include <doctest/doctest.h>

#include "ember/ember.hpp"
#include "ember/nn/embedding.hpp"
#include "ember/text/word2vec.hpp"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

// text::KeyedVectors and text::Word2Vec: word2vec text/binary files from gensim 4.2
// (tests/golden/word2vec, written by tests/golden/make_word2vec_golden.py) read to the same bits and
// written back byte for byte; gensim reading Ember's files (when /usr/bin/python3 has gensim);
// malformed files; training on synthetic corpora whose structure is known; determinism.

#include "scratch_dir.hpp"

namespace test_word2vec {

namespace text = ember::text;
using Sentences = std::vector<std::vector<std::string>>;

const std::string kGolden = std::string(EMBER_SOURCE_DIR) + "/tests/golden/word2vec/";
// The words of golden_vectors() in make_word2vec_golden.py, in order.
const std::vector<std::string> kGoldenWords = {"电影",  "好看",    "难看", "导演", "hello", "Zoë",
                                               "。",    "special", "tiny", "huge", "zero"};

static std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}
static void spit(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << bytes;
}
static bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}
static bool python_gensim_available() {
  return std::system("/usr/bin/python3 -c 'import gensim' >/dev/null 2>&1") == 0;
}

/// Two topics of 8 words that never share a sentence, plus a pair of "synonyms" (syn_a, syn_b)
/// that occur in exactly the same contexts (slot 3 of sentences built from topic A's words).
static Sentences topic_corpus(uint32_t seed, int n_sentences = 1200) {
  std::mt19937 rng(seed);
  Sentences out;
  for (int s = 0; s < n_sentences; ++s) {
    const char topic = (s % 2) ? 'b' : 'a';
    std::vector<std::string> sent;
    for (int k = 0; k < 8; ++k) sent.push_back(std::string(1, topic) + std::to_string(rng() % 8));
    if (topic == 'a' && s % 4 == 0) sent[3] = (rng() % 2) ? "syn_a" : "syn_b";
    out.push_back(std::move(sent));
  }
  return out;
}

/// For every topic word: its `k` nearest neighbours that are topic words are all of its own topic.
static void check_topics(const text::KeyedVectors& wv, int k) {
  for (char topic : {'a', 'b'})
    for (int i = 0; i < 8; ++i) {
      std::string w = std::string(1, topic) + std::to_string(i);
      int seen = 0;
      for (auto& [nb, sim] : wv.most_similar(w, wv.size())) {
        if (nb.rfind("syn_", 0) == 0) continue;
        INFO(w << " neighbour " << nb << " " << sim);
        CHECK(nb[0] == topic);
        if (++seen == k) break;
      }
    }
}

static text::Word2VecOptions small_options() {
  return text::Word2VecOptions().vector_size(16).window(3).min_count(1).sample(0).epochs(10).workers(1).seed(3);
}

// ---- word2vec files ---------------------------------------------------------------------------

TEST_CASE("KeyedVectors: gensim's text and binary files load to the same float32 bits") {
  auto t = text::KeyedVectors::load_word2vec_format(kGolden + "gensim.txt", false);
  auto b = text::KeyedVectors::load_word2vec_format(kGolden + "gensim.bin", true);
  CHECK(t.words() == kGoldenWords);
  CHECK(b.words() == kGoldenWords);
  CHECK(t.dim() == 6);
  CHECK(same_bits(t.data(), b.data()));
  // The rows that make_word2vec_golden.py sets by hand.
  auto special = b.row("special");
  CHECK(special[0] == 1e-4f);
  CHECK(special[3] == 1e16f);
  CHECK(b.row("tiny")[0] == 1e-45f);  // a subnormal
  CHECK(b.row("tiny")[5] == 123456789.0f);
  CHECK(b.row("huge")[4] == 16777216.0f);
  CHECK(std::signbit(b.row("zero")[1]));
  CHECK(!std::signbit(b.row("zero")[0]));
  auto mt = text::KeyedVectors::load_word2vec_format(kGolden + "gensim_many.txt", false);
  auto mb = text::KeyedVectors::load_word2vec_format(kGolden + "gensim_many.bin", true);
  CHECK(mt.size() == 150);
  CHECK(same_bits(mt.data(), mb.data()));
  // limit reads the first entries only.
  auto first3 = text::KeyedVectors::load_word2vec_format(kGolden + "gensim.bin", true, 3);
  CHECK(first3.words() == std::vector<std::string>(kGoldenWords.begin(), kGoldenWords.begin() + 3));
}

TEST_CASE("KeyedVectors: save_word2vec_format writes the bytes gensim writes") {
  ember_test::ScratchDir dir("w2v_save");
  for (std::string name : {"gensim", "gensim_many"}) {
    auto kv = text::KeyedVectors::load_word2vec_format(kGolden + name + ".bin", true);
    kv.save_word2vec_format(dir / (name + ".txt"), false);
    kv.save_word2vec_format(dir / (name + ".bin"), true);
    INFO(name);
    CHECK(slurp(dir / (name + ".txt")) == slurp(kGolden + name + ".txt"));
    CHECK(slurp(dir / (name + ".bin")) == slurp(kGolden + name + ".bin"));
  }
  // Words the format cannot hold are refused, naming the word.
  text::KeyedVectors bad({"ok", "two words"}, {1, 2, 3, 4}, 2);
  CHECK_THROWS_WITH_AS(bad.save_word2vec_format(dir / "bad.txt"), doctest::Contains("'two words'"), ember::Error);
}

TEST_CASE("KeyedVectors: gensim reads the files Ember writes (trained vectors and the golden set)") {
  ember_test::ScratchDir dir("w2v_gensim");
  auto golden = text::KeyedVectors::load_word2vec_format(kGolden + "gensim.txt", false);
  golden.save_word2vec_format(dir / "golden.txt", false);
  golden.save_word2vec_format(dir / "golden.bin", true);
  text::Word2Vec w2v(topic_corpus(1), small_options());
  w2v.wv().save_word2vec_format(dir / "trained.txt", false);
  w2v.wv().save_word2vec_format(dir / "trained.bin", true);
  // Ember's own reader: the text form round-trips every float32 exactly.
  auto back_t = text::KeyedVectors::load_word2vec_format(dir / "trained.txt", false);
  auto back_b = text::KeyedVectors::load_word2vec_format(dir / "trained.bin", true);
  CHECK(back_t.words() == w2v.wv().words());
  CHECK(same_bits(back_t.data(), w2v.wv().data()));
  CHECK(same_bits(back_b.data(), w2v.wv().data()));
  if (!python_gensim_available()) {
    MESSAGE("skipped gensim's reader: /usr/bin/python3 with gensim is not available (apt-get install python3-gensim)");
    return;
  }
  const std::string cmd = "/usr/bin/python3 " + std::string(EMBER_SOURCE_DIR) +
                          "/tests/golden/make_word2vec_golden.py verify --golden '" + (dir / "golden.txt") + "' '" +
                          (dir / "golden.bin") + "' '" + (dir / "trained.txt") + "' '" + (dir / "trained.bin") +
                          "' >'" + (dir / "py.log") + "' 2>&1";
  int rc = std::system(cmd.c_str());
  INFO(slurp(dir / "py.log"));
  CHECK(rc == 0);
}

TEST_CASE("KeyedVectors: lookups, similarity, most_similar and the vectors() tensor") {
  auto kv = text::KeyedVectors::load_word2vec_format(kGolden + "gensim.bin", true);
  CHECK(kv.index_of("导演") == 3);
  CHECK(kv.find("missing") == std::nullopt);
  CHECK(kv.contains("Zoë"));
  CHECK_THROWS_WITH_AS(kv.index_of("missing"), doctest::Contains("word 'missing' not in vocabulary"), ember::Error);
  CHECK_THROWS_WITH_AS(kv.word(11), doctest::Contains("index 11 out of range"), ember::Error);
  // 好看 was built as 电影 plus a small perturbation: its nearest neighbour, cosine near 1.
  auto near = kv.most_similar("电影", 3);
  REQUIRE(near.size() == 3);
  CHECK(near[0].first == "好看");
  CHECK(near[0].second == doctest::Approx(0.99999).epsilon(1e-4));
  CHECK(near[0].second >= near[1].second);
  CHECK(near[1].second >= near[2].second);
  for (auto& [w, s] : kv.most_similar("电影", 100)) CHECK(w != "电影");
  CHECK(kv.most_similar("电影", 100).size() == 10);
  CHECK(kv.similarity("电影", "好看") == doctest::Approx(near[0].second).epsilon(1e-6));
  CHECK(kv.similarity("难看", "导演") == doctest::Approx(kv.similarity("导演", "难看")).epsilon(1e-6));
  CHECK(kv.similarity("hello", "hello") == doctest::Approx(1.0).epsilon(1e-6));
  CHECK(kv.similarity("zero", "hello") == 0.0f);  // a zero vector has no direction
  // Cosine by hand for one pair.
  auto a = kv.row("难看"), b = kv.row("导演");
  double ab = 0, aa = 0, bb = 0;
  for (int d = 0; d < 6; ++d) ab += double(a[d]) * b[d], aa += double(a[d]) * a[d], bb += double(b[d]) * b[d];
  CHECK(kv.similarity("难看", "导演") == doctest::Approx(ab / std::sqrt(aa * bb)).epsilon(1e-5));
  // Analogy form: positive/negative lists exclude their words.
  auto an = kv.most_similar(std::vector<std::string>{"好看", "难看"}, {"导演"}, 2);
  CHECK(an.size() == 2);
  for (auto& [w, s] : an) CHECK((w != "好看" && w != "难看" && w != "导演"));

  // A NaN row (a file may hold "nan") ranks last instead of breaking the sort.
  {
    text::KeyedVectors withnan({"x", "y", "n", "z"}, {1, 0, 0.9f, 0.1f, std::nanf(""), 1, 0, 1}, 2);
    auto r = withnan.most_similar("x", 3);
    CHECK(r[0].first == "y");
    CHECK(r[1].first == "z");
    CHECK(r[2].first == "n");
  }

  ember::Tensor v = kv.vectors();
  CHECK(v.sizes() == ember::Shape{11, 6});
  CHECK(v.dtype() == ember::kFloat32);
  CHECK(v.select(0, 3).to_vector<float>() == std::vector<float>(b.begin(), b.end()));
  CHECK(kv.vector("导演").to_vector<float>() == std::vector<float>(b.begin(), b.end()));
  auto emb = ember::nn::Embedding::from_pretrained(v);
  CHECK(emb->forward(ember::tensor<int64_t>({3})).select(0, 0).to_vector<float>() ==
        std::vector<float>(b.begin(), b.end()));
}

TEST_CASE("load_word2vec_format: malformed files are errors that name the file and the problem") {
  ember_test::ScratchDir dir("w2v_bad");
  const std::string p = dir / "bad.w2v";
  auto expect = [&](const std::string& bytes, bool binary, const std::string& needle) {
    spit(p, bytes);
    INFO("expected: " << needle);
    CHECK_THROWS_WITH_AS(text::KeyedVectors::load_word2vec_format(p, binary), doctest::Contains(needle.c_str()),
                         ember::Error);
  };
  const std::string good_bin = slurp(kGolden + "gensim.bin");
  const std::string good_txt = slurp(kGolden + "gensim.txt");
  expect("", false, "bad header");
  expect("2 3", true, "bad header");
  expect("two 3\na 1 2 3\n", false, "bad header 'two 3'");
  expect("2 3 4\na 1 2 3\n", false, "bad header");
  expect(std::string(300, '1') + "\n", false, "bad header");
  expect("-1 3\n", false, "count -1");
  expect("1 0\na\n", false, "dim 0");
  expect("1 99999999999\na 1\n", true, "dim 99999999999");
  // A header that promises far more than the file holds is refused before allocating anything.
  expect("4000000000 300\na 1\n", true, "header says 4000000000 vectors of dim 300");
  expect("1000000000000 1\na 1\n", false, "truncated file or wrong header");
  // Truncated files: cut inside a vector, and a missing last line.
  expect(good_bin.substr(0, good_bin.size() - 5), true, "truncated");
  expect(good_txt.substr(0, good_txt.rfind("zero")), false, "truncated");
  expect("2 3\na 1 2 3\nb 1 2\n", false, "line 3 ('b') has 2 values, the header says 3");
  expect("1 3\na 1 2 3 4\n", false, "more than the header's 3 values");
  expect("1 3\na 1 x 3\n", false, "value 2 is not a number: 'x 3'");
  expect("1 3\na 1 2 3\nb 4 5 6\n", false, "data after the 1 vectors");
  // The binary file read with a wrong dim: either cut or leftover data, never garbage words.
  {
    std::string wrong = "11 5" + good_bin.substr(good_bin.find('\n'));
    spit(p, wrong);
    CHECK_THROWS_AS(text::KeyedVectors::load_word2vec_format(p, true), ember::Error);
    wrong = "11 7" + good_bin.substr(good_bin.find('\n'));
    spit(p, wrong);
    CHECK_THROWS_AS(text::KeyedVectors::load_word2vec_format(p, true), ember::Error);
  }
  CHECK_THROWS_WITH_AS(text::KeyedVectors::load_word2vec_format(dir / "nope.bin", true),
                       doctest::Contains("cannot read"), ember::Error);

  // Accepted: word2vec.c's "\n" after each binary vector, a trailing space on text lines, CRLF,
  // and a repeated word (the first one wins, as in gensim).
  {
    auto ref = text::KeyedVectors::load_word2vec_format(kGolden + "gensim.bin", true);
    std::string c_style = good_bin.substr(0, good_bin.find('\n') + 1);
    for (int64_t i = 0; i < ref.size(); ++i) {
      c_style += ref.word(i) + " ";
      c_style.append(reinterpret_cast<const char*>(ref.row(i).data()), 24);
      c_style += "\n";
    }
    spit(p, c_style);
    auto c = text::KeyedVectors::load_word2vec_format(p, true);
    CHECK(c.words() == ref.words());
    CHECK(same_bits(c.data(), ref.data()));
  }
  spit(p, "3 2\r\na 1 2 \r\nb 3 4\r\na 5 6\r\n");
  auto dup = text::KeyedVectors::load_word2vec_format(p, false);
  CHECK(dup.words() == std::vector<std::string>{"a", "b"});
  CHECK(dup.data() == std::vector<float>{1, 2, 3, 4});
}

// ---- training ---------------------------------------------------------------------------------

TEST_CASE("Word2Vec: vocabulary as gensim builds it (min_count, order by count, ties first-seen)") {
  Sentences s = {{"c", "a", "b", "a"}, {"b", "d", "a", "e"}, {"e", "x"}, {}};
  text::Word2Vec w2v(text::Word2VecOptions().min_count(2).vector_size(4).workers(1));
  w2v.build_vocab(s);
  // counts: a 3, b 2, e 2 (b seen before e; gensim 4.2 happens to give a, e, b), c, d, x dropped.
  CHECK(w2v.wv().words() == std::vector<std::string>{"a", "b", "e"});
  CHECK(w2v.counts() == std::vector<int64_t>{3, 2, 2});
  CHECK(w2v.count("e") == 2);
  CHECK(w2v.corpus_total_words() == 10);
  CHECK(w2v.corpus_count() == 4);
  // Initial vectors: uniform in [-1, 1) / vector_size, not all equal; output vectors zero.
  for (float v : w2v.wv().data()) CHECK(std::fabs(v) <= 0.25f);
  CHECK(w2v.wv().data()[0] != w2v.wv().data()[1]);
  for (float v : w2v.syn1neg()) CHECK(v == 0.0f);

  text::Word2Vec capped(text::Word2VecOptions().min_count(1).max_final_vocab(2).vector_size(4));
  capped.build_vocab(s);
  CHECK(capped.wv().words() == std::vector<std::string>{"a"});  // min_count raised to 3: b and e tie at 2
  // max_vocab_size prunes while counting, as gensim's prune_vocab: after sentence 2 (3 words > 2)
  // counts < 1 go (none), after sentence 3 counts < 2, after sentence 4 counts < 3; only a is left.
  text::Word2Vec pruned(text::Word2VecOptions().min_count(1).max_vocab_size(2).vector_size(4));
  pruned.build_vocab(Sentences{{"a", "b"}, {"a", "c"}, {"d", "a"}, {"e", "f"}});
  CHECK(pruned.wv().words() == std::vector<std::string>{"a"});
  CHECK(pruned.counts() == std::vector<int64_t>{3});
  text::Word2Vec views(text::Word2VecOptions().min_count(1).vector_size(4));
  std::vector<std::vector<std::string_view>> sv = {{"x", "y", "x"}};
  views.build_vocab(sv);
  CHECK(views.wv().words() == std::vector<std::string>{"x", "y"});

  CHECK_THROWS_WITH_AS(text::Word2Vec(text::Word2VecOptions().min_count(9)).build_vocab(s),
                       doctest::Contains("vocabulary would be empty"), ember::Error);
  CHECK_THROWS_WITH_AS(text::Word2Vec().train(s), doctest::Contains("build_vocab(sentences) must come first"),
                       ember::Error);
  CHECK_THROWS_WITH_AS(text::Word2Vec(text::Word2VecOptions().negative(0)),
                       doctest::Contains("hierarchical softmax is not implemented"), ember::Error);
  CHECK_THROWS_WITH_AS(text::Word2Vec(text::Word2VecOptions().vector_size(0)), doctest::Contains("vector_size"),
                       ember::Error);
  CHECK_THROWS_WITH_AS(text::Word2Vec(text::Word2VecOptions().alpha(0.01).min_alpha(0.1)),
                       doctest::Contains("min_alpha"), ember::Error);
}

TEST_CASE("Word2Vec: CBOW separates two topics and puts interchangeable words nearest") {
  Sentences corpus = topic_corpus(1);
  text::Word2Vec w2v(corpus, small_options());
  const auto& wv = w2v.wv();
  CHECK(wv.size() == 18);
  check_topics(wv, 5);
  CHECK(wv.most_similar("syn_a", 1)[0].first == "syn_b");
  CHECK(wv.similarity("a1", "a2") > wv.similarity("a1", "b2") + 0.3f);
}

TEST_CASE("Word2Vec: skip-gram, summed CBOW and subsampling learn the same structure") {
  Sentences corpus = topic_corpus(2);
  {
    text::Word2Vec sg(corpus, small_options().sg(true).epochs(5));
    check_topics(sg.wv(), 5);
    CHECK(sg.wv().most_similar("syn_b", 1)[0].first == "syn_a");
  }
  {
    text::Word2Vec sum(corpus, small_options().cbow_mean(false).alpha(0.01));
    check_topics(sum.wv(), 5);
  }
  {
    // The 16 topic words hold ~97% of the 9600 words: with sample=1e-2 (threshold 96) each is kept
    // with probability sqrt(96/580)+96/580 ~ 0.57; the synonyms (~75 each) are always kept.
    text::Word2Vec sub(text::Word2VecOptions(small_options()).sample(1e-2).epochs(15));
    sub.build_vocab(corpus);
    auto stats = sub.train(corpus);
    CHECK(stats.raw_words == 9600 * 15);
    CHECK(stats.effective_words > 0.5 * stats.raw_words);
    CHECK(stats.effective_words < 0.65 * stats.raw_words);
    check_topics(sub.wv(), 5);
  }
}

TEST_CASE("Word2Vec: one worker is reproducible from the seed; several workers train too") {
  Sentences corpus = topic_corpus(3, 600);
  text::Word2Vec a(corpus, small_options().seed(7));
  text::Word2Vec b(corpus, small_options().seed(7));
  text::Word2Vec c(corpus, small_options().seed(8));
  CHECK(same_bits(a.wv().data(), b.wv().data()));
  CHECK(a.syn1neg() == b.syn1neg());
  CHECK(!same_bits(a.wv().data(), c.wv().data()));
  // Out-of-vocabulary words in the training corpus are skipped, not an error.
  text::Word2Vec oov(small_options());
  oov.build_vocab(corpus);
  Sentences more = corpus;
  more[0].push_back("never_seen");
  auto st = oov.train(more);
  CHECK(st.raw_words == (600 * 8 + 1) * 10);
  CHECK(st.effective_words == 600 * 8 * 10);

  Sentences big = topic_corpus(4, 2400);
  text::Word2Vec multi(big, small_options().workers(3).batch_words(500));
  check_topics(multi.wv(), 5);
  CHECK(multi.wv().most_similar("syn_a", 1)[0].first == "syn_b");
}

TEST_CASE("read_line_sentences: whitespace-separated tokens, one sentence per line") {
  ember_test::ScratchDir dir("w2v_lines");
  spit(dir / "s.txt", "好看 的 电影\n\n  a\tb  \nlast");
  auto s = text::read_line_sentences(dir / "s.txt");
  CHECK(s == Sentences{{"好看", "的", "电影"}, {}, {"a", "b"}, {"last"}});
  CHECK_THROWS_WITH_AS(text::read_line_sentences(dir / "none.txt"), doctest::Contains("cannot open"), ember::Error);
}

}  // namespace test_word2vec

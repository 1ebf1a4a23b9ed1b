// review_sentiment: the third Ember tutorial. Classifies Chinese reviews as negative (label 0) or
// positive (label 1): digits removed, Traditional -> Simplified (OpenCC t2s), jieba segmentation,
// stopwords dropped, Word2Vec vectors, then a 2-layer bidirectional LSTM.
//
//   review_sentiment prep                            # preprocess train/test (cached under <out>/cache/)
//   review_sentiment segment < texts.txt             # jieba.cut(text, HMM=True), one line per text
//   review_sentiment word2vec --query 好看           # train the vectors, print the nearest words
//   review_sentiment train                           # the original recipe (--model bilstm)
//   review_sentiment train --model bilstm-improved   # lengths + attention pooling + fine-tuned vectors
//   review_sentiment train --resume                  # continue exactly where the last run stopped
//   review_sentiment eval                            # accuracy, loss, confusion matrix, worst mistakes
//   review_sentiment predict "这部电影太好看了"        # "positive 0.97"
//   review_sentiment predict --explain "..."         # each word with its attention weight
//   review_sentiment pretrain                        # masked-LM pre-training of a small BERT
//   review_sentiment train --model bert --pretrained DIR   # fine-tune a Hugging Face BERT folder
//
// Read it top to bottom: the constants, the networks, the data pipeline, train() and test(), then
// one function per subcommand and main().
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iomanip>
#include <iostream>
#include <memory>
#include <numeric>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "ember/ember.hpp"
#include "ember/cuda/device.hpp"
#include "ember/data/data.hpp"
#include "ember/io/io.hpp"
#include "ember/text/keyed_vectors.hpp"
#include "ember/text/opencc.hpp"
#include "ember/text/preprocess.hpp"
#include "ember/text/segmenter.hpp"
#include "ember/text/stopwords.hpp"
#include "ember/text/utf8.hpp"
#include "ember/text/vocab.hpp"
#include "ember/text/word2vec.hpp"
#include "ember/utils/plot.hpp"
#include "ember/utils/training.hpp"
#include "ember/utils/utils.hpp"

#include "corpus.hpp"

namespace fs = std::filesystem;
using namespace ember;
using utils::fixed;
using utils::seconds_since;
namespace F = ember::nn::functional;
using review_sentiment::Corpus;
using review_sentiment::read_corpus;

// ---- constants ---------------------------------------------------------------------------------

constexpr const char* kDefaultOut = "runs/review_sentiment";
constexpr const char* kDefaultDataset = "douban_reviews";
constexpr int64_t kMaxLen = 100;     // sequences truncated / padded to 100 tokens
constexpr int64_t kEmbedDim = 64;    // Word2Vec(vector_size=64)
constexpr int64_t kWindow = 8;       // Word2Vec(window=8)
constexpr int64_t kHidden = 64;      // LSTM(64, 64, num_layers=2, bidirectional)
constexpr int64_t kEpochs = 10;
constexpr int64_t kBatchSize = 32;
constexpr double kLr = 1e-3;         // Adam(lr=1e-3)
constexpr int64_t kStepSize = 2;     // StepLR(step_size=2, gamma=0.5)
constexpr double kGamma = 0.5;
constexpr uint64_t kSeed = 1;
constexpr double kValFraction = 0.05;  // bilstm-improved: validation split carved from train
constexpr int64_t kPatience = 3;       // bilstm-improved: epochs without a better validation accuracy
const std::vector<std::string> kClasses{"negative", "positive"};
constexpr int kExitDiverged = 3;  // the loss (or the weights) became NaN/Inf

// ---- the networks ------------------------------------------------------------------------------

/// What a network returns: logits [B, 2], and attention weights [B, T] when it has them.
struct Output {
  Tensor logits, weights;
};

/// Both networks: tokens [B, T] int64 and lengths [B] in, logits out. The vocabulary and the
/// stopword list travel inside the state dict as byte buffers ("vocab", "stopwords": UTF-8, one
/// entry per line), so a checkpoint is one self-contained file.
class SentimentNet : public nn::Module {
 public:
  SentimentNet(const std::string& name, const std::vector<std::string>& vocab, const std::string& stopwords)
      : nn::Module(name) {
    register_buffer("vocab", bytes(join(vocab)));
    register_buffer("stopwords", bytes(stopwords));
  }
  virtual Output forward(const Tensor& tokens, const Tensor& lengths) = 0;
  virtual bool uses_lengths() const = 0;

  static std::string join(const std::vector<std::string>& lines) {
    std::string s;
    for (const auto& l : lines) s += l + "\n";
    return s;
  }
  static Tensor bytes(const std::string& s) {
    std::vector<uint8_t> v(s.begin(), s.end());
    return tensor(v, {static_cast<int64_t>(v.size())});
  }
  static std::string text(const Tensor& t) {
    auto v = t.to(kCPU).to_vector<uint8_t>();
    return std::string(v.begin(), v.end());
  }

 protected:
  /// Word2Vec's table (frozen or not) when training starts, else a table the checkpoint fills.
  std::shared_ptr<nn::Embedding> make_embedding(int64_t vocab, const Tensor& vectors, bool freeze) {
    if (vectors.defined()) return nn::Embedding::from_pretrained(vectors, freeze, 0);
    auto e = std::make_shared<nn::Embedding>(nn::EmbeddingOptions(vocab, kEmbedDim).padding_idx(0));
    e->weight.requires_grad_(!freeze);
    return e;
  }
};

/// The original recipe: frozen Word2Vec embeddings -> LSTM(64, 64, 2 layers, bidirectional,
/// dropout 0.5) -> the output at the LAST time step, out[:, -1, :] (padding for every review shorter
/// than 100 tokens, kept on purpose: it is why the original stays near chance) -> Dropout(0.5) ->
/// Linear(128, 64) -> ReLU -> Linear(64, 2).
class BiLSTMNet : public SentimentNet {
 public:
  BiLSTMNet(const std::vector<std::string>& vocab, const std::string& stopwords, const Tensor& vectors = {})
      : SentimentNet("BiLSTMNet", vocab, stopwords) {
    embedding = register_module("embedding", make_embedding(static_cast<int64_t>(vocab.size()), vectors, true));
    lstm = register_module("lstm", std::make_shared<nn::LSTM>(nn::LSTMOptions(kEmbedDim, kHidden).num_layers(2)
                                                                  .batch_first(true).bidirectional(true).dropout(0.5)));
    dropout = register_module("dropout", std::make_shared<nn::Dropout>(0.5));
    fc1 = register_module("fc1", std::make_shared<nn::Linear>(2 * kHidden, 64));
    fc2 = register_module("fc2", std::make_shared<nn::Linear>(64, 2));
  }
  Output forward(const Tensor& tokens, const Tensor&) override {
    auto [out, state] = lstm->forward(embedding->forward(tokens));
    Tensor last = out.select(1, out.size(1) - 1);  // [B, 128]
    return {fc2->forward(relu(fc1->forward(dropout->forward(last)))), Tensor()};
  }
  bool uses_lengths() const override { return false; }

  std::shared_ptr<nn::Embedding> embedding;
  std::shared_ptr<nn::LSTM> lstm;
  std::shared_ptr<nn::Dropout> dropout;
  std::shared_ptr<nn::Linear> fc1, fc2;
};

/// `--model bilstm-improved`: the same LSTM, but given the lengths (padding never reaches the
/// classifier, the reverse direction starts at each review's last word), attention pooling over
/// the valid steps instead of one time step, and Word2Vec's vectors fine-tuned (a tenth of the
/// learning rate, see make_optimizer) with dropout on the embeddings.
class BiLSTMAttentionNet : public SentimentNet {
 public:
  BiLSTMAttentionNet(const std::vector<std::string>& vocab, const std::string& stopwords, const Tensor& vectors = {})
      : SentimentNet("BiLSTMAttentionNet", vocab, stopwords) {
    embedding = register_module("embedding", make_embedding(static_cast<int64_t>(vocab.size()), vectors, false));
    embed_dropout = register_module("embed_dropout", std::make_shared<nn::Dropout>(0.2));
    lstm = register_module("lstm", std::make_shared<nn::LSTM>(nn::LSTMOptions(kEmbedDim, kHidden).num_layers(2)
                                                                  .batch_first(true).bidirectional(true).dropout(0.3)));
    attention = register_module("attention",
                                std::make_shared<nn::AttentionPooling>(nn::AttentionPoolingOptions(2 * kHidden).hidden_size(64)));
    dropout = register_module("dropout", std::make_shared<nn::Dropout>(0.5));
    fc1 = register_module("fc1", std::make_shared<nn::Linear>(2 * kHidden, 64));
    fc2 = register_module("fc2", std::make_shared<nn::Linear>(64, 2));
  }
  Output forward(const Tensor& tokens, const Tensor& lengths) override {
    Tensor x = embed_dropout->forward(embedding->forward(tokens));
    auto [out, state] = lstm->forward(x, std::nullopt, lengths);
    auto [pooled, weights] = attention->forward(out, lengths);
    return {fc2->forward(relu(fc1->forward(dropout->forward(pooled)))), weights};
  }
  bool uses_lengths() const override { return true; }

  std::shared_ptr<nn::Embedding> embedding;
  std::shared_ptr<nn::Dropout> embed_dropout, dropout;
  std::shared_ptr<nn::LSTM> lstm;
  std::shared_ptr<nn::AttentionPooling> attention;
  std::shared_ptr<nn::Linear> fc1, fc2;
};

bool is_improved(const std::string& model) {
  if (model == "bilstm") return false;
  if (model == "bilstm-improved") return true;
  EMBER_FAIL("unknown model '", model, "' (expected bilstm, bilstm-improved or bert)");
}

std::shared_ptr<SentimentNet> make_model(const std::string& model, const std::vector<std::string>& vocab,
                                         const std::string& stopwords, const Tensor& vectors = {}) {
  if (is_improved(model)) return std::make_shared<BiLSTMAttentionNet>(vocab, stopwords, vectors);
  return std::make_shared<BiLSTMNet>(vocab, stopwords, vectors);
}

/// The vocabulary: <PAD> = 0, then (improved only) <UNK> = 1, then Word2Vec's words in its order.
/// Unknown words (in test texts only, since Word2Vec keeps every training word): the original maps
/// them to 0 like the padding, as bench/peers/torch_sentiment.py does (index.get(w, 0)), so they
/// keep their position as zero vectors; the improved model maps them to <UNK>, a zero row that is
/// never trained (no training word is unknown) but counts as a valid step.
text::Vocab make_vocab(const std::string& model, const std::vector<std::string>& tokens) {
  return text::Vocab(tokens, "<PAD>", is_improved(model) ? "<UNK>" : "<PAD>");
}

// ---- data --------------------------------------------------------------------------------------

// The review files themselves (Corpus, read_corpus: JSON lines or TSV) are read by corpus.hpp.

/// How texts become tokens: the recipe's options, and where jieba's and the stopword files are.
struct PrepOptions {
  std::string dict;       // jieba directory or dict.txt (empty: Debian's python3-jieba)
  std::string stopwords;  // empty: ../shared/data/stopwords/cn_stopwords.txt by the data lookup; "none": keep all
  bool skip_bad_lines = false;
  int threads = 0;
};

/// The stopword file the options name, or the standard one through the data lookup.
fs::path stopwords_path(const PrepOptions& o) {
  if (o.stopwords == "none") return {};
  if (!o.stopwords.empty()) {
    EMBER_CHECK(fs::is_regular_file(o.stopwords), "--stopwords: no file '", o.stopwords, "'");
    return o.stopwords;
  }
  fs::path p = fs::path(data::find_data_dir("", "stopwords")) / "cn_stopwords.txt";
  EMBER_CHECK(fs::is_regular_file(p), "no stopword list at '", p.string(), "': pass --stopwords FILE (or --stopwords none)");
  return p;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  EMBER_CHECK(in.good(), "cannot open '", p.string(), "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  return std::move(ss).str();
}

std::shared_ptr<const text::Segmenter> make_segmenter(const std::string& dict) {
  if (dict.empty() && !text::Segmenter::default_available())
    EMBER_FAIL("jieba's dictionary is not in ", text::kJiebaDir, ": apt-get install python3-jieba, or pass --dict PATH "
               "(a jieba folder or its dict.txt)");
  return std::make_shared<const text::Segmenter>(dict.empty() ? std::string(text::kJiebaDir) : dict);
}

/// The recipe: remove digit runs, t2s, jieba with HMM, drop stopwords (given as file content).
text::Preprocessor make_preprocessor(const std::string& dict, const std::string& stopword_text) {
  text::PreprocessOptions po;
  po.remove_digits(true).t2s(text::OpenCC("t2s.json")).hmm(true);
  po.stopwords(text::StopWords::parse(stopword_text, "the stopword list"));
  return text::Preprocessor(make_segmenter(dict), po);
}

/// The cache key of a preprocessed file: its path, size and modification time, the options and
/// the dictionary and stopword files (a changed file is preprocessed again).
std::string cache_key(const fs::path& file, const PrepOptions& o, const fs::path& stop) {
  auto stamp = [](const fs::path& p) -> std::string {
    std::error_code ec;
    if (p.empty() || !fs::exists(p, ec)) return "-";
    const auto t = fs::last_write_time(p, ec).time_since_epoch().count();
    return fs::absolute(p).string() + "|" + std::to_string(fs::file_size(p, ec)) + "|" + std::to_string(t);
  };
  const fs::path dict = o.dict.empty() ? fs::path(text::kJiebaDir) / "dict.txt"
                        : fs::is_directory(o.dict) ? fs::path(o.dict) / "dict.txt" : fs::path(o.dict);
  const std::string s = "review_sentiment tokens v1|" + stamp(file) + "|" + stamp(stop) + "|" + stamp(dict) +
                        "|digits,t2s,hmm|skip=" + std::to_string(o.skip_bad_lines);
  uint64_t h = 0xCBF29CE484222325ull;
  for (unsigned char ch : s) h = (h ^ ch) * 0x100000001B3ull;
  std::ostringstream os;
  os << file.stem().string() << "-" << std::hex << std::setw(16) << std::setfill('0') << h;
  return os.str();
}

/// Cache format: per text, a line "label ntokens nbytes", the text's nbytes, '\n', then one token
/// per line (tokens never hold whitespace: whitespace tokens are dropped).
void save_cache(const fs::path& path, const Corpus& c) {
  io::write_file_atomic(path.string(), "prep cache", [&](io::FileWriter& w) {
    std::string buf = "review_sentiment tokens v1 " + std::to_string(c.texts.size()) + " " + std::to_string(c.skipped) + " " +
                      std::to_string(c.repaired) + "\n";
    for (size_t i = 0; i < c.texts.size(); ++i) {
      buf += std::to_string(c.labels[i]) + " " + std::to_string(c.tokens[i].size()) + " " + std::to_string(c.texts[i].size()) + "\n";
      buf += c.texts[i];
      buf += '\n';
      for (const auto& t : c.tokens[i]) (buf += t) += '\n';
      if (buf.size() > (1 << 20)) {
        w.write(buf);
        buf.clear();
      }
    }
    w.write(buf);
  });
}

std::optional<Corpus> load_cache(const fs::path& path, const fs::path& file) {
  std::ifstream in(path, std::ios::binary);
  if (!in.good()) return std::nullopt;
  std::string magic[3];
  size_t n = 0;
  Corpus c;
  c.file = file;
  in >> magic[0] >> magic[1] >> magic[2] >> n >> c.skipped >> c.repaired;
  if (!in || magic[0] != "review_sentiment" || magic[2] != "v1") return std::nullopt;
  in.get();
  c.texts.resize(n), c.labels.resize(n), c.tokens.resize(n);
  for (size_t i = 0; i < n; ++i) {
    size_t ntok = 0, nbytes = 0;
    in >> c.labels[i] >> ntok >> nbytes;
    in.get();
    c.texts[i].resize(nbytes);
    in.read(c.texts[i].data(), static_cast<std::streamsize>(nbytes));
    in.get();
    c.tokens[i].resize(ntok);
    for (auto& t : c.tokens[i]) std::getline(in, t);
    if (!in) return std::nullopt;  // truncated: preprocess again
  }
  return c;
}

/// `file` read and preprocessed, from <out>/cache/ when it was done before with the same inputs.
Corpus prepare(const fs::path& file, const PrepOptions& o, const fs::path& out, bool quiet = false) {
  const fs::path stop = stopwords_path(o);
  const fs::path cached = out / "cache" / (cache_key(file, o, stop) + ".tokens");
  if (auto c = load_cache(cached, file)) {
    if (!quiet) std::cerr << file.string() << ": " << c->texts.size() << " texts (cached in " << cached.string() << ")\n";
    return *c;
  }
  Corpus c = read_corpus(file, o.skip_bad_lines);
  const auto t0 = std::chrono::steady_clock::now();
  text::Preprocessor prep = make_preprocessor(o.dict, stop.empty() ? std::string() : read_file(stop));
  utils::ProgressOptions po;
  po.unit = "text";
  utils::ProgressBar bar(static_cast<int64_t>(c.texts.size()), "prep " + file.filename().string(), po);
  constexpr size_t kChunk = 4096;
  c.tokens.reserve(c.texts.size());
  for (size_t b = 0; b < c.texts.size(); b += kChunk) {
    std::vector<std::string_view> chunk(c.texts.begin() + static_cast<std::ptrdiff_t>(b),
                                        c.texts.begin() + static_cast<std::ptrdiff_t>(std::min(c.texts.size(), b + kChunk)));
    for (auto& t : prep.process_many(chunk, o.threads)) c.tokens.push_back(std::move(t));
    bar.update(static_cast<int64_t>(chunk.size()));
  }
  bar.close();
  const double secs = seconds_since(t0);
  fs::create_directories(cached.parent_path());
  save_cache(cached, c);
  int64_t empty = 0, ntok = 0;
  for (const auto& t : c.tokens) empty += t.empty(), ntok += static_cast<int64_t>(t.size());
  if (!quiet)
    std::cerr << file.string() << ": " << c.texts.size() << " texts, " << ntok << " tokens, " << empty
              << " empty after preprocessing; " << fixed(secs, 2) << " s; cached in " << cached.string() << "\n";
  return c;
}

/// Encodes a corpus for the network: int64 [N, 1 + kMaxLen], column 0 the length (at least 1: a
/// text without tokens is one <PAD> of length 1, see text::Vocab), then the indices; and labels [N].
std::shared_ptr<data::TensorDataset> encode(const text::Vocab& vocab, const Corpus& c, const std::vector<int64_t>& rows = {}) {
  std::vector<std::vector<std::string>> docs;
  std::vector<int64_t> labels;
  const size_t n = rows.empty() ? c.tokens.size() : rows.size();
  docs.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const size_t r = rows.empty() ? i : static_cast<size_t>(rows[i]);
    docs.push_back(c.tokens[r]);
    labels.push_back(c.labels[r]);
  }
  EMBER_CHECK(!docs.empty(), c.file.string(), ": no texts to train or test on");
  text::EncodedBatch b = vocab.encode_batch(docs, text::EncodeOptions().max_len(kMaxLen).min_length(1));
  Tensor x = cat({b.lengths.unsqueeze(1), b.indices}, 1);
  return std::make_shared<data::TensorDataset>(x, tensor(labels, {static_cast<int64_t>(labels.size())}));
}

/// A batch's tokens and lengths; with `trim`, only up to its longest text (the improved model
/// never looks past a length, so the steps all of the batch pads are skipped).
std::pair<Tensor, Tensor> split(const Tensor& x, bool trim) {
  Tensor lengths = x.select(1, 0).contiguous();
  int64_t T = x.size(1) - 1;
  if (trim) T = std::max<int64_t>(1, lengths.max().item<int64_t>());
  return {x.narrow(1, 1, T).contiguous(), lengths};
}

/// The Word2Vec of the recipe: gensim's defaults (CBOW, negative 5, sample 1e-3, alpha 0.025 ->
/// 0.0001, 5 epochs) with vector_size 64, window 8, min_count 1.
text::Word2VecOptions w2v_options(int threads, uint64_t seed) {
  return text::Word2VecOptions().vector_size(kEmbedDim).window(kWindow).min_count(1).sg(false).negative(5).sample(1e-3)
      .epochs(5).seed(seed).workers(std::max(1, threads > 0 ? threads : static_cast<int>(std::thread::hardware_concurrency())));
}

/// Word2Vec on the training texts: <out>/word2vec.txt, reused when <out>/word2vec.json says it
/// was trained on the same preprocessed file with the same settings.
text::KeyedVectors word2vec(const Corpus& train, const fs::path& train_key, int threads, uint64_t seed, const fs::path& out,
                            bool binary = false) {
  const fs::path txt = out / "word2vec.txt", bin = out / "word2vec.bin", info = out / "word2vec.json";
  const nlohmann::json key = {{"corpus", train_key.string()}, {"vector_size", kEmbedDim}, {"window", kWindow},
                              {"min_count", 1}, {"sg", false}, {"negative", 5}, {"sample", 1e-3}, {"epochs", 5}, {"seed", seed}};
  if (fs::exists(txt) && fs::exists(info)) {
    auto j = nlohmann::json::parse(read_file(info), nullptr, false);
    if (j == key) {
      std::cerr << "Word2Vec: reusing " << txt.string() << " (same corpus and settings)\n";
      auto kv = text::KeyedVectors::load_word2vec_format(txt.string());
      if (binary && !fs::exists(bin)) kv.save_word2vec_format(bin.string(), true);
      return kv;
    }
  }
  std::cerr << "Word2Vec: training on " << train.tokens.size() << " texts (vector_size 64, window 8, min_count 1, CBOW)...\n";
  text::Word2Vec w2v(w2v_options(threads, seed));
  w2v.build_vocab(train.tokens);
  const text::Word2VecTrainStats st = w2v.train(train.tokens);
  std::cerr << "Word2Vec: " << w2v.wv().size() << " words, " << fixed(st.seconds, 1) << " s ("
            << fixed(st.raw_words_per_second() / 1e3, 0) << "k words/s)\n";
  fs::create_directories(out);
  w2v.wv().save_word2vec_format(txt.string(), false);
  if (binary) w2v.wv().save_word2vec_format(bin.string(), true);
  const std::string k = key.dump(1);
  io::write_file_atomic(info.string(), "word2vec.json", [&](io::FileWriter& w) { w.write(k); });
  return w2v.wv();
}

// ---- train() and test() ------------------------------------------------------------------------

/// Why train() returned.
enum class Stop { kEpochDone, kInterrupted, kMaxSteps };

/// The rest of epoch `pos.epoch` from batch `pos.batch` on; `after_step` logs and saves and says
/// whether to stop. Throws utils::Diverged on a non-finite loss, before the backward pass.
Stop train(SentimentNet& net, data::DataLoader& loader, optim::Optimizer& optimizer, Device device, const std::string& desc,
           utils::TrainPosition& pos, const std::function<std::optional<Stop>(double loss)>& after_step) {
  net.train();
  utils::ProgressOptions po;
  po.unit = "batch";
  utils::ProgressBar bar(loader.size(), desc, po);
  if (pos.batch > 0) bar.update(pos.batch);
  loader.set_epoch(pos.epoch, pos.batch);
  const auto t0 = std::chrono::steady_clock::now();
  int64_t texts = 0;
  for (auto& batch : loader) {
    auto [tokens, lengths] = split(batch.data, net.uses_lengths());
    tokens = tokens.to(device), lengths = lengths.to(device);
    Tensor y = batch.target.to(device);
    optimizer.zero_grad();
    Tensor logits = net.forward(tokens, lengths).logits;
    Tensor loss = F::cross_entropy(logits, y);
    const float loss_value = loss.item<float>();
    if (!std::isfinite(loss_value))
      throw utils::Diverged{"the loss is " + std::to_string(loss_value) + " at step " + std::to_string(pos.step + 1)};
    loss.backward();
    optimizer.step();
    const int64_t n = y.size(0);
    texts += n;
    pos.running.update(loss_value, static_cast<double>(utils::count_correct(logits, y)) / n, n);
    ++pos.batch;
    ++pos.step;
    const utils::EpochStats so_far = pos.running.stats();
    const double secs = seconds_since(t0);
    bar.update(1, {{"loss", so_far.loss}, {"acc", so_far.acc}, {"text/s", secs > 0 ? texts / secs : 0.0}});
    if (auto stop = after_step(loss_value)) {
      bar.close();
      return *stop;
    }
  }
  bar.close();
  return Stop::kEpochDone;
}

/// Loss and accuracy on a data set; fills `confusion` and `probs` (P(positive) per text) when given.
utils::EpochStats test(SentimentNet& net, data::DataLoader& loader, Device device,
                       utils::ConfusionMatrix* confusion = nullptr, std::vector<float>* probs = nullptr) {
  net.eval();
  NoGradGuard no_grad;
  double loss_sum = 0;
  int64_t correct = 0, count = 0;
  for (auto& batch : loader) {
    auto [tokens, lengths] = split(batch.data, net.uses_lengths());
    Tensor y = batch.target.to(device);
    Tensor logits = net.forward(tokens.to(device), lengths.to(device)).logits;
    loss_sum += F::cross_entropy(logits, y, nn::CrossEntropyLossOptions().reduction(nn::kSum)).item<double>();
    correct += utils::count_correct(logits, y);
    if (confusion) confusion->update(logits, y);
    if (probs)
      for (float p : softmax(logits, 1).select(1, 1).to(kCPU).contiguous().to_vector<float>()) probs->push_back(p);
    count += y.size(0);
  }
  if (count == 0) return {};
  return {loss_sum / static_cast<double>(count), static_cast<double>(correct) / static_cast<double>(count)};
}

// ---- shared command-line plumbing --------------------------------------------------------------

struct CommonOptions {
  std::string data;
  std::string dataset;  // empty: douban_reviews (or, for eval, the checkpoint's)
  std::string out = kDefaultOut;
  std::string checkpoint;
  int threads = 0;
  std::string device = "cpu";
  PrepOptions prep;
};

Device setup(CommonOptions& o) {
  const Device device = utils::setup_device(o.threads, o.device);
  o.prep.threads = get_num_threads();
  return device;
}

/// The data set folder (--data DIR holding train.jsonl and test.jsonl, else the standard lookup of
/// --dataset) and its train or test file (.jsonl, else .tsv).
fs::path data_file(const CommonOptions& o, const std::string& split_name) {
  const std::string name = o.dataset.empty() ? kDefaultDataset : o.dataset;
  const fs::path dir = data::find_data_dir(o.data, name);
  for (const char* ext : {".jsonl", ".tsv"})
    if (fs::is_regular_file(dir / (split_name + ext))) return dir / (split_name + ext);
  EMBER_FAIL("'", dir.string(), "' should hold ", split_name, ".jsonl (one {\"content\": ..., \"label\": 0|1} per line) or ",
             split_name, ".tsv (label<TAB>text)");
}

/// A checkpoint with its network, vocabulary and preprocessing.
struct LoadedModel {
  std::shared_ptr<SentimentNet> net;
  nlohmann::json meta;
  text::Vocab vocab;
  std::string stopwords;
  fs::path path;
};

LoadedModel load_model(const CommonOptions& o, Device device, const fs::path& default_path = {}) {
  const std::string given = o.checkpoint.empty() && !default_path.empty() ? default_path.string() : o.checkpoint;
  utils::TrainedCheckpoint c = utils::read_trained_checkpoint("review_sentiment", given, o.out, kDefaultOut);
  const io::Checkpoint& ckpt = c.ckpt;
  EMBER_CHECK(c.meta.is_object() && c.meta.contains("model") && ckpt.model.contains("vocab") && ckpt.model.contains("stopwords"),
              "checkpoint '", c.path.string(), "' was not written by review_sentiment train");
  std::vector<std::string> tokens;
  std::istringstream vs(SentimentNet::text(ckpt.model.at("vocab")));
  for (std::string t; std::getline(vs, t);) tokens.push_back(t);
  const std::string model = c.meta["model"].get<std::string>();
  LoadedModel m{make_model(model, tokens, SentimentNet::text(ckpt.model.at("stopwords"))), c.meta, make_vocab(model, tokens),
                SentimentNet::text(ckpt.model.at("stopwords")), c.path};
  utils::load_trained_weights(*m.net, ckpt.model, c.path, device);
  return m;
}

// ---- prep --------------------------------------------------------------------------------------

int run_prep(CommonOptions& common, const std::vector<std::string>& files) {
  setup(common);
  std::vector<fs::path> todo(files.begin(), files.end());
  if (todo.empty()) todo = {data_file(common, "train"), data_file(common, "test")};
  for (const auto& f : todo) {
    Corpus c = prepare(f, common.prep, common.out, true);
    int64_t empty = 0, ntok = 0, pos = 0;
    for (size_t i = 0; i < c.tokens.size(); ++i) {
      empty += c.tokens[i].empty();
      ntok += static_cast<int64_t>(c.tokens[i].size());
      pos += c.labels[i];
    }
    std::cout << f.string() << ": " << c.texts.size() << " texts (" << pos << " positive), " << ntok << " tokens, "
              << empty << " empty after preprocessing, " << c.skipped << " bad lines skipped\n";
  }
  return 0;
}

// ---- segment -----------------------------------------------------------------------------------

struct SegmentOptions {
  bool remove_digits = false, t2s = false;
  std::string stopwords, dict;
};

int run_segment(const std::vector<std::string>& files, const SegmentOptions& s, int threads) {
  std::vector<std::string> lines;
  auto read_lines = [&](std::istream& in) {
    for (std::string l; std::getline(in, l);) {
      if (!l.empty() && l.back() == '\r') l.pop_back();
      lines.push_back(std::move(l));
    }
  };
  if (files.empty()) {
    read_lines(std::cin);
  } else {
    for (const auto& f : files) {
      std::ifstream in(f, std::ios::binary);
      EMBER_CHECK(in.good(), "segment: cannot open '", f, "'");
      read_lines(in);
    }
  }
  text::PreprocessOptions po;
  po.remove_digits(s.remove_digits).hmm(true);
  if (s.t2s) po.t2s(text::OpenCC("t2s.json"));
  if (!s.stopwords.empty()) po.stopwords(text::StopWords::load(s.stopwords));
  text::Preprocessor prep(make_segmenter(s.dict), po);
  std::string out;
  for (const auto& toks : prep.process_many(lines, threads)) {
    for (size_t i = 0; i < toks.size(); ++i) (out += i ? " " : "") += toks[i];
    out += '\n';
  }
  std::cout << out;
  return 0;
}

// ---- word2vec ----------------------------------------------------------------------------------

int run_word2vec(CommonOptions& common, uint64_t seed, bool binary, const std::string& query) {
  setup(common);
  const fs::path train_file = data_file(common, "train");
  Corpus train = prepare(train_file, common.prep, common.out);
  const fs::path key = cache_key(train_file, common.prep, stopwords_path(common.prep));
  text::KeyedVectors kv = word2vec(train, key, common.prep.threads, seed, common.out, binary);
  std::cerr << "wrote " << (fs::path(common.out) / "word2vec.txt").string() << (binary ? " and word2vec.bin" : "") << "\n";
  if (!query.empty()) {
    EMBER_CHECK(kv.contains(query), "--query: '", query, "' is not among the ", kv.size(), " words of the vectors");
    for (const auto& [w, sim] : kv.most_similar(query, 10)) std::cout << w << " " << fixed(sim) << "\n";
  }
  return 0;
}

// ---- train -------------------------------------------------------------------------------------

struct TrainOptions {
  std::string model = "bilstm";
  int64_t epochs = 0;  // 0: the model's recipe (10)
  int64_t batch_size = kBatchSize;
  double lr = 0;       // 0: the model's recipe
  uint64_t seed = kSeed;
  bool resume = false;
  int64_t save_every = 0;
  int64_t max_steps = 0;
  std::vector<std::string> command;
  // --model bert and pretrain (bert_tasks.hpp)
  std::string pretrained, vocab;  // a Hugging Face BERT folder; a vocab.txt (default: bert-base-chinese's)
  int64_t max_length = 0;         // 0: 128
  int64_t warmup = -1;            // warm-up steps; -1: 10% of the schedule
  int64_t layers = 4, hidden = 256, heads = 4, intermediate = 1024;  // the small BERT
};

namespace bert_tasks {
inline int run_train_bert(CommonOptions& common, TrainOptions t);
}

/// Original: Adam over the trainable parameters (the embedding is frozen) + StepLR(2, 0.5).
/// Improved: AdamW, weight decay 0.01 on the LSTM and linear matrices, the embeddings fine-tuned
/// at a tenth of the learning rate without decay (Word2Vec's geometry is kept, only nudged);
/// the same StepLR.
std::unique_ptr<optim::Optimizer> make_optimizer(SentimentNet& net, const std::string& model, double lr) {
  if (!is_improved(model)) {
    std::vector<Tensor> params;
    for (auto& p : net.parameters())
      if (p.requires_grad()) params.push_back(p);
    return std::make_unique<optim::Adam>(params, optim::AdamOptions(lr));
  }
  std::vector<Tensor> embed, decay, no_decay;
  for (auto& [name, p] : net.named_parameters()) {
    if (name.rfind("embedding.", 0) == 0) embed.push_back(p);
    else (p.dim() > 1 ? decay : no_decay).push_back(p);
  }
  return std::make_unique<optim::AdamW>(std::vector<optim::ParamGroup>{
      optim::ParamGroup(decay, optim::AdamWOptions(lr).weight_decay(0.01)),
      optim::ParamGroup(no_decay, optim::AdamWOptions(lr).weight_decay(0.0)),
      optim::ParamGroup(embed, optim::AdamWOptions(lr * 0.1).weight_decay(0.0))});
}

int run_train(CommonOptions& common, TrainOptions t) {
  if (t.model == "bert" && !t.resume) return bert_tasks::run_train_bert(common, t);
  EMBER_CHECK(t.pretrained.empty() || t.resume, "--pretrained is for --model bert (this run: --model ", t.model, ")");
  const Device device = setup(common);
  const fs::path out = common.out;
  const fs::path last_path = out / "last.safetensors", best_path = out / "best.safetensors";
  const fs::path resume_path = common.checkpoint.empty() ? last_path : fs::path(common.checkpoint);
  fs::create_directories(out);

  nlohmann::json meta = nlohmann::json::object();
  if (t.resume) {
    EMBER_CHECK(fs::exists(resume_path), "--resume: no checkpoint at '", resume_path.string(), "'");
    meta = nlohmann::json::parse(io::read_checkpoint(resume_path.string()).info.metadata, nullptr, false);
    EMBER_CHECK(meta.is_object() && meta.contains("model") && meta.contains("dataset"), "--resume: '", resume_path.string(),
                "' was not written by review_sentiment train");
    if (meta["model"] == "bert") return bert_tasks::run_train_bert(common, t);
    t.model = meta["model"], t.batch_size = meta["batch_size"], t.seed = meta["seed"], t.lr = meta["lr"];
    if (common.dataset.empty()) common.dataset = meta["dataset"];
  }
  const bool improved = is_improved(t.model);
  if (t.epochs == 0) t.epochs = meta.value("epochs", kEpochs);
  if (t.lr == 0) t.lr = improved ? 2e-3 : kLr;
  if (common.dataset.empty()) common.dataset = kDefaultDataset;
  manual_seed(t.seed);

  // Data: preprocessed (cached), Word2Vec (cached), the vocabulary, the encoded sets.
  const fs::path train_file = data_file(common, "train"), test_file = data_file(common, "test");
  Corpus train_corpus = prepare(train_file, common.prep, out);
  Corpus test_corpus = prepare(test_file, common.prep, out);
  const fs::path stop = stopwords_path(common.prep);
  const std::string stop_text = stop.empty() ? std::string() : read_file(stop);

  std::shared_ptr<SentimentNet> net;
  std::vector<std::string> vocab_tokens;
  if (t.resume) {
    LoadedModel m = load_model(common, kCPU, resume_path);
    net = m.net;
    vocab_tokens = m.vocab.tokens();
  } else {
    text::KeyedVectors kv = word2vec(train_corpus, cache_key(train_file, common.prep, stop), common.prep.threads, t.seed, out);
    manual_seed(t.seed);  // the network's initialisation does not depend on whether Word2Vec was cached
    vocab_tokens = {"<PAD>"};
    if (improved) vocab_tokens.push_back("<UNK>");
    for (const auto& w : kv.words()) vocab_tokens.push_back(w);
    const int64_t specials = improved ? 2 : 1;
    Tensor vectors = cat({zeros({specials, kEmbedDim}), kv.vectors()}, 0);
    net = make_model(t.model, vocab_tokens, stop_text, vectors);
  }
  net->to(device);
  const text::Vocab vocab = make_vocab(t.model, vocab_tokens);

  // bilstm-improved: a seeded 5% of the training texts for validation (early stopping and the
  // choice of the best epoch); the test set is only reported.
  std::vector<int64_t> train_rows(train_corpus.tokens.size()), val_rows;
  std::iota(train_rows.begin(), train_rows.end(), 0);
  if (improved && train_rows.size() >= 20) {
    std::mt19937_64 rng(t.seed);
    std::shuffle(train_rows.begin(), train_rows.end(), rng);
    const size_t nval = std::max<size_t>(1, static_cast<size_t>(kValFraction * static_cast<double>(train_rows.size())));
    val_rows.assign(train_rows.begin(), train_rows.begin() + static_cast<std::ptrdiff_t>(nval));
    train_rows.erase(train_rows.begin(), train_rows.begin() + static_cast<std::ptrdiff_t>(nval));
    std::sort(train_rows.begin(), train_rows.end());
  }
  auto train_set = encode(vocab, train_corpus, train_rows);
  auto test_set = encode(vocab, test_corpus);
  std::shared_ptr<data::TensorDataset> val_set = val_rows.empty() ? nullptr : encode(vocab, train_corpus, val_rows);
  data::DataLoader train_loader(train_set, data::DataLoaderOptions(t.batch_size).shuffle(true).seed(t.seed));
  data::DataLoader test_loader(test_set, data::DataLoaderOptions(256));
  std::optional<data::DataLoader> val_loader;
  if (val_set) val_loader.emplace(val_set, data::DataLoaderOptions(256));

  auto optimizer = make_optimizer(*net, t.model, t.lr);
  auto scheduler = std::make_unique<optim::StepLR>(*optimizer, kStepSize, kGamma);

  utils::TrainPosition pos;
  double best_acc = -1, best_val = -1, best_test = 0;
  int64_t best_epoch = 0, stale = 0;
  for (const fs::path& p : {last_path, best_path}) io::remove_stale_temporaries(p.string());
  utils::MetricsLog log(out / "metrics");
  if (t.resume) {
    io::CheckpointInfo info = io::load_checkpoint(resume_path.string(), *net, *optimizer, *scheduler);
    pos.epoch = info.epoch;
    pos.step = info.step;
    utils::read_position(meta, pos);
    best_acc = meta.value("best_acc", -1.0), best_val = meta.value("best_val_acc", -1.0);
    best_test = meta.value("best_test_acc", 0.0), best_epoch = meta.value("best_epoch", 0), stale = meta.value("stale_epochs", 0);
    log = utils::MetricsLog::resume(out / "metrics", pos.epoch);
    std::cerr << "Resuming " << resume_path.string() << " at epoch " << pos.epoch + 1 << ", batch " << pos.batch << "\n";
  }
  utils::StepLog step_log(out / "steps.csv", t.resume ? pos.step : 0);
  std::cerr << net->summary()
            << (improved ? "AdamW lr " + fixed(t.lr, 4) + " (embeddings " + fixed(t.lr * 0.1, 5) + "), weight decay 0.01"
                         : "Adam lr " + fixed(t.lr, 4) + ", embeddings frozen")
            << ", StepLR(" << kStepSize << ", " << kGamma << "); vocabulary " << vocab.size() << "; "
            << train_set->size() << " training, " << (val_set ? val_set->size() : 0) << " validation and "
            << test_set->size() << " test texts; " << t.epochs << " epochs of " << train_loader.size() << " batches\n";

  int64_t saved_step = -1;
  double last_test_acc = meta.value("test_acc", 0.0);
  auto save = [&](const fs::path& path, double test_acc) {
    if (!utils::all_finite(*net)) throw utils::Diverged{"the weights hold NaN or Inf after step " + std::to_string(pos.step)};
    meta = {{"model", t.model},        {"dataset", common.dataset},  {"batch_size", t.batch_size},
            {"seed", t.seed},          {"lr", t.lr},                 {"epochs", t.epochs},
            {"max_len", kMaxLen},      {"vocab_size", vocab.size()}, {"best_acc", best_acc},
            {"best_val_acc", best_val}, {"best_test_acc", best_test}, {"best_epoch", best_epoch},
            {"stale_epochs", stale},   {"test_acc", test_acc},
            {"preprocess", "remove digits, OpenCC t2s, jieba HMM, stopwords"},
            {"classes", kClasses},     {"position", utils::position_json(pos)}};
    utils::save_or_fail(path, [&] { io::save_checkpoint(path.string(), *net, *optimizer, *scheduler, {pos.epoch, pos.step, meta.dump()}); });
    if (path == last_path) saved_step = pos.step;
  };
  auto stopped = [&](Stop why) {
    std::cerr << (why == Stop::kMaxSteps ? "Stopped after step " + std::to_string(pos.step) + " (--max-steps)"
                                         : "Interrupted after step " + std::to_string(pos.step))
              << "; saved " << last_path.string() << ". Resume with:\n  " << utils::resume_command(t.command) << "\n";
    return why == Stop::kMaxSteps ? 0 : utils::interrupt_exit_code();
  };

  utils::InterruptHandler interrupts;  // Ctrl-C: finish the step, save, exit 130
  try {
    auto after_step = [&](double loss) -> std::optional<Stop> {
      step_log.append(pos, static_cast<float>(loss), optimizer->param_groups()[0].options().get_lr());
      const bool stop = utils::interrupt_requested() || (t.max_steps > 0 && pos.step >= t.max_steps);
      if (stop || (t.save_every > 0 && pos.step % t.save_every == 0)) save(last_path, last_test_acc);
      if (utils::interrupt_requested()) return Stop::kInterrupted;
      if (t.max_steps > 0 && pos.step >= t.max_steps) return Stop::kMaxSteps;
      return std::nullopt;
    };
    while (pos.epoch < t.epochs && (!improved || stale < kPatience)) {
      const auto t0 = std::chrono::steady_clock::now();
      const Stop why = train(*net, train_loader, *optimizer, device,
                             "Epoch " + std::to_string(pos.epoch + 1) + "/" + std::to_string(t.epochs), pos, after_step);
      const double train_seconds = seconds_since(t0);
      if (why != Stop::kEpochDone) return stopped(why);
      const utils::EpochStats tr = pos.running.stats();
      const utils::EpochStats te = test(*net, test_loader, device);
      const utils::EpochStats va = val_loader ? test(*net, *val_loader, device) : utils::EpochStats{};
      scheduler->step();
      std::cout << "Epoch: " << pos.epoch + 1 << ", Train_acc:" << fixed(tr.acc) << ", Train_loss:" << fixed(tr.loss)
                << ", Test_acc:" << fixed(te.acc) << ", Test_loss:" << fixed(te.loss)
                << (val_loader ? ", Val_acc:" + fixed(va.acc) + ", Val_loss:" + fixed(va.loss) : std::string()) << std::endl;
      std::cerr << "  time: " << fixed(train_seconds, 1) << " s training\n";
      utils::MetricsLog::Row row{{"epoch", static_cast<double>(pos.epoch + 1)}, {"train_acc", tr.acc}, {"train_loss", tr.loss},
                                 {"test_acc", te.acc}, {"test_loss", te.loss}};
      if (val_loader) row.insert(row.end(), {{"val_acc", va.acc}, {"val_loss", va.loss}});
      row.insert(row.end(), {{"lr", optimizer->param_groups()[0].options().get_lr()}, {"epoch_seconds", train_seconds}});
      log.append(row);
      utils::plot_training_curves(out / "curves.png", log.column("train_loss"), log.column("test_loss"),
                                  log.column("train_acc"), log.column("test_acc"));
      // The best epoch: by validation accuracy when there is a validation split (its test
      // accuracy is the figure to report), else by test accuracy as the original does.
      const bool is_best = val_loader ? va.acc > best_val : te.acc > best_acc;
      if (is_best) {
        best_acc = std::max(best_acc, te.acc), best_val = va.acc, best_test = te.acc, best_epoch = pos.epoch + 1, stale = 0;
      } else {
        best_acc = std::max(best_acc, te.acc), ++stale;
      }
      pos = {pos.epoch + 1, 0, pos.step, {}};
      last_test_acc = te.acc;
      save(last_path, te.acc);
      if (is_best) save(best_path, te.acc);
      if (utils::interrupt_requested() && pos.epoch < t.epochs) return stopped(Stop::kInterrupted);
    }
    if (improved && stale >= kPatience && pos.epoch < t.epochs)
      std::cerr << "Early stop: no better validation accuracy for " << kPatience << " epochs\n";
  } catch (const utils::Diverged& d) {
    std::cerr << "error: training diverged: " << d.what << "; stopped without saving. "
              << (saved_step >= 0 ? "The last good checkpoint is " + last_path.string() + ". " : std::string())
              << "Try a lower --lr (this run: " << t.lr << ").\n";
    return kExitDiverged;
  }
  if (improved && best_val >= 0)
    std::cerr << "Best validation accuracy " << fixed(best_val) << " at epoch " << best_epoch << ", its test accuracy "
              << fixed(best_test) << "; ";
  else
    std::cerr << "Best test accuracy " << fixed(best_acc) << " (epoch " << best_epoch << "); ";
  std::cerr << "wrote " << best_path.string() << ", " << last_path.string() << ", metrics.csv, steps.csv, curves.png\n";
  const std::string settings = nlohmann::json{{"model", t.model}, {"dataset", common.dataset}, {"best_epoch", best_epoch},
                                              {"best_test_acc", improved ? best_test : best_acc}, {"best_val_acc", best_val},
                                              {"vocab_size", vocab.size()}, {"max_len", kMaxLen}, {"seed", t.seed},
                                              {"checkpoint", best_path.filename().string()}}.dump(1);
  io::write_file_atomic((out / "best.json").string(), "best.json", [&](io::FileWriter& w) { w.write(settings); });
  return 0;
}

// ---- eval --------------------------------------------------------------------------------------

/// At most `n` characters of `s` (UTF-8 aware), newlines as spaces.
std::string shorten(const std::string& s, size_t n) {
  std::u32string cps = text::utf8::decode(s);
  for (auto& c : cps) if (c == U'\n' || c == U'\r' || c == U'\t') c = U' ';
  if (cps.size() > n) cps = cps.substr(0, n) + U"…";
  return text::utf8::encode(cps);
}

/// The report of eval for any model: accuracy and loss, the confusion matrix (and confusion.png),
/// the ten most confident mistakes; `probs` holds P(positive) per text of `corpus`.
void report_eval(const CommonOptions& common, const fs::path& checkpoint, const std::string& model, const Corpus& corpus,
                 const fs::path& test_file, const utils::EpochStats& te, const utils::ConfusionMatrix& cm,
                 const std::vector<float>& probs, double secs) {
  std::cout << "Checkpoint: " << checkpoint.string() << " (" << model << ")\n"
            << "Test_acc:" << fixed(te.acc) << ", Test_loss:" << fixed(te.loss) << "  (" << probs.size() << " texts of "
            << test_file.string() << " in " << fixed(secs, 1) << " s)\n\n"
            << cm.to_string();
  // The most confident mistakes: the probability the model gave its wrong answer, highest first.
  std::vector<std::pair<float, size_t>> wrong;
  for (size_t i = 0; i < probs.size(); ++i) {
    const int64_t pred = probs[i] >= 0.5f ? 1 : 0;
    if (pred != corpus.labels[i]) wrong.push_back({pred ? probs[i] : 1 - probs[i], i});
  }
  std::sort(wrong.begin(), wrong.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  std::cout << "\nThe " << std::min<size_t>(10, wrong.size()) << " most confident mistakes (of " << wrong.size() << "):\n";
  for (size_t k = 0; k < std::min<size_t>(10, wrong.size()); ++k) {
    const auto& [p, i] = wrong[k];
    std::cout << "  true " << kClasses[static_cast<size_t>(corpus.labels[i])] << ", predicted "
              << kClasses[static_cast<size_t>(1 - corpus.labels[i])] << " " << fixed(p, 2) << ": " << shorten(corpus.texts[i], 80)
              << "\n";
  }
  const fs::path out = common.out;
  fs::create_directories(out);
  utils::plot_confusion_matrix(out / "confusion.png", cm, kClasses,
                               "Test accuracy " + fixed(100 * te.acc, 2) + " %");
  std::cerr << "wrote " << (out / "confusion.png").string() << "\n";
}

int run_eval(CommonOptions& common) {
  const Device device = setup(common);
  LoadedModel m = load_model(common, device);
  if (common.dataset.empty()) common.dataset = m.meta.value("dataset", std::string(kDefaultDataset));
  const fs::path test_file = data_file(common, "test");
  Corpus corpus = prepare(test_file, common.prep, common.out);
  auto test_set = encode(m.vocab, corpus);
  data::DataLoader loader(test_set, data::DataLoaderOptions(256));
  utils::ConfusionMatrix cm(2);
  std::vector<float> probs;
  const auto t0 = std::chrono::steady_clock::now();
  const utils::EpochStats te = test(*m.net, loader, device, &cm, &probs);
  const double secs = seconds_since(t0);
  report_eval(common, m.path, m.meta["model"].get<std::string>(), corpus, test_file, te, cm, probs, secs);
  return 0;
}

// ---- predict -----------------------------------------------------------------------------------

int run_predict(CommonOptions& common, std::vector<std::string> texts, bool explain) {
  const Device device = setup(common);
  LoadedModel m = load_model(common, device);
  if (texts.empty())
    for (std::string l; std::getline(std::cin, l);) {
      if (!l.empty() && l.back() == '\r') l.pop_back();
      texts.push_back(l);
    }
  // The checkpoint's own stopword list: prediction preprocesses exactly as training did.
  text::Preprocessor prep = make_preprocessor(common.prep.dict, m.stopwords);
  for (const auto& raw : texts) {
    Corpus c;
    c.texts = {text::utf8::sanitize(raw)};
    c.labels = {0};
    c.tokens = {prep(c.texts[0])};
    auto ds = encode(m.vocab, c);
    auto [tokens, lengths] = split(ds->data(), m.net->uses_lengths());
    Output o;
    {
      NoGradGuard no_grad;
      o = m.net->forward(tokens.to(device), lengths.to(device));
    }
    const float p = softmax(o.logits, 1).to(kCPU).select(0, 0).select(0, 1).item<float>();
    const int64_t k = p >= 0.5f ? 1 : 0;
    std::cout << kClasses[static_cast<size_t>(k)] << " " << fixed(k ? p : 1 - p, 2) << "\n";
    if (explain) {
      const auto& toks = c.tokens[0];
      if (!o.weights.defined()) {
        std::cout << "  words:";
        for (const auto& w : toks) std::cout << " " << w;
        std::cout << "\n  (the " << m.meta["model"].get<std::string>()
                  << " model has no attention weights: it reads the LSTM's output at the last of its 100 steps)\n";
        continue;
      }
      auto w = o.weights.to(kCPU).select(0, 0).contiguous().to_vector<float>();
      std::cout << " ";
      if (toks.empty()) std::cout << " (no words left after preprocessing)";
      for (size_t i = 0; i < toks.size() && i < w.size(); ++i)
        std::cout << " " << toks[i] << (m.vocab.contains(toks[i]) ? "" : "(<UNK>)") << ":" << fixed(w[i], 3);
      if (toks.size() > w.size()) std::cout << " (+" << toks.size() - w.size() << " words past the first " << kMaxLen << ")";
      std::cout << "\n";
    }
  }
  return 0;
}

// ---- BERT: pretrain, train --model bert, and eval/predict of its checkpoints ----------------------

#include "bert_tasks.hpp"

// ---- main --------------------------------------------------------------------------------------

void add_common(CLI::App* app, CommonOptions& o, bool reads_checkpoint) {
  app->add_option("--data", o.data, "Data folder with train.jsonl and test.jsonl (default: the --dataset folder in "
                                    "$EMBER_DATA, ../shared/data, ./data)");
  app->add_option("--dataset", o.dataset, "douban_reviews or chnsenticorp (default: douban_reviews; eval: the checkpoint's)")
      ->check(CLI::IsMember({"douban_reviews", "chnsenticorp"}));
  app->add_option("--out", o.out, "Output folder for checkpoints, caches, logs and plots")->capture_default_str();
  if (reads_checkpoint) app->add_option("--checkpoint", o.checkpoint, "Checkpoint to use (default: <out>/best.safetensors)");
  app->add_option("--threads", o.threads, "CPU threads (0: all cores)")->check(CLI::Range(0, 1 << 20));
  app->add_option("--device", o.device, "cpu or cuda")->check(CLI::IsMember({"cpu", "cuda"}))->capture_default_str();
  app->add_option("--dict", o.prep.dict, "jieba's dict.txt or its folder (default: " + std::string(text::kJiebaDir) + ")");
  app->add_option("--stopwords", o.prep.stopwords, "Stopword file, one word per line (default: stopwords/cn_stopwords.txt "
                                                   "by the data lookup; 'none' keeps every word)");
  app->add_flag("--skip-bad-lines", o.prep.skip_bad_lines, "Skip (and count) malformed lines instead of stopping");
}

int main(int argc, char** argv) {
  CLI::App app{"review_sentiment: Chinese review sentiment with jieba, Word2Vec and a BiLSTM, or BERT (tutorial 3)"};
  app.require_subcommand(1);
  CommonOptions common;
  TrainOptions t;
  t.command.assign(argv, argv + argc);

  CLI::App* prep_cmd = app.add_subcommand("prep", "Preprocess JSON-lines / TSV files into tokens (cached under <out>/cache/)");
  add_common(prep_cmd, common, false);
  std::vector<std::string> prep_files;
  prep_cmd->add_option("files", prep_files, "Files to preprocess (default: the data set's train and test files)");

  CLI::App* seg_cmd = app.add_subcommand("segment", "Segment texts (one per line, stdin or files) like jieba.cut(HMM=True)");
  SegmentOptions seg;
  std::vector<std::string> seg_files;
  int seg_threads = 0;
  seg_cmd->add_option("files", seg_files, "Text files, one text per line (default: stdin)");
  seg_cmd->add_flag("--remove-digits", seg.remove_digits, "Remove digit runs first (the recipe's re.sub(r'\\d+', ''))");
  seg_cmd->add_flag("--t2s", seg.t2s, "Traditional -> Simplified (OpenCC t2s) before segmenting");
  seg_cmd->add_option("--stopwords", seg.stopwords, "Drop the words of this file (one per line)");
  seg_cmd->add_option("--dict", seg.dict, "jieba's dict.txt or its folder");
  seg_cmd->add_option("--threads", seg_threads, "Threads (0: all cores)")->check(CLI::Range(0, 1 << 20));

  CLI::App* w2v_cmd = app.add_subcommand("word2vec", "Train Word2Vec on the preprocessed training texts");
  add_common(w2v_cmd, common, false);
  bool binary = false;
  std::string query;
  w2v_cmd->add_option("--seed", t.seed, "Seed")->capture_default_str();
  w2v_cmd->add_flag("--binary", binary, "Also write <out>/word2vec.bin (word2vec binary format)");
  w2v_cmd->add_option("--query", query, "Print the 10 nearest words of this word");

  CLI::App* train_cmd = app.add_subcommand("train", "Train (default: the original recipe)");
  add_common(train_cmd, common, true);
  train_cmd->add_option("--model", t.model, "bilstm (the original recipe), bilstm-improved or bert")
      ->check(CLI::IsMember({"bilstm", "bilstm-improved", "bert"}))->capture_default_str();
  train_cmd->add_option("--epochs", t.epochs, "Epochs (default 10, bert 5; bilstm-improved stops early)")->check(CLI::Range(int64_t{1}, int64_t{100000}));
  train_cmd->add_option("--batch-size", t.batch_size, "Batch size")->check(CLI::Range(int64_t{1}, int64_t{65536}))->capture_default_str();
  train_cmd->add_option("--lr", t.lr, "Learning rate (default: 1e-3 bilstm, 2e-3 bilstm-improved, 2e-5 bert)")->check(CLI::PositiveNumber);
  train_cmd->add_option("--pretrained", t.pretrained, "bert: a Hugging Face BERT folder to fine-tune (config.json, "
                                                      "model.safetensors, vocab.txt; e.g. pretrain's --out); without it a "
                                                      "randomly initialised small BERT");
  train_cmd->add_option("--seed", t.seed, "Seed of Word2Vec, weights, order and validation split")->capture_default_str();
  train_cmd->add_option("--save-every", t.save_every, "Also save <out>/last.safetensors every N steps")->check(CLI::NonNegativeNumber);
  train_cmd->add_option("--max-steps", t.max_steps, "Stop (saving) after N steps in total")->check(CLI::NonNegativeNumber);
  train_cmd->add_flag("--resume", t.resume, "Continue from <out>/last.safetensors (or --checkpoint) exactly where it stopped");

  auto add_bert = [&](CLI::App* cmd, bool pretraining) {
    cmd->add_option("--vocab", t.vocab, "BERT vocab.txt (default: bert-base-chinese/vocab.txt by the data lookup)");
    cmd->add_option("--max-length", t.max_length, "BERT: longest input in tokens, [CLS] and [SEP] included (default 128)")
        ->check(CLI::Range(int64_t{3}, int64_t{1} << 20));
    cmd->add_option("--warmup", t.warmup, "BERT: warm-up steps of the linear schedule (default: 10% of the steps)")
        ->check(CLI::NonNegativeNumber);
    const std::string small = pretraining ? "" : " (bert without --pretrained)";
    cmd->add_option("--layers", t.layers, "Transformer layers of the small BERT" + small)->check(CLI::Range(int64_t{1}, int64_t{64}))->capture_default_str();
    cmd->add_option("--hidden", t.hidden, "Hidden size of the small BERT" + small)->check(CLI::Range(int64_t{1}, int64_t{1} << 16))->capture_default_str();
    cmd->add_option("--heads", t.heads, "Attention heads of the small BERT" + small)->check(CLI::Range(int64_t{1}, int64_t{1} << 10))->capture_default_str();
    cmd->add_option("--intermediate", t.intermediate, "Feed-forward size of the small BERT" + small)->check(CLI::Range(int64_t{1}, int64_t{1} << 18))->capture_default_str();
  };
  add_bert(train_cmd, false);

  CLI::App* pre_cmd = app.add_subcommand("pretrain", "Masked-LM pre-training of a small BERT on the data sets' training texts");
  bert_tasks::PretrainData pretrain_data;
  std::string pretrain_out = "runs/review_sentiment/pretrain";
  pre_cmd->add_option("--data", pretrain_data.data, "Data folder(s) whose train.jsonl/train.tsv to read (repeatable)");
  pre_cmd->add_option("--dataset", pretrain_data.datasets, "douban_reviews and/or chnsenticorp (repeatable; default: both)")
      ->check(CLI::IsMember({"douban_reviews", "chnsenticorp"}));
  pre_cmd->add_option("--out", pretrain_out, "Output folder: the Hugging Face model folder, last.safetensors, logs, curves.png")
      ->capture_default_str();
  pre_cmd->add_option("--checkpoint", common.checkpoint, "Training state to resume (default: <out>/last.safetensors)");
  pre_cmd->add_option("--threads", common.threads, "CPU threads (0: all cores)")->check(CLI::Range(0, 1 << 20));
  pre_cmd->add_option("--device", common.device, "cpu or cuda")->check(CLI::IsMember({"cpu", "cuda"}))->capture_default_str();
  pre_cmd->add_flag("--skip-bad-lines", common.prep.skip_bad_lines, "Skip (and count) malformed lines instead of stopping");
  pre_cmd->add_option("--epochs", t.epochs, "Epochs (default 3)")->check(CLI::Range(int64_t{1}, int64_t{100000}));
  pre_cmd->add_option("--batch-size", t.batch_size, "Batch size")->check(CLI::Range(int64_t{1}, int64_t{65536}))->capture_default_str();
  pre_cmd->add_option("--lr", t.lr, "Peak learning rate of AdamW (default 5e-4)")->check(CLI::PositiveNumber);
  pre_cmd->add_option("--seed", t.seed, "Seed of weights, order, masks and the held-out texts")->capture_default_str();
  pre_cmd->add_option("--save-every", t.save_every, "Also save every N steps")->check(CLI::NonNegativeNumber);
  pre_cmd->add_option("--max-steps", t.max_steps, "Stop (saving) after N steps in total")->check(CLI::NonNegativeNumber);
  pre_cmd->add_flag("--resume", t.resume, "Continue from <out>/last.safetensors exactly where it stopped");
  add_bert(pre_cmd, true);

  CLI::App* eval_cmd = app.add_subcommand("eval", "Accuracy, loss, confusion matrix and the most confident mistakes");
  add_common(eval_cmd, common, true);
  eval_cmd->add_option("--vocab", t.vocab, "BERT checkpoints without vocab.txt: their vocabulary");

  CLI::App* predict_cmd = app.add_subcommand("predict", "negative/positive with its probability, per text");
  add_common(predict_cmd, common, true);
  std::vector<std::string> texts;
  bool explain = false;
  predict_cmd->add_option("texts", texts, "Texts (default: one per line from stdin)");
  predict_cmd->add_flag("--explain", explain, "Print the words with their attention weights (BERT: its tokens)");
  predict_cmd->add_option("--vocab", t.vocab, "BERT checkpoints without vocab.txt: their vocabulary");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    if (*prep_cmd) return run_prep(common, prep_files);
    if (*seg_cmd) return run_segment(seg_files, seg, seg_threads);
    if (*w2v_cmd) return run_word2vec(common, t.seed, binary, query);
    if (*train_cmd) return run_train(common, t);
    if (*pre_cmd) {
      common.out = pretrain_out;
      return bert_tasks::run_pretrain(common, t, pretrain_data);
    }
    if (*eval_cmd) {
      if (auto dir = bert_tasks::bert_checkpoint(common)) return bert_tasks::run_eval_bert(common, *dir, t.vocab);
      return run_eval(common);
    }
    if (*predict_cmd) {
      if (auto dir = bert_tasks::bert_checkpoint(common)) return bert_tasks::run_predict_bert(common, *dir, t.vocab, texts, explain);
      return run_predict(common, texts, explain);
    }
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 1;
}

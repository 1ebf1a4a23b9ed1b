// Command-line tests of examples/review_sentiment on a tiny generated review set (CMake passes the
// binary's path as EMBER_REVIEW_SENTIMENT_BIN; without it, or without jieba's dictionary from
// Debian's python3-jieba, every case says so and passes).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "ember/text/segmenter.hpp"
#include "run_program.hpp"
#include "kill_test.hpp"
#include "scratch_dir.hpp"

namespace {

using ember_test::shell_quote;

#ifdef EMBER_REVIEW_SENTIMENT_BIN
const std::string kBin = EMBER_REVIEW_SENTIMENT_BIN;
#else
const std::string kBin;
#endif

/// Whether the program can run here; otherwise a MESSAGE says why.
bool available() {
  if (kBin.empty()) {
    MESSAGE("skipped: review_sentiment was not built (needs CLI11, nlohmann-json, OpenCC and cairo)");
    return false;
  }
  if (!ember::text::Segmenter::default_available()) {
    MESSAGE("skipped: jieba's dictionary is absent (apt-get install python3-jieba)");
    return false;
  }
  return true;
}

void write(const std::string& path, const std::string& content) {
  std::ofstream f(path, std::ios::binary);
  f << content;
}

std::string json_line(const std::string& content, const std::string& label) {
  return "{\"content\": \"" + content + "\", \"stars\": null, \"label\": " + label + "}\n";
}

/// `n` reviews built from obviously positive or negative words (label = i % 2), a few in
/// traditional characters, plus the awkward ones: empty, only stopwords, only digits.
std::string make_reviews(int n, int offset) {
  const std::vector<std::string> pos{"精彩", "好看", "感人", "经典", "完美", "喜欢"};
  const std::vector<std::string> neg{"无聊", "难看", "失望", "垃圾", "糟糕", "浪费"};
  const std::vector<std::string> subject{"这部电影", "剧情", "演员", "导演", "画面"};
  std::string s;
  for (int i = 0; i < n; ++i) {
    const int k = i + offset;
    const auto& words = k % 2 ? pos : neg;
    std::string text = subject[static_cast<size_t>(k % 5)] + "很" + words[static_cast<size_t>(k % 6)] + "，" +
                       words[static_cast<size_t>((k / 2 + 1) % 6)];
    if (k % 17 == 0) text = k % 2 ? "這部電影很精彩，經典" : "這部電影太無聊，難看";  // traditional
    s += json_line(text, std::to_string(k % 2));
  }
  s += json_line("", "0");
  s += json_line("的了是很", "1");
  s += json_line("20190101 123", "0");
  return s;
}

/// A data folder with train.jsonl (200 reviews), test.jsonl (60) and a small stopword list.
void make_data(const ember_test::ScratchDir& d) {
  write(d / "data/train.jsonl", make_reviews(200, 0));
  write(d / "data/test.jsonl", make_reviews(60, 1000));
  write(d / "stop.txt", "的\n了\n是\n很\n太\n，\n");
}

bool has(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

}  // namespace

TEST_CASE("review_sentiment: bilstm-improved trains, evaluates, predicts and explains on tiny reviews") {
  if (!available()) return;
  namespace fs = std::filesystem;
  ember_test::ScratchDir d("review_sentiment");
  make_data(d);
  const std::string err = d / "stderr.txt", out = shell_quote((d.path() / "run").string());
  const std::string common = " --data " + shell_quote((d.path() / "data").string()) + " --stopwords " +
                             shell_quote(d / "stop.txt") + " --out " + out + " --threads 1";
  auto r = ember_test::run_program(shell_quote(kBin) + " train --model bilstm-improved --epochs 3 --batch-size 16 --lr 0.01" +
                                       common,
                                   err);
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(has(r.err, "BiLSTMAttentionNet"));
  CHECK(has(r.out, "Epoch: 3, Train_acc:"));
  CHECK(has(r.out, ", Val_acc:"));
  for (const char* f : {"best.safetensors", "last.safetensors", "best.json", "metrics.csv", "steps.csv", "curves.png", "word2vec.txt"})
    CHECK_MESSAGE(fs::exists(d.path() / "run" / f), f);
  // The words are unmistakable: the network must get nearly all of the test set right.
  const size_t at = r.out.rfind("Test_acc:");
  REQUIRE(at != std::string::npos);
  CHECK(std::stod(r.out.substr(at + 9, 6)) >= 0.9);
  CHECK(!has(r.out, "nan"));

  r = ember_test::run_program(shell_quote(kBin) + " eval" + common, err);
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(has(r.out, "Test_acc:"));
  CHECK(has(r.out, "most confident mistakes"));
  CHECK(fs::exists(d.path() / "run" / "confusion.png"));

  r = ember_test::run_program(shell_quote(kBin) + " predict --out " + out + " --explain 这部电影很精彩 這部電影太無聊，難看", err);
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(r.out.rfind("positive ", 0) == 0);
  CHECK(has(r.out, "\nnegative "));
  CHECK(has(r.out, "精彩:0."));  // each word with its attention weight
  CHECK(has(r.out, "无聊:0."));  // traditional input converted like the training texts
  // From stdin: an empty line and an all-stopwords line (no words left) give a finite answer.
  r = ember_test::run_program("printf '\\n的了\\n这部电影很好看\\n' | " + shell_quote(kBin) + " predict --explain --out " + out, err);
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(!has(r.out, "nan"));
  CHECK(has(r.out, "no words left"));
  CHECK(has(r.out, "好看:"));
}

TEST_CASE("review_sentiment: the original recipe trains and says it has nothing to explain; resume is exact") {
  if (!available()) return;
  namespace fs = std::filesystem;
  ember_test::ScratchDir d("review_sentiment_orig");
  make_data(d);
  const std::string err = d / "stderr.txt";
  auto slurp = [](const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  };
  const std::string train = shell_quote(kBin) + " train --epochs 2 --batch-size 32 --threads 1 --seed 3 --data " +
                            shell_quote((d.path() / "data").string()) + " --stopwords " + shell_quote(d / "stop.txt") +
                            " --out ";
  auto whole = ember_test::run_program(train + shell_quote((d.path() / "whole").string()), err);
  INFO(whole.err);
  REQUIRE(whole.code == 0);
  CHECK(has(whole.err, "BiLSTMNet"));
  CHECK(has(whole.out, "Epoch: 2, Train_acc:"));
  // Stopped inside epoch 2 (StepLR and Adam half-way), then resumed: the same losses and lines.
  const std::string split = shell_quote((d.path() / "split").string());
  auto first = ember_test::run_program(train + split + " --max-steps 9", err);
  INFO(first.err);
  REQUIRE(first.code == 0);
  CHECK(has(first.err, "--resume"));
  auto rest = ember_test::run_program(train + split + " --resume", err);
  INFO(rest.err);
  REQUIRE(rest.code == 0);
  CHECK(slurp(d.path() / "split/steps.csv") == slurp(d.path() / "whole/steps.csv"));
  CHECK(first.out + rest.out == whole.out);

  auto r = ember_test::run_program(shell_quote(kBin) + " predict --explain --out " + shell_quote((d.path() / "whole").string()) +
                                       " 这部电影很精彩",
                                   err);
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK((r.out.rfind("positive 0.", 0) == 0 || r.out.rfind("negative 0.", 0) == 0 || r.out.rfind("positive 1.", 0) == 0 ||
         r.out.rfind("negative 1.", 0) == 0));
  CHECK(has(r.out, "has no attention weights"));
}

TEST_CASE("review_sentiment: segment is jieba.cut with whitespace tokens dropped, plus the recipe's options") {
  if (!available()) return;
  ember_test::ScratchDir d("review_sentiment_seg");
  const std::string err = d / "stderr.txt";
  write(d / "texts.txt", "这部电影太好看了，强烈推荐！\n這部電影2019年上映  hello world\n\n");
  auto r = ember_test::run_program(shell_quote(kBin) + " segment " + shell_quote(d / "texts.txt"), err);
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(r.out == "这部 电影 太 好看 了 ， 强烈推荐 ！\n這部 電影 2019 年 上映 hello world\n\n");
  write(d / "stop.txt", "年\n");
  r = ember_test::run_program("printf '這部電影2019年上映\\n' | " + shell_quote(kBin) + " segment --t2s --remove-digits --stopwords " +
                                  shell_quote(d / "stop.txt"),
                              err);
  REQUIRE(r.code == 0);
  CHECK(r.out == "这部 电影 上映\n");
  r = ember_test::run_program("echo 好 | " + shell_quote(kBin) + " segment --dict " + shell_quote(d / "no_such_dict"), err);
  CHECK(r.code == 1);
  CHECK(has(r.err, "apt-get install python3-jieba"));
  CHECK(has(r.err, "--dict"));
}

TEST_CASE("review_sentiment: bad input files give file:line errors or counted skips, never a crash") {
  if (!available()) return;
  ember_test::ScratchDir d("review_sentiment_bad");
  const std::string err = d / "stderr.txt";
  write(d / "stop.txt", "的\n");
  const std::string prep = shell_quote(kBin) + " prep --stopwords " + shell_quote(d / "stop.txt") + " --out " +
                           shell_quote((d.path() / "run").string()) + " ";
  const std::string good = json_line("很好看", "1") + json_line("很难看", "0");

  write(d / "malformed.jsonl", good + "{\"content\": \"好\", \"label\": 1\n" + good);
  auto r = ember_test::run_program(prep + shell_quote(d / "malformed.jsonl"), err);
  CHECK(r.code == 1);
  CHECK_MESSAGE((has(r.err, "error: ") && has(r.err, "malformed.jsonl:3: malformed JSON")), r.err);
  r = ember_test::run_program(prep + "--skip-bad-lines " + shell_quote(d / "malformed.jsonl"), err);
  CHECK(r.code == 0);
  CHECK_MESSAGE(has(r.err, "skipped 1 bad line(s)"), r.err);
  CHECK_MESSAGE(has(r.out, "4 texts"), r.out);

  write(d / "nolabel.jsonl", good + "{\"content\": \"好\"}\n");
  r = ember_test::run_program(prep + shell_quote(d / "nolabel.jsonl"), err);
  CHECK(r.code == 1);
  CHECK_MESSAGE(has(r.err, "nolabel.jsonl:3: no \"label\" field"), r.err);

  write(d / "label2.jsonl", json_line("好", "2") + good);
  r = ember_test::run_program(prep + shell_quote(d / "label2.jsonl"), err);
  CHECK(r.code == 1);
  CHECK_MESSAGE(has(r.err, "label2.jsonl:1: label must be 0 or 1, got 2"), r.err);

  write(d / "tsv.tsv", "label\ttext\n1\t很好看\n0\t很难看\n3\t好\n");
  r = ember_test::run_program(prep + shell_quote(d / "tsv.tsv"), err);
  CHECK(r.code == 1);
  CHECK_MESSAGE(has(r.err, "tsv.tsv:4: label must be 0 or 1"), r.err);

  // Invalid UTF-8 is replaced (and counted), the line kept; a 1 MB review is just long.
  write(d / "utf8.jsonl", good + json_line("好\xff\xfe看", "1"));
  r = ember_test::run_program(prep + shell_quote(d / "utf8.jsonl"), err);
  CHECK(r.code == 0);
  CHECK_MESSAGE(has(r.err, "1 line(s) held invalid UTF-8"), r.err);
  CHECK(has(r.out, "3 texts"));
  std::string big;
  while (big.size() < (1u << 20)) big += "这部电影的剧情非常精彩，演员的表演也很好。";
  write(d / "big.jsonl", good + json_line(big, "1"));
  r = ember_test::run_program(prep + shell_quote(d / "big.jsonl"), err);
  INFO(r.err);
  CHECK(r.code == 0);
  CHECK(has(r.out, "3 texts"));

  // A missing jieba dictionary says where to get it.
  write(d / "fresh.jsonl", good);
  r = ember_test::run_program(prep + "--dict " + shell_quote(d / "nowhere/dict.txt") + " " + shell_quote(d / "fresh.jsonl"), err);
  CHECK(r.code == 1);
  CHECK_MESSAGE(has(r.err, "apt-get install python3-jieba"), r.err);
}

namespace {

/// A tiny BERT vocabulary: the five special tokens, then every character of the generated
/// reviews (traditional ones too) and a few others.
std::string tiny_vocab() {
  const std::string chars = "这部电影剧情演员导演画面很太精彩好看感人经典完美喜欢无聊难看失望垃圾糟糕浪费的了是，"
                            "這電劇情演員導畫無聊難經";
  std::string v = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n";
  std::vector<std::string> seen;
  for (size_t i = 0; i < chars.size();) {
    const auto c = static_cast<unsigned char>(chars[i]);
    const size_t n = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    const std::string ch = chars.substr(i, n);
    if (std::find(seen.begin(), seen.end(), ch) == seen.end()) seen.push_back(ch), v += ch + "\n";
    i += n;
  }
  return v + "0\n1\n2\n";
}

std::string slurp(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

/// The number after `key` in the last line of `out` that has it (NaN when absent).
double last_value(const std::string& out, const std::string& key) {
  const size_t at = out.rfind(key);
  return at == std::string::npos ? std::nan("") : std::stod(out.substr(at + key.size(), 8));
}

}  // namespace

TEST_CASE("review_sentiment: BERT pre-trains (resume exact), fine-tunes from its folder, evaluates and predicts") {
  if (kBin.empty()) {
    MESSAGE("skipped: review_sentiment was not built (needs CLI11, nlohmann-json, OpenCC and cairo)");
    return;
  }
  namespace fs = std::filesystem;
  ember_test::ScratchDir d("review_sentiment_bert");
  make_data(d);
  write(d / "vocab.txt", tiny_vocab());
  const std::string err = d / "stderr.txt";
  const std::string tiny = " --layers 1 --hidden 32 --heads 2 --intermediate 64 --max-length 32 --batch-size 16 --threads 1"
                           " --seed 3 --vocab " + shell_quote(d / "vocab.txt") + " --data " +
                           shell_quote((d.path() / "data").string());
  const std::string pretrain = shell_quote(kBin) + " pretrain --epochs 4 --lr 3e-3" + tiny + " --out ";

  // Four epochs in one go (13 batches each), and the same run stopped inside epoch 3 then resumed.
  const fs::path pt = d.path() / "pt";
  auto whole = ember_test::run_program(pretrain + shell_quote(pt.string()), err);
  INFO(whole.err);
  REQUIRE(whole.code == 0);
  CHECK(has(whole.err, "BertForMaskedLM: 1 layers, hidden 32"));
  CHECK(has(whole.out, "Epoch: 1, MLM_loss:"));
  CHECK(has(whole.out, "Epoch: 4, MLM_loss:"));
  CHECK(has(whole.out, ", Val_MLM_acc:"));
  CHECK(has(whole.err, "tokens/s"));
  for (const char* f : {"config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json", "last.safetensors",
                        "metrics.csv", "steps.csv", "curves.png"})
    CHECK_MESSAGE(fs::exists(pt / f), f);
  CHECK(has(slurp(pt / "config.json"), "\"BertForMaskedLM\""));
  CHECK(slurp(pt / "vocab.txt") == tiny_vocab());
  // The masked tokens come from ~40 characters: the loss must fall well below ln(45) = 3.8.
  const size_t first = whole.out.find("MLM_loss:");
  REQUIRE(first != std::string::npos);
  const double loss1 = std::stod(whole.out.substr(first + 9, 8)), loss2 = last_value(whole.out, ", MLM_loss:");
  CHECK(loss2 < loss1);
  CHECK(loss2 < 3.5);
  CHECK(!has(whole.out, "nan"));

  const fs::path split = d.path() / "split";
  auto part = ember_test::run_program(pretrain + shell_quote(split.string()) + " --max-steps 30", err);
  INFO(part.err);
  REQUIRE(part.code == 0);
  CHECK(has(part.err, "--resume"));
  auto rest = ember_test::run_program(pretrain + shell_quote(split.string()) + " --resume", err);
  INFO(rest.err);
  REQUIRE(rest.code == 0);
  CHECK(has(rest.err, "Resuming"));
  CHECK(slurp(split / "steps.csv") == slurp(pt / "steps.csv"));
  CHECK(part.out + rest.out == whole.out);
  CHECK(slurp(split / "model.safetensors") == slurp(pt / "model.safetensors"));

  // Fine-tuning the pre-trained folder: the classifier is new (and said so), the MLM head unused.
  const std::string out = shell_quote((d.path() / "ft").string());
  auto r = ember_test::run_program(shell_quote(kBin) + " train --model bert --epochs 5 --lr 3e-3 --pretrained " +
                                       shell_quote(pt.string()) + tiny + " --out " + out,
                                   err);
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(has(r.err, "newly initialized"));
  CHECK(has(r.err, "cls.predictions"));
  CHECK(has(r.out, "Epoch: 5, Train_acc:"));
  CHECK(has(r.out, ", Val_acc:"));
  for (const char* f : {"best/config.json", "best/model.safetensors", "best/vocab.txt", "best/review_sentiment.json",
                        "best.json", "last.safetensors", "metrics.csv", "curves.png"})
    CHECK_MESSAGE(fs::exists(d.path() / "ft" / f), f);
  CHECK(has(slurp(d.path() / "ft/best/config.json"), "\"positive\""));
  // Every review says what it is in one character pair: nearly all of the test set right.
  CHECK(last_value(r.out, "Test_acc:") >= 0.9);
  {  // Stopped inside epoch 3, then resumed (the --model comes from the checkpoint): the same run.
    const std::string ft = shell_quote(kBin) + " train --model bert --epochs 5 --lr 3e-3 --pretrained " + shell_quote(pt.string()) +
                           tiny + " --out " + shell_quote((d.path() / "ft_split").string());
    auto a = ember_test::run_program(ft + " --max-steps 27", err);
    INFO(a.err);
    REQUIRE(a.code == 0);
    CHECK(has(a.err, "Stopped after step 27"));
    auto b = ember_test::run_program(shell_quote(kBin) + " train --resume --threads 1 --out " +
                                         shell_quote((d.path() / "ft_split").string()) + " --data " +
                                         shell_quote((d.path() / "data").string()),
                                     err);
    INFO(b.err);
    REQUIRE(b.code == 0);
    CHECK(a.out + b.out == r.out);
    CHECK(slurp(d.path() / "ft_split/steps.csv") == slurp(d.path() / "ft/steps.csv"));
  }

  r = ember_test::run_program(shell_quote(kBin) + " eval --threads 1 --data " + shell_quote((d.path() / "data").string()) +
                                  " --out " + out,
                              err);
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(has(r.out, "(bert)"));
  CHECK(last_value(r.out, "Test_acc:") >= 0.9);
  CHECK(has(r.out, "most confident mistakes"));
  CHECK(has(r.err, "reviews/s"));
  CHECK(fs::exists(d.path() / "ft" / "confusion.png"));

  r = ember_test::run_program(shell_quote(kBin) + " predict --threads 1 --out " + out + " 这部电影很精彩，完美 剧情太无聊，糟糕", err);
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(r.out == "positive " + r.out.substr(9, 4) + "\nnegative " + r.out.substr(23, 4) + "\n");
  // stdin, an empty line, unknown characters and --explain (its tokens)
  r = ember_test::run_program("printf '\\nxyz 😀\\n这部电影很好看\\n' | " + shell_quote(kBin) + " predict --explain --checkpoint " +
                                  shell_quote((d.path() / "ft/best").string()),
                              err);
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(!has(r.out, "nan"));
  CHECK(has(r.out, "tokens: [CLS] [SEP]"));
  CHECK(has(r.out, "[UNK]"));
  CHECK(has(r.out, "tokens: [CLS] 这 部 电 影 很 好 看 [SEP]"));

  // Without --pretrained: the same small BERT randomly initialised (the comparison run).
  r = ember_test::run_program(shell_quote(kBin) + " train --model bert --epochs 1 --max-steps 3" + tiny + " --out " +
                                  shell_quote((d.path() / "rand").string()),
                              err);
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(has(r.err, "randomly initialised"));
  CHECK(has(r.err, "Stopped after step 3"));
}

TEST_CASE("review_sentiment: BERT bad inputs are clear errors") {
  if (kBin.empty()) {
    MESSAGE("skipped: review_sentiment was not built (needs CLI11, nlohmann-json, OpenCC and cairo)");
    return;
  }
  namespace fs = std::filesystem;
  ember_test::ScratchDir d("review_sentiment_bert_bad");
  make_data(d);
  write(d / "vocab.txt", tiny_vocab());
  const std::string err = d / "stderr.txt";
  const std::string data = " --threads 1 --data " + shell_quote((d.path() / "data").string());
  const std::string train = shell_quote(kBin) + " train --model bert --max-steps 1 --out " +
                            shell_quote((d.path() / "run").string()) + data + " --pretrained ";

  auto r = ember_test::run_program(train + shell_quote((d.path() / "nowhere").string()), err);
  CHECK(r.code == 1);
  CHECK_MESSAGE((has(r.err, "error: --pretrained") && has(r.err, "nowhere") && has(r.err, "is not a folder")), r.err);

  r = ember_test::run_program(shell_quote(kBin) + " train --model bilstm-improved --pretrained " + shell_quote(d.path().string()) + data, err);
  CHECK(r.code == 1);
  CHECK_MESSAGE(has(r.err, "--pretrained is for --model bert"), r.err);

  // A folder whose config.json is absurd (or incomplete), and one without weights.
  const std::string cfg = "{\"model_type\": \"bert\", \"vocab_size\": 48, \"hidden_size\": 32, \"num_hidden_layers\": 1, "
                          "\"intermediate_size\": 64, \"max_position_embeddings\": 64, \"type_vocab_size\": 2, ";
  write(d / "bad/vocab.txt", tiny_vocab());
  write(d / "bad/config.json", cfg + "\"num_attention_heads\": 5}");
  r = ember_test::run_program(train + shell_quote((d.path() / "bad").string()), err);
  CHECK(r.code == 1);
  CHECK_MESSAGE((has(r.err, "config.json") && has(r.err, "not a multiple of num_attention_heads")), r.err);
  write(d / "bad/config.json", cfg + "\"num_attention_heads\": -2}");
  r = ember_test::run_program(train + shell_quote((d.path() / "bad").string()), err);
  CHECK(r.code == 1);
  CHECK_MESSAGE(has(r.err, "num_attention_heads must be in [1,"), r.err);
  write(d / "bad/config.json", "{\"hidden_size\": 32}");
  r = ember_test::run_program(train + shell_quote((d.path() / "bad").string()), err);
  CHECK(r.code == 1);
  CHECK_MESSAGE(has(r.err, "missing field \"vocab_size\""), r.err);
  write(d / "bad/config.json", cfg + "\"num_attention_heads\": 2}");
  r = ember_test::run_program(train + shell_quote((d.path() / "bad").string()), err);
  CHECK(r.code == 1);
  CHECK_MESSAGE(has(r.err, "has no model.safetensors"), r.err);

  // A model whose embedding table is smaller than the vocabulary, and a --max-length past its positions.
  const std::string tiny = " --layers 1 --hidden 32 --heads 2 --intermediate 64 --max-length 32 --max-steps 1 --threads 1"
                           " --vocab " + shell_quote(d / "vocab.txt") + " --data " + shell_quote((d.path() / "data").string());
  const fs::path pt = d.path() / "pt";
  r = ember_test::run_program(shell_quote(kBin) + " pretrain" + tiny + " --out " + shell_quote(pt.string()), err);
  INFO(r.err);
  REQUIRE(r.code == 0);
  std::string config = slurp(pt / "config.json");
  const size_t at = config.find("\"vocab_size\": ");
  REQUIRE(at != std::string::npos);
  fs::create_directories(d.path() / "small");
  fs::copy_file(pt / "model.safetensors", d.path() / "small/model.safetensors");
  write(d / "small/vocab.txt", tiny_vocab() + "extra1\nextra2\nextra3\nextra4\nextra5\nextra6\nextra7\nextra8\n");
  write(d / "small/config.json", config);
  r = ember_test::run_program(train + shell_quote((d.path() / "small").string()), err);
  CHECK(r.code == 1);
  CHECK_MESSAGE((has(r.err, "tokens but the model's vocab_size is")), r.err);
  r = ember_test::run_program(train + shell_quote(pt.string()) + " --max-length 1000", err);
  CHECK(r.code == 1);
  CHECK_MESSAGE(has(r.err, "--max-length 1000 must be in [3, max_position_embeddings = 512]"), r.err);

  // eval of a folder that was pre-trained but never fine-tuned; a training state as --checkpoint.
  r = ember_test::run_program(shell_quote(kBin) + " eval --checkpoint " + shell_quote(pt.string()) + data, err);
  CHECK(r.code == 1);
  CHECK_MESSAGE(has(r.err, "is not a fine-tuned classifier"), r.err);
  r = ember_test::run_program(shell_quote(kBin) + " predict 好 --checkpoint " + shell_quote((pt / "last.safetensors").string()), err);
  CHECK(r.code == 1);
  CHECK_MESSAGE(has(r.err, "is a BERT training state"), r.err);
  // --resume without a checkpoint, and a vocabulary with a duplicate.
  r = ember_test::run_program(shell_quote(kBin) + " pretrain --resume --out " + shell_quote((d.path() / "none").string()), err);
  CHECK(r.code == 1);
  CHECK_MESSAGE(has(r.err, "--resume: no checkpoint"), r.err);
  write(d / "dup.txt", tiny_vocab() + "好\n");
  r = ember_test::run_program(shell_quote(kBin) + " pretrain --max-steps 1 --vocab " + shell_quote(d / "dup.txt") + data +
                                  " --out " + shell_quote((d.path() / "dup").string()),
                              err);
  CHECK(r.code == 1);
  CHECK_MESSAGE(has(r.err, "bad vocabulary file"), r.err);
}

TEST_CASE("review_sentiment: SIGKILL at random moments never loses a checkpoint, resume is exact (scripts/kill_test.sh)") {
  if (!available()) return;
  ember_test::ScratchDir d("review_kill");
#ifdef EMBER_SANITIZED
  ember_test::check_kill_test("review_sentiment", kBin, 2, 3, d.path());
#else
  ember_test::check_kill_test("review_sentiment", kBin, 5, 3, d.path());
#endif
}

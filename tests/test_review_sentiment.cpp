// Command-line tests of examples/review_sentiment on a tiny generated review set (CMake passes the
// binary's path as EMBER_REVIEW_SENTIMENT_BIN; without it, or without jieba's dictionary from
// Debian's python3-jieba, every case says so and passes).
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "ember/text/segmenter.hpp"
#include "run_program.hpp"
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

#include <doctest/doctest.h>

#include "ember/ember.hpp"
#include "ember/text/text.hpp"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "scratch_dir.hpp"

// text::Segmenter against jieba 0.42 (tests/golden/jieba/cases.json, written by
// tests/golden/make_jieba_golden.py): every golden text must segment exactly as jieba.cut does,
// with and without the HMM and with a user dictionary; plus errors and the batch API.
// Skipped (with a message) where Debian's python3-jieba is not installed.

namespace {

namespace text = ember::text;
using json = nlohmann::json;

const json& jieba_cases() {
  static const json cases = [] {
    std::ifstream in(std::string(EMBER_SOURCE_DIR) + "/tests/golden/jieba/cases.json");
    REQUIRE_MESSAGE(in.good(), "tests/golden/jieba/cases.json is missing");
    return json::parse(in);
  }();
  return cases;
}

// One segmenter for the whole file: loading jieba's dictionary takes a fraction of a second.
const text::Segmenter* default_segmenter() {
  static const std::unique_ptr<text::Segmenter> seg =
      text::Segmenter::default_available() ? std::make_unique<text::Segmenter>() : nullptr;
  return seg.get();
}

std::string show(const std::vector<std::string>& tokens) {
  std::string s;
  for (const auto& t : tokens) s += "[" + t + "]";
  return s;
}

// Compares every case of a golden section; reports each differing text with both token lists.
int count_mismatches(const text::Segmenter& seg, const json& cases, bool hmm) {
  int bad = 0;
  for (const auto& c : cases) {
    std::string t = c["text"];
    auto expected = c["tokens"].get<std::vector<std::string>>();
    auto got = seg.cut(t, hmm);
    if (got != expected) {
      ++bad;
      MESSAGE("text: ", t, "\n  jieba: ", show(expected), "\n  ember: ", show(got));
    }
  }
  return bad;
}

}  // namespace

TEST_CASE("Segmenter: jieba.cut(text, HMM=True) on the golden texts, 100% identical") {
  const text::Segmenter* seg = default_segmenter();
  if (!seg) {
    MESSAGE("skipped: jieba's dictionary not found under ", text::kJiebaDir, " (apt-get install python3-jieba)");
    return;
  }
  const json& cases = jieba_cases()["cut"];
  REQUIRE(cases.size() >= 150);
  CHECK(count_mismatches(*seg, cases, true) == 0);
}

TEST_CASE("Segmenter: jieba.cut(text, HMM=False) on golden texts") {
  const text::Segmenter* seg = default_segmenter();
  if (!seg) {
    MESSAGE("skipped: jieba's dictionary not found (apt-get install python3-jieba)");
    return;
  }
  const json& cases = jieba_cases()["cut_no_hmm"];
  REQUIRE(cases.size() >= 10);
  CHECK(count_mismatches(*seg, cases, false) == 0);
}

TEST_CASE("Segmenter: add_word, del_word (force split) and load_userdict as jieba") {
  if (!text::Segmenter::default_available()) {
    MESSAGE("skipped: jieba's dictionary not found (apt-get install python3-jieba)");
    return;
  }
  text::Segmenter seg;
  const json& user = jieba_cases()["user"];
  for (const auto& op : user["ops"]) {
    std::string kind = op[0], word = op[1];
    if (kind == "del") seg.del_word(word);
    else if (op[2].is_null()) seg.add_word(word);
    else seg.add_word(word, op[2].get<int64_t>());
  }
  ember_test::ScratchDir dir("segmenter_userdict");
  std::string path = (dir / "user.txt");
  std::ofstream(path, std::ios::binary) << user["userdict"].get<std::string>();
  seg.load_userdict(path);
  CHECK(count_mismatches(seg, user["cases"], true) == 0);
  CHECK(seg.frequency("B站") == 100);
  CHECK(seg.frequency("电影") == 0);
  // The default segmenter is untouched (no global state, unlike jieba's Force_Split_Words).
  if (const text::Segmenter* def = default_segmenter()) CHECK(def->segment("看电影") == std::vector<std::string>{"看", "电影"});
}

TEST_CASE("Segmenter: segment drops whitespace tokens; segment_many matches segment in order") {
  const text::Segmenter* seg = default_segmenter();
  if (!seg) {
    MESSAGE("skipped: jieba's dictionary not found (apt-get install python3-jieba)");
    return;
  }
  CHECK(seg->cut("好 看\r\n") == std::vector<std::string>{"好", " ", "看", "\r\n"});
  CHECK(seg->segment("好 看\r\n\u3000") == std::vector<std::string>{"好", "看"});
  CHECK(seg->segment("").empty());
  CHECK(seg->segment(" \t\n").empty());
  CHECK(text::Segmenter::is_whitespace_token("\xE3\x80\x80"));  // U+3000
  CHECK_FALSE(text::Segmenter::is_whitespace_token("a "));

  std::vector<std::string> texts;
  for (const auto& c : jieba_cases()["cut"]) texts.push_back(c["text"]);
  for (int threads : {1, 2, 3}) {
    auto many = seg->segment_many(texts, threads);
    REQUIRE(many.size() == texts.size());
    for (size_t i = 0; i < texts.size(); ++i) CHECK(many[i] == seg->segment(texts[i]));
  }
  CHECK(seg->segment_many(std::vector<std::string>{}, 2).empty());
}

TEST_CASE("Segmenter: invalid UTF-8 becomes U+FFFD tokens; a 1 MB text segments quickly") {
  const text::Segmenter* seg = default_segmenter();
  if (!seg) {
    MESSAGE("skipped: jieba's dictionary not found (apt-get install python3-jieba)");
    return;
  }
  CHECK(seg->cut("电影\xff\xfe好看") ==
        std::vector<std::string>{"电影", "\xEF\xBF\xBD", "\xEF\xBF\xBD", "好看"});
  CHECK(seg->cut("\xe7\x94") == std::vector<std::string>{"\xEF\xBF\xBD"});  // truncated 电
  // for_each_token hands out views of the text: they tile it exactly.
  std::string t = "我们在2019年看了《复仇者联盟》， it's great!";
  std::string joined;
  seg->for_each_token(t, [&](std::string_view tok) { joined += tok; });
  CHECK(joined == t);

  std::string big;
  while (big.size() < (1u << 20)) big += "这部电影太好看了，我们在电影院里看了三遍！Marvel 2019 ";
  auto start = std::chrono::steady_clock::now();
  auto tokens = seg->segment(big);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CHECK(tokens.size() > 100000);
  CHECK(secs < 5.0);
  // A single run of 20k characters without dictionary words goes through one Viterbi pass.
  std::string run;
  for (int i = 0; i < 20000; ++i) run += "\xE9\xBE\x98";  // 龘
  CHECK(!seg->segment(run).empty());
}

TEST_CASE("Segmenter: missing or malformed jieba files give clear errors") {
  ember_test::ScratchDir dir("segmenter_errors");
  CHECK_THROWS_WITH_AS(text::Segmenter((dir.path() / "nowhere").string()), doctest::Contains("apt-get install python3-jieba"),
                       ember::Error);
  std::string dict = (dir / "dict.txt");
  std::ofstream(dict) << "电影 100 n\n好看 50 a\n坏行\n";
  CHECK_THROWS_WITH_AS(text::Segmenter{dict}, doctest::Contains("line 3"), ember::Error);
  std::ofstream(dict) << "电影 100 n\n好看 -5 a\n";
  CHECK_THROWS_WITH_AS(text::Segmenter{dict}, doctest::Contains("non-negative integer"), ember::Error);
  std::ofstream(dict) << "电影 100 n\n好看 50 a\n";
  CHECK_THROWS_WITH_AS(text::Segmenter{dict}, doctest::Contains("prob_start.py' not found"), ember::Error);
  
  std::ofstream((dir / "finalseg/prob_start.py")) << "P={'B': -0.26, 'E': -3.14e+100, 'M': -3.14e+100, 'S': -1.46}\n";
  std::ofstream((dir / "finalseg/prob_trans.py"))
      << "P={'B': {'E': -0.51, 'M': -0.91},\n 'E': {'B': -0.58, 'S': -0.80},\n 'M': {'E': -0.33, 'M': -1.26},\n"
         " 'S': {'B': -0.72, 'S': -0.66}}\n";
  std::ofstream((dir / "finalseg/prob_emit.py")) << "P={'B': {'\\u7535': -3.0}, 'X': {'\\u7535': -1.0}}\n";
  CHECK_THROWS_WITH_AS(text::Segmenter{dict}, doctest::Contains("unknown HMM state"), ember::Error);
  std::ofstream((dir / "finalseg/prob_emit.py")) << "P={'B': {'\\u7535': -3.0,}, 'E': {'\\u5f71': -2.5}, 'S': {}}\n";
  // A tiny dictionary: 电影 is a word, 好看 too; the HMM tables are the toy ones above.
  text::Segmenter tiny(dict);
  CHECK(tiny.total() == 150);
  CHECK(tiny.num_entries() == 4);  // 电, 电影, 好, 好看
  CHECK(tiny.cut("电影好看") == std::vector<std::string>{"电影", "好看"});
  CHECK(tiny.frequency("电") == 0);
  std::ofstream((dir / "finalseg/prob_emit.py")) << "P={'B': {'\\u7535': -3.0 'E': {}}\n";
  CHECK_THROWS_WITH_AS(text::Segmenter{dict}, doctest::Contains("prob_emit.py"), ember::Error);
}

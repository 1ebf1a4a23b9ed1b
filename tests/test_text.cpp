#include <doctest/doctest.h>

#include "ember/ember.hpp"
#include "ember/text/text.hpp"

#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "scratch_dir.hpp"

// ember::text: UTF-8 (Python's decode(errors='replace') as golden), OpenCC t2s (both backends),
// stopwords, Vocab (order, save/load, errors, padded batches with lengths), remove_digits
// (Python's re.sub(r'\d+', '', s) as golden) and the preprocessing pipeline.

namespace {

namespace text = ember::text;
namespace utf8 = ember::text::utf8;
using json = nlohmann::json;

const json& text_cases() {
  static const json cases = [] {
    std::ifstream in(std::string(EMBER_SOURCE_DIR) + "/tests/golden/jieba/cases.json");
    REQUIRE_MESSAGE(in.good(), "tests/golden/jieba/cases.json is missing");
    return json::parse(in);
  }();
  return cases;
}

std::string from_hex(const std::string& h) {
  std::string out;
  for (size_t i = 0; i + 1 < h.size(); i += 2) out.push_back(static_cast<char>(std::stoi(h.substr(i, 2), nullptr, 16)));
  return out;
}

void write_file(const std::string& path, const std::string& content) {
  std::ofstream(path, std::ios::binary) << content;
}

}  // namespace

TEST_CASE("utf8::decode replaces maximal ill-formed subparts like Python's errors='replace'") {
  for (const auto& c : text_cases()["utf8"]) {
    std::string bytes = from_hex(c[0]);
    auto expected = c[1].get<std::vector<uint32_t>>();
    std::u32string got = utf8::decode(bytes);
    std::vector<uint32_t> g(got.begin(), got.end());
    CHECK_MESSAGE(g == expected, "bytes ", c[0].get<std::string>());
    CHECK(utf8::length(bytes) == expected.size());
    CHECK(utf8::is_valid(bytes) == (utf8::encode(got) == bytes));
  }
  // Hand-checked: overlong, surrogate, above U+10FFFF, truncated, stray continuation.
  CHECK(utf8::decode("\xC0\xAF") == U"\uFFFD\uFFFD");
  CHECK(utf8::decode("\xED\xA0\x80") == U"\uFFFD\uFFFD\uFFFD");
  CHECK(utf8::decode("\xF4\x90\x80\x80") == U"\uFFFD\uFFFD\uFFFD\uFFFD");
  CHECK(utf8::decode("a\xE7\x94") == U"a\uFFFD");
  CHECK(utf8::decode("\x80\xE7\x94\xB5") == U"\uFFFD电");
  CHECK(utf8::find_invalid("电影\xFF") == 6);
  CHECK(utf8::find_invalid("电影") == std::string_view::npos);
  CHECK(utf8::sanitize("a\xFF") == "a\xEF\xBF\xBD");
  CHECK(utf8::sanitize("ok") == "ok");
  CHECK_THROWS_WITH_AS(utf8::decode("ab\xFF", utf8::Utf8Errors::kStrict), doctest::Contains("invalid UTF-8 at byte 2"),
                       ember::Error);
  CHECK(utf8::decode(std::string_view("a\0b", 3)) == std::u32string(U"a\0b", 3));
}

TEST_CASE("utf8::encode round-trips scalar values and refuses surrogates") {
  std::u32string all = U"a\u00E9\u7535\U0001F600\U0010FFFF";
  CHECK(utf8::decode(utf8::encode(all)) == all);
  CHECK(utf8::encode(U'\u7535') == "电");
  CHECK(utf8::encode(char32_t{0}) == std::string(1, '\0'));
  CHECK_THROWS_WITH_AS(utf8::encode(char32_t{0xD800}), doctest::Contains("not a Unicode scalar value"), ember::Error);
  CHECK_THROWS_AS(utf8::encode(char32_t{0x110000}), ember::Error);
}

TEST_CASE("utf8 character classes: CJK, jieba's han range, Python's \\s and \\d") {
  CHECK(utf8::is_cjk_ideograph(U'电'));
  CHECK(utf8::is_cjk_ideograph(0x3400));   // extension A
  CHECK(utf8::is_cjk_ideograph(0x20000));  // extension B
  CHECK_FALSE(utf8::is_cjk_ideograph(U'，'));
  CHECK_FALSE(utf8::is_cjk_ideograph(U'a'));
  CHECK(utf8::is_jieba_han(0x9FD5));
  CHECK_FALSE(utf8::is_jieba_han(0x9FD6));
  CHECK(utf8::is_ascii_alnum('z'));
  CHECK_FALSE(utf8::is_ascii_alnum(U'ｚ'));
  for (char32_t c : {0x09, 0x0A, 0x0D, 0x1C, 0x20, 0x85, 0xA0, 0x2000, 0x200A, 0x3000}) CHECK(utf8::is_space(c));
  for (char32_t c : {0x08, 0x21, 0x200B, 0xFEFF, 0x7535}) CHECK_FALSE(utf8::is_space(c));
  CHECK(utf8::is_decimal_digit(U'7'));
  CHECK(utf8::is_decimal_digit(U'７'));
  CHECK(utf8::is_decimal_digit(0x0663));
  CHECK(utf8::is_decimal_digit(0x1D7FF));
  CHECK_FALSE(utf8::is_decimal_digit(U'²'));
  CHECK_FALSE(utf8::is_decimal_digit(U'①'));
  CHECK_FALSE(utf8::is_decimal_digit(U'〇'));
}

TEST_CASE("remove_digits matches Python's re.sub(r'\\d+', '', text)") {
  for (const auto& c : text_cases()["digits"]) {
    CHECK_MESSAGE(text::remove_digits(c[0].get<std::string>()) == c[1].get<std::string>(), c[0].get<std::string>());
  }
  CHECK(text::remove_digits("12\xFF" "3") == "\xEF\xBF\xBD");
}

#ifdef EMBER_HAVE_OPENCC
TEST_CASE("OpenCC t2s: known words, both backends agree, NUL and invalid bytes, threads") {
  text::OpenCC t2s;  // t2s.json
  REQUIRE(text::opencc_available());
  CHECK(t2s.backend() == text::OpenCCBackend::kTables);
  CHECK(t2s.convert("電影") == "电影");
  CHECK(t2s.convert("這部") == "这部");
  CHECK(t2s.convert("這部電影太好看了") == "这部电影太好看了");
  CHECK(t2s.convert("") == "");
  CHECK(t2s.convert("abc 123") == "abc 123");
  CHECK(t2s.convert(std::string("電\0影", 7)) == std::string("电\0影", 7));
  CHECK(t2s.convert("電\xFF影") == "电\xEF\xBF\xBD影");
  text::OpenCC lib("t2s.json", text::OpenCCBackend::kLibrary);
  CHECK(lib.backend() == text::OpenCCBackend::kLibrary);
  std::string longer = "這部電影很好看";
  CHECK(lib.convert(std::string_view(longer).substr(0, 6)) == "这部");  // a view that is not NUL-terminated
  std::vector<std::string> samples = {
      "這部電影真的太好看了，強烈推薦給大家，劇情緊湊，演員演技精湛", "乾隆皇帝下江南", "頭髮乾燥，著名的理髮師",
      "台灣的計程車和公車", "後來發現每張DVD後面都有！", "一個人在電影院裡看《復仇者聯盟》"};
  std::vector<std::string> expected;
  for (const auto& s : samples) {
    expected.push_back(lib.convert(s));
    CHECK(t2s.convert(s) == expected.back());
  }
  CHECK(expected[0] == "这部电影真的太好看了，强烈推荐给大家，剧情紧凑，演员演技精湛");
  // One converter shared by several threads (both backends).
  for (const text::OpenCC* cc : {&t2s, &lib}) {
    std::vector<int> ok(4, 0);
    std::vector<std::thread> threads;
    for (int w = 0; w < 4; ++w) {
      threads.emplace_back([&, w] {
        int good = 0;
        for (int r = 0; r < 50; ++r)
          for (size_t i = 0; i < samples.size(); ++i) good += cc->convert(samples[i]) == expected[i];
        ok[static_cast<size_t>(w)] = good;
      });
    }
    for (auto& t : threads) t.join();
    for (int g : ok) CHECK(g == 50 * static_cast<int>(samples.size()));
  }
  CHECK_THROWS_WITH_AS(text::OpenCC("no_such_config.json"), doctest::Contains("apt-get install opencc"), ember::Error);
}
#else
TEST_CASE("OpenCC without EMBER_HAVE_OPENCC: a clear error") {
  CHECK_FALSE(text::opencc_available());
  CHECK_THROWS_WITH_AS(text::OpenCC("t2s.json"), doctest::Contains("built without OpenCC"), ember::Error);
}
#endif

TEST_CASE("StopWords: one per line, trimmed like str.strip(), BOM and blank lines skipped") {
  ember_test::ScratchDir dir("stopwords");
  std::string path = dir / "stop.txt";
  write_file(path, "\xEF\xBB\xBF的\r\n  了 \n\n\t\xE3\x80\x80吗\xE3\x80\x80\r\nthe end\n   \n呢");
  auto sw = text::StopWords::load(path);
  CHECK(sw.size() == 5);
  for (const char* w : {"的", "了", "吗", "the end", "呢"}) CHECK_MESSAGE(sw.contains(w), w);
  CHECK_FALSE(sw.contains(""));
  CHECK_FALSE(sw.contains("the"));
  CHECK_FALSE(sw.contains("的\r"));
  text::StopWords small{"a", "b"};
  CHECK(small.contains("a"));
  write_file(path, "好\n\xFF\xFE\n");
  CHECK_THROWS_WITH_AS(text::StopWords::load(path), doctest::Contains("line 2 is not valid UTF-8"), ember::Error);
  CHECK_THROWS_WITH_AS(text::StopWords::load(dir / "missing.txt"), doctest::Contains("cannot open"), ember::Error);
  // parse(): the same rules on text in memory (a list stored in a checkpoint), named in errors.
  auto parsed = text::StopWords::parse("\xEF\xBB\xBF的\r\n  了 \n\n呢");
  CHECK(parsed.size() == 3);
  for (const char* w : {"的", "了", "呢"}) CHECK_MESSAGE(parsed.contains(w), w);
  CHECK_THROWS_WITH_AS(text::StopWords::parse("a\n\xFF\n", "the checkpoint's list"),
                       doctest::Contains("the checkpoint's list line 2 is not valid UTF-8"), ember::Error);
}

TEST_CASE("Vocab::build: specials first, count desc, ties first-seen or lexical, min_count, max_size") {
  text::TokenCounter counts;
  counts.update(std::vector<std::string>{"b", "a", "c", "a", "d", "c", "e", "<PAD>"});
  counts.add("a", 2);  // a: 4, c: 2, b: 1, d: 1, e: 1, <PAD>: 1
  CHECK(counts.count("a") == 4);
  CHECK(counts.count("zzz") == 0);
  auto v = text::Vocab::build(counts);
  CHECK(v.tokens() == std::vector<std::string>{"<PAD>", "<UNK>", "a", "c", "b", "d", "e"});
  CHECK(v.pad_index() == 0);
  CHECK(v.unk_index() == 1);
  auto lex = text::Vocab::build(counts, text::VocabOptions().order(text::VocabOrder::kLexical));
  CHECK(lex.tokens() == std::vector<std::string>{"<PAD>", "<UNK>", "a", "c", "b", "d", "e"});
  counts.add("0");  // count 1, seen last: lexically first among the ones
  CHECK(text::Vocab::build(counts, text::VocabOptions().order(text::VocabOrder::kLexical)).tokens()[4] == "0");
  CHECK(text::Vocab::build(counts).tokens()[4] == "b");
  auto m2 = text::Vocab::build(counts, text::VocabOptions().min_count(2));
  CHECK(m2.tokens() == std::vector<std::string>{"<PAD>", "<UNK>", "a", "c"});
  auto cap = text::Vocab::build(counts, text::VocabOptions().max_size(3));
  CHECK(cap.tokens() == std::vector<std::string>{"<PAD>", "<UNK>", "a"});
  auto pad_only = text::Vocab::build(counts, text::VocabOptions().specials({"<PAD>"}));
  CHECK(pad_only.tokens()[0] == "<PAD>");
  CHECK_FALSE(pad_only.unk_index().has_value());
  CHECK_THROWS_WITH_AS(pad_only.index("nope"), doctest::Contains("no unknown token"), ember::Error);
  CHECK(v.index("nope") == 1);
  CHECK(v["a"] == 2);
  CHECK(v.find("c") == 3);
  CHECK_FALSE(v.find("nope").has_value());
  CHECK(v.token(3) == "c");
  CHECK_THROWS_WITH_AS(v.token(7), doctest::Contains("out of range"), ember::Error);
  CHECK_THROWS_WITH_AS(text::Vocab::build(counts, text::VocabOptions().max_size(1)), doctest::Contains("max_size"),
                       ember::Error);
  CHECK_THROWS_WITH_AS(text::Vocab(std::vector<std::string>{"a", "b", "a"}), doctest::Contains("appears twice"),
                       ember::Error);
  CHECK_THROWS_WITH_AS(text::Vocab(std::vector<std::string>{"a", ""}), doctest::Contains("empty"), ember::Error);
  auto docs = text::Vocab::build(std::vector<std::vector<std::string>>{{"x", "y"}, {"y"}});
  CHECK(docs.tokens() == std::vector<std::string>{"<PAD>", "<UNK>", "y", "x"});
}

TEST_CASE("Vocab save/load round trip and errors on empty lines and duplicates") {
  ember_test::ScratchDir dir("vocab");
  text::Vocab v(std::vector<std::string>{"<PAD>", "<UNK>", "电影", "好看", " 空格 ", "a b"});
  std::string path = dir / "vocab.txt";
  v.save(path);
  auto back = text::Vocab::load(path);
  CHECK(back.tokens() == v.tokens());
  CHECK(back.pad_index() == 0);
  CHECK(back.unk_index() == 1);
  auto no_specials = text::Vocab::load(path, "[PAD]", "[UNK]");
  CHECK_FALSE(no_specials.pad_index().has_value());
  write_file(path, "<PAD>\r\n电影\r\n");  // CRLF accepted
  CHECK(text::Vocab::load(path).tokens() == std::vector<std::string>{"<PAD>", "电影"});
  write_file(path, "<PAD>\n电影\n\n好看\n");
  CHECK_THROWS_WITH_AS(text::Vocab::load(path), doctest::Contains("line 3 is empty"), ember::Error);
  write_file(path, "<PAD>\n电影\n好看\n电影\n");
  CHECK_THROWS_WITH_AS(text::Vocab::load(path), doctest::Contains("line 4: token '电影' already appeared on line 2"),
                       ember::Error);
  CHECK_THROWS_WITH_AS(text::Vocab(std::vector<std::string>{"a\nb"}).save(path), doctest::Contains("line break"),
                       ember::Error);
  CHECK_THROWS_WITH_AS(text::Vocab::load(dir / "missing.txt"), doctest::Contains("cannot open"), ember::Error);
  std::ofstream(dir / "empty.txt").flush();
  CHECK_THROWS_WITH_AS(text::Vocab::load(dir / "empty.txt"), doctest::Contains("is empty (expected one token per line)"),
                       ember::Error);
}

TEST_CASE("Vocab::encode_batch: padding, lengths, truncation, empty sequences") {
  text::Vocab v(std::vector<std::string>{"<PAD>", "<UNK>", "a", "b", "c"});
  using Seq = std::vector<std::string>;
  std::vector<Seq> batch = {{"a", "b", "c", "a"}, {}, {"c", "zzz"}};
  auto enc = v.encode_batch(batch, text::EncodeOptions().max_len(3));
  CHECK(enc.indices.dtype() == ember::kInt64);
  CHECK(enc.indices.sizes() == ember::Shape{3, 3});
  CHECK(enc.indices.to_vector<int64_t>() == std::vector<int64_t>{2, 3, 4, 0, 0, 0, 4, 1, 0});
  CHECK(enc.lengths.to_vector<int64_t>() == std::vector<int64_t>{3, 1, 2});  // empty → length 1 of <PAD>
  auto zero = v.encode_batch(batch, text::EncodeOptions().max_len(3).min_length(0));
  CHECK(zero.lengths.to_vector<int64_t>() == std::vector<int64_t>{3, 0, 2});
  auto last = v.encode_batch(batch, text::EncodeOptions().max_len(3).truncation(text::Truncation::kKeepLast));
  CHECK(last.indices.to_vector<int64_t>()[0] == 3);  // b c a
  auto tight = v.encode_batch(batch, text::EncodeOptions().max_len(10).pad_to_max_len(false));
  CHECK(tight.indices.sizes() == ember::Shape{3, 4});
  auto skip = v.encode_batch(batch, text::EncodeOptions().max_len(4).on_unknown(text::OnUnknown::kSkip));
  CHECK(skip.lengths.to_vector<int64_t>() == std::vector<int64_t>{4, 1, 1});
  CHECK_THROWS_WITH_AS(v.encode_batch(batch, text::EncodeOptions().on_unknown(text::OnUnknown::kError)),
                       doctest::Contains("'zzz' is not in the vocabulary"), ember::Error);
  auto empty_batch = v.encode_batch(std::vector<Seq>{}, text::EncodeOptions().max_len(5));
  CHECK(empty_batch.indices.sizes() == ember::Shape{0, 5});
  CHECK(v.encode(Seq{"b", "q"}) == std::vector<int64_t>{3, 1});
  text::Vocab nopad(std::vector<std::string>{"a", "b"});
  CHECK_THROWS_WITH_AS(nopad.encode_batch(batch), doctest::Contains("no padding token"), ember::Error);
  CHECK(nopad.encode_batch(std::vector<Seq>{{"a"}}, text::EncodeOptions().max_len(2).pad_index(1))
            .indices.to_vector<int64_t>() == std::vector<int64_t>{0, 1});
  CHECK_THROWS_WITH_AS(nopad.encode_batch(batch, text::EncodeOptions().pad_index(2)), doctest::Contains("out of range"),
                       ember::Error);
  CHECK_THROWS_WITH_AS(v.encode_batch(batch, text::EncodeOptions().max_len(0)), doctest::Contains("max_len"),
                       ember::Error);
  CHECK_THROWS_WITH_AS(v.encode_batch(batch, text::EncodeOptions().min_length(2)), doctest::Contains("min_length"),
                       ember::Error);
}

TEST_CASE("Preprocessor: digits, t2s, segmentation, stopwords; all-stopword reviews give no tokens") {
  if (!text::Segmenter::default_available()) {
    MESSAGE("skipped: jieba's dictionary not found under ", text::kJiebaDir, " (apt-get install python3-jieba)");
    return;
  }
  auto seg = std::make_shared<const text::Segmenter>();
  text::PreprocessOptions opts;
  opts.stopwords(text::StopWords{"了", "，", "太"});
#ifdef EMBER_HAVE_OPENCC
  opts.t2s(text::OpenCC("t2s.json"));
  std::string review = "這部電影2019年上映，太好看了";
#else
  std::string review = "这部电影2019年上映，太好看了";
#endif
  text::Preprocessor prep(seg, opts);
  CHECK(prep(review) == std::vector<std::string>{"这部", "电影", "年", "上映", "好看"});
  CHECK(prep("１２３ 了，了").empty());
  CHECK(prep("").empty());
  text::Preprocessor plain(seg, text::PreprocessOptions().remove_digits(false));
  CHECK(plain("2019年 电影") == std::vector<std::string>{"2019", "年", "电影"});
  std::vector<std::string> texts(300, review);
  texts[7] = "了";
  auto many = prep.process_many(texts, 2);
  REQUIRE(many.size() == 300);
  CHECK(many[0] == prep(review));
  CHECK(many[7].empty());
  CHECK(many[299] == many[0]);
  CHECK_THROWS_AS(text::Preprocessor(nullptr), ember::Error);
}

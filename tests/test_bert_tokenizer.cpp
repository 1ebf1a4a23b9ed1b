#include <doctest/doctest.h>

#include "ember/ember.hpp"
#include "ember/data/data_dir.hpp"
#include "ember/text/text.hpp"

#include <filesystem>
#include <functional>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "scratch_dir.hpp"

// text::BertTokenizer against Hugging Face's tokenizer (tests/golden/bert_tokenizer/cases.json,
// written by make_bert_tokenizer_golden.mjs with @huggingface/tokenizers): 100% identical ids on
// >= 2,000 reviews and the edge cases, with bert-base-chinese's vocabulary (skipped with a message
// where it is absent); plus hand-worked cases on a tiny vocabulary that always run: WordPiece,
// cleaning, CJK, lower-casing, truncation, padding, pairs, decode and bad vocabularies.

namespace {

namespace text = ember::text;
using json = nlohmann::json;
using text::BertEncodeOptions;
using text::BertTokenizer;
using text::BertTokenizerOptions;
using text::Padding;

// The bert-base-chinese folder through the data lookup (cwd-relative), else beside the sources.
std::string bert_chinese_dir() {
  namespace fs = std::filesystem;
  std::string dir;
  try {
    dir = ember::data::find_data_dir("", "bert-base-chinese");
  } catch (const ember::Error&) {
    fs::path p = fs::path(EMBER_SOURCE_DIR) / ".." / "shared" / "data" / "bert-base-chinese";
    std::error_code ec;
    if (fs::is_directory(p, ec)) dir = p.string();
  }
  std::error_code ec;
  if (!dir.empty() && !fs::exists(fs::path(dir) / "vocab.txt", ec)) dir.clear();
  return dir;
}

const BertTokenizer* chinese_tokenizer() {
  static const std::unique_ptr<BertTokenizer> tok = []() -> std::unique_ptr<BertTokenizer> {
    std::string dir = bert_chinese_dir();
    if (dir.empty()) return nullptr;
    auto t = BertTokenizer::from_pretrained(dir);
    BertTokenizerOptions o = t.options();
    o.warn(false);  // the golden texts longer than 512 tokens would print the notice
    return std::make_unique<BertTokenizer>(t.vocab(), o);
  }();
  return tok.get();
}

const json& golden() {
  static const json cases = [] {
    std::ifstream in(std::string(EMBER_SOURCE_DIR) + "/tests/golden/bert_tokenizer/cases.json");
    REQUIRE_MESSAGE(in.good(), "tests/golden/bert_tokenizer/cases.json is missing");
    return json::parse(in);
  }();
  return cases;
}

std::vector<int64_t> parse_ids(const std::string& s) {
  std::vector<int64_t> ids;
  std::istringstream in(s);
  int64_t v;
  while (in >> v) ids.push_back(v);
  return ids;
}

std::string show(const std::vector<int64_t>& ids) {
  std::string s;
  for (auto v : ids) s += (s.empty() ? "" : " ") + std::to_string(v);
  return s;
}

// Counts texts whose ids differ from the golden; prints the first few with both token lists.
int count_mismatches(const BertTokenizer& tok, const json& cases) {
  int bad = 0;
  for (const auto& c : cases) {
    std::string t = c[0];
    auto want = parse_ids(c[1]);
    auto got = tok.encode(t, BertEncodeOptions().truncation(false)).input_ids;  // the goldens are whole
    if (got != want && ++bad <= 10) {
      MESSAGE("text: ", t, "\n  HF:    ", show(want), "\n  ember: ", show(got));
    }
  }
  return bad;
}

#define BERT_SKIP_WITHOUT_VOCAB(tok)                                                                              \
  if (!(tok)) {                                                                                              \
    MESSAGE("skipped: bert-base-chinese/vocab.txt not found (looked through find_data_dir and ", EMBER_SOURCE_DIR, \
            "/../shared/data); put the Hugging Face folder there or set EMBER_DATA");                        \
    return;                                                                                                  \
  }

// A tiny vocabulary for the cases that must always run.
const std::vector<std::string> kTinyTokens = {
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un", "##aff", "##able", "hello", "world", ",", "!", ".", "?",
    "'", "s", "a", "##b", "b", "好", "看", "电", "影", "e", "cafe", "ab", "##c", "x", "ᄒ", "##ᅡ", "##ᆫ", "οδυσσευς",
    "σ", "ς", "i", "𠀀", "$", "^", "中", "、", "。"};

BertTokenizer tiny(BertTokenizerOptions o = BertTokenizerOptions().do_lower_case(true)) {
  return BertTokenizer(text::Vocab(kTinyTokens, "[PAD]", "[UNK]"), o.warn(false));
}

std::vector<std::string> toks(const BertTokenizer& t, std::string_view s) { return t.tokenize(s); }

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ember::Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("BertTokenizer: bert-base-chinese ids identical to Hugging Face on >= 2,000 reviews and edge cases") {
  const BertTokenizer* tok = chinese_tokenizer();
  BERT_SKIP_WITHOUT_VOCAB(tok);
  CHECK_FALSE(tok->options().do_lower_case());  // tokenizer_config.json says so
  CHECK(tok->options().model_max_length() == 512);
  REQUIRE(tok->vocab_size() == golden()["vocab"]["size"].get<int64_t>());
  const json& cases = golden()["single"];
  REQUIRE(cases.size() >= 2080);
  CHECK(count_mismatches(*tok, cases) == 0);
}

TEST_CASE("BertTokenizer: do_lower_case (lower-casing, accent stripping) identical to Hugging Face") {
  std::string dir = bert_chinese_dir();
  if (dir.empty()) {
    MESSAGE("skipped: bert-base-chinese/vocab.txt not found");
    return;
  }
  auto tok = BertTokenizer::from_vocab_file(dir + "/vocab.txt", BertTokenizerOptions().warn(false));
  const json& cases = golden()["lower"];
  REQUIRE(cases.size() >= 150);
  CHECK(count_mismatches(tok, cases) == 0);
}

TEST_CASE("BertTokenizer: pairs and decode identical to Hugging Face") {
  const BertTokenizer* tok = chinese_tokenizer();
  BERT_SKIP_WITHOUT_VOCAB(tok);
  int bad = 0;
  for (const auto& c : golden()["pairs"]) {
    auto e = tok->encode(c[0].get<std::string>(), c[1].get<std::string>(), BertEncodeOptions().truncation(false));
    bool ok = e.input_ids == parse_ids(c[2]) && e.token_type_ids == parse_ids(c[3]) &&
              e.attention_mask == std::vector<int64_t>(e.input_ids.size(), 1);
    if (!ok && ++bad <= 5) MESSAGE("pair: ", c[0], " | ", c[1], "\n  HF: ", c[2], "\n  ember: ", show(e.input_ids));
  }
  CHECK(bad == 0);
  bad = 0;
  for (const auto& c : golden()["decode"]) {
    std::string got = tok->decode(parse_ids(c[0]), c[1].get<bool>());
    if (got != c[2].get<std::string>() && ++bad <= 5) MESSAGE("decode ", c[0], "\n  HF: ", c[2], "\n  ember: ", got);
  }
  CHECK(bad == 0);
  CHECK(golden()["decode"].size() >= 100);
}

TEST_CASE("BertTokenizer: decode then encode gives the same ids (texts without [UNK])") {
  const BertTokenizer* tok = chinese_tokenizer();
  BERT_SKIP_WITHOUT_VOCAB(tok);
  int checked = 0, bad = 0;
  for (const auto& c : golden()["single"]) {
    auto ids = parse_ids(c[1]);
    if (std::find(ids.begin(), ids.end(), tok->unk_token_id()) != ids.end()) continue;
    ++checked;
    // Without the outer [CLS]/[SEP]; special tokens written in the text come back as text.
    std::vector<int64_t> inner(ids.begin() + 1, ids.end() - 1);
    std::string back = tok->decode(inner, /*skip_special_tokens=*/false, /*clean_up_tokenization_spaces=*/false);
    if (tok->encode(back, BertEncodeOptions().truncation(false)).input_ids != ids && ++bad <= 5) MESSAGE("round trip: ", c[0], " -> ", back);
  }
  CHECK(checked > 1500);
  CHECK(bad == 0);
}

TEST_CASE("BertTokenizer: WordPiece, cleaning, CJK, punctuation (hand-worked, tiny vocabulary)") {
  auto t = tiny();
  using V = std::vector<std::string>;
  // Hugging Face's docstring example, and a word WordPiece cannot cover at its end.
  CHECK(toks(t, "unaffable") == V{"un", "##aff", "##able"});
  CHECK(toks(t, "UNAffable!") == V{"un", "##aff", "##able", "!"});
  CHECK(toks(t, "unaffablex") == V{"[UNK]"});
  CHECK(toks(t, "abc") == V{"ab", "##c"});  // longest first: "ab" before "a"
  CHECK(toks(t, "hello,world") == V{"hello", ",", "world"});
  // ASCII symbols count as punctuation (HF's rule), CJK punctuation by category.
  CHECK(toks(t, "a$b^x") == V{"a", "$", "b", "^", "x"});
  CHECK(toks(t, "好、看。") == V{"好", "、", "看", "。"});
  // Every CJK ideograph is its own word, supplementary planes included (CJK Extension B).
  CHECK(toks(t, "a好看b") == V{"a", "好", "看", "b"});
  CHECK(toks(t, "a𠀀b") == V{"a", "𠀀", "b"});
  // Cleaning: NUL, U+FFFD, control and format characters (Cc Cf Co Cn) vanish; whitespace splits.
  CHECK(toks(t, std::string("a\0b", 3)) == V{"ab"});
  CHECK(toks(t, "a\u200Bb\uFEFF") == V{"ab"});
  CHECK(toks(t, "a\xCD\xB8" "b") == V{"ab"});        // U+0378, unassigned (Cn)
  CHECK(toks(t, "a\xFF" "b\xED\xA0\x80") == V{"ab"});  // invalid UTF-8 → U+FFFD → dropped
  CHECK(toks(t, "a\tb\u3000x\u2028e") == V{"a", "b", "x", "e"});
  CHECK(toks(t, "") == V{});
  CHECK(toks(t, " \t\n ") == V{});
  // Words longer than max_input_chars_per_word are one [UNK], counted in code points.
  auto t3 = tiny(BertTokenizerOptions().do_lower_case(true).max_input_chars_per_word(3));
  CHECK(toks(t3, "abc") == V{"ab", "##c"});
  CHECK(toks(t3, "abcb") == V{"[UNK]"});
  CHECK(toks(t3, "好看电影") == V{"好", "看", "电", "影"});
  // Special tokens written in the text stay whole (case-sensitive, leftmost-longest).
  CHECK(toks(t, "hello[MASK]world") == V{"hello", "[MASK]", "world"});
  CHECK(toks(t, "[mask]").front() == "[UNK]");
  CHECK(tiny().encode("[CLS]").input_ids == std::vector<int64_t>{2, 2, 3});
}

TEST_CASE("BertTokenizer: lower-casing and accents as Python's str.lower() and NFD") {
  auto t = tiny();
  using V = std::vector<std::string>;
  CHECK(toks(t, "Café") == V{"cafe"});
  CHECK(toks(t, "CAFE\u0301") == V{"cafe"});           // combining acute stripped
  CHECK(toks(t, "ΟΔΥΣΣΕΥΣ") == V{"οδυσσευς"});          // final sigma at the end of the word
  CHECK(toks(t, "Σ") == V{"σ"});                        // no cased letter before it
  CHECK(toks(t, "İ") == V{"i"});                        // İ → i + U+0307, then the mark is stripped
  CHECK(toks(t, "한") == V{"ᄒ", "##ᅡ", "##ᆫ"});         // Hangul decomposes to jamo under NFD
  // Without lower-casing nothing changes case and accents stay (bert-base-chinese's setting).
  auto cased = tiny(BertTokenizerOptions().do_lower_case(false));
  CHECK(toks(cased, "Café") == V{"[UNK]"});
  CHECK(toks(cased, "한") == V{"[UNK]"});
  auto strip_only = tiny(BertTokenizerOptions().do_lower_case(false).strip_accents(true));
  CHECK(toks(strip_only, "cafe\u0301") == V{"cafe"});
  auto keep = tiny(BertTokenizerOptions().do_lower_case(true).strip_accents(false));
  CHECK(toks(keep, "CAFÉ") == V{"[UNK]"});

  namespace bu = text::bert_unicode;
  CHECK(bu::is_punctuation(U'~'));
  CHECK(bu::is_punctuation(U'，'));
  CHECK_FALSE(bu::is_punctuation(U'中'));
  CHECK_FALSE(bu::is_punctuation(U'€'));  // Sc, not P
  CHECK(bu::is_control(0x7F));
  CHECK(bu::is_control(0x200D));
  CHECK_FALSE(bu::is_control(U'\t'));
  CHECK(bu::is_whitespace(0x3000));
  CHECK_FALSE(bu::is_whitespace(0x200B));
  CHECK(bu::is_chinese_char(0x2A700));
  CHECK_FALSE(bu::is_chinese_char(U'あ'));
}

TEST_CASE("BertTokenizer: [CLS]/[SEP], truncation, padding, pairs, masks and type ids") {
  auto t = tiny();
  // 8 word pieces: a b a b a b a b.
  const std::string eight = "a b a b a b a b";
  auto e = t.encode(eight);
  CHECK(e.input_ids == std::vector<int64_t>{2, 16, 18, 16, 18, 16, 18, 16, 18, 3});
  CHECK(e.attention_mask == std::vector<int64_t>(10, 1));
  CHECK(e.token_type_ids == std::vector<int64_t>(10, 0));
  CHECK(e.num_truncated == 0);

  auto tr = t.encode(eight, BertEncodeOptions().max_length(5));
  CHECK(tr.input_ids == std::vector<int64_t>{2, 16, 18, 16, 3});
  CHECK(tr.num_truncated == 5);
  auto untr = t.encode(eight, BertEncodeOptions().max_length(5).truncation(false));
  CHECK(untr.input_ids.size() == 10);

  auto pad = t.encode("a b", BertEncodeOptions().max_length(6).padding(Padding::kMaxLength));
  CHECK(pad.input_ids == std::vector<int64_t>{2, 16, 18, 3, 0, 0});
  CHECK(pad.attention_mask == std::vector<int64_t>{1, 1, 1, 1, 0, 0});
  CHECK(pad.token_type_ids == std::vector<int64_t>(6, 0));

  auto empty = t.encode("", BertEncodeOptions().max_length(4).padding(Padding::kMaxLength));
  CHECK(empty.input_ids == std::vector<int64_t>{2, 3, 0, 0});
  CHECK(empty.attention_mask == std::vector<int64_t>{1, 1, 0, 0});

  auto p = t.encode("a b", "x", BertEncodeOptions());
  CHECK(p.input_ids == std::vector<int64_t>{2, 16, 18, 3, 27, 3});
  CHECK(p.token_type_ids == std::vector<int64_t>{0, 0, 0, 0, 1, 1});

  // longest_first as Hugging Face tokenizers: lengths (first, second) kept for room = max_length - 3.
  auto kept = [&](int na, int nb, int max_length) {
    std::string a, b;
    for (int i = 0; i < na; ++i) a += "a ";
    for (int i = 0; i < nb; ++i) b += "x ";
    auto r = t.encode(a, b, BertEncodeOptions().max_length(max_length));
    int64_t ka = 0, kb = 0;
    for (size_t i = 0; i < r.input_ids.size(); ++i) {
      if (r.input_ids[i] == 16) ++ka;
      if (r.input_ids[i] == 27) ++kb;
    }
    CHECK(static_cast<int64_t>(r.input_ids.size()) == std::min(na + nb + 3, max_length));
    CHECK(r.num_truncated == na + nb - ka - kb);
    return std::pair<int64_t, int64_t>(ka, kb);
  };
  CHECK(kept(5, 3, 6) == std::pair<int64_t, int64_t>(2, 1));
  CHECK(kept(2, 10, 9) == std::pair<int64_t, int64_t>(2, 4));  // the short one kept whole
  CHECK(kept(10, 2, 9) == std::pair<int64_t, int64_t>(4, 2));
  CHECK(kept(4, 4, 8) == std::pair<int64_t, int64_t>(2, 3));   // even split, odd token to the second
  CHECK(kept(3, 3, 20) == std::pair<int64_t, int64_t>(3, 3));

  CHECK(error_of([&] { t.encode("a", "b", BertEncodeOptions().max_length(2)); }).find("special tokens alone take 3") !=
        std::string::npos);
}

TEST_CASE("BertTokenizer: batches as int64 [B, L] tensors") {
  auto t = tiny();
  std::vector<std::string> texts = {"a b a", "", "hello world , a b a b a b a b a b"};
  auto b = t.encode_batch(texts, BertEncodeOptions().padding(Padding::kLongest));
  CHECK(b.input_ids.sizes() == std::vector<int64_t>{3, 15});
  CHECK(b.input_ids.dtype() == ember::kInt64);
  CHECK(b.attention_mask.sum().item<int64_t>() == 5 + 2 + 15);
  CHECK(b.input_ids[1][0].item<int64_t>() == 2);
  CHECK(b.input_ids[1][1].item<int64_t>() == 3);
  CHECK(b.input_ids[1][2].item<int64_t>() == 0);
  CHECK(b.token_type_ids.sum().item<int64_t>() == 0);
  CHECK(b.num_truncated_texts == 0);

  auto m = t.encode_batch(texts, BertEncodeOptions().max_length(8).padding(Padding::kMaxLength));
  CHECK(m.input_ids.sizes() == std::vector<int64_t>{3, 8});
  CHECK(m.num_truncated_texts == 1);
  CHECK(m.input_ids[2][7].item<int64_t>() == 3);  // [SEP] kept at the end of a truncated row
  CHECK(m.attention_mask[2].sum().item<int64_t>() == 8);

  auto pairs = t.encode_batch(std::vector<std::pair<std::string, std::string>>{{"a", "b"}, {"a b", "x x x"}},
                              BertEncodeOptions().padding(Padding::kLongest));
  CHECK(pairs.input_ids.sizes() == std::vector<int64_t>{2, 8});
  CHECK(pairs.token_type_ids[1].sum().item<int64_t>() == 4);
  CHECK(pairs.token_type_ids[0].sum().item<int64_t>() == 2);

  CHECK(error_of([&] { t.encode_batch(texts); }).find("padding") != std::string::npos);
  CHECK(t.batch_decode(b.input_ids) == std::vector<std::string>{"a b a", "", "hello world, a b a b a b a b a b"});
}

TEST_CASE("BertTokenizer: decode joins ## pieces and cleans up spaces as Hugging Face") {
  auto t = tiny();
  CHECK(t.decode(t.encode("unaffable, hello!").input_ids) == "[CLS] unaffable, hello! [SEP]");
  CHECK(t.decode(t.encode("unaffable, hello!").input_ids, true) == "unaffable, hello!");
  CHECK(t.decode(t.encode("a ' s . ?").input_ids, true) == "a's.?");
  CHECK(t.decode(t.encode("a ' s . ?").input_ids, true, false) == "a ' s . ?");
  CHECK(t.decode({5, 6, 7}) == "unaffable");
  CHECK(t.decode({6, 5}) == "##aff un");  // a leading ## piece is kept as is
  CHECK(error_of([&] { t.decode({999}); }).find("out of range") != std::string::npos);
  CHECK(BertTokenizer::clean_up_tokenization("do n't , I 'm") == "don't, I'm");
}

TEST_CASE("BertTokenizer: bad vocabularies and configs give errors naming the file and line") {
  ember_test::ScratchDir dir("bert_tok");
  auto write = [&](const std::string& name, const std::string& content) {
    std::string p = dir / name;
    std::ofstream(p, std::ios::binary) << content;
    return p;
  };
  std::string dup = write("dup.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\nworld\nhello\n");
  std::string err = error_of([&] { BertTokenizer::from_vocab_file(dup); });
  CHECK(err.find(dup) != std::string::npos);
  CHECK(err.find("line 8") != std::string::npos);
  CHECK(err.find("line 6") != std::string::npos);

  std::string blank = write("blank.txt", "[PAD]\n[UNK]\n\n[CLS]\n[SEP]\n[MASK]\n");
  err = error_of([&] { BertTokenizer::from_vocab_file(blank); });
  CHECK(err.find(blank) != std::string::npos);
  CHECK(err.find("line 3 is empty") != std::string::npos);

  std::string nomask = write("nomask.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n");
  err = error_of([&] { BertTokenizer::from_vocab_file(nomask); });
  CHECK(err.find("[MASK]") != std::string::npos);
  CHECK(err.find(nomask) != std::string::npos);

  CHECK(error_of([&] { BertTokenizer::from_vocab_file(dir / "missing.txt"); }).find("cannot open") != std::string::npos);

  // A folder whose tokenizer_config.json renames a special token that the vocabulary lacks.
  std::string folder = (dir.path() / "model").string();
  write("model/vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\n");
  write("model/tokenizer_config.json", R"({"do_lower_case": "yes"})");
  CHECK(error_of([&] { BertTokenizer::from_pretrained(folder); }).find("do_lower_case") != std::string::npos);
  write("model/tokenizer_config.json", R"({"do_lower_case": false, "mask_token": "<mask>"})");
  CHECK(error_of([&] { BertTokenizer::from_pretrained(folder); }).find("'<mask>'") != std::string::npos);
  write("model/tokenizer_config.json", R"({"do_lower_case": false, "model_max_length": 1000000000000000019884624838656})");
  write("model/config.json", R"({"max_position_embeddings": 64})");
  auto ok = BertTokenizer::from_pretrained(folder);
  CHECK_FALSE(ok.options().do_lower_case());
  CHECK(ok.options().model_max_length() == 64);
  write("model/config.json", R"({"max_position_embeddings": -3})");
  CHECK(error_of([&] { BertTokenizer::from_pretrained(folder); }).find("absurd") != std::string::npos);
  write("model/config.json", "{not json");
  CHECK(error_of([&] { BertTokenizer::from_pretrained(folder); }).find("not a JSON object") != std::string::npos);
}

TEST_CASE("BertTokenizer: texts longer than every limit are truncated, counted, never a crash") {
  auto t = tiny();
  std::string huge;
  for (int i = 0; i < 20000; ++i) huge += "好看 ";
  huge += std::string(5000, 'a');  // one 5,000-character word → [UNK]
  auto e = t.encode(huge);           // default: model_max_length (512)
  CHECK(e.input_ids.size() == 512);
  CHECK(e.input_ids.back() == t.sep_token_id());
  CHECK(e.num_truncated == 40001 - 510);
  auto b = t.encode_batch({huge, "a"}, BertEncodeOptions().max_length(16).padding(Padding::kLongest));
  CHECK(b.input_ids.sizes() == std::vector<int64_t>{2, 16});
  CHECK(b.num_truncated_texts == 1);
}

#undef BERT_SKIP_WITHOUT_VOCAB

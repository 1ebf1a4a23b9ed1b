// libFuzzer target: the sentiment tutorial's reader of review files (examples/review_sentiment/
// corpus.hpp: JSON lines {"content": ..., "label": 0|1} or TSV label<TAB>text), as the program
// calls it. Byte 0 picks the extension (.jsonl, .tsv, .txt, .json: JSON lines unless .tsv/.txt)
// and --skip-bad-lines; the rest is the file. It must either throw ember::Error (a bad line without
// --skip-bad-lines, naming file:line) or give as many texts as labels, labels 0 or 1, valid UTF-8
// texts, and no skipped line unless asked to skip.
#include <iostream>
#include <streambuf>

#include "../../examples/review_sentiment/corpus.hpp"
#include "fuzz_common.hpp"

namespace {
// read_corpus reports skipped and repaired lines on std::cerr; the fuzzer's own output stays readable.
struct NullBuffer : std::streambuf {
  int overflow(int c) override { return c; }
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static NullBuffer null;
  static std::streambuf* const original = std::cerr.rdbuf(&null);
  (void)original;
  if (size == 0) return 0;
  const char* const kExtensions[] = {".jsonl", ".tsv", ".txt", ".json"};
  const bool skip_bad_lines = data[0] & 1;
  const std::string base = ember::fuzz::write_scratch("review_corpus", data + 1, size - 1);
  const std::string path = base + kExtensions[(data[0] >> 1) % 4];
  std::filesystem::rename(base, path);
  try {
    review_sentiment::Corpus c = review_sentiment::read_corpus(path, skip_bad_lines);
    if (c.texts.size() != c.labels.size() || !c.tokens.empty()) __builtin_trap();
    for (int64_t l : c.labels)
      if (l != 0 && l != 1) __builtin_trap();
    for (const auto& t : c.texts)
      if (!ember::text::utf8::is_valid(t)) __builtin_trap();
    if (!skip_bad_lines && c.skipped != 0) __builtin_trap();
    if (c.skipped < 0 || c.repaired < 0) __builtin_trap();
  } catch (const ember::Error&) {
  }
  std::filesystem::remove(path);
  return 0;
}

// libFuzzer target: the small text files of the sentiment tutorial. The first byte picks the reader
// of the other bytes:
//   0: text::Vocab::load (one token per line; empty lines and duplicates are errors)
//   1: text::StopWords::load
//   2: Segmenter::load_userdict (jieba's user dictionary), then a cut
//   3: text cut by a segmenter with a tiny dictionary and toy HMM tables (the tokens of valid
//      UTF-8 must cover it exactly)
//   4: jieba's dict.txt (Segmenter's constructor, with the toy HMM tables)
//   5: jieba's prob_emit.py (the Python-dict parser of the HMM tables)
#include <filesystem>
#include <fstream>

#include "ember/text/segmenter.hpp"
#include "ember/text/stopwords.hpp"
#include "ember/text/vocab.hpp"
#include "fuzz_common.hpp"

namespace {

namespace fs = std::filesystem;

// A jieba folder (dict.txt, finalseg/prob_*.py) with a tiny dictionary, written once per process.
const fs::path& tiny_jieba() {
  static const fs::path dir = [] {
    fs::path d = ember::fuzz::scratch_path("jieba");
    fs::create_directories(d / "finalseg");
    std::ofstream(d / "dict.txt") << "电影 100 n\n好看 50 a\n很 80 d\n这部 20 r\n不 90 d\n";
    std::ofstream(d / "finalseg/prob_start.py") << "P={'B': -0.26, 'E': -3.14e+100, 'M': -3.14e+100, 'S': -1.46}\n";
    std::ofstream(d / "finalseg/prob_trans.py")
        << "P={'B': {'E': -0.51, 'M': -0.91},\n 'E': {'B': -0.58, 'S': -0.80},\n 'M': {'E': -0.33, 'M': -1.26},\n"
           " 'S': {'B': -0.72, 'S': -0.66}}\n";
    std::ofstream(d / "finalseg/prob_emit.py") << "P={'B': {'\\u7535': -3.0}, 'E': {'\\u5f71': -2.5}, 'S': {'\\u597d': -4.0}}\n";
    return d;
  }();
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const int mode = data[0] % 6;
  const std::string path = ember::fuzz::write_scratch("text_file", data + 1, size - 1);
  try {
    switch (mode) {
      case 0: {
        ember::text::Vocab v = ember::text::Vocab::load(path);
        if (v.size() == 0) __builtin_trap();  // at least the padding token
        break;
      }
      case 1: (void)ember::text::StopWords::load(path); break;
      case 2:
      case 3: {
        static const ember::text::Segmenter base(tiny_jieba().string());
        ember::text::Segmenter seg = base;
        if (mode == 2) {
          seg.load_userdict(path);
          (void)seg.cut("这部电影很好看不好看");
        } else {
          const std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
          size_t total = 0;
          for (const auto& t : seg.cut(text)) total += t.size();
          // Valid UTF-8 is covered exactly; invalid bytes become U+FFFD first (so lengths differ).
          if (ember::text::utf8::is_valid(text) && total != text.size()) __builtin_trap();
        }
        break;
      }
      case 4: (void)ember::text::Segmenter(path, (tiny_jieba() / "finalseg").string()); break;
      case 5: {
        const fs::path hmm = ember::fuzz::scratch_path("jieba_hmm");
        fs::create_directories(hmm);
        fs::copy_file(tiny_jieba() / "finalseg/prob_start.py", hmm / "prob_start.py", fs::copy_options::overwrite_existing);
        fs::copy_file(tiny_jieba() / "finalseg/prob_trans.py", hmm / "prob_trans.py", fs::copy_options::overwrite_existing);
        fs::copy_file(path, hmm / "prob_emit.py", fs::copy_options::overwrite_existing);
        (void)ember::text::Segmenter((tiny_jieba() / "dict.txt").string(), hmm.string());
        break;
      }
    }
  } catch (const ember::Error&) {
  }
  return 0;
}

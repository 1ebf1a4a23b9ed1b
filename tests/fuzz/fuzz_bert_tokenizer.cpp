// libFuzzer target: text::BertTokenizer. The first byte picks what the rest is:
//   even: a vocab.txt (from_vocab_file), then a fixed Chinese/English sentence encoded with it;
//   odd:  text (and, after the first NUL byte, a second text of a pair) for a fixed small vocabulary:
//         encode with truncation and padding, then decode. Invalid UTF-8, control and combining
//         characters, huge words and empty strings all go through here.
// Every encoding that succeeds must have consistent lengths and ids inside the vocabulary.
#include <string_view>

#include "ember/text/bert_tokenizer.hpp"
#include "fuzz_common.hpp"

namespace {

using ember::text::BertEncodeOptions;
using ember::text::BertEncoding;
using ember::text::BertTokenizer;

void check(const BertEncoding& e, size_t vocab_size, int64_t max_length) {
  if (e.input_ids.size() != e.attention_mask.size() || e.input_ids.size() != e.token_type_ids.size()) __builtin_trap();
  if (max_length >= 0 && e.input_ids.size() > static_cast<size_t>(max_length)) __builtin_trap();
  for (int64_t id : e.input_ids)
    if (id < 0 || static_cast<size_t>(id) >= vocab_size) __builtin_trap();
}

const BertTokenizer& small_tokenizer() {
  static const BertTokenizer tok = [] {
    const char* words[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "这", "部", "电", "影", "很", "好", "看",
                           "!", "the", "movie", "##s", "is", "good", "un", "##believ", "##able", ",", "."};
    std::string text;
    for (const char* w : words) text += std::string(w) + "\n";
    const std::string path = ember::fuzz::write_scratch("bert_vocab_fixed", reinterpret_cast<const uint8_t*>(text.data()),
                                                         text.size());
    return BertTokenizer::from_vocab_file(path);
  }();
  return tok;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool vocab_mode = (data[0] & 1) == 0;
  const uint8_t* rest = data + 1;
  const size_t n = size - 1;
  try {
    if (vocab_mode) {
      const std::string& path = ember::fuzz::write_scratch("bert_vocab", rest, n);
      BertTokenizer tok = BertTokenizer::from_vocab_file(path);
      BertEncoding e = tok.encode("这部电影很好看! The movie is unbelievable.");
      check(e, tok.vocab_size(), -1);
      (void)tok.decode(e.input_ids, /*skip_special_tokens=*/true);
    } else {
      std::string_view all(reinterpret_cast<const char*>(rest), n);
      const size_t nul = all.find('\0');
      const BertTokenizer& tok = small_tokenizer();
      const int64_t max_length = 2 + static_cast<int64_t>(data[0] >> 1) % 40;
      auto opts = BertEncodeOptions().max_length(max_length).truncation(true).padding(ember::text::Padding::kMaxLength);
      BertEncoding e = nul == std::string_view::npos ? tok.encode(all, opts)
                                                     : tok.encode(all.substr(0, nul), all.substr(nul + 1), opts);
      check(e, tok.vocab_size(), max_length);
      (void)tok.decode(e.input_ids);
    }
  } catch (const ember::Error&) {
  }
  return 0;
}

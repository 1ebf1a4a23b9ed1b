// libFuzzer target: text::KeyedVectors::load_word2vec_format, text (first byte even) or binary
// (odd) format: the header's counts against the file size, vector values, words with odd bytes,
// truncated entries, trailing bytes. What loads must have one vector per word of the header's size.
#include "ember/text/keyed_vectors.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool binary = (data[0] & 1) != 0;
  const std::string& path = ember::fuzz::write_scratch("word2vec", data + 1, size - 1);
  try {
    ember::text::KeyedVectors kv = ember::text::KeyedVectors::load_word2vec_format(path, binary);
    if (kv.size() > 0 && kv.dim() <= 0) __builtin_trap();
    for (int64_t i = 0; i < kv.size(); ++i) (void)kv.word(i);
  } catch (const ember::Error&) {
  }
  return 0;
}

// libFuzzer target: models::BertConfig::from_file on arbitrary bytes (a Hugging Face config.json:
// JSON syntax, types, ranges, hidden_size vs heads, unknown activations). A config that loads must
// describe a model the constructors accept without allocating: its sizes are checked here.
#include "ember/models/bert_config.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = ember::fuzz::write_scratch("bert_config", data, size);
  try {
    ember::models::BertConfig c = ember::models::BertConfig::from_file(path);
    if (c.hidden_size <= 0 || c.num_attention_heads <= 0 || c.hidden_size % c.num_attention_heads != 0 ||
        c.vocab_size <= 0 || c.num_hidden_layers < 0 || c.intermediate_size <= 0)
      __builtin_trap();  // from_file accepted a config no model can be built from
  } catch (const ember::Error&) {
  }
  return 0;
}

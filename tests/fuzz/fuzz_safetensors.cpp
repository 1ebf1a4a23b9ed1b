// libFuzzer target: io::read_safetensors (header JSON, dtypes, shapes, offsets, overlapping or
// out-of-range data, BOOL bytes) and load_safetensors_tensor on arbitrary bytes.
#include "ember/io/safetensors.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = ember::fuzz::write_scratch("st", data, size);
  try {
    ember::io::SafetensorsFile f = ember::io::read_safetensors(path);
    // Every tensor read must have exactly the bytes its header claims: read them all.
    for (const auto& [name, t] : f.tensors) {
      if (t.numel() > 0) {
        ember::Tensor c = t.contiguous();
        volatile uint8_t sink = static_cast<const uint8_t*>(c.raw_data())[static_cast<size_t>(c.numel()) * c.element_size() - 1];
        (void)sink;
      }
      ember::io::load_safetensors_tensor(path, name);
      break;  // one by-name lookup is enough per input
    }
  } catch (const ember::Error&) {
  }
  return 0;
}

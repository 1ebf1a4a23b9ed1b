// libFuzzer target: data::read_idx on arbitrary bytes (plain IDX; zlib also reads gzip streams,
// so gzip seeds in the corpus exercise the decompressing path too). Every input must either
// parse or throw ember::Error; anything else (a crash, a sanitizer report, another exception
// type escaping, memory over -rss_limit_mb) is a bug.
#include "ember/data/mnist.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = ember::fuzz::write_scratch("idx", data, size);
  // The file's own dimension byte picks the expected magic, so both the images and the labels
  // layouts are reached (a gzip stream starts 1F 8B 08 00: images).
  uint32_t magic = size >= 4 && data[3] == 1 ? ember::data::kIdxLabelsMagic : ember::data::kIdxImagesMagic;
  try {
    ember::Tensor t = ember::data::read_idx(path, magic, "fuzz");
    if (t.numel() > 0 && t.data_ptr<uint8_t>()[t.numel() - 1] == 0x5A) return 0;  // touch the last byte
  } catch (const ember::Error&) {
  }
  return 0;
}

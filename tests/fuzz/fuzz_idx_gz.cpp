// libFuzzer target: data::read_idx through the gzip path. The fuzzer's bytes are the *decompressed*
// content; the target gzips them (level 1) before handing the file to the reader, so mutations
// reach the IDX parser behind zlib instead of dying in the gzip header. Bit flips inside gzip
// streams are covered by fuzz_idx with gzip seeds.
#include <zlib.h>

#include <vector>

#include "ember/data/mnist.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  // First byte: expected magic (bit 0) and whether to truncate the gzip stream (bit 1), which
  // checks that a cut-off .gz file is reported, not read as shorter data.
  const uint8_t mode = data[0];
  ++data;
  --size;
  z_stream zs{};
  if (deflateInit2(&zs, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) __builtin_trap();
  std::vector<uint8_t> gz(deflateBound(&zs, size) + 64);
  zs.next_in = const_cast<Bytef*>(data);
  zs.avail_in = static_cast<uInt>(size);
  zs.next_out = gz.data();
  zs.avail_out = static_cast<uInt>(gz.size());
  if (deflate(&zs, Z_FINISH) != Z_STREAM_END) __builtin_trap();
  size_t n = zs.total_out;
  deflateEnd(&zs);
  if ((mode & 2) && n > 4) n -= 1 + mode % 4;
  const std::string& path = ember::fuzz::write_scratch("idxgz", gz.data(), n);
  uint32_t magic = (mode & 1) ? ember::data::kIdxLabelsMagic : ember::data::kIdxImagesMagic;
  try {
    ember::Tensor t = ember::data::read_idx(path, magic, "fuzz");
    // A .gz cut inside its 8-byte trailer (CRC32 + size) must never read successfully
    // (tests/fuzz/regressions/fuzz_idx/gzip_trailer_truncated.gz).
    if ((mode & 2) && n > 4) __builtin_trap();
    (void)t;
  } catch (const ember::Error&) {
  }
  return 0;
}

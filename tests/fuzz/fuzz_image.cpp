// libFuzzer target: io::decode_image (stb_image behind Ember's wrapper) on arbitrary bytes, with
// every desired_channels value and background rule. The wrapper must refuse images whose pixel
// count is beyond its limit before stb allocates them.
#include "ember/io/image.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  // 16 MiB (4 Mpx as RGBA) instead of the harnesses' 64 MiB: decoding and converting a legitimately
  // announced 16 Mpx image takes over 10 s in this ASan build without OpenMP, which libFuzzer
  // reports as a timeout (found: an RLE TGA converted to grayscale). Real programs use the default.
  static const bool capped = (ember::set_max_allocation_bytes(size_t{16} << 20), true);
  (void)capped;
  const int channels = data[0] % 5;
  const auto bg = static_cast<ember::io::Background>((data[0] / 5) % 3);
  try {
    ember::io::Image img = ember::io::decode_image(data + 1, size - 1, channels, bg, "fuzz");
    if (img.data.size() != static_cast<size_t>(img.width) * img.height * img.channels) __builtin_trap();
    if (!img.empty()) {
      // The conversions a program applies next must hold for whatever decoded.
      ember::io::Image g = ember::io::to_grayscale(img);
      if (g.width <= 256 && g.height <= 256) ember::io::resize_bilinear(g, g.width / 2 + 1, g.height / 2 + 1);
    }
  } catch (const ember::Error&) {
  }
  return 0;
}

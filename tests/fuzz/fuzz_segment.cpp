// libFuzzer target: vision::segment_digits on arbitrary small images. Bytes: width (1..64),
// height (1..64), then pixels (missing ones are white). Each crop must be a valid 28x28 frame.
#include <algorithm>

#include "ember/vision/digits.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const int w = 1 + data[0] % 64, h = 1 + data[1] % 64;
  std::vector<uint8_t> px(static_cast<size_t>(w) * h, 255);
  std::copy_n(data + 2, std::min(px.size(), size - 2), px.begin());
  try {
    ember::vision::GrayImage img = ember::vision::from_gray_u8(px.data(), w, h);
    for (const auto& crop : ember::vision::segment_digits(img)) {
      if (crop.image.width != 28 || crop.image.height != 28 || crop.image.data.size() != 28 * 28) __builtin_trap();
      if (crop.box.x0 < 0 || crop.box.y0 < 0 || crop.box.x1 > w || crop.box.y1 > h) __builtin_trap();
    }
  } catch (const ember::Error&) {
  }
  return 0;
}

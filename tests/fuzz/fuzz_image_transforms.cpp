// libFuzzer target: vision's torchvision-style image ops and random transforms on arbitrary small
// images and parameters (sizes down to 1x1, crops outside the image, any angle and factor). Every
// call must either give an image of the announced size or throw ember::Error.
#include <cmath>
#include <cstring>

#include "ember/vision/image_ops.hpp"
#include "ember/vision/image_transforms.hpp"
#include "fuzz_common.hpp"

namespace {
void expect(const ember::io::Image& img, int64_t w, int64_t h) {
  if (img.width != w || img.height != h || img.data.size() != static_cast<size_t>(w) * h * img.channels) __builtin_trap();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace V = ember::vision;
  namespace T = ember::vision::transforms;
  ember::fuzz::Bytes in{data, size};
  const int w = in.small(1, 48), h = in.small(1, 48), c = in.small(1, 4);
  ember::io::Image img = ember::io::Image::filled(w, h, c);
  for (auto& v : img.data) v = in.byte();
  try {
    switch (in.byte() % 10) {
      case 0: { int s = in.small(1, 64); auto r = V::resize(img, s); auto [rh, rw] = V::resized_shape(h, w, s); expect(r, rw, rh); break; }
      case 1: { int a = in.small(1, 64), b = in.small(1, 64); expect(V::resize(img, a, b), b, a); break; }
      case 2: { int t = in.small(-64, 64), l = in.small(-64, 64), a = in.small(1, 64), b = in.small(1, 64); expect(V::crop(img, t, l, a, b), b, a); break; }
      case 3: { int a = in.small(1, 64), b = in.small(1, 64); expect(V::center_crop(img, a, b), b, a); break; }
      case 4: expect(V::rotate(img, in.real(-720, 720), in.byte()), w, h); break;
      case 5: expect(V::adjust_hue(img, in.real(-0.5, 0.5)), w, h); break;
      case 6: expect(V::adjust_contrast(V::adjust_saturation(V::adjust_brightness(img, in.real(0, 3)), in.real(0, 3)), in.real(0, 3)), w, h); break;
      case 7: {
        int s = in.small(1, 40);
        double lo = in.real(0, 1), hi = in.real(0, 1), rlo = in.real(0.01, 3), rhi = in.real(0.01, 3);
        auto gen = std::make_shared<ember::Generator>(in.byte());
        expect(T::RandomResizedCrop(s, {std::min(lo, hi), std::max(lo, hi)}, {std::min(rlo, rhi), std::max(rlo, rhi)}, gen)(img), s, s);
        break;
      }
      case 8: {
        auto gen = std::make_shared<ember::Generator>(in.byte());
        expect(T::ColorJitter(in.real(0, 2), in.real(0, 2), in.real(0, 2), in.real(0, 0.5), gen)(img), w, h);
        break;
      }
      default: {
        int a = in.small(1, 64), b = in.small(1, 64), s = in.small(1, 64);
        expect(V::resized_crop(img, in.small(-8, 48), in.small(-8, 48), a, b, s, s), s, s);
      }
    }
  } catch (const ember::Error&) {
  }
  return 0;
}

#pragma once
/// Grad-CAM (Selvaraju et al. 2017): which parts of a photo made a CNN choose its class. For a
/// Sequential network split after one of its layers (the last conv block), with A = the
/// activations there [K, h, w] and s = the class score:
///   weight_k = mean over (h, w) of ds/dA_k,   map = ReLU(sum_k weight_k * A_k)
/// scaled to [0, 1] and resized to the input. Built on autograd::grad, nothing more.
///
/// Example (catdog_cnn predict --explain):
/// ```
///   auto cam = ember::utils::grad_cam(*net, x, "pool4");          // x [1, 3, 150, 150]
///   ember::io::write_png("why.png", ember::utils::overlay_heatmap(photo, cam.map));
/// ```
#include <algorithm>
#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "ember/autograd/engine.hpp"
#include "ember/core/error.hpp"
#include "ember/core/grad_mode.hpp"
#include "ember/io/image.hpp"
#include "ember/nn/sequential.hpp"
#include "ember/ops/copy.hpp"
#include "ember/ops/reduce.hpp"
#include "ember/ops/softmax.hpp"

namespace ember::utils {

/// The result of grad_cam: the class explained, its probability, and the map [H, W] (the input's
/// size) in [0, 1], row-major.
struct GradCam {
  int64_t target = 0;
  double probability = 0;
  int64_t height = 0, width = 0;
  std::vector<float> map;
};

/// Grad-CAM of `net` on one input x [1, C, H, W] at the output of the child module named `layer`,
/// for class `target` (default: the predicted class). The network's mode is left as it is (call
/// net.eval() first, as for any prediction).
inline GradCam grad_cam(nn::Sequential& net, const Tensor& x, const std::string& layer,
                        std::optional<int64_t> target = std::nullopt) {
  EMBER_CHECK(x.defined() && x.dim() == 4 && x.size(0) == 1, "grad_cam: expected one input [1, C, H, W], got ",
              x.defined() ? x.sizes() : Shape{});
  const auto& children = net.named_children();
  int64_t split = -1;
  for (size_t i = 0; i < children.size(); ++i)
    if (children[i].first == layer) split = static_cast<int64_t>(i);
  EMBER_CHECK(split >= 0, "grad_cam: the network has no layer named '", layer, "'");
  GradModeGuard grad_on(true);
  Tensor a = x.detach();
  for (int64_t i = 0; i <= split; ++i) a = net[i]->forward(a);
  EMBER_CHECK(a.dim() == 4, "grad_cam: layer '", layer, "' gives shape ", a.sizes(), "; expected [1, K, h, w]");
  Tensor acts = a.detach().requires_grad_();
  Tensor y = acts;
  for (int64_t i = split + 1; i < static_cast<int64_t>(net.size()); ++i) y = net[i]->forward(y);
  EMBER_CHECK(y.dim() == 2 && y.size(0) == 1, "grad_cam: the network's output has shape ", y.sizes(), "; expected [1, classes]");
  const int64_t classes = y.size(1);
  Tensor probs = softmax(y.detach(), 1);
  const int64_t k = target ? *target : argmax(probs, 1).item<int64_t>();
  EMBER_CHECK(k >= 0 && k < classes, "grad_cam: target class ", k, " is out of range for ", classes, " classes");
  Tensor score = y.select(1, k).sum();
  Tensor g = autograd::grad({score}, {acts})[0];  // [1, K, h, w]
  Tensor weights = mean(g, {2, 3}, true);           // [1, K, 1, 1]
  Tensor cam = relu(sum(mul(weights, acts.detach()), {1})).select(0, 0).to(kCPU).contiguous();  // [h, w]
  const int64_t h = cam.size(0), w = cam.size(1);
  std::vector<float> v = cam.to(kFloat32).to_vector<float>();
  const float hi = *std::max_element(v.begin(), v.end());
  // Resize the coarse map to the input with the library's bilinear filter, via an 8-bit image
  // (the map is for looking at: 256 levels are plenty).
  io::Image small = io::Image::filled(static_cast<int>(w), static_cast<int>(h), 1);
  for (size_t i = 0; i < v.size(); ++i)
    small.data[i] = static_cast<uint8_t>(std::lround(hi > 0 ? 255.0f * v[i] / hi : 0.0f));
  const int64_t H = x.size(2), W = x.size(3);
  io::Image big = io::resize_bilinear(small, static_cast<int>(W), static_cast<int>(H));
  GradCam out;
  out.target = k;
  out.probability = probs.select(1, k).item<double>();
  out.height = H, out.width = W;
  out.map.resize(big.data.size());
  for (size_t i = 0; i < big.data.size(); ++i) out.map[i] = static_cast<float>(big.data[i]) / 255.0f;
  return out;
}

/// `photo` (RGB, any size) with the map laid over it in a blue-to-red colour scale, opacity
/// `alpha` where the map is hot; the map is resized to the photo first.
inline io::Image overlay_heatmap(const io::Image& photo, const GradCam& cam, double alpha = 0.5) {
  EMBER_CHECK(photo.channels == 3 && !photo.empty(), "overlay_heatmap: expected an RGB photo");
  EMBER_CHECK(cam.height > 0 && cam.width > 0 && cam.map.size() == static_cast<size_t>(cam.height * cam.width),
              "overlay_heatmap: empty map");
  io::Image m = io::Image::filled(static_cast<int>(cam.width), static_cast<int>(cam.height), 1);
  for (size_t i = 0; i < cam.map.size(); ++i) m.data[i] = static_cast<uint8_t>(std::lround(std::clamp(cam.map[i], 0.0f, 1.0f) * 255));
  if (m.width != photo.width || m.height != photo.height) m = io::resize_bilinear(m, photo.width, photo.height);
  io::Image out = photo;
  for (size_t p = 0; p < m.data.size(); ++p) {
    const double t = m.data[p] / 255.0;
    // blue (cold) -> green -> red (hot), like matplotlib's "jet" in spirit
    const double r = std::clamp(1.5 - std::abs(4 * t - 3), 0.0, 1.0), g = std::clamp(1.5 - std::abs(4 * t - 2), 0.0, 1.0),
                 b = std::clamp(1.5 - std::abs(4 * t - 1), 0.0, 1.0);
    const double a = alpha * (0.3 + 0.7 * t);
    const double rgb[3] = {r, g, b};
    for (int c = 0; c < 3; ++c) {
      const double v = (1 - a) * photo.data[p * 3 + c] + a * 255.0 * rgb[c];
      out.data[p * 3 + c] = static_cast<uint8_t>(std::lround(std::clamp(v, 0.0, 255.0)));
    }
  }
  return out;
}

}  // namespace ember::utils

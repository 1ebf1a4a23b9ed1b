#pragma once
/// nn::LayerNorm (torch.nn.LayerNorm): normalises over the trailing `normalized_shape` dims with
/// a learnt elementwise scale `weight` (ones) and shift `bias` (zeros) of that shape, as PyTorch
/// initialises them; `elementwise_affine(false)` drops both. The work is ember::layer_norm
/// (ops/layer_norm.hpp), also reachable as nn::F::layer_norm.
///
/// Example:
/// ```
///   auto norm = std::make_shared<ember::nn::LayerNorm>(ember::nn::LayerNormOptions({256}).eps(1e-12));
///   auto y = norm->forward(x);   // x [B, T, 256]
/// ```
#include <sstream>
#include <string>
#include <vector>

#include "ember/nn/activation.hpp"
#include "ember/nn/init.hpp"
#include "ember/nn/module.hpp"
#include "ember/nn/options.hpp"
#include "ember/ops/layer_norm.hpp"

namespace ember::nn {

namespace functional {
using ember::layer_norm;
}  // namespace functional

struct LayerNormOptions {
  LayerNormOptions(std::vector<int64_t> normalized_shape)  // NOLINT: LayerNormOptions({256}) reads like PyTorch
      : normalized_shape_(std::move(normalized_shape)) {}
  EMBER_ARG(std::vector<int64_t>, normalized_shape);
  EMBER_ARG(double, eps) = 1e-5;
  /// Whether to learn weight and bias.
  EMBER_ARG(bool, elementwise_affine) = true;
};

class LayerNorm : public UnaryModule {
 public:
  explicit LayerNorm(const LayerNormOptions& options) : UnaryModule("LayerNorm"), options(options) {
    const auto& s = options.normalized_shape();
    EMBER_CHECK(!s.empty(), "LayerNorm: normalized_shape must have at least one dimension");
    for (int64_t d : s) EMBER_CHECK(d >= 0, "LayerNorm: normalized_shape must be non-negative, got ", Shape(s));
    EMBER_CHECK(options.eps() >= 0, "LayerNorm: eps must be non-negative, got ", options.eps());
    if (options.elementwise_affine()) {
      weight = register_parameter("weight", empty(Shape(s), TensorOptions()));
      bias = register_parameter("bias", empty(Shape(s), TensorOptions()));
    }
    reset_parameters();
  }
  explicit LayerNorm(int64_t normalized_size) : LayerNorm(LayerNormOptions({normalized_size})) {}

  /// weight = 1, bias = 0.
  void reset_parameters() {
    if (weight.defined()) init::ones_(weight);
    if (bias.defined()) init::zeros_(bias);
  }

  Tensor forward(const Tensor& x) override {
    return layer_norm(x, Shape(options.normalized_shape()), weight, bias, options.eps());
  }

  std::string extra_repr() const override {
    std::ostringstream os;
    os << "(";
    const auto& s = options.normalized_shape();
    for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
    os << (s.size() == 1 ? ",)" : ")") << ", eps=" << options.eps() << ", elementwise_affine=" << (options.elementwise_affine() ? "True" : "False");
    return os.str();
  }

  LayerNormOptions options;
  Tensor weight;  // undefined without elementwise_affine
  Tensor bias;
};

}  // namespace ember::nn

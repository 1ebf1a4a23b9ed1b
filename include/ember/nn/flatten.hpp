#pragma once
/// nn::Flatten: flattens dims start_dim..end_dim into one (a view when possible). The defaults
/// keep the batch dim: [N, C, H, W] → [N, C*H*W].
///
/// Example:
/// ```
///   auto flat = std::make_shared<ember::nn::Flatten>();   // start_dim = 1, end_dim = -1
/// ```
#include <string>

#include "ember/nn/module.hpp"
#include "ember/nn/options.hpp"
#include "ember/ops/shape.hpp"

namespace ember::nn {

struct FlattenOptions {
  EMBER_ARG(int64_t, start_dim) = 1;
  EMBER_ARG(int64_t, end_dim) = -1;
};

class Flatten : public UnaryModule {
 public:
  explicit Flatten(const FlattenOptions& options = {}) : UnaryModule("Flatten"), options(options) {}
  Flatten(int64_t start_dim, int64_t end_dim = -1)
      : Flatten(FlattenOptions().start_dim(start_dim).end_dim(end_dim)) {}
  Tensor forward(const Tensor& x) override { return x.flatten(options.start_dim(), options.end_dim()); }
  std::string extra_repr() const override {
    return "start_dim=" + std::to_string(options.start_dim()) + ", end_dim=" + std::to_string(options.end_dim());
  }
  FlattenOptions options;
};

}  // namespace ember::nn

#pragma once
/// nn::Dropout: zeroes elements with probability p and scales the rest by 1 / (1 - p) while the
/// module is in training mode; the identity after `eval()`.
///
/// Example:
/// ```
///   auto drop = std::make_shared<ember::nn::Dropout>(0.3);
///   drop->eval();               // now drop->forward(x) returns x
/// ```
#include "ember/nn/activation.hpp"
#include "ember/nn/module.hpp"
#include "ember/nn/options.hpp"
#include "ember/ops/activation.hpp"

namespace ember::nn {

struct DropoutOptions {
  DropoutOptions(double p = 0.5) : p_(p) {}  // NOLINT: Dropout(0.3) reads like PyTorch
  EMBER_ARG(double, p);
};

class Dropout : public UnaryModule {
 public:
  explicit Dropout(const DropoutOptions& options = {}) : UnaryModule("Dropout"), options(options) {
    EMBER_CHECK(options.p() >= 0 && options.p() <= 1, "Dropout: probability has to be between 0 and 1, but got ",
                options.p());
  }
  explicit Dropout(double p) : Dropout(DropoutOptions(p)) {}
  Tensor forward(const Tensor& x) override { return dropout(x, options.p(), is_training()); }
  std::string extra_repr() const override { return "p=" + detail::fmt_double(options.p()); }
  DropoutOptions options;
};

}  // namespace ember::nn

#pragma once
/// nn::Linear: y = x @ weight^T + bias, weight [out_features, in_features], bias [out_features].
/// Initialised as PyTorch does: weight ~ kaiming_uniform_(a = sqrt(5)) (= U(-1/sqrt(in), 1/sqrt(in)))
/// and bias ~ U(-1/sqrt(in), 1/sqrt(in)).
///
/// Example:
/// ```
///   auto fc = std::make_shared<ember::nn::Linear>(ember::nn::LinearOptions(784, 10).bias(false));
///   auto y = fc->forward(ember::randn({32, 784}));  // [32, 10]
/// ```
#include <cmath>
#include <sstream>

#include "ember/nn/init.hpp"
#include "ember/nn/module.hpp"
#include "ember/nn/options.hpp"
#include "ember/ops/linalg.hpp"

namespace ember::nn {

struct LinearOptions {
  LinearOptions(int64_t in_features, int64_t out_features) : in_features_(in_features), out_features_(out_features) {}
  EMBER_ARG(int64_t, in_features);
  EMBER_ARG(int64_t, out_features);
  /// Whether to learn an additive bias.
  EMBER_ARG(bool, bias) = true;
};

class Linear : public UnaryModule {
 public:
  explicit Linear(const LinearOptions& options) : UnaryModule("Linear"), options(options) {
    EMBER_CHECK(options.in_features() >= 0 && options.out_features() >= 0, "Linear: features must be non-negative, got in_features=",
                options.in_features(), " out_features=", options.out_features());
    weight = register_parameter("weight", empty({options.out_features(), options.in_features()}, TensorOptions()));
    if (options.bias()) bias = register_parameter("bias", empty({options.out_features()}, TensorOptions()));
    reset_parameters();
  }
  Linear(int64_t in_features, int64_t out_features) : Linear(LinearOptions(in_features, out_features)) {}

  /// Re-draws weight and bias from PyTorch's default distributions.
  void reset_parameters() {
    init::kaiming_uniform_(weight, std::sqrt(5.0));
    if (bias.defined()) {
      int64_t fan_in = options.in_features();
      double bound = fan_in > 0 ? 1.0 / std::sqrt(static_cast<double>(fan_in)) : 0.0;
      init::uniform_(bias, -bound, bound);
    }
  }

  Tensor forward(const Tensor& x) override { return linear(x, weight, bias); }

  std::string extra_repr() const override {
    std::ostringstream os;
    os << "in_features=" << options.in_features() << ", out_features=" << options.out_features()
       << ", bias=" << (options.bias() ? "True" : "False");
    return os.str();
  }

  LinearOptions options;
  Tensor weight;
  Tensor bias;  // undefined when options.bias() is false
};

}  // namespace ember::nn

#pragma once
/// Activation modules wrapping the functional ops (ops/activation.hpp, ops/unary.hpp,
/// ops/softmax.hpp), for use in Sequential: ReLU, LeakyReLU, ELU, GELU, Sigmoid, Tanh, SiLU,
/// Softplus, Softmax(dim), LogSoftmax(dim).
///
/// Example:
/// ```
///   auto act = std::make_shared<ember::nn::LeakyReLU>(ember::nn::LeakyReLUOptions().negative_slope(0.2));
///   auto probs = ember::nn::Softmax(1).forward(logits);
/// ```
#include <sstream>
#include <string>

#include "ember/nn/module.hpp"
#include "ember/nn/options.hpp"
#include "ember/ops/activation.hpp"
#include "ember/ops/softmax.hpp"
#include "ember/ops/unary.hpp"

namespace ember::nn {

namespace detail {
inline std::string fmt_double(double v) {
  std::ostringstream os;
  os << v;
  std::string s = os.str();
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";  // print 1 as 1.0, as Python does
  return s;
}
}  // namespace detail

/// max(x, 0).
class ReLU : public UnaryModule {
 public:
  ReLU() : UnaryModule("ReLU") {}
  Tensor forward(const Tensor& x) override { return relu(x); }
};

struct LeakyReLUOptions {
  EMBER_ARG(double, negative_slope) = 0.01;
};
/// x for x > 0, negative_slope * x otherwise.
class LeakyReLU : public UnaryModule {
 public:
  explicit LeakyReLU(const LeakyReLUOptions& options = {}) : UnaryModule("LeakyReLU"), options(options) {}
  Tensor forward(const Tensor& x) override { return leaky_relu(x, options.negative_slope()); }
  std::string extra_repr() const override { return "negative_slope=" + detail::fmt_double(options.negative_slope()); }
  LeakyReLUOptions options;
};

struct ELUOptions {
  EMBER_ARG(double, alpha) = 1.0;
};
/// x for x > 0, alpha * (exp(x) - 1) otherwise.
class ELU : public UnaryModule {
 public:
  explicit ELU(const ELUOptions& options = {}) : UnaryModule("ELU"), options(options) {}
  Tensor forward(const Tensor& x) override { return elu(x, options.alpha()); }
  std::string extra_repr() const override { return "alpha=" + detail::fmt_double(options.alpha()); }
  ELUOptions options;
};

struct GELUOptions {
  /// "none" (exact, with erf) or "tanh" (the tanh approximation).
  EMBER_ARG(std::string, approximate) = "none";
};
/// x * Phi(x).
class GELU : public UnaryModule {
 public:
  explicit GELU(const GELUOptions& options = {}) : UnaryModule("GELU"), options(options) {}
  Tensor forward(const Tensor& x) override { return gelu(x, options.approximate()); }
  std::string extra_repr() const override { return "approximate='" + options.approximate() + "'"; }
  GELUOptions options;
};

/// 1 / (1 + exp(-x)).
class Sigmoid : public UnaryModule {
 public:
  Sigmoid() : UnaryModule("Sigmoid") {}
  Tensor forward(const Tensor& x) override { return sigmoid(x); }
};

class Tanh : public UnaryModule {
 public:
  Tanh() : UnaryModule("Tanh") {}
  Tensor forward(const Tensor& x) override { return tanh(x); }
};

/// x * sigmoid(x).
class SiLU : public UnaryModule {
 public:
  SiLU() : UnaryModule("SiLU") {}
  Tensor forward(const Tensor& x) override { return silu(x); }
};

struct SoftplusOptions {
  EMBER_ARG(double, beta) = 1.0;
  /// Above beta * x > threshold the function is x (for numerical stability).
  EMBER_ARG(double, threshold) = 20.0;
};
/// log(1 + exp(beta * x)) / beta.
class Softplus : public UnaryModule {
 public:
  explicit Softplus(const SoftplusOptions& options = {}) : UnaryModule("Softplus"), options(options) {}
  Tensor forward(const Tensor& x) override { return softplus(x, options.beta(), options.threshold()); }
  std::string extra_repr() const override {
    return "beta=" + detail::fmt_double(options.beta()) + ", threshold=" + detail::fmt_double(options.threshold());
  }
  SoftplusOptions options;
};

/// softmax along `dim`.
class Softmax : public UnaryModule {
 public:
  explicit Softmax(int64_t dim) : UnaryModule("Softmax"), dim(dim) {}
  Tensor forward(const Tensor& x) override { return softmax(x, dim); }
  std::string extra_repr() const override { return "dim=" + std::to_string(dim); }
  int64_t dim;
};

/// log(softmax(x)) along `dim`, computed stably.
class LogSoftmax : public UnaryModule {
 public:
  explicit LogSoftmax(int64_t dim) : UnaryModule("LogSoftmax"), dim(dim) {}
  Tensor forward(const Tensor& x) override { return log_softmax(x, dim); }
  std::string extra_repr() const override { return "dim=" + std::to_string(dim); }
  int64_t dim;
};

}  // namespace ember::nn

#pragma once
/// nn::init: in-place parameter initialisers with PyTorch's formulas (torch.nn.init), so a recipe
/// that trains in PyTorch starts from the same distribution here. Every function runs under
/// NoGradGuard (parameters are leaves that require grad) and returns its argument.
///
/// Example:
/// ```
///   namespace init = ember::nn::init;
///   init::kaiming_normal_(conv->weight, 0, init::kFanOut, init::kReLU);
///   init::zeros_(conv->bias);
///   double g = init::calculate_gain(init::kLeakyReLU, 0.2);
/// ```
#include <cmath>
#include <optional>
#include <utility>

#include "ember/core/grad_mode.hpp"
#include "ember/ops/factory.hpp"

namespace ember::nn::init {

enum class Nonlinearity { Linear, Conv1d, Conv2d, Conv3d, Sigmoid, Tanh, ReLU, LeakyReLU, SELU };
enum class FanMode { FanIn, FanOut };

inline constexpr Nonlinearity kLinear = Nonlinearity::Linear;
inline constexpr Nonlinearity kConv1d = Nonlinearity::Conv1d;
inline constexpr Nonlinearity kConv2d = Nonlinearity::Conv2d;
inline constexpr Nonlinearity kConv3d = Nonlinearity::Conv3d;
inline constexpr Nonlinearity kSigmoid = Nonlinearity::Sigmoid;
inline constexpr Nonlinearity kTanh = Nonlinearity::Tanh;
inline constexpr Nonlinearity kReLU = Nonlinearity::ReLU;
inline constexpr Nonlinearity kLeakyReLU = Nonlinearity::LeakyReLU;
inline constexpr Nonlinearity kSELU = Nonlinearity::SELU;
inline constexpr FanMode kFanIn = FanMode::FanIn;
inline constexpr FanMode kFanOut = FanMode::FanOut;

/// The recommended gain for a nonlinearity (torch.nn.init.calculate_gain); `param` is
/// leaky_relu's negative slope (default 0.01).
inline double calculate_gain(Nonlinearity nl, std::optional<double> param = std::nullopt) {
  switch (nl) {
    case Nonlinearity::Linear:
    case Nonlinearity::Conv1d:
    case Nonlinearity::Conv2d:
    case Nonlinearity::Conv3d:
    case Nonlinearity::Sigmoid: return 1.0;
    case Nonlinearity::Tanh: return 5.0 / 3.0;
    case Nonlinearity::ReLU: return std::sqrt(2.0);
    case Nonlinearity::LeakyReLU: {
      double slope = param.value_or(0.01);
      return std::sqrt(2.0 / (1.0 + slope * slope));
    }
    case Nonlinearity::SELU: return 3.0 / 4.0;
  }
  return 1.0;
}

/// (fan_in, fan_out) of a weight: [out, in] for Linear, [out, in/groups, k...] for convolutions,
/// where each fan is multiplied by the receptive field size prod(k...).
inline std::pair<int64_t, int64_t> calculate_fan_in_and_fan_out(const Tensor& t) {
  EMBER_CHECK(t.defined(), "calculate_fan_in_and_fan_out: undefined tensor");
  EMBER_CHECK(t.dim() >= 2, "calculate_fan_in_and_fan_out: fan in and fan out can not be computed for a tensor "
              "with fewer than 2 dimensions (got shape ", t.sizes(), ")");
  int64_t receptive = 1;
  for (int64_t d = 2; d < t.dim(); ++d) receptive *= t.size(d);
  return {t.size(1) * receptive, t.size(0) * receptive};
}

namespace detail {
inline int64_t fan(const Tensor& t, FanMode mode) {
  auto [in, out] = calculate_fan_in_and_fan_out(t);
  return mode == FanMode::FanIn ? in : out;
}
inline void check_float(const Tensor& t, const char* op) {
  EMBER_CHECK(t.defined(), "nn::init::", op, ": undefined tensor");
  EMBER_CHECK(t.is_floating_point(), "nn::init::", op, ": expected a floating point tensor, got ", t.dtype());
}
}  // namespace detail

/// Fills with U(a, b).
inline Tensor uniform_(Tensor t, double a = 0.0, double b = 1.0) {
  detail::check_float(t, "uniform_");
  NoGradGuard ng;
  t.uniform_(a, b);
  return t;
}
/// Fills with N(mean, std^2).
inline Tensor normal_(Tensor t, double mean = 0.0, double std = 1.0) {
  detail::check_float(t, "normal_");
  NoGradGuard ng;
  t.normal_(mean, std);
  return t;
}
/// Fills with `value`.
inline Tensor constant_(Tensor t, double value) {
  EMBER_CHECK(t.defined(), "nn::init::constant_: undefined tensor");
  NoGradGuard ng;
  t.fill_(value);
  return t;
}
inline Tensor zeros_(Tensor t) { return constant_(std::move(t), 0.0); }
inline Tensor ones_(Tensor t) { return constant_(std::move(t), 1.0); }

/// He initialisation, uniform: U(-b, b) with b = gain * sqrt(3 / fan), gain = calculate_gain(nl, a).
/// PyTorch's Linear/Conv default is `kaiming_uniform_(w, sqrt(5))`, i.e. b = 1 / sqrt(fan_in).
inline Tensor kaiming_uniform_(Tensor t, double a = 0.0, FanMode mode = kFanIn, Nonlinearity nl = kLeakyReLU) {
  detail::check_float(t, "kaiming_uniform_");
  if (t.numel() == 0) return t;
  double std = calculate_gain(nl, a) / std::sqrt(static_cast<double>(detail::fan(t, mode)));
  double bound = std::sqrt(3.0) * std;
  return uniform_(std::move(t), -bound, bound);
}
/// He initialisation, normal: N(0, std^2) with std = gain / sqrt(fan).
inline Tensor kaiming_normal_(Tensor t, double a = 0.0, FanMode mode = kFanIn, Nonlinearity nl = kLeakyReLU) {
  detail::check_float(t, "kaiming_normal_");
  if (t.numel() == 0) return t;
  double std = calculate_gain(nl, a) / std::sqrt(static_cast<double>(detail::fan(t, mode)));
  return normal_(std::move(t), 0.0, std);
}
/// Glorot initialisation, uniform: U(-b, b) with b = gain * sqrt(6 / (fan_in + fan_out)).
inline Tensor xavier_uniform_(Tensor t, double gain = 1.0) {
  detail::check_float(t, "xavier_uniform_");
  auto [in, out] = calculate_fan_in_and_fan_out(t);
  double std = gain * std::sqrt(2.0 / static_cast<double>(in + out));
  double bound = std::sqrt(3.0) * std;
  return uniform_(std::move(t), -bound, bound);
}
/// Glorot initialisation, normal: N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out)).
inline Tensor xavier_normal_(Tensor t, double gain = 1.0) {
  detail::check_float(t, "xavier_normal_");
  auto [in, out] = calculate_fan_in_and_fan_out(t);
  double std = gain * std::sqrt(2.0 / static_cast<double>(in + out));
  return normal_(std::move(t), 0.0, std);
}

}  // namespace ember::nn::init

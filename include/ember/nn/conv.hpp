#pragma once
/// nn::Conv2d and nn::ConvTranspose2d (torch.nn.Conv2d / ConvTranspose2d), with PyTorch's default
/// initialisation: weight ~ kaiming_uniform_(a = sqrt(5)), bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))
/// where fan_in is computed from the weight (C_in/groups * k * k for Conv2d, C_out/groups * k * k
/// for ConvTranspose2d, as PyTorch does).
///
/// Example:
/// ```
///   namespace nn = ember::nn;
///   auto conv = std::make_shared<nn::Conv2d>(nn::Conv2dOptions(1, 32, 3).stride(1).padding(1));
///   auto y = conv->forward(ember::randn({8, 1, 28, 28}));          // [8, 32, 28, 28]
///   nn::Conv2d c2(32, 64, 3);                                       // convenience constructor
///   nn::ConvTranspose2d up(nn::ConvTranspose2dOptions(64, 32, 4).stride(2).padding(1));  // x2 upsampling
/// ```
#include <cmath>
#include <sstream>
#include <string>

#include "ember/nn/init.hpp"
#include "ember/nn/module.hpp"
#include "ember/nn/options.hpp"
#include "ember/ops/conv.hpp"

namespace ember::nn {

struct Conv2dOptions {
  Conv2dOptions(int64_t in_channels, int64_t out_channels, Int2 kernel_size)
      : in_channels_(in_channels), out_channels_(out_channels), kernel_size_(kernel_size) {}
  EMBER_ARG(int64_t, in_channels);
  EMBER_ARG(int64_t, out_channels);
  EMBER_ARG(Int2, kernel_size);
  EMBER_ARG(Int2, stride) = 1;
  /// A number, a (h, w) pair, "valid" or "same".
  EMBER_ARG(Conv2dPadding, padding) = 0;
  EMBER_ARG(Int2, dilation) = 1;
  EMBER_ARG(int64_t, groups) = 1;
  EMBER_ARG(bool, bias) = true;
};

struct ConvTranspose2dOptions {
  ConvTranspose2dOptions(int64_t in_channels, int64_t out_channels, Int2 kernel_size)
      : in_channels_(in_channels), out_channels_(out_channels), kernel_size_(kernel_size) {}
  EMBER_ARG(int64_t, in_channels);
  EMBER_ARG(int64_t, out_channels);
  EMBER_ARG(Int2, kernel_size);
  EMBER_ARG(Int2, stride) = 1;
  EMBER_ARG(Int2, padding) = 0;
  EMBER_ARG(Int2, output_padding) = 0;
  EMBER_ARG(int64_t, groups) = 1;
  EMBER_ARG(bool, bias) = true;
  EMBER_ARG(Int2, dilation) = 1;
};

namespace detail {

inline std::string int2_str(Int2 v) { return "(" + std::to_string(v.h) + ", " + std::to_string(v.w) + ")"; }

inline void check_conv_channels(const char* layer, int64_t in, int64_t out, int64_t groups, Int2 k) {
  EMBER_CHECK(in > 0 && out > 0, layer, ": channels must be positive, got in_channels=", in, " out_channels=", out);
  EMBER_CHECK(k.h > 0 && k.w > 0, layer, ": kernel_size must be positive, got ", int2_str(k));
  EMBER_CHECK(groups > 0, layer, ": groups must be positive, got ", groups);
  EMBER_CHECK(in % groups == 0, layer, ": in_channels ", in, " must be divisible by groups ", groups);
  EMBER_CHECK(out % groups == 0, layer, ": out_channels ", out, " must be divisible by groups ", groups);
}

/// PyTorch's conv reset_parameters: kaiming_uniform_(a = sqrt(5)) on the weight, and the bias
/// uniform in ±1/sqrt(fan_in) with fan_in taken from the weight's shape.
inline void reset_conv_parameters(const Tensor& weight, const Tensor& bias) {
  init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (bias.defined()) {
    int64_t fan_in = init::calculate_fan_in_and_fan_out(weight).first;
    double bound = fan_in > 0 ? 1.0 / std::sqrt(static_cast<double>(fan_in)) : 0.0;
    init::uniform_(bias, -bound, bound);
  }
}

}  // namespace detail

/// 2-d convolution layer: weight [out, in / groups, kh, kw], bias [out].
class Conv2d : public UnaryModule {
 public:
  explicit Conv2d(const Conv2dOptions& options) : UnaryModule("Conv2d"), options(options) {
    detail::check_conv_channels("Conv2d", options.in_channels(), options.out_channels(), options.groups(),
                                options.kernel_size());
    Int2 k = options.kernel_size();
    weight = register_parameter("weight", empty({options.out_channels(), options.in_channels() / options.groups(), k.h,
                                                 k.w}, TensorOptions()));
    if (options.bias()) bias = register_parameter("bias", empty({options.out_channels()}, TensorOptions()));
    reset_parameters();
  }
  Conv2d(int64_t in_channels, int64_t out_channels, Int2 kernel_size)
      : Conv2d(Conv2dOptions(in_channels, out_channels, kernel_size)) {}

  /// Re-draws weight and bias from PyTorch's default distributions.
  void reset_parameters() { detail::reset_conv_parameters(weight, bias); }

  Tensor forward(const Tensor& x) override {
    return conv2d(x, weight, bias, options.stride(), options.padding(), options.dilation(), options.groups());
  }

  std::string extra_repr() const override {
    std::ostringstream os;
    os << options.in_channels() << ", " << options.out_channels() << ", kernel_size="
       << detail::int2_str(options.kernel_size()) << ", stride=" << detail::int2_str(options.stride());
    const Conv2dPadding& p = options.padding();
    if (p.same) os << ", padding=same";
    else if (!(p.size == Int2(0))) os << ", padding=" << detail::int2_str(p.size);
    if (!(options.dilation() == Int2(1))) os << ", dilation=" << detail::int2_str(options.dilation());
    if (options.groups() != 1) os << ", groups=" << options.groups();
    if (!options.bias()) os << ", bias=False";
    return os.str();
  }

  Conv2dOptions options;
  Tensor weight;
  Tensor bias;  // undefined when options.bias() is false
};

/// Transposed 2-d convolution layer ("deconvolution", the GAN generator's upsampling):
/// weight [in, out / groups, kh, kw], bias [out].
class ConvTranspose2d : public UnaryModule {
 public:
  explicit ConvTranspose2d(const ConvTranspose2dOptions& options) : UnaryModule("ConvTranspose2d"), options(options) {
    detail::check_conv_channels("ConvTranspose2d", options.in_channels(), options.out_channels(), options.groups(),
                                options.kernel_size());
    Int2 k = options.kernel_size();
    weight = register_parameter("weight", empty({options.in_channels(), options.out_channels() / options.groups(), k.h,
                                                 k.w}, TensorOptions()));
    if (options.bias()) bias = register_parameter("bias", empty({options.out_channels()}, TensorOptions()));
    reset_parameters();
  }
  ConvTranspose2d(int64_t in_channels, int64_t out_channels, Int2 kernel_size)
      : ConvTranspose2d(ConvTranspose2dOptions(in_channels, out_channels, kernel_size)) {}

  void reset_parameters() { detail::reset_conv_parameters(weight, bias); }

  Tensor forward(const Tensor& x) override {
    return conv_transpose2d(x, weight, bias, options.stride(), options.padding(), options.output_padding(),
                            options.groups(), options.dilation());
  }

  std::string extra_repr() const override {
    std::ostringstream os;
    os << options.in_channels() << ", " << options.out_channels() << ", kernel_size="
       << detail::int2_str(options.kernel_size()) << ", stride=" << detail::int2_str(options.stride());
    if (!(options.padding() == Int2(0))) os << ", padding=" << detail::int2_str(options.padding());
    if (!(options.dilation() == Int2(1))) os << ", dilation=" << detail::int2_str(options.dilation());
    if (!(options.output_padding() == Int2(0)))
      os << ", output_padding=" << detail::int2_str(options.output_padding());
    if (options.groups() != 1) os << ", groups=" << options.groups();
    if (!options.bias()) os << ", bias=False";
    return os.str();
  }

  ConvTranspose2dOptions options;
  Tensor weight;
  Tensor bias;
};

namespace functional {
using ember::conv2d;
using ember::conv_transpose2d;
}  // namespace functional

}  // namespace ember::nn

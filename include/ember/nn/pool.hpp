#pragma once
/// Pooling layers: nn::MaxPool2d, nn::AvgPool2d, nn::AdaptiveAvgPool2d (torch.nn equivalents).
/// As in libtorch, the stride option starts out equal to kernel_size.
///
/// Example:
/// ```
///   namespace nn = ember::nn;
///   auto pool = std::make_shared<nn::MaxPool2d>(2);                          // kernel 2, stride 2
///   nn::AvgPool2d avg(nn::AvgPool2dOptions(3).stride(2).padding(1).count_include_pad(false));
///   nn::AdaptiveAvgPool2d gap(1);                                           // [N, C, 1, 1]
/// ```
#include <sstream>
#include <string>

#include "ember/nn/module.hpp"
#include "ember/nn/options.hpp"
#include "ember/ops/pool.hpp"

namespace ember::nn {

namespace detail {
/// "2" for a square value, "(3, 2)" otherwise (how PyTorch prints what the user passed).
inline std::string pool_arg_str(Int2 v) {
  if (v.h == v.w) return std::to_string(v.h);
  return "(" + std::to_string(v.h) + ", " + std::to_string(v.w) + ")";
}
inline const char* py_bool(bool b) { return b ? "True" : "False"; }
}  // namespace detail

struct MaxPool2dOptions {
  MaxPool2dOptions(Int2 kernel_size) : kernel_size_(kernel_size), stride_(kernel_size) {}  // NOLINT
  EMBER_ARG(Int2, kernel_size);
  EMBER_ARG(Int2, stride);
  EMBER_ARG(Int2, padding) = 0;
  EMBER_ARG(Int2, dilation) = 1;
  EMBER_ARG(bool, ceil_mode) = false;
};

class MaxPool2d : public UnaryModule {
 public:
  explicit MaxPool2d(const MaxPool2dOptions& options) : UnaryModule("MaxPool2d"), options(options) {}
  explicit MaxPool2d(Int2 kernel_size) : MaxPool2d(MaxPool2dOptions(kernel_size)) {}
  Tensor forward(const Tensor& x) override {
    return max_pool2d(x, options.kernel_size(), options.stride(), options.padding(), options.dilation(),
                      options.ceil_mode());
  }
  /// Values and argmax indices (for MaxUnpool-style uses).
  std::tuple<Tensor, Tensor> forward_with_indices(const Tensor& x) {
    return max_pool2d_with_indices(x, options.kernel_size(), options.stride(), options.padding(), options.dilation(),
                                   options.ceil_mode());
  }
  std::string extra_repr() const override {
    std::ostringstream os;
    os << "kernel_size=" << detail::pool_arg_str(options.kernel_size())
       << ", stride=" << detail::pool_arg_str(options.stride()) << ", padding=" << detail::pool_arg_str(options.padding())
       << ", dilation=" << detail::pool_arg_str(options.dilation()) << ", ceil_mode=" << detail::py_bool(options.ceil_mode());
    return os.str();
  }
  MaxPool2dOptions options;
};

struct AvgPool2dOptions {
  AvgPool2dOptions(Int2 kernel_size) : kernel_size_(kernel_size), stride_(kernel_size) {}  // NOLINT
  EMBER_ARG(Int2, kernel_size);
  EMBER_ARG(Int2, stride);
  EMBER_ARG(Int2, padding) = 0;
  EMBER_ARG(bool, ceil_mode) = false;
  EMBER_ARG(bool, count_include_pad) = true;
};

class AvgPool2d : public UnaryModule {
 public:
  explicit AvgPool2d(const AvgPool2dOptions& options) : UnaryModule("AvgPool2d"), options(options) {}
  explicit AvgPool2d(Int2 kernel_size) : AvgPool2d(AvgPool2dOptions(kernel_size)) {}
  Tensor forward(const Tensor& x) override {
    return avg_pool2d(x, options.kernel_size(), options.stride(), options.padding(), options.ceil_mode(),
                      options.count_include_pad());
  }
  std::string extra_repr() const override {
    return "kernel_size=" + detail::pool_arg_str(options.kernel_size()) +
           ", stride=" + detail::pool_arg_str(options.stride()) + ", padding=" + detail::pool_arg_str(options.padding());
  }
  AvgPool2dOptions options;
};

struct AdaptiveAvgPool2dOptions {
  AdaptiveAvgPool2dOptions(Int2 output_size) : output_size_(output_size) {}  // NOLINT
  EMBER_ARG(Int2, output_size);
};

class AdaptiveAvgPool2d : public UnaryModule {
 public:
  explicit AdaptiveAvgPool2d(const AdaptiveAvgPool2dOptions& options)
      : UnaryModule("AdaptiveAvgPool2d"), options(options) {}
  explicit AdaptiveAvgPool2d(Int2 output_size) : AdaptiveAvgPool2d(AdaptiveAvgPool2dOptions(output_size)) {}
  Tensor forward(const Tensor& x) override { return adaptive_avg_pool2d(x, options.output_size()); }
  std::string extra_repr() const override { return "output_size=" + detail::pool_arg_str(options.output_size()); }
  AdaptiveAvgPool2dOptions options;
};

namespace functional {
using ember::adaptive_avg_pool2d;
using ember::avg_pool2d;
using ember::max_pool2d;
using ember::max_pool2d_with_indices;
}  // namespace functional

}  // namespace ember::nn

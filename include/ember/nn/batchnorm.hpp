#pragma once
/// nn::BatchNorm1d ([N, C] or [N, C, L]) and nn::BatchNorm2d ([N, C, H, W]), as torch.nn: weight
/// (ones) and bias (zeros) parameters when affine; running_mean (zeros), running_var (ones) and
/// num_batches_tracked (int64) buffers when track_running_stats. Training mode normalises with
/// the batch statistics and updates the buffers; eval mode uses the running statistics (or the
/// batch statistics when there are none). momentum = std::nullopt means a cumulative average
/// (factor 1 / num_batches_tracked), as PyTorch's momentum=None.
///
/// Example:
/// ```
///   namespace nn = ember::nn;
///   auto bn = std::make_shared<nn::BatchNorm2d>(nn::BatchNorm2dOptions(32).momentum(0.01));
///   auto y = bn->forward(x);    // training: batch statistics, running stats updated
///   bn->eval();                 // now forward uses running_mean / running_var
/// ```
#include <optional>
#include <sstream>
#include <string>

#include "ember/nn/init.hpp"
#include "ember/nn/module.hpp"
#include "ember/nn/options.hpp"
#include "ember/ops/batch_norm.hpp"
#include "ember/ops/factory.hpp"
#include "ember/ops/inplace.hpp"

namespace ember::nn {

struct BatchNormOptions {
  BatchNormOptions(int64_t num_features) : num_features_(num_features) {}  // NOLINT
  EMBER_ARG(int64_t, num_features);
  EMBER_ARG(double, eps) = 1e-5;
  /// Weight of the batch statistic in the running average; std::nullopt = cumulative average.
  EMBER_ARG(std::optional<double>, momentum) = 0.1;
  EMBER_ARG(bool, affine) = true;
  EMBER_ARG(bool, track_running_stats) = true;
};
using BatchNorm1dOptions = BatchNormOptions;
using BatchNorm2dOptions = BatchNormOptions;

/// The shared implementation of BatchNorm1d/2d; they differ only in the input ranks accepted.
class BatchNormBase : public UnaryModule {
 public:
  BatchNormBase(const BatchNormOptions& options, std::string name) : UnaryModule(std::move(name)), options(options) {
    int64_t C = options.num_features();
    EMBER_CHECK(C > 0, this->name(), ": num_features must be positive, got ", C);
    if (options.affine()) {
      weight = register_parameter("weight", ones({C}));
      bias = register_parameter("bias", zeros({C}));
    }
    if (options.track_running_stats()) {
      running_mean = register_buffer("running_mean", zeros({C}));
      running_var = register_buffer("running_var", ones({C}));
      num_batches_tracked = register_buffer("num_batches_tracked", zeros({}, kInt64));
    }
  }

  /// Running statistics back to zeros / ones and the batch counter to 0.
  void reset_running_stats() {
    if (!options.track_running_stats()) return;
    NoGradGuard ng;
    running_mean.zero_();
    running_var.fill_(1);
    num_batches_tracked.zero_();
  }
  /// reset_running_stats() and weight = 1, bias = 0.
  void reset_parameters() {
    reset_running_stats();
    if (options.affine()) {
      init::ones_(weight);
      init::zeros_(bias);
    }
  }

  Tensor forward(const Tensor& x) override {
    check_input_dim(x);
    EMBER_CHECK(x.size(1) == options.num_features(), name(), ": expected input with ", options.num_features(),
                " channels (dim 1), got input of shape ", x.sizes());
    double factor = options.momentum().value_or(0.0);
    if (is_training() && options.track_running_stats()) {
      NoGradGuard ng;
      num_batches_tracked.add_(Scalar(1));
      if (!options.momentum()) factor = 1.0 / static_cast<double>(num_batches_tracked.item<int64_t>());
    }
    // Without running statistics, eval mode normalises with the batch statistics (as PyTorch).
    bool use_batch_stats = is_training() || !running_mean.defined();
    return batch_norm(x, running_mean, running_var, weight, bias, use_batch_stats, factor, options.eps());
  }

  std::string extra_repr() const override {
    std::ostringstream os;
    os << options.num_features() << ", eps=" << options.eps() << ", momentum=";
    if (options.momentum()) os << *options.momentum();
    else os << "None";
    os << ", affine=" << (options.affine() ? "True" : "False")
       << ", track_running_stats=" << (options.track_running_stats() ? "True" : "False");
    return os.str();
  }

  BatchNormOptions options;
  Tensor weight, bias;                                       // undefined unless affine
  Tensor running_mean, running_var, num_batches_tracked;     // undefined unless track_running_stats

 protected:
  virtual void check_input_dim(const Tensor& x) const = 0;
};

/// Batch normalisation over [N, C] or [N, C, L] inputs.
class BatchNorm1d : public BatchNormBase {
 public:
  explicit BatchNorm1d(const BatchNormOptions& options) : BatchNormBase(options, "BatchNorm1d") {}
  explicit BatchNorm1d(int64_t num_features) : BatchNorm1d(BatchNormOptions(num_features)) {}

 protected:
  void check_input_dim(const Tensor& x) const override {
    EMBER_CHECK(x.dim() == 2 || x.dim() == 3, "BatchNorm1d: expected 2D or 3D input (got ", x.dim(), "D input of shape ",
                x.sizes(), ")");
  }
};

/// Batch normalisation over [N, C, H, W] inputs.
class BatchNorm2d : public BatchNormBase {
 public:
  explicit BatchNorm2d(const BatchNormOptions& options) : BatchNormBase(options, "BatchNorm2d") {}
  explicit BatchNorm2d(int64_t num_features) : BatchNorm2d(BatchNormOptions(num_features)) {}

 protected:
  void check_input_dim(const Tensor& x) const override {
    EMBER_CHECK(x.dim() == 4, "BatchNorm2d: expected 4D input (got ", x.dim(), "D input of shape ", x.sizes(), ")");
  }
};

namespace functional {
using ember::batch_norm;
}  // namespace functional

}  // namespace ember::nn

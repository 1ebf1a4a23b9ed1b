#pragma once
/// nn::AttentionPooling: pools a padded sequence of feature vectors [B, T, F] into one vector per
/// sequence [B, F] as a weighted sum, with weights from a learned score per time step and a
/// softmax over the sequence's valid steps only (t < lengths[b]). Padding therefore never reaches
/// the result, and the weights (returned too) say which steps the model used, e.g. for printing
/// each word's weight.
///
///   score_t = w · x_t                       (hidden_size 0: Linear(F, 1, bias=false))
///   score_t = v · tanh(W x_t + b)           (hidden_size > 0: additive attention)
///   weights = softmax over t < lengths[b] of score_t (0 at padded steps), pooled = Σ_t weights_t x_t
///
/// A sequence of length 0 gets all-zero weights and a zero vector (no NaN). Parameters:
/// "score.weight" [1, hidden_size or F], and with hidden_size > 0 "proj.weight" [hidden_size, F],
/// "proj.bias" [hidden_size] (nn::Linear's initialisation).
///
/// Example:
/// ```
///   namespace nn = ember::nn;
///   auto pool = std::make_shared<nn::AttentionPooling>(nn::AttentionPoolingOptions(128).hidden_size(64));
///   auto [out, state] = lstm->forward(x, std::nullopt, lengths);   // out [B, T, 128]
///   auto [pooled, weights] = pool->forward(out, lengths);          // [B, 128], [B, T]
/// ```
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <tuple>

#include "ember/nn/linear.hpp"
#include "ember/nn/module.hpp"
#include "ember/nn/options.hpp"
#include "ember/ops/rnn.hpp"
#include "ember/ops/softmax.hpp"

namespace ember::nn {

struct AttentionPoolingOptions {
  AttentionPoolingOptions(int64_t input_size) : input_size_(input_size) {}  // NOLINT: reads like PyTorch
  /// F, the size of each step's feature vector.
  EMBER_ARG(int64_t, input_size);
  /// 0: a linear score w · x_t; > 0: the size of the tanh layer of an additive score.
  EMBER_ARG(int64_t, hidden_size) = 0;
  /// Input as [B, T, F] (true) or [T, B, F] (false).
  EMBER_ARG(bool, batch_first) = true;
};

class AttentionPooling : public Module {
 public:
  explicit AttentionPooling(const AttentionPoolingOptions& options) : Module("AttentionPooling"), options(options) {
    EMBER_CHECK(options.input_size() > 0 && options.hidden_size() >= 0,
                "AttentionPooling: input_size must be positive and hidden_size non-negative, got input_size=",
                options.input_size(), " hidden_size=", options.hidden_size());
    if (options.hidden_size() > 0) {
      proj = register_module("proj", std::make_shared<Linear>(options.input_size(), options.hidden_size()));
      score = register_module("score", std::make_shared<Linear>(LinearOptions(options.hidden_size(), 1).bias(false)));
    } else {
      score = register_module("score", std::make_shared<Linear>(LinearOptions(options.input_size(), 1).bias(false)));
    }
  }
  explicit AttentionPooling(int64_t input_size) : AttentionPooling(AttentionPoolingOptions(input_size)) {}

  /// x [B, T, F] (batch_first) or [T, B, F]; lengths int64/int32 [B] with values in [0, T], or
  /// undefined (every step is valid). Returns (pooled [B, F], weights [B, T]).
  std::tuple<Tensor, Tensor> forward(const Tensor& x, const Tensor& lengths = {}) {
    const char* op = "AttentionPooling";
    EMBER_CHECK(x.defined() && x.dim() == 3, op, ": expected a 3-D input ",
                options.batch_first() ? "[B, T, F]" : "[T, B, F]", ", got shape ", x.defined() ? x.sizes() : Shape{});
    EMBER_CHECK(x.size(2) == options.input_size(), op, ": expected ", options.input_size(),
                " features per step, got input of shape ", x.sizes());
    Tensor xb = options.batch_first() ? x : x.transpose(0, 1);  // [B, T, F]
    const int64_t B = xb.size(0), T = xb.size(1);
    Tensor s = score->forward(proj ? tanh(proj->forward(xb)) : xb).squeeze(2);  // [B, T]
    Tensor w;
    if (lengths.defined()) {
      EMBER_CHECK(lengths.dim() == 1 && lengths.size(0) == B, op, ": expected lengths of shape [", B, "], got ",
                  lengths.sizes());
      EMBER_CHECK(lengths.dtype() == kInt64 || lengths.dtype() == kInt32, op,
                  ": expected lengths as an int64 or int32 tensor, got ", lengths.dtype());
      std::vector<int64_t> len = lengths.to(kCPU).to_vector<int64_t>();
      bool any_empty = false;
      for (int64_t b = 0; b < B; ++b) {
        EMBER_CHECK(len[b] >= 0 && len[b] <= T, op, ": lengths[", b, "] = ", len[b], " is outside [0, ", T, "]");
        any_empty = any_empty || len[b] == 0;
      }
      Tensor l = lengths.to(x.device());
      Tensor valid = sequence_mask(l, T);  // [B, T]
      // A sequence without valid steps keeps its scores (a softmax over nothing is NaN) and has
      // its weights zeroed below.
      Tensor pad = logical_not(valid);
      if (any_empty) pad = logical_and(pad, gt(l, Scalar(0)).unsqueeze(1));
      w = softmax(masked_fill(s, pad, Scalar(-std::numeric_limits<double>::infinity())), 1);
      if (any_empty) w = where(valid, w, Scalar(0.0));
    } else {
      w = softmax(s, 1);
    }
    Tensor pooled = matmul(w.unsqueeze(1), xb).squeeze(1);  // [B, 1, T] @ [B, T, F]
    return {pooled, w};
  }

  std::string extra_repr() const override {
    std::ostringstream os;
    os << "input_size=" << options.input_size();
    if (options.hidden_size() > 0) os << ", hidden_size=" << options.hidden_size();
    if (!options.batch_first()) os << ", batch_first=False";
    return os.str();
  }

  AttentionPoolingOptions options;
  std::shared_ptr<Linear> proj;   // null when hidden_size is 0
  std::shared_ptr<Linear> score;
};

}  // namespace ember::nn

#pragma once
/// Losses: `nn::functional::` cross_entropy, nll_loss, mse_loss, l1_loss, binary_cross_entropy,
/// binary_cross_entropy_with_logits, and the modules CrossEntropyLoss, NLLLoss, MSELoss, L1Loss,
/// BCELoss, BCEWithLogitsLoss. Values match PyTorch's (mean over non-ignored targets divided by
/// their total class weight, torch's label-smoothing formula, the stable logits form of BCE).
///
/// Every loss is written with differentiable Ember ops (log_softmax, gather, mul, sum, softplus),
/// so gradients of gradients work (gradient penalties, gradgradcheck). Class-index targets are
/// read on the host once to validate them (dtype int64, each index in [0, C) or ignore_index).
///
/// Example:
/// ```
///   namespace F = ember::nn::functional;
///   auto loss = F::cross_entropy(logits, labels);                      // logits [N, C], labels [N] int64
///   auto seg = F::cross_entropy(out, masks, ember::nn::CrossEntropyLossOptions().ignore_index(255));
///   ember::nn::CrossEntropyLoss criterion(ember::nn::CrossEntropyLossOptions().label_smoothing(0.1));
///   auto l = criterion(logits, labels);
/// ```
#include <cmath>
#include <string>
#include <vector>

#include "ember/nn/module.hpp"
#include "ember/nn/options.hpp"
#include "ember/ops/activation.hpp"
#include "ember/ops/index.hpp"
#include "ember/ops/reduce.hpp"
#include "ember/ops/softmax.hpp"
#include "ember/ops/unary.hpp"

namespace ember::nn {

/// How a loss reduces its per-element values: none (same shape as the target), mean or sum.
enum class Reduction { None, Mean, Sum };
inline constexpr Reduction kNone = Reduction::None;
inline constexpr Reduction kMean = Reduction::Mean;
inline constexpr Reduction kSum = Reduction::Sum;

inline const char* reduction_name(Reduction r) {
  switch (r) {
    case Reduction::None: return "none";
    case Reduction::Mean: return "mean";
    case Reduction::Sum: return "sum";
  }
  return "?";
}

struct NLLLossOptions {
  /// Optional per-class weight [C].
  EMBER_ARG(Tensor, weight);
  /// Targets equal to this index contribute nothing (and are not counted by the mean).
  EMBER_ARG(int64_t, ignore_index) = -100;
  EMBER_ARG(Reduction, reduction) = Reduction::Mean;
};

struct CrossEntropyLossOptions {
  EMBER_ARG(Tensor, weight);
  EMBER_ARG(int64_t, ignore_index) = -100;
  EMBER_ARG(Reduction, reduction) = Reduction::Mean;
  /// In [0, 1]: the target becomes (1 - s) * one_hot + s / C.
  EMBER_ARG(double, label_smoothing) = 0.0;
};

struct MSELossOptions {
  MSELossOptions(Reduction r = Reduction::Mean) : reduction_(r) {}  // NOLINT
  EMBER_ARG(Reduction, reduction);
};
struct L1LossOptions {
  L1LossOptions(Reduction r = Reduction::Mean) : reduction_(r) {}  // NOLINT
  EMBER_ARG(Reduction, reduction);
};
struct BCELossOptions {
  /// Optional weight broadcast against the per-element loss.
  EMBER_ARG(Tensor, weight);
  EMBER_ARG(Reduction, reduction) = Reduction::Mean;
};
struct BCEWithLogitsLossOptions {
  EMBER_ARG(Tensor, weight);
  /// Weight of positive examples, broadcast along the last (class) dim: [C] for multi-label.
  EMBER_ARG(Tensor, pos_weight);
  EMBER_ARG(Reduction, reduction) = Reduction::Mean;
};

namespace detail {

inline Tensor apply_reduction(const Tensor& loss, Reduction r) {
  switch (r) {
    case Reduction::None: return loss;
    case Reduction::Sum: return sum(loss);
    case Reduction::Mean: return mean(loss);
  }
  return loss;
}

/// Class-index targets checked and split into what a differentiable loss needs.
struct ClassTargets {
  Tensor index;    // int64, target's shape, ignored entries replaced by 0 (a valid gather index)
  Tensor weight;   // input's dtype, target's shape: the class weight, 0 where ignored
  Tensor mask;     // input's dtype, target's shape: 1, 0 where ignored
  double total_weight = 0;
  int64_t count = 0;
};

/// Validates `target` against `input` [N, C, d...] (C at dim 1) and builds ClassTargets.
inline ClassTargets class_targets(const char* op, const Tensor& input, const Tensor& target, const Tensor& weight,
                                  int64_t ignore_index) {
  EMBER_CHECK(target.defined(), op, ": target is undefined");
  EMBER_CHECK(target.dtype() == kInt64, op, ": expected a target of dtype int64 holding class indices, got ",
              target.dtype(), " (for class probabilities use a floating target of the input's shape)");
  check_same_device(op, {&input, &target});
  int64_t C = input.size(1);
  Shape expected;
  for (int64_t d = 0; d < input.dim(); ++d)
    if (d != 1) expected.push_back(input.size(d));
  EMBER_CHECK(target.sizes() == expected, op, ": input of shape ", input.sizes(), " (classes at dim 1) expects a target of shape ",
              expected, ", got ", target.sizes());
  std::vector<double> wv;
  if (weight.defined()) {
    EMBER_CHECK(weight.dim() == 1 && weight.size(0) == C, op, ": weight must be a 1-d tensor of ", C,
                " class weights, got shape ", weight.sizes());
    EMBER_CHECK(weight.is_floating_point(), op, ": weight must be floating point, got ", weight.dtype());
    wv = weight.detach().to(kFloat64).to_vector<double>();
  }
  std::vector<int64_t> t = target.to_vector<int64_t>();
  std::vector<int64_t> safe(t.size());
  std::vector<double> w(t.size()), m(t.size());
  ClassTargets ct;
  for (size_t i = 0; i < t.size(); ++i) {
    if (t[i] == ignore_index) continue;  // safe 0, weight 0, mask 0
    EMBER_CHECK(t[i] >= 0 && t[i] < C, op, ": target ", t[i], " is out of bounds for ", C, " classes (expected a class index in [0, ",
                C, ") or ignore_index=", ignore_index, "; found at flat position ", i, " of the target)");
    safe[i] = t[i];
    w[i] = wv.empty() ? 1.0 : wv[static_cast<size_t>(t[i])];
    m[i] = 1.0;
    ct.total_weight += w[i];
    ++ct.count;
  }
  TensorOptions fo = TensorOptions(input.dtype()).device(input.device());
  ct.index = tensor(safe, target.sizes(), TensorOptions(kInt64).device(input.device()));
  ct.weight = tensor(w, target.sizes(), fo);
  ct.mask = tensor(m, target.sizes(), fo);
  return ct;
}

inline void check_loss_input(const char* op, const Tensor& input) {
  EMBER_CHECK(input.defined(), op, ": input is undefined");
  EMBER_CHECK(input.is_floating_point(), op, ": expected a floating point input, got ", input.dtype());
  EMBER_CHECK(input.dim() >= 1, op, ": expected an input with at least 1 dim ([C] or [N, C, d...]), got a 0-dim tensor");
}

/// Same shapes for elementwise losses: silently broadcasting [N, 1] against [N] is a classic bug.
inline void check_same_shape(const char* op, const Tensor& input, const Tensor& target) {
  EMBER_CHECK(input.defined() && target.defined(), op, ": undefined input or target");
  EMBER_CHECK(input.sizes() == target.sizes(), op, ": input of shape ", input.sizes(), " and target of shape ",
              target.sizes(), " must have the same shape (reshape one of them; broadcasting here is almost always a bug)");
  check_same_device(op, {&input, &target});
}

/// [C] → [1, C, 1, ...] to broadcast a class weight against [N, C, d...].
inline Tensor class_weight_view(const Tensor& weight, int64_t ndim) {
  Shape s;
  for (int64_t d = 0; d < ndim; ++d) s.push_back(d == 1 ? weight.size(0) : 1);
  return weight.detach().reshape(s);
}

/// -lp[target] * w per element, from log-probabilities lp [N, C, d...].
inline Tensor picked_nll(const Tensor& lp, const ClassTargets& ct) {
  Tensor picked = gather(lp, 1, ct.index.unsqueeze(1)).squeeze(1);
  return neg(mul(picked, ct.weight));
}

}  // namespace detail

namespace functional {

/// Negative log-likelihood of class indices under log-probabilities `input` ([N, C, d...] or
/// [C] with a 0-dim target): -input[n, target[n]] * weight[target[n]]; the mean divides by the
/// total weight of the non-ignored targets (NaN when every target is ignored, as in PyTorch).
inline Tensor nll_loss(const Tensor& input, const Tensor& target, const NLLLossOptions& o = {}) {
  const char* op = "nll_loss";
  detail::check_loss_input(op, input);
  bool unbatched = input.dim() == 1;
  Tensor in = unbatched ? input.unsqueeze(0) : input;
  Tensor tg = unbatched && target.defined() ? target.unsqueeze(0) : target;
  auto ct = detail::class_targets(op, in, tg, o.weight(), o.ignore_index());
  Tensor losses = detail::picked_nll(in, ct);
  switch (o.reduction()) {
    case Reduction::None: return unbatched ? losses.squeeze(0) : losses;
    case Reduction::Sum: return sum(losses);
    case Reduction::Mean: return div(sum(losses), Scalar(ct.total_weight));
  }
  return losses;
}

/// Cross entropy between logits `input` ([N, C, d...] or [C]) and either class indices
/// (int64, shape [N, d...]) or class probabilities (floating, input's shape), as
/// torch.nn.functional.cross_entropy: log_softmax over dim 1, optional class weight,
/// ignore_index and label smoothing ((1 - s) * nll + s / C * sum_c -log_softmax).
inline Tensor cross_entropy(const Tensor& input, const Tensor& target, const CrossEntropyLossOptions& o = {}) {
  const char* op = "cross_entropy";
  detail::check_loss_input(op, input);
  double ls = o.label_smoothing();
  EMBER_CHECK(ls >= 0.0 && ls <= 1.0, op, ": label_smoothing must be between 0.0 and 1.0, got ", ls);
  EMBER_CHECK(target.defined(), op, ": target is undefined");
  bool unbatched = input.dim() == 1;
  Tensor in = unbatched ? input.unsqueeze(0) : input;
  int64_t C = in.size(1);
  Tensor lp = log_softmax(in, 1);
  const Tensor& weight = o.weight();
  if (weight.defined()) {
    EMBER_CHECK(weight.dim() == 1 && weight.size(0) == C, op, ": weight must be a 1-d tensor of ", C,
                " class weights, got shape ", weight.sizes());
  }

  if (target.is_floating_point()) {
    // Class probabilities.
    EMBER_CHECK(target.sizes() == input.sizes(), op, ": a probability target must have the input's shape ",
                input.sizes(), ", got ", target.sizes());
    Tensor t = unbatched ? target.unsqueeze(0) : target;
    if (ls > 0) t = add(mul(t, Scalar(1.0 - ls)), Scalar(ls / static_cast<double>(C)));
    Tensor prod = mul(lp, t);
    if (weight.defined()) prod = mul(prod, detail::class_weight_view(weight, in.dim()));
    Tensor losses = neg(sum(prod, {1}));
    switch (o.reduction()) {
      case Reduction::None: return unbatched ? losses.squeeze(0) : losses;
      case Reduction::Sum: return sum(losses);
      case Reduction::Mean: return div(sum(losses), Scalar(static_cast<double>(in.numel() / std::max<int64_t>(C, 1))));
    }
  }

  Tensor tg = unbatched ? target.unsqueeze(0) : target;
  auto ct = detail::class_targets(op, in, tg, weight, o.ignore_index());
  Tensor nll = detail::picked_nll(lp, ct);
  if (ls == 0) {
    switch (o.reduction()) {
      case Reduction::None: return unbatched ? nll.squeeze(0) : nll;
      case Reduction::Sum: return sum(nll);
      case Reduction::Mean: return div(sum(nll), Scalar(ct.total_weight));
    }
  }
  // Label smoothing, as torch's cross_entropy_loss_label_smoothing.
  Tensor smooth = weight.defined() ? mul(lp, detail::class_weight_view(weight, in.dim())) : lp;
  smooth = mul(neg(sum(smooth, {1})), ct.mask);
  double a = 1.0 - ls, b = ls / static_cast<double>(C);
  switch (o.reduction()) {
    case Reduction::None: {
      Tensor l = add(mul(nll, Scalar(a)), mul(smooth, Scalar(b)));
      return unbatched ? l.squeeze(0) : l;
    }
    case Reduction::Sum: return add(mul(sum(nll), Scalar(a)), mul(sum(smooth), Scalar(b)));
    case Reduction::Mean: {
      double denom_smooth = weight.defined() ? ct.total_weight : static_cast<double>(ct.count);
      return add(mul(div(sum(nll), Scalar(ct.total_weight)), Scalar(a)),
                 mul(div(sum(smooth), Scalar(denom_smooth)), Scalar(b)));
    }
  }
  return nll;
}

/// Mean squared error (input - target)^2; input and target must have the same shape.
inline Tensor mse_loss(const Tensor& input, const Tensor& target, const MSELossOptions& o = {}) {
  detail::check_same_shape("mse_loss", input, target);
  Tensor d = sub(input, target);
  return detail::apply_reduction(mul(d, d), o.reduction());
}

/// Mean absolute error |input - target|; input and target must have the same shape.
inline Tensor l1_loss(const Tensor& input, const Tensor& target, const L1LossOptions& o = {}) {
  detail::check_same_shape("l1_loss", input, target);
  return detail::apply_reduction(abs(sub(input, target)), o.reduction());
}

/// Binary cross entropy of probabilities `input` in [0, 1]: -(t log p + (1 - t) log(1 - p)), each
/// log clamped to >= -100 as in PyTorch (so p = 0 or 1 gives a finite loss).
inline Tensor binary_cross_entropy(const Tensor& input, const Tensor& target, const BCELossOptions& o = {}) {
  const char* op = "binary_cross_entropy";
  detail::check_same_shape(op, input, target);
  EMBER_CHECK(input.is_floating_point(), op, ": expected a floating point input, got ", input.dtype());
  if (input.numel() > 0) {
    double lo = amin(input.detach()).to(kFloat64).item<double>(), hi = amax(input.detach()).to(kFloat64).item<double>();
    EMBER_CHECK(lo >= 0 && hi <= 1, op, ": all elements of input should be between 0 and 1, got values in [", lo,
                ", ", hi, "] (use binary_cross_entropy_with_logits on logits)");
  }
  Tensor lp = clamp_min(log(input), Scalar(-100.0));
  Tensor l1p = clamp_min(log(sub(ones_like(input), input)), Scalar(-100.0));
  Tensor loss = neg(add(mul(target, lp), mul(sub(ones_like(target), target), l1p)));
  if (o.weight().defined()) loss = mul(loss, o.weight());
  return detail::apply_reduction(loss, o.reduction());
}

/// Sigmoid + binary cross entropy in one stable expression:
/// (1 - t) * x + w_pos * softplus(-x), w_pos = 1 + (pos_weight - 1) * t.
inline Tensor binary_cross_entropy_with_logits(const Tensor& input, const Tensor& target,
                                               const BCEWithLogitsLossOptions& o = {}) {
  const char* op = "binary_cross_entropy_with_logits";
  detail::check_same_shape(op, input, target);
  EMBER_CHECK(input.is_floating_point(), op, ": expected a floating point input, got ", input.dtype());
  // Above the threshold softplus(v) returns v; at 40, log1p(exp(-40)) ~ 4e-18 is below float64
  // rounding, so this is exact, and exp(40) does not overflow even in float32.
  Tensor sp = softplus(neg(input), 1.0, 40.0);
  if (o.pos_weight().defined()) {
    const Tensor& pw = o.pos_weight();
    EMBER_CHECK(broadcast_shapes(pw.sizes(), input.sizes(), op) == input.sizes(), op, ": pos_weight of shape ",
                pw.sizes(), " does not broadcast to the input's shape ", input.sizes());
    Tensor log_weight = add(mul(sub(pw, Scalar(1.0)), target), Scalar(1.0));
    sp = mul(log_weight, sp);
  }
  Tensor loss = add(mul(sub(ones_like(target), target), input), sp);
  if (o.weight().defined()) loss = mul(loss, o.weight());
  return detail::apply_reduction(loss, o.reduction());
}

}  // namespace functional

// ---- modules ------------------------------------------------------------------------------------

/// Base of the loss modules: `loss(input, target)`; a class weight becomes a buffer, so
/// `to(device)` moves it.
class Loss : public Module {
 public:
  using Module::Module;
  virtual Tensor forward(const Tensor& input, const Tensor& target) = 0;
  Tensor operator()(const Tensor& input, const Tensor& target) { return forward(input, target); }
};

class CrossEntropyLoss : public Loss {
 public:
  explicit CrossEntropyLoss(const CrossEntropyLossOptions& options = {}) : Loss("CrossEntropyLoss"), options(options) {
    if (options.weight().defined()) this->options.weight(register_buffer("weight", options.weight()));
  }
  Tensor forward(const Tensor& input, const Tensor& target) override {
    return functional::cross_entropy(input, target, options);
  }
  CrossEntropyLossOptions options;
};

class NLLLoss : public Loss {
 public:
  explicit NLLLoss(const NLLLossOptions& options = {}) : Loss("NLLLoss"), options(options) {
    if (options.weight().defined()) this->options.weight(register_buffer("weight", options.weight()));
  }
  Tensor forward(const Tensor& input, const Tensor& target) override { return functional::nll_loss(input, target, options); }
  NLLLossOptions options;
};

class MSELoss : public Loss {
 public:
  explicit MSELoss(const MSELossOptions& options = {}) : Loss("MSELoss"), options(options) {}
  Tensor forward(const Tensor& input, const Tensor& target) override { return functional::mse_loss(input, target, options); }
  MSELossOptions options;
};

class L1Loss : public Loss {
 public:
  explicit L1Loss(const L1LossOptions& options = {}) : Loss("L1Loss"), options(options) {}
  Tensor forward(const Tensor& input, const Tensor& target) override { return functional::l1_loss(input, target, options); }
  L1LossOptions options;
};

class BCELoss : public Loss {
 public:
  explicit BCELoss(const BCELossOptions& options = {}) : Loss("BCELoss"), options(options) {
    if (options.weight().defined()) this->options.weight(register_buffer("weight", options.weight()));
  }
  Tensor forward(const Tensor& input, const Tensor& target) override {
    return functional::binary_cross_entropy(input, target, options);
  }
  BCELossOptions options;
};

class BCEWithLogitsLoss : public Loss {
 public:
  explicit BCEWithLogitsLoss(const BCEWithLogitsLossOptions& options = {}) : Loss("BCEWithLogitsLoss"), options(options) {
    if (options.weight().defined()) this->options.weight(register_buffer("weight", options.weight()));
    if (options.pos_weight().defined()) this->options.pos_weight(register_buffer("pos_weight", options.pos_weight()));
  }
  Tensor forward(const Tensor& input, const Tensor& target) override {
    return functional::binary_cross_entropy_with_logits(input, target, options);
  }
  BCEWithLogitsLossOptions options;
};

}  // namespace ember::nn

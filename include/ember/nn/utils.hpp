#pragma once
/// nn::utils: gradient clipping (clip_grad_norm_, clip_grad_value_) and parameter counting.
///
/// Example:
/// ```
///   loss.backward();
///   double total = ember::nn::utils::clip_grad_norm_(model->parameters(), /*max_norm=*/1.0);
///   optimizer.step();
/// ```
#include <cmath>
#include <limits>
#include <vector>

#include "ember/core/grad_mode.hpp"
#include "ember/nn/module.hpp"
#include "ember/ops/inplace.hpp"
#include "ember/ops/pointwise.hpp"
#include "ember/ops/reduce.hpp"

namespace ember::nn::utils {

/// Scales the gradients of `params` in place so that their joint `norm_type`-norm (the norm of
/// the per-parameter norms; inf = max |g|) is at most `max_norm`, as torch.nn.utils.clip_grad_norm_
/// does (coefficient max_norm / (total + 1e-6), clamped to 1). Parameters without a gradient are
/// skipped. Returns the total norm before clipping. With `error_if_nonfinite`, a NaN/inf total
/// throws instead of scaling.
inline double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm, double norm_type = 2.0,
                              bool error_if_nonfinite = false) {
  NoGradGuard ng;
  std::vector<Tensor> grads;
  for (const auto& p : params)
    if (p.defined() && p.grad().defined()) grads.push_back(p.grad());
  if (grads.empty()) return 0.0;
  // Accumulate on the gradients' device in float64 and read back once.
  Tensor acc;
  for (const auto& g : grads) {
    Tensor n = norm(g.detach(), norm_type).to(kFloat64);
    if (std::isinf(norm_type)) acc = acc.defined() ? maximum(acc, n) : n;
    else {
      Tensor np = norm_type == 1 ? n : pow(n, Scalar(norm_type));
      acc = acc.defined() ? add(acc, np.to(acc.device())) : np;
    }
  }
  double total = acc.item<double>();
  if (!std::isinf(norm_type)) total = norm_type == 1 ? total : std::pow(total, 1.0 / norm_type);
  EMBER_CHECK(!error_if_nonfinite || std::isfinite(total), "clip_grad_norm_: the total norm of order ", norm_type,
              " for gradients from `parameters` is non-finite (", total,
              "), so it cannot be clipped; set error_if_nonfinite=false to scale anyway");
  double coef = max_norm / (total + 1e-6);
  if (coef < 1.0)
    for (auto& g : grads) g.mul_(coef);
  return total;
}

/// Clamps every gradient element of `params` to [-clip_value, clip_value], in place.
inline void clip_grad_value_(const std::vector<Tensor>& params, double clip_value) {
  EMBER_CHECK(clip_value >= 0, "clip_grad_value_: clip_value must be non-negative, got ", clip_value);
  NoGradGuard ng;
  for (const auto& p : params)
    if (p.defined() && p.grad().defined()) {
      Tensor g = p.grad();
      g.clamp_(-clip_value, clip_value);
    }
}

/// Number of trainable parameter elements of `module` (the tutorials' count_parameters).
inline int64_t count_parameters(const Module& module) { return module.num_parameters(true); }

}  // namespace ember::nn::utils

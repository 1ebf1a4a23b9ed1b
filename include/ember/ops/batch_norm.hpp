#pragma once
/// Batch normalisation (torch.nn.functional.batch_norm) over [N, C] or [N, C, *] inputs.
///
/// Written from differentiable Ember ops (mean over every dim but the channel dim, rsqrt, one
/// scale-and-shift per channel), so its gradient is itself differentiable: a gradient penalty
/// through a batch-normalised network works. Training mode normalises with the batch statistics
/// (biased variance) and updates the running statistics in place, outside the graph, with the
/// unbiased variance, exactly as PyTorch:
///   running_mean = (1 - momentum) * running_mean + momentum * mean
///   running_var  = (1 - momentum) * running_var  + momentum * var * n / (n - 1)
/// Eval mode uses the running statistics.
///
/// Example:
/// ```
///   auto rm = ember::zeros({16}), rv = ember::ones({16});
///   auto y = ember::batch_norm(x, rm, rv, gamma, beta, /*training=*/true);   // rm, rv updated
///   auto z = ember::batch_norm(x, rm, rv, gamma, beta, /*training=*/false);  // uses rm, rv
/// ```
#include "ember/core/grad_mode.hpp"
#include "ember/ops/binary.hpp"
#include "ember/ops/inplace.hpp"
#include "ember/ops/reduce.hpp"
#include "ember/ops/shape.hpp"
#include "ember/ops/unary.hpp"

namespace ember {

/// Normalises each channel (dim 1) of `input`; weight/bias ([C], optional) scale and shift the
/// result. running_mean/running_var ([C], optional in training mode) are read in eval mode and
/// updated in place in training mode. Differentiable in input, weight and bias, to any order.
inline Tensor batch_norm(const Tensor& input, const Tensor& running_mean, const Tensor& running_var,
                         const Tensor& weight = {}, const Tensor& bias = {}, bool training = false,
                         double momentum = 0.1, double eps = 1e-5) {
  const char* op = "batch_norm";
  EMBER_CHECK(input.defined() && input.dim() >= 2, op, ": expected an input of shape [N, C] or [N, C, *], got ",
              input.defined() ? input.sizes() : Shape{});
  EMBER_CHECK(input.is_floating_point(), op, ": expected a floating point input, got ", input.dtype());
  const int64_t C = input.size(1);
  auto check_param = [&](const Tensor& t, const char* what) {
    if (!t.defined()) return;
    EMBER_CHECK(t.dim() == 1 && t.size(0) == C, op, ": expected ", what, " of shape [", C, "] for input of shape ",
                input.sizes(), ", got ", t.sizes());
    EMBER_CHECK(t.device() == input.device(), op, ": ", what, " is on ", t.device(), " but the input is on ",
                input.device());
  };
  check_param(running_mean, "running_mean");
  check_param(running_var, "running_var");
  check_param(weight, "weight");
  check_param(bias, "bias");
  EMBER_CHECK(eps >= 0, op, ": eps must be non-negative, got ", eps);
  EMBER_CHECK(running_mean.defined() == running_var.defined(), op,
              ": running_mean and running_var must both be given or both be undefined");

  // Every dim but the channel dim is reduced; per-channel tensors are viewed as [1, C, 1, ...].
  Shape dims{0};
  Shape bshape{1, C};
  for (int64_t d = 2; d < input.dim(); ++d) {
    dims.push_back(d);
    bshape.push_back(1);
  }
  const int64_t n = input.numel() / std::max<int64_t>(C, 1);

  Tensor mean, invstd;
  if (training) {
    EMBER_CHECK(n > 1, op, ": expected more than 1 value per channel when training, got input of shape ", input.sizes());
    mean = ember::mean(input, dims, true);
    Tensor xc = sub(input, mean);
    Tensor var = ember::mean(mul(xc, xc), dims, true);  // biased, as PyTorch normalises
    invstd = rsqrt(add(var, Scalar(eps)));
    if (running_mean.defined()) {
      NoGradGuard ng;
      Tensor m = mean.detach().reshape({C}).to(running_mean.dtype());
      Tensor v = mul(var.detach().reshape({C}), Scalar(static_cast<double>(n) / static_cast<double>(n - 1)))
                     .to(running_var.dtype());
      Tensor rm = running_mean, rv = running_var;
      rm.mul_(Scalar(1.0 - momentum)).add_(m, Scalar(momentum));
      rv.mul_(Scalar(1.0 - momentum)).add_(v, Scalar(momentum));
    }
    // y = (x - mean) * invstd * w + b, reusing the centred x.
    Tensor scale = weight.defined() ? mul(invstd, weight.view(bshape)) : invstd;
    Tensor y = mul(xc, scale);
    return bias.defined() ? add(y, bias.view(bshape)) : y;
  }
  EMBER_CHECK(running_mean.defined(), op, ": running_mean and running_var are required in eval mode (training=false)");
  // One scale and one shift per channel, so the big tensor is touched twice.
  Tensor scale = rsqrt(add(running_var.detach(), Scalar(eps)));
  if (weight.defined()) scale = mul(scale, weight);
  Tensor shift = neg(mul(running_mean.detach(), scale));
  if (bias.defined()) shift = add(shift, bias);
  return add(mul(input, scale.view(bshape).to(input.dtype())), shift.view(bshape).to(input.dtype()));
}

}  // namespace ember

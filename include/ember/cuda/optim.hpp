#pragma once
/// Fused optimizer updates on the GPU (kernels/optim.cu): one kernel per parameter tensor reads
/// the gradient and state once and writes parameter and state once, instead of the 5-8
/// elementwise launches of the composed update. Same formulas, in the same order, as
/// include/ember/optim/sgd.hpp and adam.hpp (torch.optim's). Declarations only.
///
/// All pointers are contiguous device buffers of `n` elements of one floating dtype (state in
/// the parameter's dtype); 16-bit types compute in float.
///
/// Example (inside an optimizer's step, for a CUDA parameter p with gradient g):
/// ```
///   ember::cuda::AdamParams a;
///   a.lr = 1e-3; a.step = state.step;  // already incremented for this step
///   ember::cuda::adam_update(p.dtype(), p.numel(), p.raw_data(), g.raw_data(), m.raw_data(),
///                            v.raw_data(), nullptr, a);
/// ```
#include <cstdint>

#include "ember/core/dtype.hpp"

namespace ember::cuda {

/// torch.optim.SGD for one tensor: d = (maximize ? -g : g) + weight_decay * p; with momentum,
/// buf = first_step ? d : momentum * buf + (1 - dampening) * d and d = nesterov ? d + momentum * buf : buf;
/// then p -= lr * d.
struct SgdParams {
  double lr = 0.01, momentum = 0, dampening = 0, weight_decay = 0;
  bool nesterov = false, maximize = false;
  bool first_step = false;  // the momentum buffer is uninitialised: it becomes d
};
/// `momentum_buf` may be null when momentum == 0.
void sgd_update(DType dtype, int64_t n, void* param, const void* grad, void* momentum_buf, const SgdParams& o);

/// torch.optim.Adam (decoupled = false) / AdamW (decoupled = true) for one tensor at step `step`
/// (1 on the first update).
struct AdamParams {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0;
  bool decoupled = false, amsgrad = false, maximize = false;
  int64_t step = 1;
};
/// `max_exp_avg_sq` is used (and required) only with amsgrad.
void adam_update(DType dtype, int64_t n, void* param, const void* grad, void* exp_avg, void* exp_avg_sq,
                 void* max_exp_avg_sq, const AdamParams& o);

}  // namespace ember::cuda

/// Fused SGD and Adam/AdamW updates (include/ember/cuda/optim.hpp): one grid-stride pass per
/// parameter tensor, the arithmetic in the order of the composed CPU update (optim/sgd.hpp,
/// optim/adam.hpp) so both devices agree to rounding.
#include <cmath>

#include "common.cuh"
#include "ember/cuda/optim.hpp"

namespace ember::cuda {

namespace {

using detail::cast;
using detail::compute_t;

template <typename C> __device__ __forceinline__ C dev_sqrt(C x) { return sqrt(x); }
template <> __device__ __forceinline__ float dev_sqrt<float>(float x) { return sqrtf(x); }

/// The scalars of one update in the compute type.
template <typename C>
struct SgdScalars {
  C lr, momentum, dampening_keep, weight_decay;
  bool use_momentum, nesterov, maximize, first_step;
};

template <typename T>
__global__ void sgd_kernel(int64_t n, T* __restrict__ p, const T* __restrict__ g, T* __restrict__ buf,
                           SgdScalars<compute_t<T>> s) {
  using C = compute_t<T>;
  int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    C pv = cast<C>(p[i]);
    C d = cast<C>(g[i]);
    if (s.maximize) d = -d;
    if (s.weight_decay != C(0)) d = d + s.weight_decay * pv;
    if (s.use_momentum) {
      C b = s.first_step ? d : cast<C>(buf[i]) * s.momentum + s.dampening_keep * d;
      b = cast<C>(cast<T>(b));  // the buffer is stored in T: continue from the stored value
      buf[i] = cast<T>(b);
      d = s.nesterov ? d + s.momentum * b : b;
    }
    p[i] = cast<T>(pv + (-s.lr) * d);
  }
}

template <typename C>
struct AdamScalars {
  C lr, beta1, beta2, one_minus_beta1, one_minus_beta2, eps, weight_decay, decay_factor, step_size,
      bias_correction2_sqrt;
  bool decoupled, amsgrad, maximize;
};

template <typename T>
__global__ void adam_kernel(int64_t n, T* __restrict__ p, const T* __restrict__ g, T* __restrict__ m,
                            T* __restrict__ v, T* __restrict__ vmax, AdamScalars<compute_t<T>> s) {
  using C = compute_t<T>;
  int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    C pv = cast<C>(p[i]);
    C gv = cast<C>(g[i]);
    if (s.maximize) gv = -gv;
    if (s.weight_decay != C(0)) {
      if (s.decoupled) pv = cast<C>(cast<T>(pv * s.decay_factor));
      else gv = gv + s.weight_decay * pv;
    }
    C mv = cast<C>(cast<T>(cast<C>(m[i]) * s.beta1)) + s.one_minus_beta1 * gv;
    C vv = cast<C>(cast<T>(cast<C>(v[i]) * s.beta2)) + s.one_minus_beta2 * gv * gv;
    T mt = cast<T>(mv), vt = cast<T>(vv);
    m[i] = mt;
    v[i] = vt;
    C second = cast<C>(vt);
    if (s.amsgrad) {
      C prev = cast<C>(vmax[i]);
      second = prev > second ? prev : second;  // maximum(max_exp_avg_sq, v)
      vmax[i] = cast<T>(second);
    }
    C denom = dev_sqrt(second) / s.bias_correction2_sqrt + s.eps;
    p[i] = cast<T>(pv + (-s.step_size) * (cast<C>(mt) / denom));
  }
}

void check_common(DType dtype, int64_t n, const void* param, const void* grad, const char* op) {
  EMBER_CHECK(is_floating(dtype), op, ": expected a floating point parameter, got ", dtype);
  EMBER_CHECK(n >= 0, op, ": negative element count ", n);
  EMBER_CHECK(n == 0 || (param != nullptr && grad != nullptr), op, ": null parameter or gradient buffer");
}

}  // namespace

void sgd_update(DType dtype, int64_t n, void* param, const void* grad, void* momentum_buf, const SgdParams& o) {
  const char* op = "sgd_update (cuda)";
  check_common(dtype, n, param, grad, op);
  EMBER_CHECK(o.momentum == 0 || momentum_buf != nullptr || n == 0, op, ": momentum ", o.momentum,
              " needs a momentum buffer");
  if (n == 0) return;
  detail::dispatch_floating(dtype, op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    using C = compute_t<T>;
    SgdScalars<C> s{static_cast<C>(o.lr), static_cast<C>(o.momentum), static_cast<C>(1.0 - o.dampening),
                    static_cast<C>(o.weight_decay), o.momentum != 0, o.nesterov, o.maximize, o.first_step};
    sgd_kernel<T><<<detail::grid_for(n), detail::kBlock, 0, detail::stream()>>>(
        n, static_cast<T*>(param), static_cast<const T*>(grad), static_cast<T*>(momentum_buf), s);
  });
  detail::check_launch(op);
}

void adam_update(DType dtype, int64_t n, void* param, const void* grad, void* exp_avg, void* exp_avg_sq,
                 void* max_exp_avg_sq, const AdamParams& o) {
  const char* op = o.decoupled ? "adamw_update (cuda)" : "adam_update (cuda)";
  check_common(dtype, n, param, grad, op);
  EMBER_CHECK(o.step >= 1, op, ": step must be >= 1 (the count after this update), got ", o.step);
  EMBER_CHECK(n == 0 || (exp_avg != nullptr && exp_avg_sq != nullptr), op, ": null exp_avg or exp_avg_sq buffer");
  EMBER_CHECK(n == 0 || !o.amsgrad || max_exp_avg_sq != nullptr, op, ": amsgrad needs a max_exp_avg_sq buffer");
  if (n == 0) return;
  double t = static_cast<double>(o.step);
  double bias_correction1 = 1.0 - std::pow(o.beta1, t);
  double bias_correction2_sqrt = std::sqrt(1.0 - std::pow(o.beta2, t));
  detail::dispatch_floating(dtype, op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    using C = compute_t<T>;
    AdamScalars<C> s{static_cast<C>(o.lr),
                     static_cast<C>(o.beta1),
                     static_cast<C>(o.beta2),
                     static_cast<C>(1.0 - o.beta1),
                     static_cast<C>(1.0 - o.beta2),
                     static_cast<C>(o.eps),
                     static_cast<C>(o.weight_decay),
                     static_cast<C>(1.0 - o.lr * o.weight_decay),
                     static_cast<C>(o.lr / bias_correction1),
                     static_cast<C>(bias_correction2_sqrt),
                     o.decoupled,
                     o.amsgrad,
                     o.maximize};
    adam_kernel<T><<<detail::grid_for(n), detail::kBlock, 0, detail::stream()>>>(
        n, static_cast<T*>(param), static_cast<const T*>(grad), static_cast<T*>(exp_avg), static_cast<T*>(exp_avg_sq),
        static_cast<T*>(max_exp_avg_sq), s);
  });
  detail::check_launch(op);
}

}  // namespace ember::cuda

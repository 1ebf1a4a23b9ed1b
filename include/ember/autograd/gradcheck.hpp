#pragma once
/// Numerical gradient checks (torch.autograd.gradcheck / gradgradcheck).
///
/// `gradcheck(fn, inputs)` compares the analytic vector-Jacobian product of `fn` (from
/// autograd::grad, with a seeded random grad_output) against central finite differences, one
/// input element at a time. `gradgradcheck` does the same for the first-order gradients computed
/// with create_graph=true, i.e. it checks that every backward formula is itself differentiable
/// and correct. Inputs must be float64; inputs that do not require grad are held constant.
///
/// Example (in a doctest test):
/// ```
///   auto x = ember::randn({3, 4}, ember::TensorOptions(ember::kFloat64).requires_grad(true));
///   auto f = [](const ember::tensor_list& in) { return ember::tanh(in[0]); };
///   auto r = ember::autograd::gradcheck(f, {x});
///   CHECK_MESSAGE(r.ok, r.message);
///   CHECK_GRADS(f, {x});  // gradcheck + gradgradcheck
/// ```
///
/// The finite differences perturb each input's storage in place (through a detached view, under
/// NoGradGuard) and restore the exact original value afterwards, so non-contiguous inputs are
/// checked with their own strides. Two inputs that share storage are therefore perturbed together;
/// expanded (stride-0) inputs are rejected because one element aliases many.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "ember/autograd/engine.hpp"
#include "ember/ops/binary.hpp"
#include "ember/ops/copy.hpp"
#include "ember/ops/factory.hpp"
#include "ember/ops/reduce.hpp"

namespace ember::autograd {

/// Outcome of a gradient check: `ok`, and on failure a message naming the input, the element,
/// the analytic and the numeric value. Converts to bool.
struct GradcheckResult {
  bool ok = true;
  std::string message;
  /// Largest |analytic - numeric| seen over all checked elements.
  double max_abs_error = 0;
  explicit operator bool() const { return ok; }
};

using GradcheckFn = std::function<Tensor(const tensor_list&)>;

namespace detail {

inline std::string index_str(const Shape& sizes, int64_t flat) {
  std::vector<int64_t> idx(sizes.size());
  for (int64_t d = sizes.size() - 1; d >= 0; --d) {
    int64_t s = std::max<int64_t>(sizes[d], 1);
    idx[d] = flat % s;
    flat /= s;
  }
  std::ostringstream os;
  os << "[";
  for (size_t d = 0; d < idx.size(); ++d) os << (d ? ", " : "") << idx[d];
  os << "]";
  return os.str();
}

/// A 0-dim view of element `flat` (row-major) of `t`, sharing storage.
inline Tensor element_view(const Tensor& t, int64_t flat) {
  Tensor v = t.detach();
  std::vector<int64_t> idx(t.dim());
  for (int64_t d = t.dim() - 1; d >= 0; --d) {
    idx[d] = flat % t.size(d);
    flat /= t.size(d);
  }
  for (int64_t d = 0; d < t.dim(); ++d) v = v.select(0, idx[d]);
  return v;
}

/// Seeded standard-normal values, so failures are reproducible and the global generator is untouched.
inline Tensor seeded_randn(const Shape& sizes, const TensorOptions& opts, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> nd(0.0, 1.0);
  std::vector<double> v(static_cast<size_t>(sizes.numel()));
  for (auto& x : v) x = nd(rng);
  return tensor(v, sizes, opts);
}

inline void check_inputs(const tensor_list& inputs, const char* api) {
  bool any = false;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& t = inputs[i];
    EMBER_CHECK(t.defined(), api, ": input ", i, " is undefined");
    if (!t.requires_grad()) continue;
    any = true;
    EMBER_CHECK(t.dtype() == kFloat64, api, ": input ", i, " (shape ", t.sizes(), ") has dtype ", t.dtype(),
                "; finite differences need double precision, so every input that requires grad must be "
                "float64 (use .to(kFloat64))");
    for (int64_t d = 0; d < t.dim(); ++d) {
      EMBER_CHECK(t.stride(d) != 0 || t.size(d) <= 1, api, ": input ", i, " (shape ", t.sizes(), ", strides ",
                  t.strides(), ") is expanded (stride 0): perturbing one element would change several; pass "
                  ".contiguous() instead");
    }
  }
  EMBER_CHECK(any, api, ": none of the ", inputs.size(), " inputs requires grad; nothing to check");
}

/// fn(inputs) as doubles, with grad mode as the caller set it.
inline std::vector<double> eval_values(const GradcheckFn& fn, const tensor_list& inputs) {
  Tensor out = fn(inputs);
  EMBER_CHECK(out.defined(), "gradcheck: the function returned an undefined tensor");
  return out.to_vector<double>();
}

}  // namespace detail

/// Checks the analytic gradients of `fn` at `inputs` against central finite differences:
/// for a seeded random v of the output's shape, grad(fn(x), x_i, v) must match
/// (f(x + eps e_k) - f(x - eps e_k)) · v / (2 eps) for every element k of every input x_i that
/// requires grad, within |a - n| <= atol + rtol |n|. Throws ember::Error if an input that
/// requires grad is not float64.
inline GradcheckResult gradcheck(const GradcheckFn& fn, const tensor_list& inputs, double eps = 1e-6,
                                 double atol = 1e-5, double rtol = 1e-3) {
  detail::check_inputs(inputs, "gradcheck");
  std::vector<size_t> diff;  // indices of inputs that require grad
  tensor_list diff_inputs;
  for (size_t i = 0; i < inputs.size(); ++i)
    if (inputs[i].requires_grad()) {
      diff.push_back(i);
      diff_inputs.push_back(inputs[i]);
    }

  // Analytic vector-Jacobian product.
  Tensor out;
  {
    GradModeGuard on(true);
    out = fn(inputs);
  }
  EMBER_CHECK(out.defined(), "gradcheck: the function returned an undefined tensor");
  EMBER_CHECK(out.is_floating_point(), "gradcheck: the function's output must be floating point, got ", out.dtype());
  Tensor v = out.numel() == 1 ? ones(out.sizes(), TensorOptions(kFloat64))
                              : detail::seeded_randn(out.sizes(), TensorOptions(kFloat64), 0x5eedULL + out.numel());
  std::vector<double> vv = v.to_vector<double>();
  tensor_list analytic(diff.size());
  if (out.requires_grad()) {
    analytic = grad({out}, diff_inputs, {v.to(out.device(), out.dtype())}, false, false, /*allow_unused=*/true);
  }
  out = Tensor();  // free the graph before perturbing inputs in place (their versions change)

  GradcheckResult res;
  std::ostringstream fails;
  fails.precision(10);
  int64_t n_fail = 0;
  for (size_t j = 0; j < diff.size(); ++j) {
    const Tensor& x = inputs[diff[j]];
    std::vector<double> a;
    if (analytic[j].defined()) {
      const Tensor& g = analytic[j];
      if (g.sizes() != x.sizes() || g.dtype() != x.dtype()) {
        std::ostringstream os;
        os << "gradcheck: the gradient for input " << diff[j] << " has shape " << g.sizes() << " and dtype "
           << g.dtype() << ", expected shape " << x.sizes() << " and dtype " << x.dtype();
        return {false, os.str(), 0};
      }
      a = g.to_vector<double>();
    } else {
      a.assign(static_cast<size_t>(x.numel()), 0.0);
    }
    for (int64_t k = 0; k < x.numel(); ++k) {
      Tensor e = detail::element_view(x, k);
      double orig = e.item<double>();
      std::vector<double> plus, minus;
      {
        NoGradGuard ng;
        e.fill_(orig + eps);
        plus = detail::eval_values(fn, inputs);
        e.fill_(orig - eps);
        minus = detail::eval_values(fn, inputs);
        e.fill_(orig);
      }
      EMBER_CHECK(plus.size() == vv.size() && minus.size() == vv.size(),
                  "gradcheck: the function's output size changed under perturbation");
      double num = 0;
      for (size_t o = 0; o < vv.size(); ++o) num += (plus[o] - minus[o]) / (2 * eps) * vv[o];
      double diffv = std::abs(a[k] - num);
      if (std::isnan(diffv) || diffv > res.max_abs_error) res.max_abs_error = diffv;
      if (!(diffv <= atol + rtol * std::abs(num))) {
        if (n_fail < 5) {
          fails << "\n  input " << diff[j] << " (shape " << x.sizes() << ") element " << k << " "
                << detail::index_str(x.sizes(), k) << ": analytic " << a[k] << " vs numeric " << num
                << " (|diff| " << diffv << ")";
        }
        ++n_fail;
      }
    }
  }
  if (n_fail > 0) {
    std::ostringstream os;
    os.precision(10);
    os << "gradcheck: Jacobian mismatch in " << n_fail << " element(s) (eps " << eps << ", atol " << atol
       << ", rtol " << rtol << "; max |diff| " << res.max_abs_error << "):" << fails.str();
    if (n_fail > 5) os << "\n  ...";
    res.ok = false;
    res.message = os.str();
  }
  return res;
}

/// Checks second derivatives: the first-order gradients g_i = grad(fn(x), x_i, v, create_graph)
/// are differentiated (w.r.t. the inputs and the grad_output v) and compared with finite
/// differences of the first-order gradients. Implemented as gradcheck of the scalar
/// h(x, v) = sum_i <g_i(x, v), u_i> for seeded random u_i.
inline GradcheckResult gradgradcheck(const GradcheckFn& fn, const tensor_list& inputs, double eps = 1e-6,
                                     double atol = 1e-5, double rtol = 1e-3) {
  detail::check_inputs(inputs, "gradgradcheck");
  size_t n = inputs.size();
  Tensor out;
  {
    GradModeGuard on(true);
    out = fn(inputs);
  }
  EMBER_CHECK(out.defined(), "gradgradcheck: the function returned an undefined tensor");
  EMBER_CHECK(out.is_floating_point(), "gradgradcheck: the function's output must be floating point, got ",
              out.dtype());
  Shape out_shape = out.sizes();
  DType out_dtype = out.dtype();
  Device dev = out.device();
  out = Tensor();
  // The grad_output is an input of the checked function too: backward formulas must be
  // differentiable (and linear) in the incoming gradient.
  Tensor v = detail::seeded_randn(out_shape, TensorOptions(kFloat64).device(dev), 0xbeefULL + out_shape.numel());
  v.requires_grad_(true);
  std::vector<Tensor> us;
  for (size_t i = 0; i < n; ++i) {
    us.push_back(inputs[i].requires_grad()
                     ? detail::seeded_randn(inputs[i].sizes(), inputs[i].options(), 0xf00dULL + 7 * i)
                     : Tensor());
  }
  GradcheckFn h = [fn, n, us, out_dtype](const tensor_list& in) -> Tensor {
    // Runs with grad mode on even inside gradcheck's NoGradGuard: it needs the first-order graph.
    GradModeGuard on(true);
    tensor_list xs(in.begin(), in.begin() + n);
    Tensor vv = in[n];
    tensor_list diff;
    std::vector<size_t> idx;
    for (size_t i = 0; i < n; ++i)
      if (xs[i].requires_grad()) {
        diff.push_back(xs[i]);
        idx.push_back(i);
      }
    Tensor o = fn(xs);
    Tensor total = zeros({}, TensorOptions(kFloat64).device(vv.device()));
    if (!o.requires_grad()) return total;
    tensor_list gs = grad({o}, diff, {vv.to(o.device(), out_dtype)}, true, /*create_graph=*/true, true);
    for (size_t j = 0; j < gs.size(); ++j) {
      if (!gs[j].defined()) continue;
      total = add(total, sum(mul(gs[j].to(kFloat64), us[idx[j]])));
    }
    return total;
  };
  tensor_list all(inputs.begin(), inputs.end());
  all.push_back(v);
  GradcheckResult r = gradcheck(h, all, eps, atol, rtol);
  if (!r.ok) {
    r.message = "gradgradcheck (input " + std::to_string(n) + " is the grad_output): " + r.message;
  }
  return r;
}

namespace detail {
inline GradcheckResult gradcheck_both(const GradcheckFn& fn, const tensor_list& inputs, double eps = 1e-6,
                                      double atol = 1e-5, double rtol = 1e-3) {
  GradcheckResult r = gradcheck(fn, inputs, eps, atol, rtol);
  if (!r.ok) return r;
  return gradgradcheck(fn, inputs, eps, atol, rtol);
}
}  // namespace detail

}  // namespace ember::autograd

/// In doctest tests: `CHECK_GRADS(fn, {x, w})` runs gradcheck and gradgradcheck and reports the
/// mismatch message on failure; `CHECK_GRADCHECK(fn, {x, w})` runs only the first order. Extra
/// arguments (eps, atol, rtol) are passed through.
#if defined(DOCTEST_LIBRARY_INCLUDED)
#ifndef CHECK_GRADS
#define CHECK_GRADS(...)                                                                \
  do {                                                                                  \
    auto ember_gc_result_ = ::ember::autograd::detail::gradcheck_both(__VA_ARGS__);     \
    CHECK_MESSAGE(ember_gc_result_.ok, ember_gc_result_.message);                       \
  } while (0)
#endif
#ifndef CHECK_GRADCHECK
#define CHECK_GRADCHECK(...)                                                            \
  do {                                                                                  \
    auto ember_gc_result_ = ::ember::autograd::gradcheck(__VA_ARGS__);                  \
    CHECK_MESSAGE(ember_gc_result_.ok, ember_gc_result_.message);                       \
  } while (0)
#endif
#endif

#include <doctest/doctest.h>

#include "ember/ember.hpp"

#include <cmath>
#include <memory>
#include <string>
#include <vector>

// The autograd engine (autograd/engine.hpp, node.hpp, function.hpp): backward and grad, graph
// retention, higher-order gradients, grad mode, hooks, in-place detection, deep and shared graphs.

using namespace ember;

namespace {

const TensorOptions kF64 = TensorOptions(kFloat64);
const TensorOptions kF64Grad = TensorOptions(kFloat64).requires_grad(true);

Tensor vec(std::vector<double> v, const Shape& shape = {}, bool requires_grad = false) {
  Shape s = shape.empty() ? Shape{static_cast<int64_t>(v.size())} : shape;
  Tensor t = tensor(v, s);
  if (requires_grad) t.requires_grad_(true);
  return t;
}

/// The message of the ember::Error thrown by f, or a marker when nothing (or something else) is thrown.
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const ember::Error& e) {
    return e.what();
  } catch (...) {
    return "<an exception that is not ember::Error>";
  }
  return "<no exception>";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

void check_values(const Tensor& t, const std::vector<double>& expected, double tol = 1e-12) {
  REQUIRE(t.defined());
  std::vector<double> v = t.to_vector<double>();
  REQUIRE(v.size() == expected.size());
  for (size_t i = 0; i < v.size(); ++i) {
    INFO("element ", i);
    CHECK(v[i] == doctest::Approx(expected[i]).epsilon(tol));
  }
}

}  // namespace

// ---- backward -------------------------------------------------------------------------------------

TEST_CASE("autograd: backward on a scalar output") {
  Tensor x = vec({1, 2, 3}, {}, true);
  Tensor y = (x * x).sum();
  CHECK(y.requires_grad());
  CHECK_FALSE(y.is_leaf());
  CHECK(x.is_leaf());
  y.backward();
  check_values(x.grad(), {2, 4, 6});
  CHECK(x.grad().sizes() == x.sizes());
  CHECK_FALSE(x.grad().requires_grad());
}

TEST_CASE("autograd: backward with an explicit gradient") {
  Tensor x = vec({1, 2, 3}, {}, true);
  Tensor y = x * 3.0;
  y.backward(vec({1, 0.5, 2}));
  check_values(x.grad(), {3, 1.5, 6});
}

TEST_CASE("autograd: implicit gradient only for one-element outputs") {
  Tensor x = vec({1, 2, 3}, {}, true);
  Tensor y = x * 2.0;
  std::string err = error_of([&] { y.backward(); });
  CHECK_MESSAGE(contains(err, "implicitly created only for scalar outputs"), err);
  CHECK_MESSAGE(contains(err, "[3]"), err);
  // A one-element (not 0-dim) output is fine.
  Tensor z = (x * 2.0).sum({0}, true);
  CHECK(z.sizes() == Shape{1});
  z.backward();
  check_values(x.grad(), {2, 2, 2});
}

TEST_CASE("autograd: backward errors") {
  Tensor c = vec({1, 2});
  std::string err = error_of([&] { c.sum().backward(); });
  CHECK_MESSAGE(contains(err, "does not require grad"), err);
  Tensor x = vec({1, 2}, {}, true);
  Tensor y = x * 2.0;
  err = error_of([&] { y.backward(vec({1, 2, 3})); });
  CHECK_MESSAGE(contains(err, "mismatch in shape"), err);
}

TEST_CASE("autograd: .grad accumulates over backward calls") {
  Tensor x = vec({1, -2}, {}, true);
  (x * x).sum().backward();
  (x * x).sum().backward();
  check_values(x.grad(), {4, -8});
  // Clearing .grad starts again.
  x.set_grad(Tensor());
  (x * 3.0).sum().backward();
  check_values(x.grad(), {3, 3});
}

TEST_CASE("autograd: retain_graph") {
  Tensor x = vec({1, 2}, {}, true);
  Tensor y = (x * x).sum();
  y.backward();
  std::string err = error_of([&] { y.backward(); });
  CHECK_MESSAGE(contains(err, "second time"), err);

  Tensor x2 = vec({1, 2}, {}, true);
  Tensor y2 = (x2 * x2).sum();
  y2.backward(Tensor(), /*retain_graph=*/true);
  y2.backward();
  check_values(x2.grad(), {4, 8});
  err = error_of([&] { y2.backward(); });  // the second call did not retain
  CHECK_MESSAGE(contains(err, "second time"), err);
}

TEST_CASE("autograd: saved tensors are freed after backward, the graph when the output goes") {
  Tensor x = vec({1, 2}, {}, true);
  std::weak_ptr<TensorImpl> saved;
  Tensor y;
  {
    Tensor c = vec({3, 4});
    saved = c.impl_ptr();
    y = (x * c).sum();
  }
  CHECK_FALSE(saved.expired());  // MulBackward holds c
  y.backward();
  CHECK(saved.expired());  // released after use
  check_values(x.grad(), {3, 4});

  std::weak_ptr<autograd::Node> node = y.grad_fn();
  CHECK_FALSE(node.expired());
  y = Tensor();
  CHECK(node.expired());
}

// ---- autograd::grad --------------------------------------------------------------------------------

TEST_CASE("autograd: grad with create_graph: x^3 -> 3x^2 -> 6x -> 6") {
  Tensor x = vec({2.0}, {}, true);
  Tensor y = x * x * x;
  Tensor g1 = autograd::grad({y}, {x}, {}, std::nullopt, /*create_graph=*/true)[0];
  check_values(g1, {12});
  CHECK(g1.requires_grad());
  Tensor g2 = autograd::grad({g1}, {x}, {}, std::nullopt, true)[0];
  check_values(g2, {12});
  Tensor g3 = autograd::grad({g2}, {x})[0];
  check_values(g3, {6});
  CHECK_FALSE(g3.requires_grad());
  // grad() returns gradients without touching .grad.
  CHECK_FALSE(x.grad().defined());
}

TEST_CASE("autograd: grad without create_graph is not differentiable") {
  Tensor x = vec({1.5, -0.5}, {}, true);
  Tensor g = autograd::grad({(x * x).sum()}, {x})[0];
  check_values(g, {3, -1});
  CHECK_FALSE(g.requires_grad());
}

TEST_CASE("autograd: grad of several outputs and inputs") {
  Tensor x = vec({1, 2}, {}, true);
  Tensor w = vec({3, 4}, {}, true);
  Tensor y1 = x * w;
  Tensor y2 = (x * x).sum();
  auto gs = autograd::grad({y1, y2}, {x, w}, {vec({1, 1}), Tensor()});
  check_values(gs[0], {3 + 2, 4 + 4});
  check_values(gs[1], {1, 2});
}

TEST_CASE("autograd: allow_unused") {
  Tensor x = vec({1, 2}, {}, true);
  Tensor z = vec({5}, {}, true);
  Tensor y = (x * 2.0).sum();
  std::string err = error_of([&] { autograd::grad({y}, {x, z}, {}, true); });
  CHECK_MESSAGE(contains(err, "not have been used"), err);
  CHECK_MESSAGE(contains(err, "allow_unused"), err);
  auto gs = autograd::grad({y}, {x, z}, {}, std::nullopt, false, /*allow_unused=*/true);
  check_values(gs[0], {2, 2});
  CHECK_FALSE(gs[1].defined());
}

TEST_CASE("autograd: grad w.r.t. a non-leaf and inputs that do not require grad") {
  Tensor x = vec({1, 2}, {}, true);
  Tensor h = x * 3.0;
  Tensor y = (h * h).sum();
  auto g = autograd::grad({y}, {h}, {}, true);
  check_values(g[0], {6, 12});
  // Both: the non-leaf and the leaf below it.
  auto g2 = autograd::grad({y}, {h, x});
  check_values(g2[0], {6, 12});
  check_values(g2[1], {18, 36});

  Tensor c = vec({1, 2});
  std::string err = error_of([&] { autograd::grad({(x * c).sum()}, {c}); });
  CHECK_MESSAGE(contains(err, "does not require grad"), err);
  err = error_of([&] { autograd::grad({(x * c).sum()}, {}); });
  CHECK_MESSAGE(contains(err, "at least one input"), err);
}

// ---- grad mode, detach, requires_grad ----------------------------------------------------------------

TEST_CASE("autograd: NoGradGuard records nothing") {
  Tensor x = vec({1, 2}, {}, true);
  {
    NoGradGuard ng;
    CHECK_FALSE(is_grad_enabled());
    Tensor y = x * 2.0 + x;
    CHECK_FALSE(y.requires_grad());
    CHECK(y.is_leaf());
    CHECK(y.grad_fn() == nullptr);
    {
      GradModeGuard on(true);
      CHECK((x * 2.0).requires_grad());
    }
    CHECK_FALSE(is_grad_enabled());
  }
  CHECK(is_grad_enabled());
  CHECK((x * 2.0).requires_grad());
}

TEST_CASE("autograd: detach shares storage and cuts the graph") {
  Tensor x = vec({1, 2}, {}, true);
  Tensor h = x * 2.0;
  Tensor d = h.detach();
  CHECK_FALSE(d.requires_grad());
  CHECK(d.is_leaf());
  CHECK(d.storage() == h.storage());
  Tensor y = (d * x).sum();  // d is a constant here
  y.backward();
  check_values(x.grad(), {2, 4});

  Tensor h2 = x * 1.0;
  h2.detach_();
  CHECK_FALSE(h2.requires_grad());
  CHECK(h2.is_leaf());
}

TEST_CASE("autograd: requires_grad_ rules") {
  Tensor x = vec({1, 2}, {}, true);
  Tensor h = x * 2.0;
  std::string err = error_of([&] { h.requires_grad_(false); });
  CHECK_MESSAGE(contains(err, "leaf"), err);
  CHECK(h.requires_grad());
  Tensor i = arange(3);
  err = error_of([&] { i.requires_grad_(); });
  CHECK_MESSAGE(contains(err, "floating point"), err);
  Tensor c = vec({1, 2});
  c.requires_grad_();
  CHECK(c.requires_grad());
  c.requires_grad_(false);
  CHECK_FALSE(c.requires_grad());
  CHECK_FALSE((c * 2.0).requires_grad());
}

// ---- in-place detection ----------------------------------------------------------------------------

TEST_CASE("autograd: modifying a saved tensor in place is detected") {
  SUBCASE("a constant saved by mul") {
    Tensor x = vec({1, 2}, {}, true);
    Tensor c = vec({3, 4});
    Tensor y = (x * c).sum();
    c.add_(1.0);
    std::string err = error_of([&] { y.backward(); });
    CHECK_MESSAGE(contains(err, "inplace"), err);
    CHECK_MESSAGE(contains(err, "version"), err);
  }
  SUBCASE("a leaf parameter updated under NoGradGuard (an optimizer step before backward)") {
    Tensor x = vec({1, 2}, {}, true);
    Tensor w = vec({3, 4}, {}, true);
    Tensor y = (x * w).sum();
    {
      NoGradGuard ng;
      w.add_(vec({0.5, 0.5}));
    }
    std::string err = error_of([&] { y.backward(); });
    CHECK_MESSAGE(contains(err, "inplace"), err);
  }
  SUBCASE("a view of the saved tensor") {
    Tensor x = vec({1, 2, 3, 4}, {2, 2}, true);
    Tensor base = vec({1, 1, 1, 1}, {2, 2});
    Tensor y = (x * base.t()).sum();
    Tensor row = base.select(0, 1);
    row.mul_(2.0);
    std::string err = error_of([&] { y.backward(); });
    CHECK_MESSAGE(contains(err, "inplace"), err);
  }
  SUBCASE("modifying a tensor that was not saved is fine") {
    Tensor x = vec({1, 2}, {}, true);
    Tensor c = vec({3, 4});
    Tensor y = (x + c).sum();  // add saves nothing
    c.add_(1.0);
    y.backward();
    check_values(x.grad(), {1, 1});
  }
  SUBCASE("in-place on a tensor that requires grad is refused under grad mode") {
    Tensor w = vec({3, 4}, {}, true);
    std::string err = error_of([&] { w.add_(1.0); });
    CHECK_MESSAGE(contains(err, "add_"), err);
  }
}

// ---- hooks, retain_grad ----------------------------------------------------------------------------

TEST_CASE("autograd: hooks on leaves and non-leaves") {
  SUBCASE("a leaf hook replaces the gradient before it is accumulated") {
    Tensor x = vec({1, 2}, {}, true);
    int calls = 0;
    x.register_hook([&](const Tensor& g) {
      ++calls;
      return g * 2.0;
    });
    (x * 3.0 + x).sum().backward();  // two uses, one accumulated gradient
    CHECK(calls == 1);
    check_values(x.grad(), {8, 8});
  }
  SUBCASE("a non-leaf hook changes what flows further back") {
    Tensor x = vec({1, 2}, {}, true);
    Tensor h = x * 1.0;
    Tensor seen;
    h.register_hook([&](const Tensor& g) {
      seen = g.detach().clone();
      return g * 10.0;
    });
    (h * h).sum().backward();
    check_values(seen, {2, 4});
    check_values(x.grad(), {20, 40});
  }
  SUBCASE("a hook that returns an undefined tensor only observes") {
    Tensor x = vec({1, 2}, {}, true);
    Tensor h = x * 2.0;
    int calls = 0;
    h.register_hook([&](const Tensor&) {
      ++calls;
      return Tensor();
    });
    h.sum().backward();
    CHECK(calls == 1);
    check_values(x.grad(), {2, 2});
  }
  SUBCASE("hooks also run for autograd::grad") {
    Tensor x = vec({1, 2}, {}, true);
    Tensor h = x * 1.0;
    h.register_hook([](const Tensor& g) { return g * -1.0; });
    check_values(autograd::grad({h.sum()}, {x})[0], {-1, -1});
  }
  SUBCASE("register_hook needs requires_grad") {
    Tensor c = vec({1});
    std::string err = error_of([&] { c.register_hook([](const Tensor& g) { return g; }); });
    CHECK_MESSAGE(contains(err, "register_hook"), err);
  }
}

TEST_CASE("autograd: retain_grad on a non-leaf") {
  Tensor x = vec({1, 2}, {}, true);
  Tensor h = x * 2.0;
  Tensor k = h * 1.0;
  h.retain_grad();
  (h * h).sum().backward(Tensor(), true);
  check_values(h.grad(), {4, 8});
  CHECK_FALSE(h.grad().requires_grad());
  CHECK_FALSE(k.grad().defined());  // not retained
  check_values(x.grad(), {8, 16});
  // A leaf: retain_grad is a no-op; a constant: error.
  x.retain_grad();
  std::string err = error_of([&] { vec({1}).retain_grad(); });
  CHECK_MESSAGE(contains(err, "retain_grad"), err);
}

// ---- graph shapes ------------------------------------------------------------------------------------

TEST_CASE("autograd: a 100k-node chain runs forward, backward and destruction without recursion") {
  constexpr int kN = 100000;
  SUBCASE("mul chain with backward") {
    Tensor x = vec({1.0}, {}, true);
    Tensor y = x;
    for (int i = 0; i < kN; ++i) y = y * 1.00001;
    y.sum().backward();
    check_values(x.grad(), {std::pow(1.00001, kN)}, 1e-9);
    y = Tensor();
  }
  SUBCASE("add chain reusing the same leaf") {
    Tensor x = vec({0.5, 1.5}, {}, true);
    Tensor y = x;
    for (int i = 1; i < kN; ++i) y = y + x;
    check_values(y, {0.5 * kN, 1.5 * kN}, 1e-12);
    y.sum().backward();
    check_values(x.grad(), {double(kN), double(kN)});
  }
  SUBCASE("built then dropped without backward") {
    Tensor x = vec({1.0}, {}, true);
    std::weak_ptr<autograd::Node> first;
    {
      Tensor y = x * 2.0;
      first = y.grad_fn();
      for (int i = 0; i < kN; ++i) y = y * 1.0 + 0.0;
    }
    CHECK(first.expired());
  }
  SUBCASE("deep graph under create_graph (double backward through a long chain)") {
    Tensor x = vec({1.0}, {}, true);
    Tensor y = x;
    for (int i = 0; i < 20000; ++i) y = y * 1.0001;
    Tensor yy = (y * y).sum();
    Tensor g = autograd::grad({yy}, {x}, {}, std::nullopt, true)[0];
    Tensor gg = autograd::grad({g.sum()}, {x})[0];
    check_values(gg, {2 * std::pow(1.0001, 40000)}, 1e-8);
  }
}

TEST_CASE("autograd: diamond graphs sum the gradients of shared subexpressions") {
  Tensor x = vec({1, -2, 0.5}, {}, true);
  Tensor a = x * 2.0;
  Tensor b = a * a;
  Tensor c = a * 3.0;
  Tensor y = (b + c).sum();
  y.backward();
  // dy/dx = (2a + 3) * 2
  check_values(x.grad(), {(2 * 2 + 3) * 2.0, (2 * -4 + 3) * 2.0, (2 * 1 + 3) * 2.0});
  // The same tensor used twice in one op.
  Tensor x2 = vec({3}, {}, true);
  (x2 * x2).sum().backward();
  check_values(x2.grad(), {6});
}

TEST_CASE("autograd: broadcast gradients are reduced to each input's shape") {
  Tensor x = vec({1, 2, 3}, {3, 1}, true);
  Tensor w = vec({1, 10, 100, 1000}, {4}, true);
  Tensor b = vec({0.5}, {1, 1, 1}, true);
  Tensor y = (x * w + b).sum();
  CHECK(y.sizes() == Shape{});
  y.backward();
  CHECK(x.grad().sizes() == Shape{3, 1});
  CHECK(w.grad().sizes() == Shape{4});
  CHECK(b.grad().sizes() == Shape{1, 1, 1});
  check_values(x.grad(), {1111, 1111, 1111});
  check_values(w.grad(), {6, 6, 6, 6});
  check_values(b.grad(), {12});
}

TEST_CASE("autograd: gradient dtypes match the inputs") {
  Tensor x = tensor<float>({1, 2}, {2}, TensorOptions(kFloat32).requires_grad(true));
  Tensor w = vec({3, 4}, {}, true);
  Tensor y = x * w;  // promoted to float64
  CHECK(y.dtype() == kFloat64);
  y.sum().backward();
  CHECK(x.grad().dtype() == kFloat32);
  CHECK(w.grad().dtype() == kFloat64);
  check_values(x.grad(), {3, 4});
  check_values(w.grad(), {1, 2});
}

TEST_CASE("autograd: backward with create_graph makes .grad differentiable") {
  Tensor x = vec({2, 3}, {}, true);
  (x * x * x).sum().backward(Tensor(), false, /*create_graph=*/true);
  Tensor g = x.grad();
  CHECK(g.requires_grad());
  check_values(g, {12, 27});
  Tensor gg = autograd::grad({g.sum()}, {x})[0];
  check_values(gg, {12, 18});
}

// ---- WGAN-GP ---------------------------------------------------------------------------------------

namespace {

/// D(x) = sum(tanh(x * w)); gradient penalty (||dD/dx|| - 1)^2 as WGAN-GP computes it, with the
/// gradient itself differentiable w.r.t. w.
Tensor gradient_penalty(const Tensor& x, const Tensor& w) {
  GradModeGuard on(true);
  Tensor d = tanh(x * w).sum();
  Tensor g = autograd::grad({d}, {x}, {}, std::nullopt, /*create_graph=*/true)[0];
  Tensor norm = sqrt((g * g).sum());
  Tensor diff = norm - 1.0;
  return diff * diff;
}

}  // namespace

TEST_CASE("autograd: WGAN-GP gradient penalty differentiates through dD/dx") {
  manual_seed(7);
  Tensor x = randn({4, 3}, kF64Grad);
  Tensor w = randn({3}, kF64Grad);
  Tensor gp = gradient_penalty(x, w);
  Tensor gw = autograd::grad({gp}, {w})[0];
  CHECK(gw.sizes() == Shape{3});

  // Finite differences of the penalty w.r.t. each weight.
  std::vector<double> wv = w.to_vector<double>();
  std::vector<double> analytic = gw.to_vector<double>();
  const double eps = 1e-6;
  for (size_t k = 0; k < wv.size(); ++k) {
    std::vector<double> wp = wv, wm = wv;
    wp[k] += eps;
    wm[k] -= eps;
    double fp = gradient_penalty(x, vec(wp)).item<double>();
    double fm = gradient_penalty(x, vec(wm)).item<double>();
    double numeric = (fp - fm) / (2 * eps);
    INFO("weight ", k);
    CHECK(analytic[k] == doctest::Approx(numeric).epsilon(1e-6));
  }
  // The same through the shared helpers (also w.r.t. x: the penalty's mixed second derivative).
  auto r = autograd::gradcheck([](const tensor_list& in) { return gradient_penalty(in[0], in[1]); }, {x, w});
  CHECK_MESSAGE(r.ok, r.message);

  // Training step shape: the penalty and the critic loss backward together into w.grad.
  Tensor loss = tanh(x * w).sum() + gradient_penalty(x, w) * 10.0;
  loss.backward();
  REQUIRE(w.grad().defined());
  CHECK(w.grad().sizes() == Shape{3});
}

// ---- gradcheck itself --------------------------------------------------------------------------------

TEST_CASE("gradcheck: passes correct formulas and reports wrong ones") {
  manual_seed(3);
  Tensor x = randn({3, 4}, kF64Grad);
  Tensor w = randn({4}, kF64Grad);
  auto f = [](const tensor_list& t) { return t[0] * t[1] / (t[0] * t[0] + 1.0); };
  auto r = autograd::gradcheck(f, {x, w});
  CHECK_MESSAGE(r.ok, r.message);
  CHECK(r.max_abs_error < 1e-7);
  CHECK_GRADS(f, {x, w});

  // A backward formula off by a factor: caught, with input, element and both values named.
  auto bad = [](const tensor_list& t) {
    Tensor out = t[0].detach() * t[0].detach();
    autograd::record("BadBackward", out, {t[0]}, {t[0]},
                     [](const Tensor& g, const autograd::BackwardCtx& c) -> tensor_list { return {g * c.saved(0) * 3.0}; });
    return out;
  };
  auto rb = autograd::gradcheck(bad, {x});
  CHECK_FALSE(rb.ok);
  CHECK_MESSAGE(contains(rb.message, "input 0"), rb.message);
  CHECK_MESSAGE(contains(rb.message, "analytic"), rb.message);
  CHECK_MESSAGE(contains(rb.message, "numeric"), rb.message);

  // Right first derivative, but the formula is not differentiable (detached saved input):
  // gradcheck passes, gradgradcheck fails.
  auto detached = [](const tensor_list& t) {
    Tensor out = t[0].detach() * t[0].detach();
    autograd::record("DetachedBackward", out, {t[0]}, {t[0]},
                     [](const Tensor& g, const autograd::BackwardCtx& c) -> tensor_list {
                       return {g * c.saved(0).detach() * 2.0};
                     });
    return out;
  };
  auto r1 = autograd::gradcheck(detached, {x});
  CHECK_MESSAGE(r1.ok, r1.message);
  auto r2 = autograd::gradgradcheck(detached, {x});
  CHECK_FALSE(r2.ok);
  CHECK_MESSAGE(contains(r2.message, "gradgradcheck"), r2.message);

  // Inputs that do not require grad are held constant.
  Tensor c = randn({4}, kF64);
  auto rc = autograd::gradcheck(f, {x, c});
  CHECK_MESSAGE(rc.ok, rc.message);
}

TEST_CASE("gradcheck: input validation") {
  Tensor xf = randn({3}, TensorOptions(kFloat32).requires_grad(true));
  auto f = [](const tensor_list& t) { return t[0] * 2.0; };
  std::string err = error_of([&] { autograd::gradcheck(f, {xf}); });
  CHECK_MESSAGE(contains(err, "float64"), err);
  CHECK_MESSAGE(contains(err, "gradcheck"), err);
  err = error_of([&] { autograd::gradgradcheck(f, {xf}); });
  CHECK_MESSAGE(contains(err, "float64"), err);
  err = error_of([&] { autograd::gradcheck(f, {randn({3}, kF64)}); });
  CHECK_MESSAGE(contains(err, "requires grad"), err);
  Tensor e = randn({1, 3}, kF64).expand({2, 3});
  e.requires_grad_();
  err = error_of([&] { autograd::gradcheck(f, {e}); });
  CHECK_MESSAGE(contains(err, "expanded"), err);
}

TEST_CASE("gradcheck: leaves the inputs unchanged") {
  manual_seed(5);
  Tensor x = randn({2, 3}, kF64Grad);
  std::vector<double> before = x.to_vector<double>();
  auto r = autograd::gradgradcheck([](const tensor_list& t) { return t[0] * t[0] * t[0]; }, {x});
  CHECK_MESSAGE(r.ok, r.message);
  CHECK(x.to_vector<double>() == before);
  CHECK_FALSE(x.grad().defined());
}

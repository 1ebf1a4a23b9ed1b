#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "ember/ember.hpp"
#include "support.hpp"

using namespace ember;

namespace {

Tensor f64(std::initializer_list<double> v, const Shape& s = {-1}) { return tensor<double>(v, s); }
Tensor bools(std::initializer_list<int32_t> v) { return tensor<int32_t>(v).to(kBool); }
Tensor leaf(const Tensor& t) { return t.detach().clone().requires_grad_(true); }
/// Seeded float64 leaf in [lo, hi).
Tensor uniform_leaf(const Shape& s, double lo, double hi) {
  Tensor t = rand(s, kFloat64) * (hi - lo) + lo;
  return leaf(t);
}

bool throws_mentioning(const std::function<void()>& f, const std::string& needle) {
  try {
    f();
  } catch (const ember::Error& e) {
    return std::string(e.what()).find(needle) != std::string::npos;
  }
  return false;
}

}  // namespace

TEST_CASE("unary: hand-checked values in float64") {
  Tensor x = f64({-1.0, 0.5, 2.0});
  check_close(neg(x), {1.0, -0.5, -2.0});
  check_close(exp(x), {std::exp(-1.0), std::exp(0.5), std::exp(2.0)});
  check_close(log(f64({1.0, std::exp(2.0), 0.25})), {0.0, 2.0, std::log(0.25)});
  check_close(log1p(f64({0.0, 1e-10, 1.0})), {0.0, 1e-10 - 5e-21, std::log(2.0)});
  check_close(expm1(f64({0.0, 1e-10, 1.0})), {0.0, 1e-10 + 5e-21, std::exp(1.0) - 1});
  check_close(sqrt(f64({4.0, 2.25, 0.0})), {2.0, 1.5, 0.0});
  check_close(rsqrt(f64({4.0, 0.25})), {0.5, 2.0});
  check_close(abs(x), {1.0, 0.5, 2.0});
  check_close(square(x), {1.0, 0.25, 4.0});
  check_close(reciprocal(x), {-1.0, 2.0, 0.5});
  check_close(sin(f64({0.0, M_PI / 2, M_PI / 6})), {0.0, 1.0, 0.5}, 1e-12);
  check_close(cos(f64({0.0, M_PI, M_PI / 3})), {1.0, -1.0, 0.5}, 1e-12);
  check_close(tanh(f64({0.0, 1.0})), {0.0, std::tanh(1.0)});
  check_close(sigmoid(f64({0.0, 2.0, -2.0})), {0.5, 1 / (1 + std::exp(-2.0)), 1 / (1 + std::exp(2.0))});
  // Member spellings reach the same ops.
  check_close(x.exp(), vals(exp(x)));
  check_close(x.neg().abs().sqrt(), {1.0, std::sqrt(0.5), std::sqrt(2.0)});
}

TEST_CASE("unary: float32 results match std functions") {
  Tensor x = tensor<float>({-3.f, -0.5f, 0.25f, 4.f});
  CHECK(exp(x).dtype() == kFloat32);
  auto e = exp(x).to_vector<float>();
  auto t = tanh(x).to_vector<float>();
  std::vector<float> xs{-3.f, -0.5f, 0.25f, 4.f};
  for (size_t i = 0; i < xs.size(); ++i) {
    CHECK(e[i] == doctest::Approx(std::exp(xs[i])).epsilon(1e-6));
    CHECK(t[i] == doctest::Approx(std::tanh(xs[i])).epsilon(1e-6));
  }
}

TEST_CASE("unary: sign, floor, ceil, round edge cases") {
  double nan = std::numeric_limits<double>::quiet_NaN();
  check_close(sign(f64({-2.5, 0.0, -0.0, 3.0, nan})), {-1.0, 0.0, 0.0, 1.0, 0.0});
  check_close(floor(f64({-1.5, -0.5, 0.5, 2.0})), {-2.0, -1.0, 0.0, 2.0});
  check_close(ceil(f64({-1.5, -0.5, 0.5, 2.0})), {-1.0, -0.0, 1.0, 2.0});
  // Halves round to even, as torch.round.
  check_close(round(f64({0.5, 1.5, 2.5, -0.5, -1.5, 2.4})), {0.0, 2.0, 2.0, -0.0, -2.0, 2.0});
  // Integer tensors pass through unchanged and keep their dtype.
  Tensor i = tensor<int64_t>({-3, 0, 7});
  CHECK(floor(i).dtype() == kInt64);
  CHECK(floor(i).to_vector<int64_t>() == std::vector<int64_t>{-3, 0, 7});
  CHECK(sign(i).to_vector<int64_t>() == std::vector<int64_t>{-1, 0, 1});
}

TEST_CASE("unary: sigmoid and exp do not overflow into NaN") {
  Tensor x = f64({-1000.0, 1000.0, -50.0});
  auto s = vals(sigmoid(x));
  CHECK(s[0] == 0.0);
  CHECK(s[1] == 1.0);
  CHECK(s[2] == doctest::Approx(std::exp(-50.0)).epsilon(1e-12));
  Tensor xf = tensor<float>({-200.f, 200.f});
  auto sf = sigmoid(xf).to_vector<float>();
  CHECK(sf[0] == 0.f);
  CHECK(sf[1] == 1.f);
  CHECK(std::isinf(vals(exp(f64({1000.0})))[0]));
}

TEST_CASE("unary: integer inputs promote to float32 for floating functions") {
  Tensor i = tensor<int64_t>({0, 1, 4});
  for (auto fn : {+[](const Tensor& t) { return exp(t); }, +[](const Tensor& t) { return sqrt(t); },
                  +[](const Tensor& t) { return sigmoid(t); }, +[](const Tensor& t) { return log1p(t); },
                  +[](const Tensor& t) { return sin(t); }, +[](const Tensor& t) { return reciprocal(t); }}) {
    CHECK(fn(i).dtype() == kFloat32);
  }
  check_close(sqrt(i), {0.0, 1.0, 2.0}, 1e-7);
  check_close(exp(tensor<int32_t>({0, 1})), {1.0, std::exp(1.0)}, 1e-6);
  check_close(sigmoid(tensor<uint8_t>({0})), {0.5});
  CHECK(exp(bools({1, 0})).dtype() == kFloat32);
  // Integer-preserving ops keep the dtype.
  CHECK(neg(i).dtype() == kInt64);
  CHECK(neg(i).to_vector<int64_t>() == std::vector<int64_t>{0, -1, -4});
  CHECK(abs(tensor<int32_t>({-5, 3})).to_vector<int32_t>() == std::vector<int32_t>{5, 3});
  CHECK(square(tensor<int32_t>({-5, 3})).to_vector<int32_t>() == std::vector<int32_t>{25, 9});
  CHECK(abs(tensor<uint8_t>({200})).to_vector<uint8_t>() == std::vector<uint8_t>{200});
}

TEST_CASE("unary: non-contiguous and expanded inputs") {
  Tensor base = arange(0, 12, 1, TensorOptions(kFloat64)).reshape({3, 4});
  Tensor t = base.t();  // [4, 3], strides (1, 4)
  REQUIRE(!t.is_contiguous());
  check_close(exp(t), vals(exp(t.contiguous())));
  check_close(square(t), vals(square(t.contiguous())));
  Tensor s = base.slice(1, 0, 4, 2);  // every other column
  check_close(sqrt(s), {0.0, std::sqrt(2.0), 2.0, std::sqrt(6.0), std::sqrt(8.0), std::sqrt(10.0)});
  Tensor e = f64({1.0, 4.0}).unsqueeze(0).expand({3, 2});
  Tensor r = sqrt(e);
  CHECK(r.sizes() == Shape{3, 2});
  CHECK(r.is_contiguous());
  check_close(r, {1, 2, 1, 2, 1, 2});
  // Empty tensors.
  CHECK(exp(zeros({0, 3}, kFloat64)).sizes() == Shape{0, 3});
}

TEST_CASE("unary: pow with a scalar exponent") {
  Tensor x = f64({-2.0, 0.5, 3.0});
  check_close(pow(x, 2), {4.0, 0.25, 9.0});
  check_close(pow(x, 3), {-8.0, 0.125, 27.0});
  check_close(pow(x, 0), {1.0, 1.0, 1.0});
  check_close(pow(x, -1), {-0.5, 2.0, 1.0 / 3});
  check_close(x.pow(1.5), {std::nan(""), std::pow(0.5, 1.5), std::pow(3.0, 1.5)});
  check_close(pow(f64({4.0, 9.0}), 0.5), {2.0, 3.0});
  // Integers stay integral for non-negative integral exponents.
  Tensor i = tensor<int64_t>({-3, 2, 5});
  CHECK(pow(i, 3).dtype() == kInt64);
  CHECK(pow(i, 3).to_vector<int64_t>() == std::vector<int64_t>{-27, 8, 125});
  CHECK(pow(i, 0).to_vector<int64_t>() == std::vector<int64_t>{1, 1, 1});
  CHECK(pow(tensor<int64_t>({3}), 39).item<int64_t>() == 4052555153018976267LL);  // exact, beyond 2^53
  // A floating exponent makes an integer tensor float32.
  CHECK(pow(tensor<int64_t>({4}), 0.5).dtype() == kFloat32);
  check_close(pow(tensor<int64_t>({4}), 0.5), {2.0});
  CHECK_THROWS_AS(pow(i, -1), ember::Error);
  CHECK(throws_mentioning([&] { pow(i, -2); }, "pow"));
}

TEST_CASE("unary: clamp, clamp_min, clamp_max") {
  double nan = std::numeric_limits<double>::quiet_NaN();
  Tensor x = f64({-2.0, -0.5, 0.0, 0.5, 2.0, nan});
  check_close(clamp(x, -1.0, 1.0), {-1.0, -0.5, 0.0, 0.5, 1.0, nan});
  check_close(clamp(x, 0.0), {0.0, 0.0, 0.0, 0.5, 2.0, nan});
  check_close(clamp(x, std::nullopt, 0.0), {-2.0, -0.5, 0.0, 0.0, 0.0, nan});
  check_close(clamp_min(x, -1.0), {-1.0, -0.5, 0.0, 0.5, 2.0, nan});
  check_close(clamp_max(x, -1.0), {-2.0, -1.0, -1.0, -1.0, -1.0, nan});
  check_close(x.clamp(-1, 1), vals(clamp(x, -1.0, 1.0)));
  // min > max: everything becomes max, as in PyTorch.
  check_close(clamp(f64({-3.0, 0.0, 3.0}), 2.0, 1.0), {1.0, 1.0, 1.0});
  // Integer tensors: integral bounds keep the dtype, floating bounds promote to float32.
  Tensor i = tensor<int64_t>({-5, 0, 5});
  CHECK(clamp(i, -1, 1).dtype() == kInt64);
  CHECK(clamp(i, -1, 1).to_vector<int64_t>() == std::vector<int64_t>{-1, 0, 1});
  CHECK(clamp(i, 0.5).dtype() == kFloat32);
  check_close(clamp(i, 0.5), {0.5, 0.5, 5.0});
  CHECK(throws_mentioning([&] { clamp(x, std::nullopt, std::nullopt); }, "clamp"));
  CHECK_THROWS_AS(clamp(bools({1}), 0, 1), ember::Error);
}

TEST_CASE("unary: clamp_ in place") {
  Tensor x = f64({-2.0, 0.5, 3.0, 7.0}, {2, 2});
  uint32_t v0 = x.version();
  Tensor& r = x.clamp_(0.0, 2.0);
  CHECK(&r == &x);
  CHECK(x.version() > v0);
  check_close(x, {0.0, 0.5, 2.0, 2.0});
  // Through a non-contiguous view: writes land in the base's storage.
  Tensor b = f64({-1.0, -2.0, 5.0, 6.0}, {2, 2});
  Tensor bt = b.t();
  bt.clamp_(std::nullopt, 0.0);
  check_close(b, {-1.0, -2.0, 0.0, 0.0});
  Tensor w = f64({1.0}).requires_grad_(true);
  CHECK(throws_mentioning([&] { w.clamp_(0.0, 0.5); }, "clamp_"));
  {
    NoGradGuard ng;
    w.clamp_(0.0, 0.5);
  }
  check_close(w.detach(), {0.5});
  Tensor i = tensor<int64_t>({1, 9});
  CHECK(throws_mentioning([&] { i.clamp_(0.5, 2.0); }, "clamp_"));
  i.clamp_(0, 2);
  CHECK(i.to_vector<int64_t>() == std::vector<int64_t>{1, 2});
}

TEST_CASE("unary: logical_not and isnan") {
  double nan = std::numeric_limits<double>::quiet_NaN();
  Tensor x = f64({0.0, 1.5, nan, -0.0});
  Tensor n = isnan(x);
  CHECK(n.dtype() == kBool);
  CHECK(n.to_vector<bool>() == std::vector<bool>{false, false, true, false});
  Tensor l = logical_not(x);
  CHECK(l.dtype() == kBool);
  CHECK(l.to_vector<bool>() == std::vector<bool>{true, false, false, true});
  CHECK(logical_not(bools({1, 0})).to_vector<bool>() == std::vector<bool>{false, true});
  CHECK(isnan(tensor<int64_t>({1, 2})).to_vector<bool>() == std::vector<bool>{false, false});
  // Not differentiable: a bool result never requires grad.
  CHECK(!isnan(leaf(x)).requires_grad());
}

TEST_CASE("unary: errors name the op") {
  Tensor b = bools({1, 0});
  CHECK(throws_mentioning([&] { neg(b); }, "neg"));
  CHECK(throws_mentioning([&] { abs(b); }, "abs"));
  CHECK(throws_mentioning([&] { exp(Tensor()); }, "exp"));
  CHECK(throws_mentioning([&] { exp(zeros({2}, kFloat16)); }, "exp"));
}

TEST_CASE("unary: gradients at special points follow PyTorch") {
  Tensor x = leaf(f64({-2.0, 0.0, 3.0}));
  abs(x).sum().backward();
  check_close(x.grad(), {-1.0, 0.0, 1.0});
  Tensor y = leaf(f64({-2.0, 0.0, 3.0}));
  (sign(y) + floor(y) + ceil(y) + round(y)).sum().backward();
  REQUIRE(y.grad().defined());
  check_close(y.grad(), {0.0, 0.0, 0.0});
  // clamp: the gradient passes at the bounds (min <= x <= max), not outside.
  Tensor z = leaf(f64({-2.0, -1.0, 0.0, 1.0, 2.0}));
  clamp(z, -1.0, 1.0).sum().backward();
  check_close(z.grad(), {0.0, 1.0, 1.0, 1.0, 0.0});
  Tensor zm = leaf(f64({-2.0, 2.0}));
  clamp_min(zm, 0.0).sum().backward();
  check_close(zm.grad(), {0.0, 1.0});
  // pow(x, 0) has zero gradient even at x = 0.
  Tensor p = leaf(f64({0.0, 2.0}));
  pow(p, 0).sum().backward();
  check_close(p.grad(), {0.0, 0.0});
  // Second derivative of exp through ctx.result().
  Tensor e = leaf(f64({0.3}));
  auto g1 = autograd::grad({exp(e)}, {e}, {}, true, true);
  auto g2 = autograd::grad({g1[0]}, {e});
  check_close(g2[0], {std::exp(0.3)});
  // d2/dx2 tanh = -2 tanh (1 - tanh^2)
  Tensor t = leaf(f64({0.7}));
  auto h1 = autograd::grad({tanh(t)}, {t}, {}, true, true);
  auto h2 = autograd::grad({h1[0]}, {t});
  double th = std::tanh(0.7);
  check_close(h2[0], {-2 * th * (1 - th * th)});
}

TEST_CASE("unary: gradcheck and gradgradcheck in float64") {
  manual_seed(11);
  using F = std::function<Tensor(const tensor_list&)>;
  Tensor any = uniform_leaf({3, 4}, -2.0, 2.0);
  Tensor pos = uniform_leaf({3, 4}, 0.5, 2.5);
  // |x| >= 0.3 keeps abs/reciprocal/round/clamp away from their kinks for the finite differences.
  Tensor away = leaf(sign(any.detach()) * (abs(any.detach()) + 0.3));
  std::vector<std::pair<const char*, std::pair<F, Tensor>>> cases = {
      {"neg", {[](const tensor_list& in) { return neg(in[0]); }, any}},
      {"exp", {[](const tensor_list& in) { return exp(in[0]); }, any}},
      {"log", {[](const tensor_list& in) { return log(in[0]); }, pos}},
      {"log1p", {[](const tensor_list& in) { return log1p(in[0]); }, pos}},
      {"expm1", {[](const tensor_list& in) { return expm1(in[0]); }, any}},
      {"sqrt", {[](const tensor_list& in) { return sqrt(in[0]); }, pos}},
      {"rsqrt", {[](const tensor_list& in) { return rsqrt(in[0]); }, pos}},
      {"abs", {[](const tensor_list& in) { return abs(in[0]); }, away}},
      {"sign", {[](const tensor_list& in) { return sign(in[0]) * in[0]; }, away}},
      {"square", {[](const tensor_list& in) { return square(in[0]); }, any}},
      {"reciprocal", {[](const tensor_list& in) { return reciprocal(in[0]); }, away}},
      {"sin", {[](const tensor_list& in) { return sin(in[0]); }, any}},
      {"cos", {[](const tensor_list& in) { return cos(in[0]); }, any}},
      {"tanh", {[](const tensor_list& in) { return tanh(in[0]); }, any}},
      {"sigmoid", {[](const tensor_list& in) { return sigmoid(in[0]); }, any}},
      {"floor", {[](const tensor_list& in) { return floor(in[0]) + in[0]; }, away}},
      {"ceil", {[](const tensor_list& in) { return ceil(in[0]) * in[0]; }, away}},
      {"round", {[](const tensor_list& in) { return round(in[0] * 0.1) + in[0]; }, away}},
      {"pow2", {[](const tensor_list& in) { return pow(in[0], 2); }, any}},
      {"pow3", {[](const tensor_list& in) { return pow(in[0], 3); }, any}},
      {"pow_half", {[](const tensor_list& in) { return pow(in[0], 0.5); }, pos}},
      {"pow_neg", {[](const tensor_list& in) { return pow(in[0], -1.5); }, pos}},
      {"clamp", {[](const tensor_list& in) { return clamp(in[0], -1.0, 1.0) * in[0]; }, any}},
      {"clamp_min", {[](const tensor_list& in) { return clamp_min(in[0], 0.0) * in[0]; }, away}},
      {"clamp_max", {[](const tensor_list& in) { return clamp_max(in[0], 0.0) * in[0]; }, away}},
      {"members", {[](const tensor_list& in) { return in[0].sin().square().sigmoid().tanh().exp(); }, any}},
  };
  for (auto& [name, c] : cases) {
    INFO(name);
    CHECK_GRADS(c.first, {c.second});
  }
  // A non-contiguous input.
  Tensor nc = uniform_leaf({4, 3}, -1.0, 1.0);
  CHECK_GRADS([](const tensor_list& in) { return tanh(in[0].t()) * exp(in[0].t()); }, {nc});
}

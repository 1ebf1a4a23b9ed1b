#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <numbers>
#include <string>
#include <vector>

#include "ember/ember.hpp"
#include "support.hpp"

using namespace ember;

namespace {

Tensor f64(std::initializer_list<double> v, const Shape& s = {-1}) { return tensor<double>(v, s); }
Tensor leaf(const Tensor& t) { return t.detach().clone().requires_grad_(true); }
Tensor uniform_leaf(const Shape& s, double lo, double hi) { return leaf(rand(s, kFloat64) * (hi - lo) + lo); }
/// Uniform in [-hi, -lo] U [lo, hi]: away from the kink at 0.
Tensor away_leaf(const Shape& s, double lo, double hi) {
  Tensor u = rand(s, kFloat64) * (hi - lo) + lo;
  Tensor sgn = where(rand(s, kFloat64) > 0.5, 1.0, -1.0).to(kFloat64);
  return leaf(u * sgn);
}

bool throws_mentioning(const std::function<void()>& f, const std::string& needle) {
  try {
    f();
  } catch (const ember::Error& e) {
    return std::string(e.what()).find(needle) != std::string::npos;
  }
  return false;
}

double Phi(double x) { return 0.5 * std::erfc(-x / std::numbers::sqrt2); }
double phi(double x) { return std::exp(-0.5 * x * x) / std::sqrt(2 * std::numbers::pi); }
double gelu_tanh_ref(double x) {
  return 0.5 * x * (1 + std::tanh(std::sqrt(2 / std::numbers::pi) * (x + 0.044715 * x * x * x)));
}

/// d/dx and d2/dx2 of fn at the points of x, through autograd (create_graph on the first).
std::pair<Tensor, Tensor> derivatives(const std::function<Tensor(const Tensor&)>& fn, const Tensor& x0) {
  Tensor x = leaf(x0);
  Tensor g1 = autograd::grad({fn(x).sum()}, {x}, {}, true, true)[0];
  // A piecewise-linear function's first derivative need not depend on x at all.
  if (!g1.requires_grad()) return {g1.detach(), zeros_like(x0)};
  Tensor g2 = autograd::grad({g1.sum()}, {x}, {}, std::nullopt, false, true)[0];
  return {g1.detach(), g2.defined() ? g2 : zeros_like(x0)};
}

}  // namespace

TEST_CASE("activation: relu") {
  double nan = std::numeric_limits<double>::quiet_NaN();
  check_close(relu(f64({-2.0, 0.0, 3.5, nan})), {0.0, 0.0, 3.5, nan});
  check_close(f64({-1.0, 1.0}).relu(), {0.0, 1.0});
  Tensor i = tensor<int64_t>({-3, 4});
  CHECK(relu(i).dtype() == kInt64);
  CHECK(relu(i).to_vector<int64_t>() == std::vector<int64_t>{0, 4});
  auto [d1, d2] = derivatives([](const Tensor& x) { return relu(x); }, f64({-1.0, 0.0, 2.0}));
  check_close(d1, {0.0, 0.0, 1.0});  // 0 at the kink, as PyTorch
  check_close(d2, {0.0, 0.0, 0.0});
  // Non-contiguous input.
  Tensor base = arange(-3, 3, 1, TensorOptions(kFloat64)).reshape({2, 3});
  check_close(relu(base.t()), {0, 0, 0, 1, 0, 2});
}

TEST_CASE("activation: leaky_relu") {
  check_close(leaky_relu(f64({-2.0, 0.0, 3.0}), 0.2), {-0.4, 0.0, 3.0});
  check_close(leaky_relu(f64({-100.0})), {-1.0});  // default slope 0.01
  auto [d1, d2] = derivatives([](const Tensor& x) { return leaky_relu(x, 0.2); }, f64({-1.0, 0.0, 2.0}));
  check_close(d1, {0.2, 0.2, 1.0});
  CHECK(leaky_relu(tensor<int64_t>({-1, 2}), 0.5).dtype() == kFloat32);
  check_close(leaky_relu(tensor<int64_t>({-1, 2}), 0.5), {-0.5, 2.0});
}

TEST_CASE("activation: elu") {
  check_close(elu(f64({-1.0, 0.0, 2.0}), 1.5), {1.5 * std::expm1(-1.0), 0.0, 2.0});
  check_close(elu(f64({-1e-10})), {std::expm1(-1e-10)});
  auto [d1, d2] = derivatives([](const Tensor& x) { return elu(x, 1.5); }, f64({-1.0, 2.0}));
  check_close(d1, {1.5 * std::exp(-1.0), 1.0});
  check_close(d2, {1.5 * std::exp(-1.0), 0.0});
  // A large positive input: the unused exp branch must not poison the second derivative.
  auto [e1, e2] = derivatives([](const Tensor& x) { return elu(x); }, f64({1000.0}));
  check_close(e1, {1.0});
  check_close(e2, {0.0});
}

TEST_CASE("activation: gelu exact and tanh approximation") {
  Tensor x = f64({-3.0, -1.0, 0.0, 0.5, 1.0, 4.0});
  std::vector<double> exact, approx;
  for (double v : {-3.0, -1.0, 0.0, 0.5, 1.0, 4.0}) {
    exact.push_back(v * Phi(v));
    approx.push_back(gelu_tanh_ref(v));
  }
  check_close(gelu(x), exact);
  check_close(gelu(x, "tanh"), approx);
  check_close(gelu(f64({1.0})), {0.8413447460685429});
  check_close(gelu(f64({-1.0}), "tanh"), {-0.15880800939172324});
  // First and second derivatives of the exact gelu: Phi + x phi and (2 - x^2) phi.
  auto [d1, d2] = derivatives([](const Tensor& t) { return gelu(t); }, f64({-2.0, 0.0, 1.0, 3.0}));
  check_close(d1, {Phi(-2) - 2 * phi(-2), 0.5, Phi(1) + phi(1), Phi(3) + 3 * phi(3)});
  check_close(d2, {(2 - 4) * phi(-2), 2 * phi(0), phi(1), (2 - 9) * phi(3)});
  // Far tail: Phi(-10) is ~7.6e-24 and must not cancel to 0 in the gradient.
  auto [t1, t2] = derivatives([](const Tensor& t) { return gelu(t); }, f64({-10.0}));
  check_close(t1, {Phi(-10) - 10 * phi(-10)}, 1e-9);
  // float32 and integer inputs.
  auto g32 = gelu(tensor<float>({1.f, -0.5f})).to_vector<float>();
  CHECK(g32[0] == doctest::Approx(0.8413447f).epsilon(1e-6));
  CHECK(gelu(tensor<int64_t>({1})).dtype() == kFloat32);
  CHECK(throws_mentioning([&] { gelu(x, "erf"); }, "gelu"));
}

TEST_CASE("activation: the GPU's Phi(x) = gelu(x) / x matches erfc in both tails") {
  // normal_cdf_from_gelu is what gelu's backward uses on CUDA (no erf launcher); it runs on
  // the CPU as well, so its accuracy is checked here.
  std::vector<double> xs{-30.0, -12.0, -3.0, -1e-300, 0.0, 1e-300, 0.1, 2.0, 40.0};
  std::vector<double> want;
  for (double v : xs) want.push_back(Phi(v));
  check_close(detail::normal_cdf_from_gelu(tensor<double>(xs)), want, 1e-14);
  std::vector<float> xf{-12.f, -3.f, -1e-20f, 0.f, 0.5f, 5.f};
  auto got = detail::normal_cdf_from_gelu(tensor<float>(xf)).to_vector<float>();
  for (size_t i = 0; i < xf.size(); ++i) CHECK(got[i] == doctest::Approx(Phi(xf[i])).epsilon(1e-6));
}

TEST_CASE("activation: float32 exact gelu (vectorised erfc) matches double, forward and backward") {
  // The float kernels use ops/erfc_vec.hpp, not erfcf: check them against double on a dense grid
  // reaching gelu's left tail (results down to subnormals) and an odd length (vector remainders).
  std::vector<float> xs;
  for (int i = -140000; i <= 140000; ++i) xs.push_back(static_cast<float>(i) * 1e-4f);
  xs.push_back(-13.7f);
  Tensor x = tensor<float>(xs).requires_grad_(true);
  Tensor y = gelu(x);
  Tensor g = full(x.sizes(), 0.75, kFloat32);
  y.backward(g);
  auto yv = y.to_vector<float>();
  auto dv = x.grad().to_vector<float>();
  double worst_y = 0, worst_d = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    double v = xs[i];
    double ref = v * Phi(v);
    // ~2 float ulp relative, left tail included; subnormal results (x < -12.9) to their spacing.
    worst_y = std::max(worst_y, (std::abs(yv[i] - ref) - 1e-45) / std::abs(ref));
    worst_d = std::max(worst_d, std::abs(dv[i] - 0.75 * (Phi(v) + v * phi(v))));
  }
  CHECK(worst_y < 2.5e-7);
  CHECK(worst_d < 2e-7);
  // Specials as PyTorch: gelu(-inf) = -inf * 0 = NaN, and its gradient at +-inf is NaN too.
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  auto sp = gelu(tensor<float>({-inf, inf, nan, -0.f})).to_vector<float>();
  CHECK(std::isnan(sp[0]));
  CHECK(sp[1] == inf);
  CHECK(std::isnan(sp[2]));
  CHECK(sp[3] == 0.f);
  // The fused CPU backward equals the op formula it replaces (broadcast g takes the op path).
  Tensor xf = tensor<float>({-3.f, -0.75f, 0.f, 0.5f, 2.f});
  auto fused = detail::gelu_erf_backward(full(xf.sizes(), 2.0, kFloat32), xf).to_vector<float>();
  auto ops = detail::gelu_erf_backward(tensor<float>({2.f}), xf).to_vector<float>();
  for (size_t i = 0; i < fused.size(); ++i) CHECK(fused[i] == doctest::Approx(ops[i]).epsilon(1e-6));
  // Second derivative through the fused backward in float32, non-contiguous input.
  Tensor xt = tensor<float>({-2.f, 1.f, 0.f, 3.f}, {2, 2}).t();
  auto [d1, d2] = derivatives([](const Tensor& t) { return gelu(t); }, xt);
  auto d1v = d1.contiguous().to_vector<float>(), d2v = d2.contiguous().to_vector<float>();
  const double pts[] = {-2.0, 0.0, 1.0, 3.0};  // xt in row-major order
  for (int i = 0; i < 4; ++i) {
    CHECK(d1v[i] == doctest::Approx(Phi(pts[i]) + pts[i] * phi(pts[i])).epsilon(1e-6));
    CHECK(d2v[i] == doctest::Approx((2 - pts[i] * pts[i]) * phi(pts[i])).epsilon(1e-6));
  }
}

TEST_CASE("activation: silu and softplus") {
  auto sig = [](double v) { return 1 / (1 + std::exp(-v)); };
  check_close(silu(f64({-2.0, 0.0, 3.0})), {-2 * sig(-2), 0.0, 3 * sig(3)});
  auto [s1, s2] = derivatives([](const Tensor& x) { return silu(x); }, f64({0.0}));
  check_close(s1, {0.5});
  check_close(s2, {0.5});  // d2/dx2 x sigmoid(x) at 0 = 2 s'(0) = 0.5
  check_close(softplus(f64({0.0, 1.0, -30.0})), {std::log(2.0), std::log1p(std::exp(1.0)), std::log1p(std::exp(-30.0))});
  check_close(softplus(f64({1.0}), 2.0), {std::log1p(std::exp(2.0)) / 2});
  // Above the threshold softplus is the identity (beta * x > threshold).
  check_close(softplus(f64({30.0, 8.0}), 1.0, 20.0), {30.0, std::log1p(std::exp(8.0))});
  check_close(softplus(f64({8.0}), 3.0, 20.0), {8.0});
  auto [p1, p2] = derivatives([](const Tensor& x) { return softplus(x, 2.0); }, f64({0.0, 50.0}));
  check_close(p1, {0.5, 1.0});
  check_close(p2, {0.5, 0.0});  // beta * s'(0) = 2 * 0.25
  CHECK(throws_mentioning([&] { softplus(f64({1.0}), 0.0); }, "softplus"));
}

TEST_CASE("activation: hardtanh") {
  Tensor x = f64({-3.0, -1.0, 0.25, 1.0, 3.0});
  check_close(hardtanh(x), {-1.0, -1.0, 0.25, 1.0, 1.0});
  check_close(hardtanh(x, 0.0, 0.5), {0.0, 0.0, 0.25, 0.5, 0.5});
  auto [d1, d2] = derivatives([](const Tensor& t) { return hardtanh(t); }, x);
  check_close(d1, {0.0, 0.0, 1.0, 0.0, 0.0});  // strictly inside only, as PyTorch
  CHECK(throws_mentioning([&] { hardtanh(x, 1.0, -1.0); }, "hardtanh"));
}

TEST_CASE("activation: dropout") {
  SUBCASE("identity cases") {
    Tensor x = f64({1.0, 2.0, 3.0});
    CHECK(dropout(x, 0.0, true).is_same(x));
    CHECK(dropout(x, 0.7, false).is_same(x));
    check_close(dropout(x, 1.0, true), {0.0, 0.0, 0.0});
  }
  SUBCASE("errors") {
    Tensor x = f64({1.0});
    CHECK(throws_mentioning([&] { dropout(x, -0.1, true); }, "dropout"));
    CHECK(throws_mentioning([&] { dropout(x, 1.5, true); }, "dropout"));
    CHECK(throws_mentioning([&] { dropout(x, -0.1, false); }, "dropout"));
    CHECK(throws_mentioning([&] { dropout(tensor<int64_t>({1, 2}), 0.5, true); }, "dropout"));
  }
  SUBCASE("mask statistics and scaling") {
    manual_seed(1234);
    const int64_t n = 200000;
    const double p = 0.3;
    Tensor y = dropout(ones({n}), p, true);
    CHECK(y.dtype() == kFloat32);
    auto v = y.to_vector<float>();
    int64_t zeros_seen = 0, badly_scaled = 0;
    for (float e : v) {
      if (e == 0.f) ++zeros_seen;
      else if (std::abs(e - 1.0 / (1 - p)) > 1e-6) ++badly_scaled;
    }
    CHECK(badly_scaled == 0);  // every kept element is scaled by 1 / (1 - p)
    double frac = static_cast<double>(zeros_seen) / n;
    // Binomial standard deviation: sqrt(p (1 - p) / n) ~ 0.001; allow 5 sigma.
    CHECK(std::abs(frac - p) < 0.005);
    CHECK(std::abs(y.sum().item<float>() / n - 1.0) < 0.01);
    // float64 inputs stay float64.
    CHECK(dropout(ones({4}, kFloat64), 0.5, true).dtype() == kFloat64);
  }
  SUBCASE("the fused CPU mask is the composed formula's, bit for bit") {
    // dropout(x) == x * (rand(x.shape) >= p) / (1 - p) from the same generator state: the fused
    // kernel must not change which elements a seed drops (CUDA composes the formula).
    for (DType dt : {kFloat32, kFloat64}) {
      Tensor x = randn({37, 53}, TensorOptions(dt)).transpose(0, 1);  // non-contiguous
      for (double p : {0.1, 0.5, 0.9}) {
        manual_seed(99);
        Tensor got = dropout(x, p, true);
        manual_seed(99);
        Tensor u = rand(x.sizes(), TensorOptions(dt));
        Tensor want = mul(x, mul(ge(u, Scalar(p)).to(dt), Scalar(1.0 / (1.0 - p))));
        CHECK(got.sizes() == want.sizes());
        CHECK(got.to(kFloat64).to_vector<double>() == want.to(kFloat64).to_vector<double>());
      }
    }
  }
  SUBCASE("reproducible under manual_seed, different otherwise") {
    Tensor x = randn({64, 32});
    manual_seed(7);
    auto a = dropout(x, 0.5, true).to_vector<float>();
    auto b = dropout(x, 0.5, true).to_vector<float>();
    manual_seed(7);
    auto c = dropout(x, 0.5, true).to_vector<float>();
    CHECK(a == c);
    CHECK(a != b);
  }
  SUBCASE("non-contiguous input") {
    manual_seed(3);
    Tensor x = ones({8, 16}).t();
    Tensor y = dropout(x, 0.25, true);
    CHECK(y.sizes() == Shape{16, 8});
    int64_t bad = 0, dropped = 0;
    for (float e : y.to_vector<float>()) {
      if (e == 0.f) ++dropped;
      else if (std::abs(e - 1 / 0.75) > 1e-6) ++bad;
    }
    CHECK(bad == 0);
    CHECK(dropped > 0);
    CHECK(dropped < 128);
  }
  SUBCASE("gradient is the scaled mask") {
    manual_seed(9);
    Tensor x = leaf(ones({1000}, kFloat64));
    Tensor y = dropout(x, 0.4, true);
    y.sum().backward();
    check_close(x.grad(), vals(y));  // y = mask / (1 - p) when x = 1
  }
}

TEST_CASE("activation: gradcheck and gradgradcheck in float64") {
  manual_seed(31);
  Tensor any = uniform_leaf({3, 4}, -3.0, 3.0);
  Tensor away = away_leaf({3, 4}, 0.2, 2.5);
  SUBCASE("relu") { CHECK_GRADS([](const tensor_list& in) { return relu(in[0]) * in[0]; }, {away}); }
  SUBCASE("leaky_relu") { CHECK_GRADS([](const tensor_list& in) { return leaky_relu(in[0], 0.2).square(); }, {away}); }
  SUBCASE("elu") { CHECK_GRADS([](const tensor_list& in) { return elu(in[0], 0.7); }, {away}); }
  SUBCASE("gelu") { CHECK_GRADS([](const tensor_list& in) { return gelu(in[0]); }, {any}); }
  SUBCASE("gelu tanh") { CHECK_GRADS([](const tensor_list& in) { return gelu(in[0], "tanh"); }, {any}); }
  SUBCASE("silu") { CHECK_GRADS([](const tensor_list& in) { return silu(in[0]); }, {any}); }
  SUBCASE("softplus") { CHECK_GRADS([](const tensor_list& in) { return softplus(in[0], 1.5, 20.0); }, {any}); }
  SUBCASE("softplus over the threshold") {
    CHECK_GRADS([](const tensor_list& in) { return softplus(in[0] * 10.0, 1.0, 5.0); }, {away});
  }
  SUBCASE("hardtanh") {
    CHECK_GRADS([](const tensor_list& in) { return hardtanh(in[0], -1.5, 1.5) * in[0]; }, {any});
  }
  SUBCASE("dropout with a fixed seed") {
    CHECK_GRADS([](const tensor_list& in) {
      manual_seed(5);
      return dropout(in[0].square(), 0.4, true);
    }, {any});
  }
  SUBCASE("non-contiguous") {
    Tensor t = uniform_leaf({4, 3}, -2.0, 2.0);
    CHECK_GRADS([](const tensor_list& in) { return gelu(in[0].t()) * silu(in[0].t()); }, {t});
  }
  SUBCASE("gradient penalty through leaky_relu") {
    // WGAN-GP shape: || d/dx sum(leaky_relu(x w)) ||^2 differentiated w.r.t. w.
    Tensor x = uniform_leaf({5, 3}, -1.0, 1.0);
    Tensor w = uniform_leaf({3, 2}, -1.0, 1.0);
    CHECK_GRADS([](const tensor_list& in) {
      Tensor h = (in[0].unsqueeze(2) * in[1].unsqueeze(0)).sum({1});
      return gelu(h) + leaky_relu(h, 0.2) * elu(h);
    }, {x, w});
  }
}

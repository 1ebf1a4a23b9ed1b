#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "ember/ember.hpp"

// Numerically stable kernels at extreme inputs (issue #11 "Numerical failures"): the values where
// a naive formula overflows, underflows to log(0) or divides 0 by 0 give PyTorch's finite answers,
// forward and backward, in float32 (where overflow comes first) and float64.

namespace {

using ember::Tensor;
namespace F = ember::nn::functional;

std::vector<double> values(const Tensor& t) { return t.to(ember::kFloat64).to_vector<double>(); }

void check_values(const Tensor& t, const std::vector<double>& expected, double tol) {
  std::vector<double> got = values(t);
  REQUIRE(got.size() == expected.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i << ": " << got[i] << " vs " << expected[i]);
    CHECK(std::isfinite(got[i]));
    CHECK(std::abs(got[i] - expected[i]) <= tol * std::max(1.0, std::abs(expected[i])));
  }
}

Tensor leaf(std::initializer_list<double> v, ember::DType dtype, const ember::Shape& shape = {-1}) {
  return ember::tensor<double>(v, shape).to(dtype).requires_grad_(true);
}

Tensor grad_of(const Tensor& y, const Tensor& x) { return ember::autograd::grad({y}, {x})[0]; }

}  // namespace

TEST_CASE("stability: cross_entropy with logits of +-1e4") {
  for (auto dtype : {ember::kFloat32, ember::kFloat64}) {
    CAPTURE(dtype);
    Tensor x = leaf({1e4, -1e4, 0, -1e4, 1e4, 1e4}, dtype, {2, 3});
    Tensor target = ember::tensor<int64_t>({0, 0});
    Tensor loss = F::cross_entropy(x, target, ember::nn::CrossEntropyLossOptions().reduction(ember::nn::Reduction::None));
    // Row 0: the target holds the largest logit: loss 0. Row 1: the target is 2e4 below the two
    // largest: 2e4 + log 2.
    check_values(loss, {0.0, 2e4 + std::log(2.0)}, 1e-6);
    // d loss / d x = softmax - one_hot: finite, rows sum to 0.
    check_values(grad_of(loss.sum(), x), {0, 0, 0, -1, 0.5, 0.5}, 1e-6);
    // Label smoothing on the same logits stays finite too (it reads every log-probability).
    Tensor smooth = F::cross_entropy(x, target, ember::nn::CrossEntropyLossOptions().label_smoothing(0.1));
    CHECK(std::isfinite(values(smooth)[0]));
    for (double g : values(grad_of(smooth, x))) CHECK(std::isfinite(g));
  }
}

TEST_CASE("stability: binary_cross_entropy_with_logits and sigmoid at +-100") {
  for (auto dtype : {ember::kFloat32, ember::kFloat64}) {
    CAPTURE(dtype);
    Tensor x = leaf({100, -100, 100, -100}, dtype);
    Tensor y = ember::tensor<double>({0, 1, 1, 0}).to(dtype);
    Tensor loss = F::binary_cross_entropy_with_logits(x, y, ember::nn::BCEWithLogitsLossOptions().reduction(ember::nn::Reduction::None));
    // max(x, 0) - x y + log(1 + exp(-|x|)): 100 when the sign is wrong, e^-100 when it is right.
    check_values(loss, {100, 100, std::exp(-100.0), std::exp(-100.0)}, 1e-6);
    // d/dx = sigmoid(x) - y.
    check_values(grad_of(loss.sum(), x), {1, -1, -std::exp(-100.0), std::exp(-100.0)}, 1e-6);
    check_values(ember::sigmoid(x), {1, std::exp(-100.0), 1, std::exp(-100.0)}, 1e-6);
  }
}

TEST_CASE("stability: softplus and logsumexp gradients at large magnitudes") {
  for (auto dtype : {ember::kFloat32, ember::kFloat64}) {
    CAPTURE(dtype);
    Tensor x = leaf({1e4, -1e4, 30, -30}, dtype);
    Tensor s = ember::softplus(x);
    check_values(s, {1e4, 0, 30, std::log1p(std::exp(-30.0))}, 1e-6);
    check_values(grad_of(s.sum(), x), {1, 0, 1, 1 / (1 + std::exp(30.0))}, 1e-6);
    Tensor z = leaf({1e4, 1e4, -1e4}, dtype);
    Tensor lse = ember::logsumexp(z);
    check_values(lse, {1e4 + std::log(2.0)}, 1e-6);
    // exp(z - lse): in float32 lse = 10000.693 carries an absolute error of up to half an ulp at
    // 1e4 (5e-4), so the gradient is 0.5 to about 1e-3 there (PyTorch's float32 answer too).
    check_values(grad_of(lse, z), {0.5, 0.5, 0}, dtype == ember::kFloat32 ? 2e-3 : 1e-12);
  }
}

TEST_CASE("stability: layer_norm and batch_norm of constant inputs (zero variance)") {
  for (auto dtype : {ember::kFloat32, ember::kFloat64}) {
    CAPTURE(dtype);
    // Every row constant: (x - mean) is 0 and var + eps keeps the division finite; the output is
    // the bias and the input gradient PyTorch's w / sqrt(eps) (g - mean(g)) (x_hat = 0), not NaN.
    Tensor x = ember::full({3, 8}, 7.5, ember::TensorOptions(dtype)).requires_grad_(true);
    Tensor w = ember::full({8}, 2.0, ember::TensorOptions(dtype)).requires_grad_(true);
    Tensor b = ember::full({8}, 0.25, ember::TensorOptions(dtype)).requires_grad_(true);
    Tensor y = ember::layer_norm(x, {8}, w, b);
    check_values(y, std::vector<double>(24, 0.25), 1e-6);
    Tensor g = ember::randn({3, 8}, dtype);
    auto grads = ember::autograd::grad({y}, {x, w, b}, {g});
    std::vector<double> gv = values(g), expected(24);
    const double invstd = 1 / std::sqrt(1e-5);
    for (int r = 0; r < 3; ++r) {
      double m = 0;
      for (int c = 0; c < 8; ++c) m += gv[r * 8 + c] / 8;
      for (int c = 0; c < 8; ++c) expected[r * 8 + c] = 2.0 * invstd * (gv[r * 8 + c] - m);
    }
    check_values(grads[0], expected, 1e-4);
    for (double v : values(grads[1])) CHECK(std::isfinite(v));

    Tensor xb = ember::full({4, 3, 2, 2}, -3.0, ember::TensorOptions(dtype)).requires_grad_(true);
    Tensor rm = ember::zeros({3}, ember::TensorOptions(dtype)), rv = ember::ones({3}, ember::TensorOptions(dtype));
    Tensor wb = ember::ones({3}, ember::TensorOptions(dtype)).requires_grad_(true);
    Tensor bb = ember::full({3}, 0.5, ember::TensorOptions(dtype)).requires_grad_(true);
    Tensor yb = ember::batch_norm(xb, rm, rv, wb, bb, /*training=*/true);
    check_values(yb, std::vector<double>(48, 0.5), 1e-6);
    Tensor gbo = ember::randn({4, 3, 2, 2}, dtype);
    auto gb = ember::autograd::grad({yb}, {xb, wb, bb}, {gbo});
    std::vector<double> go = values(gbo), expected_b(48);
    for (int c = 0; c < 3; ++c) {  // per channel, over N, H, W: w / sqrt(eps) (g - mean(g))
      double m = 0;
      for (int n = 0; n < 4; ++n)
        for (int k = 0; k < 4; ++k) m += go[(n * 3 + c) * 4 + k] / 16;
      for (int n = 0; n < 4; ++n)
        for (int k = 0; k < 4; ++k) expected_b[(n * 3 + c) * 4 + k] = invstd * (go[(n * 3 + c) * 4 + k] - m);
    }
    check_values(gb[0], expected_b, 1e-4);
    for (double v : values(gb[1])) CHECK(std::isfinite(v));
    check_values(rm, {-0.3, -0.3, -0.3}, 1e-6);  // the running mean moved by momentum 0.1
  }
}

TEST_CASE("stability: the gradient penalty at a zero gradient (norm of a zero vector, double backward)") {
  // WGAN-GP's penalty (||grad_x D(x)|| - 1)^2 where the critic's input gradient is exactly 0 for
  // one sample (a constant critic there): the norm's gradient at 0 is the subgradient 0 (not
  // 0/0), so the penalty and its gradient with respect to the critic's weights are finite.
  for (auto dtype : {ember::kFloat32, ember::kFloat64}) {
    CAPTURE(dtype);
    Tensor w = leaf({0.5, -1.0, 2.0}, dtype);
    Tensor x = ember::tensor<double>({1, 2, 3, 4, 5, 6}, {2, 3}).to(dtype).requires_grad_(true);
    Tensor mask = ember::tensor<double>({1, 0}, {2, 1}).to(dtype);  // sample 1 does not depend on x
    Tensor d = ember::sum(ember::mul(ember::mul(x, w), mask), {1});
    Tensor gx = ember::autograd::grad({d}, {x}, {ember::ones_like(d)}, /*retain_graph=*/true, /*create_graph=*/true)[0];
    Tensor norms = ember::norm(gx, 2, {1});
    check_values(norms, {std::sqrt(0.25 + 1 + 4), 0}, 1e-6);
    Tensor gp = ember::mean(ember::pow(norms - 1.0, 2));
    check_values(gp, {(std::pow(std::sqrt(5.25) - 1, 2) + 1) / 2}, 1e-6);
    // d gp / d w: only sample 0 contributes, (||w|| - 1) w / ||w||.
    const double n = std::sqrt(5.25);
    check_values(grad_of(gp, w), {(n - 1) * 0.5 / n, (n - 1) * -1.0 / n, (n - 1) * 2.0 / n}, 1e-5);
  }
}

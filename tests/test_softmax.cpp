#include <doctest/doctest.h>

#include "ember/ember.hpp"

#include <cmath>
#include <limits>
#include <string>
#include <vector>

using namespace ember;

namespace {

using dvec = std::vector<double>;
const double kInf = std::numeric_limits<double>::infinity();

TensorOptions f64(bool rg = false) { return TensorOptions(kFloat64).requires_grad(rg); }

void check_close(const Tensor& t, const dvec& expected, double tol = 1e-9) {
  auto v = t.to_vector<double>();
  REQUIRE(v.size() == expected.size());
  for (size_t i = 0; i < v.size(); ++i) {
    if (std::isnan(expected[i])) {
      CHECK_MESSAGE(std::isnan(v[i]), "element ", i, ": got ", v[i], ", expected NaN");
    } else if (std::isinf(expected[i])) {
      CHECK_MESSAGE(v[i] == expected[i], "element ", i, ": got ", v[i], ", expected ", expected[i]);
    } else {
      CHECK_MESSAGE(std::abs(v[i] - expected[i]) <= tol * (1 + std::abs(expected[i])), "element ", i, ": got ",
                    v[i], ", expected ", expected[i]);
    }
  }
}

/// Reference (log-)softmax along `dim` of a contiguous row-major tensor, in long double.
dvec ref_softmax(const dvec& x, const Shape& sizes, int64_t dim, bool log) {
  int64_t outer = 1, inner = 1, n = sizes[dim];
  for (int64_t i = 0; i < dim; ++i) outer *= sizes[i];
  for (int64_t i = dim + 1; i < sizes.size(); ++i) inner *= sizes[i];
  dvec out(x.size());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j = 0; j < inner; ++j) {
      long double m = -INFINITY, s = 0;
      for (int64_t k = 0; k < n; ++k) m = std::max<long double>(m, x[(o * n + k) * inner + j]);
      for (int64_t k = 0; k < n; ++k) s += std::exp(static_cast<long double>(x[(o * n + k) * inner + j]) - m);
      for (int64_t k = 0; k < n; ++k) {
        long double v = x[(o * n + k) * inner + j] - m;
        out[(o * n + k) * inner + j] = static_cast<double>(log ? v - std::log(s) : std::exp(v) / s);
      }
    }
  return out;
}

template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("softmax/log_softmax: hand-checked values") {
  Tensor x = tensor<double>({1, 2, 3});
  check_close(softmax(x, 0), {0.09003057317038046, 0.24472847105479764, 0.6652409557748219});
  check_close(log_softmax(x, 0), {-2.4076059644443806, -1.4076059644443804, -0.4076059644443803});
  check_close(x.softmax(-1), {0.09003057317038046, 0.24472847105479764, 0.6652409557748219});
  check_close(x.log_softmax(-1), {-2.4076059644443806, -1.4076059644443804, -0.4076059644443803});
  // [[1, 2], [3, 5]] along dim 0: columns (1, 3) and (2, 5).
  Tensor y = tensor<double>({1, 2, 3, 5}, {2, 2});
  double a = 1 / (1 + std::exp(2.0)), b = 1 / (1 + std::exp(3.0));
  check_close(softmax(y, 0), {a, b, 1 - a, 1 - b});
  check_close(softmax(y, 1), {1 / (1 + std::exp(1.0)), 1 - 1 / (1 + std::exp(1.0)), 1 / (1 + std::exp(2.0)), 1 - 1 / (1 + std::exp(2.0))});
  // 0-dim input: a single element.
  check_close(softmax(scalar_tensor(3.0, kFloat64), 0), {1});
  check_close(log_softmax(scalar_tensor(3.0, kFloat64), -1), {0});
  CHECK(softmax(scalar_tensor(3.0, kFloat64), 0).dim() == 0);
  // Empty input keeps its shape.
  CHECK(softmax(zeros({0, 3}, kFloat64), 1).sizes() == Shape{0, 3});
}

TEST_CASE("softmax/log_softmax: every dim of a 3-d tensor, contiguous or not, float32 and float64") {
  Tensor base = randn({3, 4, 5}, kFloat64) * 3.0;
  std::vector<Tensor> inputs = {base, base.transpose(0, 2), base.slice(1, 0, 4, 2), base.permute({1, 2, 0})};
  for (const Tensor& x : inputs) {
    dvec vals = x.contiguous().to_vector<double>();
    for (int64_t d = 0; d < 3; ++d) {
      CAPTURE(x.sizes());
      CAPTURE(d);
      check_close(softmax(x, d), ref_softmax(vals, x.sizes(), d, false), 1e-12);
      check_close(log_softmax(x, d - 3), ref_softmax(vals, x.sizes(), d, true), 1e-12);
      Tensor xf = x.to(kFloat32);
      CHECK(softmax(xf, d).dtype() == kFloat32);
      check_close(softmax(xf, d), ref_softmax(xf.contiguous().to_vector<double>(), x.sizes(), d, false), 1e-5);
      check_close(log_softmax(xf, d), ref_softmax(xf.contiguous().to_vector<double>(), x.sizes(), d, true), 1e-5);
    }
  }
  // Rows sum to one along the softmax dim; a wide middle dim exercises the column-block loop.
  Tensor w = randn({2, 7, 600}, kFloat32);
  check_close(sum(softmax(w, 1), {1}), dvec(1200, 1.0), 1e-5);
}

TEST_CASE("softmax/log_softmax/logsumexp: stable for large magnitudes") {
  Tensor x = tensor<double>({1000, 1001, 1002});
  check_close(softmax(x, 0), {0.09003057317038046, 0.24472847105479764, 0.6652409557748219});
  check_close(log_softmax(x, 0), {-2.4076059644443806, -1.4076059644443804, -0.4076059644443803});
  Tensor xn = tensor<float>({-1000, -1001, -1002});
  check_close(softmax(xn, 0), {0.6652409557748219, 0.24472847105479764, 0.09003057317038046}, 1e-6);
  check_close(log_softmax(xn, 0), {-0.4076059644443803, -1.4076059644443804, -2.4076059644443806}, 1e-6);
  check_close(logsumexp(x), {1002.4076059644444});
  check_close(logsumexp(tensor<float>({1000, 1000})), {1000 + std::log(2.0)}, 1e-6);
  // A very negative element underflows to 0 probability but its log-probability stays finite.
  check_close(log_softmax(tensor<double>({0, -1000}), 0), {0, -1000});
  // Infinities.
  check_close(logsumexp(tensor<double>({-kInf, -kInf})), {-kInf});
  check_close(logsumexp(tensor<double>({1, kInf})), {kInf});
  check_close(softmax(tensor<double>({-kInf, 0}), 0), {0, 1});
  CHECK(std::isnan(softmax(tensor<double>({1, std::nan("")}), 0).to_vector<double>()[0]));
}

TEST_CASE("logsumexp: dims, keepdim, empty slice, integral input") {
  Tensor x = tensor<double>({1, 2, 3, 4, 5, 6}, {2, 3});
  auto lse = [](dvec v) {
    double s = 0;
    for (double e : v) s += std::exp(e);
    return std::log(s);
  };
  check_close(logsumexp(x, {1}), {lse({1, 2, 3}), lse({4, 5, 6})});
  check_close(logsumexp(x, {0}), {lse({1, 4}), lse({2, 5}), lse({3, 6})});
  check_close(logsumexp(x, {-1, 0}), {lse({1, 2, 3, 4, 5, 6})});
  check_close(logsumexp(x), {lse({1, 2, 3, 4, 5, 6})});
  CHECK(logsumexp(x, {1}, true).sizes() == Shape{2, 1});
  check_close(logsumexp(x.t(), {0}), {lse({1, 2, 3}), lse({4, 5, 6})});
  check_close(logsumexp(zeros({2, 0}, kFloat64), {1}), {-kInf, -kInf});
  Tensor xi = logsumexp(tensor<int64_t>({0, 0}));
  CHECK(xi.dtype() == kFloat32);
  check_close(xi, {std::log(2.0)}, 1e-6);
  check_close(logsumexp(scalar_tensor(2.0, kFloat64)), {2.0});
}

TEST_CASE("softmax/log_softmax/logsumexp: errors name the op") {
  Tensor x = zeros({2, 3}, kFloat64);
  std::string m = error_of([&] { softmax(x, 2); });
  CHECK(m.find("softmax") != std::string::npos);
  CHECK(m.find("out of range") != std::string::npos);
  CHECK(error_of([&] { log_softmax(x, -3); }).find("log_softmax") != std::string::npos);
  CHECK(error_of([] { softmax(tensor<int64_t>({1, 2}), 0); }).find("softmax: expected a floating point") !=
        std::string::npos);
  CHECK(error_of([&] { logsumexp(x, {0, -2}); }).find("logsumexp") != std::string::npos);
  CHECK(error_of([&] { logsumexp(x, {3}); }).find("logsumexp") != std::string::npos);
}

TEST_CASE("softmax/log_softmax/logsumexp: gradients and second derivatives in float64") {
  Tensor r = randn({3, 4, 2}, f64(true));
  for (int64_t d : {0, 1, 2, -1}) {
    CAPTURE(d);
    CHECK_GRADS([d](const tensor_list& in) { return softmax(in[0], d); }, {r});
    CHECK_GRADS([d](const tensor_list& in) { return log_softmax(in[0], d); }, {r});
  }
  CHECK_GRADS([](const tensor_list& in) { return logsumexp(in[0], {1}); }, {r});
  CHECK_GRADS([](const tensor_list& in) { return logsumexp(in[0], {0, 2}, true); }, {r});
  CHECK_GRADS([](const tensor_list& in) { return logsumexp(in[0]); }, {r});
  // Non-contiguous input.
  Tensor nc = randn({4, 3}, f64()).t();
  nc.requires_grad_(true);
  CHECK_GRADS([](const tensor_list& in) { return softmax(in[0], 1); }, {nc});
  CHECK_GRADS([](const tensor_list& in) { return log_softmax(in[0], 0); }, {nc});
  // Hand-checked backward: d sum(w * softmax(x)) / dx = y * (w - <w, y>).
  Tensor x = tensor<double>({1, 2, 3}, {3}, f64(true));
  Tensor w = tensor<double>({1, 0, 0});
  sum(mul(softmax(x, 0), w)).backward();
  double y0 = 0.09003057317038046, y1 = 0.24472847105479764, y2 = 0.6652409557748219;
  check_close(x.grad(), {y0 * (1 - y0), -y1 * y0, -y2 * y0});
  // log_softmax + NLL-style pick: gradient is softmax - onehot.
  Tensor x2 = tensor<double>({1, 2, 3}, {3}, f64(true));
  sum(mul(log_softmax(x2, 0), w)).backward();
  check_close(x2.grad(), {1 - y0, -y1, -y2});
}

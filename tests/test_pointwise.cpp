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
Tensor bools(std::initializer_list<int32_t> v, const Shape& s = {-1}) { return tensor<int32_t>(v, s).to(kBool); }
Tensor leaf(const Tensor& t) { return t.detach().clone().requires_grad_(true); }
Tensor uniform_leaf(const Shape& s, double lo, double hi) { return leaf(rand(s, kFloat64) * (hi - lo) + lo); }

bool throws_mentioning(const std::function<void()>& f, const std::string& needle) {
  try {
    f();
  } catch (const ember::Error& e) {
    return std::string(e.what()).find(needle) != std::string::npos;
  }
  return false;
}

}  // namespace

TEST_CASE("pointwise: maximum and minimum values, broadcasting, NaN, dtypes") {
  double nan = std::numeric_limits<double>::quiet_NaN();
  Tensor a = f64({1.0, 5.0, -3.0, nan});
  Tensor b = f64({2.0, 4.0, -3.0, 0.0});
  check_close(maximum(a, b), {2.0, 5.0, -3.0, nan});
  check_close(minimum(a, b), {1.0, 4.0, -3.0, nan});
  // [2, 1] against [3] -> [2, 3]
  Tensor c = f64({0.0, 10.0}, {2, 1});
  Tensor d = f64({-1.0, 5.0, 20.0});
  Tensor m = maximum(c, d);
  CHECK(m.sizes() == Shape{2, 3});
  check_close(m, {0.0, 5.0, 20.0, 10.0, 10.0, 20.0});
  check_close(minimum(c, d), {-1.0, 0.0, 0.0, -1.0, 5.0, 10.0});
  // Integer tensors stay integral; mixed dtypes promote.
  Tensor i = tensor<int64_t>({3, -7});
  CHECK(maximum(i, tensor<int64_t>({1, 1})).to_vector<int64_t>() == std::vector<int64_t>{3, 1});
  CHECK(maximum(i, tensor<float>({0.5f, 0.5f})).dtype() == kFloat32);
  CHECK(minimum(tensor<float>({1.f}), f64({0.0})).dtype() == kFloat64);
  // Non-contiguous operand.
  Tensor base = arange(0, 6, 1, TensorOptions(kFloat64)).reshape({2, 3});
  check_close(maximum(base.t(), f64({2.5})), {2.5, 3.0, 2.5, 4.0, 2.5, 5.0});
}

TEST_CASE("pointwise: maximum/minimum gradients go to the winner, ties split in half") {
  Tensor a = leaf(f64({1.0, 2.0, 3.0}));
  Tensor b = leaf(f64({2.0, 2.0, 2.0}));
  maximum(a, b).sum().backward();
  check_close(a.grad(), {0.0, 0.5, 1.0});
  check_close(b.grad(), {1.0, 0.5, 0.0});
  Tensor a2 = leaf(f64({1.0, 2.0, 3.0}));
  Tensor b2 = leaf(f64({2.0}));  // broadcast: its gradient is summed
  minimum(a2, b2).sum().backward();
  check_close(a2.grad(), {1.0, 0.5, 0.0});
  check_close(b2.grad(), {1.5});
}

TEST_CASE("pointwise: pow(tensor, tensor)") {
  Tensor x = f64({2.0, 9.0, 4.0});
  Tensor e = f64({3.0, 0.5, -1.0});
  check_close(pow(x, e), {8.0, 3.0, 0.25});
  check_close(x.pow(e), {8.0, 3.0, 0.25});
  // Broadcasting: [3, 1] ** [2]
  Tensor b = f64({1.0, 2.0, 3.0}, {3, 1});
  Tensor p = pow(b, f64({2.0, 3.0}));
  CHECK(p.sizes() == Shape{3, 2});
  check_close(p, {1, 1, 4, 8, 9, 27});
  // Scalar base.
  check_close(pow(2.0, f64({0.0, 1.0, 3.0, -1.0})), {1.0, 2.0, 8.0, 0.5});
  CHECK(pow(2, tensor<int64_t>({0, 10})).to_vector<int64_t>() == std::vector<int64_t>{1, 1024});
  // Integer powers stay integral; negative integer exponents are an error.
  Tensor i = tensor<int64_t>({2, 3});
  CHECK(pow(i, tensor<int64_t>({10, 2})).to_vector<int64_t>() == std::vector<int64_t>{1024, 9});
  CHECK(throws_mentioning([&] { pow(i, tensor<int64_t>({1, -1})); }, "pow"));
  CHECK(pow(i, f64({0.5, 2.0})).dtype() == kFloat64);
  CHECK(throws_mentioning([&] { pow(f64({1, 2}), f64({1, 2, 3})); }, "pow"));
}

TEST_CASE("pointwise: pow gradients, including the special cases at 0") {
  Tensor x = leaf(f64({2.0, 3.0}));
  Tensor e = leaf(f64({3.0, 0.5}));
  pow(x, e).sum().backward();
  check_close(x.grad(), {3.0 * 4.0, 0.5 / std::sqrt(3.0)});
  check_close(e.grad(), {8.0 * std::log(2.0), std::sqrt(3.0) * std::log(3.0)});
  // base 0 with exponent >= 0: the exponent's gradient is 0 (not 0 * -inf); exponent 0: the
  // base's gradient is 0 (not 0 * 0^-1).
  Tensor x0 = leaf(f64({0.0, 0.0, 0.0}));
  Tensor e0 = leaf(f64({0.0, 2.0, 1.0}));
  pow(x0, e0).sum().backward();
  check_close(x0.grad(), {0.0, 0.0, 1.0});
  check_close(e0.grad(), {0.0, 0.0, 0.0});
}

TEST_CASE("pointwise: where with broadcasting over all three operands") {
  Tensor cond = bools({1, 0, 1}, {3, 1});
  Tensor a = f64({1.0, 2.0, 3.0, 4.0}, {1, 4});
  Tensor b = f64({-1.0});
  Tensor w = where(cond, a, b);
  CHECK(w.sizes() == Shape{3, 4});
  check_close(w, {1, 2, 3, 4, -1, -1, -1, -1, 1, 2, 3, 4});
  // Promotion: int64 and float32 branches give float32.
  Tensor m = where(bools({1, 0}), tensor<int64_t>({7, 8}), tensor<float>({0.5f, 0.25f}));
  CHECK(m.dtype() == kFloat32);
  check_close(m, {7.0, 0.25});
  // Scalar branches.
  Tensor x = f64({-1.0, 2.0, -3.0});
  check_close(where(x > 0, x, 0.0), {0.0, 2.0, 0.0});
  check_close(where(x > 0, 10, x), {-1.0, 10.0, -3.0});
  CHECK(where(x > 0, x, 0).dtype() == kFloat64);
  Tensor s = where(x > 0, 1.0, 0.0);
  CHECK(s.dtype() == kFloat32);
  check_close(s, {0.0, 1.0, 0.0});
  CHECK(where(x > 0, 1, 0).dtype() == kInt64);
  // A non-contiguous condition and branch.
  Tensor base = arange(0, 6, 1, TensorOptions(kFloat64)).reshape({2, 3});
  Tensor ct = (base > 2.5).t();  // [3, 2]
  check_close(where(ct, base.t(), -base.t()), {0, 3, -1, 4, -2, 5});
  // A pure selection works for storage-only dtypes on the CPU too.
  Tensor h = where(bools({1, 0}), ones({2}, kFloat16), zeros({2}, kFloat16));
  CHECK(h.dtype() == kFloat16);
  check_close(h, {1.0, 0.0});
}

TEST_CASE("pointwise: where errors") {
  Tensor x = f64({1.0, 2.0});
  CHECK(throws_mentioning([&] { where(x, x, x); }, "where"));
  CHECK(throws_mentioning([&] { where(x > 0, x, f64({1, 2, 3})); }, "where"));
  CHECK(throws_mentioning([&] { where(Tensor(), x, x); }, "where"));
}

TEST_CASE("pointwise: where gradients") {
  Tensor cond = bools({1, 0, 1});
  Tensor a = leaf(f64({1.0, 2.0, 3.0}));
  Tensor b = leaf(f64({5.0}));
  (where(cond, a, b) * f64({1.0, 2.0, 3.0})).sum().backward();
  check_close(a.grad(), {1.0, 0.0, 3.0});
  check_close(b.grad(), {2.0});
}

TEST_CASE("pointwise: masked_fill") {
  Tensor x = f64({1.0, 2.0, 3.0, 4.0, 5.0, 6.0}, {2, 3});
  Tensor mask = bools({1, 0, 1});  // broadcast over rows
  check_close(masked_fill(x, mask, -1.0), {-1, 2, -1, -1, 5, -1});
  check_close(x.masked_fill(x > 3.5, 0.0), {1, 2, 3, 0, 0, 0});
  // The value takes x's dtype (no promotion, as PyTorch).
  Tensor i = tensor<int64_t>({1, 2});
  Tensor r = masked_fill(i, bools({0, 1}), 7.9);
  CHECK(r.dtype() == kInt64);
  CHECK(r.to_vector<int64_t>() == std::vector<int64_t>{1, 7});
  // Non-contiguous input.
  check_close(masked_fill(x.t(), bools({1, 0}), 0.0), {0, 4, 0, 5, 0, 6});
  double inf = std::numeric_limits<double>::infinity();
  check_close(masked_fill(f64({0.0, 1.0}), bools({1, 0}), -inf), {-inf, 1.0});
  // Errors: non-bool mask, mask larger than the input.
  CHECK(throws_mentioning([&] { masked_fill(x, x, 0.0); }, "masked_fill"));
  CHECK(throws_mentioning([&] { masked_fill(f64({1.0}), bools({1, 0}), 0.0); }, "masked_fill"));
  // Gradient: zero where filled.
  Tensor g = leaf(f64({1.0, 2.0, 3.0}));
  masked_fill(g, bools({0, 1, 0}), 9.0).sum().backward();
  check_close(g.grad(), {1.0, 0.0, 1.0});
}

TEST_CASE("pointwise: lerp, addcmul, addcdiv") {
  Tensor s = f64({0.0, 10.0});
  Tensor e = f64({10.0, 20.0});
  check_close(lerp(s, e, 0.25), {2.5, 12.5});
  check_close(lerp(s, e, f64({0.0, 1.0})), {0.0, 20.0});
  check_close(addcmul(f64({1.0, 1.0}), f64({2.0, 3.0}), f64({4.0, 5.0}), 0.5), {5.0, 8.5});
  check_close(addcdiv(f64({1.0, 1.0}), f64({2.0, 3.0}), f64({4.0, 5.0}), 2), {2.0, 2.2});
}

TEST_CASE("pointwise: gradcheck and gradgradcheck in float64") {
  manual_seed(23);
  Tensor a = uniform_leaf({3, 4}, -2.0, 2.0);
  Tensor b = uniform_leaf({3, 4}, -2.0, 2.0);
  Tensor brow = uniform_leaf({4}, -2.0, 2.0);
  Tensor pos = uniform_leaf({3, 4}, 0.5, 2.0);
  Tensor ex = uniform_leaf({1, 4}, -1.5, 2.5);
  Tensor cond = rand({3, 1}) > 0.5;
  Tensor mask = rand({3, 4}) > 0.5;

  SUBCASE("maximum") { CHECK_GRADS([](const tensor_list& in) { return maximum(in[0], in[1]) * in[0]; }, {a, b}); }
  SUBCASE("minimum broadcast") {
    CHECK_GRADS([](const tensor_list& in) { return minimum(in[0], in[1]) * in[1]; }, {a, brow});
  }
  SUBCASE("pow tensor") { CHECK_GRADS([](const tensor_list& in) { return pow(in[0], in[1]); }, {pos, ex}); }
  SUBCASE("pow scalar base") { CHECK_GRADS([](const tensor_list& in) { return pow(1.7, in[0]); }, {ex}); }
  SUBCASE("where") {
    CHECK_GRADS([cond](const tensor_list& in) { return where(cond, in[0] * in[0], in[1].exp()); }, {a, brow});
  }
  SUBCASE("where scalar") {
    CHECK_GRADS([cond](const tensor_list& in) { return where(cond, in[0].sin(), 0.5); }, {a});
  }
  SUBCASE("masked_fill") {
    CHECK_GRADS([mask](const tensor_list& in) { return masked_fill(in[0].square(), mask, 2.0); }, {a});
  }
  SUBCASE("lerp") {
    CHECK_GRADS([](const tensor_list& in) { return lerp(in[0], in[1].square(), in[2].sigmoid()); }, {a, b, brow});
  }
  SUBCASE("addcmul / addcdiv") {
    CHECK_GRADS([](const tensor_list& in) { return addcmul(in[0], in[1], in[0], 0.3) + addcdiv(in[1], in[0], in[2], 2.0); },
                {a, b, pos});
  }
  SUBCASE("non-contiguous") {
    Tensor at = uniform_leaf({4, 3}, -2.0, 2.0);
    CHECK_GRADS([](const tensor_list& in) { return maximum(in[0].t(), in[1]) + pow(in[2], in[0].t().tanh()); },
                {at, b, pos});
  }
}

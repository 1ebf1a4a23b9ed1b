#include <doctest/doctest.h>

#include "ember/ember.hpp"

using namespace ember;

namespace {
TensorOptions f64g() { return TensorOptions(kFloat64).requires_grad(true); }
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ember::Error& e) {
    return e.what();
  }
  return "";
}
std::vector<int64_t> vals(const Tensor& t) { return t.to_vector<int64_t>(); }
}  // namespace

TEST_CASE("view: shares storage, infers -1, rejects incompatible strides") {
  auto x = arange(12);
  auto v = x.view({3, -1});
  CHECK(v.sizes() == Shape{3, 4});
  CHECK(v.strides() == Shape{4, 1});
  CHECK(v.storage() == x.storage());
  CHECK(x.view({2, 2, -1}).sizes() == Shape{2, 2, 3});
  CHECK(x.view({12}).is_contiguous());
  CHECK(scalar_tensor(1.0).view({1, 1}).sizes() == Shape{1, 1});

  // A transposed tensor cannot be flattened without a copy.
  auto t = v.t();
  auto msg = error_of([&] { t.view({12}); });
  CHECK(msg.find("view") != std::string::npos);
  CHECK(msg.find("reshape") != std::string::npos);
  // ...but splitting a dim of it can be done in place.
  auto split_view = t.view({2, 2, 3});
  CHECK(split_view.storage() == x.storage());
  CHECK(vals(split_view) == vals(t));

  CHECK_THROWS_AS(x.view({5, -1}), ember::Error);
  CHECK_THROWS_AS(x.view({-1, -1}), ember::Error);
  CHECK_THROWS_AS(x.view({13}), ember::Error);
  CHECK_THROWS_AS(x.view({-2, 6}), ember::Error);
  auto m = error_of([&] { x.view({5, 3}); });
  CHECK(m.find("[5, 3]") != std::string::npos);
  CHECK(m.find("12") != std::string::npos);
}

TEST_CASE("reshape: a view when possible, a copy otherwise") {
  auto x = arange(6).view({2, 3});
  auto r = x.reshape({3, 2});
  CHECK(r.storage() == x.storage());
  auto t = x.t();
  auto c = t.reshape({-1});
  CHECK(c.storage() != x.storage());
  CHECK(vals(c) == std::vector<int64_t>{0, 3, 1, 4, 2, 5});
  CHECK(c.is_contiguous());
  CHECK_THROWS_AS(x.reshape({4, -1}), ember::Error);
}

TEST_CASE("flatten and unflatten") {
  auto x = arange(24).view({2, 3, 4});
  CHECK(x.flatten().sizes() == Shape{24});
  CHECK(x.flatten(1).sizes() == Shape{2, 12});
  CHECK(x.flatten(0, 1).sizes() == Shape{6, 4});
  CHECK(x.flatten(-2, -1).sizes() == Shape{2, 12});
  CHECK(scalar_tensor(3.0).flatten().sizes() == Shape{1});
  CHECK(vals(x.transpose(0, 2).flatten()) == vals(x.permute({2, 1, 0}).contiguous()));
  CHECK_THROWS_AS(x.flatten(2, 1), ember::Error);
  auto u = x.unflatten(2, {2, -1});
  CHECK(u.sizes() == Shape{2, 3, 2, 2});
  CHECK(u.storage() == x.storage());
  CHECK(x.unflatten(-1, {4, 1}).sizes() == Shape{2, 3, 4, 1});
  CHECK_THROWS_AS(x.unflatten(1, {2, 2}), ember::Error);
}

TEST_CASE("permute, transpose and t") {
  auto x = arange(24).view({2, 3, 4});
  auto p = x.permute({2, 0, 1});
  CHECK(p.sizes() == Shape{4, 2, 3});
  CHECK(p.strides() == Shape{1, 12, 4});
  CHECK(p.storage() == x.storage());
  CHECK(!p.is_contiguous());
  // p[i][j][k] = x[j][k][i]
  CHECK(vals(p.select(0, 1).select(0, 1)) == std::vector<int64_t>{13, 17, 21});
  CHECK(x.permute({-1, 0, 1}).sizes() == Shape{4, 2, 3});
  CHECK_THROWS_AS(x.permute({0, 1}), ember::Error);
  auto msg = error_of([&] { x.permute({0, 0, 1}); });
  CHECK(msg.find("permute") != std::string::npos);

  auto tr = x.transpose(0, -1);
  CHECK(tr.sizes() == Shape{4, 3, 2});
  CHECK(vals(x.transpose(1, 1)) == vals(x));
  CHECK_THROWS_AS(x.transpose(0, 3), ember::Error);

  auto m = arange(6).view({2, 3});
  CHECK(vals(m.t()) == std::vector<int64_t>{0, 3, 1, 4, 2, 5});
  CHECK(arange(3).t().sizes() == Shape{3});
  auto tm = error_of([&] { x.t(); });
  CHECK(tm.find("t:") != std::string::npos);
}

TEST_CASE("narrow, slice with step, select with negative index") {
  auto x = arange(20).view({4, 5});
  auto n = x.narrow(1, 1, 3);
  CHECK(n.sizes() == Shape{4, 3});
  CHECK(n.storage() == x.storage());
  CHECK(n.storage_offset() == 1);
  CHECK(vals(n.select(0, 0)) == std::vector<int64_t>{1, 2, 3});
  CHECK(vals(x.narrow(0, -1, 1)) == std::vector<int64_t>{15, 16, 17, 18, 19});
  auto nm = error_of([&] { x.narrow(1, 3, 3); });
  CHECK(nm.find("narrow") != std::string::npos);
  CHECK_THROWS_AS(x.narrow(0, 0, -1), ember::Error);

  auto s = x.slice(1, 0, 5, 2);
  CHECK(s.sizes() == Shape{4, 3});
  CHECK(s.stride(1) == 2);
  CHECK(vals(s.select(0, 1)) == std::vector<int64_t>{5, 7, 9});
  CHECK(vals(x.slice(1, 1, 5, 3).select(0, 0)) == std::vector<int64_t>{1, 4});
  CHECK(vals(x.slice(0, -2, 4).select(1, 0)) == std::vector<int64_t>{10, 15});
  CHECK(x.slice(0, 1, 100).size(0) == 3);  // end is clamped
  CHECK(x.slice(0, 3, 1).size(0) == 0);    // empty
  CHECK_THROWS_AS(x.slice(0, 0, 2, 0), ember::Error);
  CHECK_THROWS_AS(x.slice(0, 0, 2, -1), ember::Error);
  CHECK_THROWS_AS(scalar_tensor(1.0).slice(0, 0, 1), ember::Error);

  CHECK(vals(x.select(0, -1)) == std::vector<int64_t>{15, 16, 17, 18, 19});
  CHECK(vals(x.select(1, -5)) == std::vector<int64_t>{0, 5, 10, 15});
  CHECK(x[2].sizes() == Shape{5});
  CHECK(x[2][3].item<int64_t>() == 13);
  auto sm = error_of([&] { x.select(0, 4); });
  CHECK(sm.find("select") != std::string::npos);
  CHECK(sm.find("index 4") != std::string::npos);
  CHECK_THROWS_AS(x.select(1, -6), ember::Error);
}

TEST_CASE("expand and expand_as") {
  auto x = tensor<int64_t>({1, 2, 3}, {3, 1});
  auto e = x.expand({2, 3, 4});
  CHECK(e.sizes() == Shape{2, 3, 4});
  CHECK(e.strides() == Shape{0, 1, 0});
  CHECK(e.storage() == x.storage());
  CHECK(vals(e.select(0, 1).select(0, 2)) == std::vector<int64_t>{3, 3, 3, 3});
  CHECK(x.expand({-1, 2}).sizes() == Shape{3, 2});
  CHECK(x.expand_as(zeros({3, 5})).sizes() == Shape{3, 5});
  auto msg = error_of([&] { x.expand({2, 4}); });
  CHECK(msg.find("expand") != std::string::npos);
  CHECK(msg.find("[2, 4]") != std::string::npos);
  CHECK_THROWS_AS(x.expand({4}), ember::Error);
  CHECK_THROWS_AS(x.expand({-1, 3, 4}), ember::Error);
  // A contiguous() of an expanded tensor is a real copy.
  auto c = e.contiguous();
  CHECK(c.storage() != x.storage());
  CHECK(c.is_contiguous());
  CHECK(c.numel() == 24);
}

TEST_CASE("expand rejects negative target sizes other than -1") {
  // A size-1 dim may expand to any size >= 0, but never to a negative one (only -1, "keep", is
  // allowed), as in PyTorch.
  CHECK_THROWS_AS(ones({1}).expand({-2}), ember::Error);
}

TEST_CASE("squeeze and unsqueeze") {
  auto x = zeros({1, 3, 1, 2});
  CHECK(x.squeeze().sizes() == Shape{3, 2});
  CHECK(x.squeeze(0).sizes() == Shape{3, 1, 2});
  CHECK(x.squeeze(-2).sizes() == Shape{1, 3, 2});
  CHECK(x.squeeze(1).sizes() == x.sizes());  // not size 1: unchanged
  CHECK(x.squeeze().storage() == x.storage());
  CHECK(scalar_tensor(1.0).squeeze().dim() == 0);
  CHECK_THROWS_AS(x.squeeze(4), ember::Error);

  auto y = arange(6).view({2, 3});
  CHECK(y.unsqueeze(0).sizes() == Shape{1, 2, 3});
  CHECK(y.unsqueeze(1).sizes() == Shape{2, 1, 3});
  CHECK(y.unsqueeze(-1).sizes() == Shape{2, 3, 1});
  CHECK(y.unsqueeze(2).is_contiguous());
  CHECK(y.unsqueeze(0).is_contiguous());
  CHECK(scalar_tensor(2.0).unsqueeze(0).sizes() == Shape{1});
  CHECK_THROWS_AS(y.unsqueeze(3), ember::Error);
  CHECK(vals(y.t().unsqueeze(1).squeeze(1)) == vals(y.t()));
}

TEST_CASE("contiguous copies only when needed") {
  auto x = arange(6).view({2, 3});
  CHECK(x.contiguous().storage() == x.storage());
  CHECK(x.contiguous().is_same(x));
  auto t = x.t();
  auto c = t.contiguous();
  CHECK(c.storage() != x.storage());
  CHECK(c.is_contiguous());
  CHECK(c.strides() == Shape{2, 1});
  CHECK(vals(c) == vals(t));
  // Size-1 dims with odd strides still count as contiguous.
  auto s = x.select(1, 0).unsqueeze(1);  // [2, 1] with strides [3, ...]
  CHECK(!s.is_contiguous());
  CHECK(x.narrow(0, 1, 1).is_contiguous());
  // Views alias: writing through one is seen through the other.
  {
    NoGradGuard ng;
    x.t().select(0, 2).fill_(int64_t{-1});
  }
  CHECK(vals(x) == std::vector<int64_t>{0, 1, -1, 3, 4, -1});
}

TEST_CASE("gradients through views") {
  auto x = randn({2, 3, 4}, f64g());
  CHECK_GRADS([](const tensor_list& in) { return in[0].view({6, 4}) * in[0].view({6, 4}); }, {x});
  CHECK_GRADS([](const tensor_list& in) { return in[0].transpose(0, 2).reshape({-1}); }, {x});
  CHECK_GRADS([](const tensor_list& in) { return in[0].permute({1, 2, 0}).flatten(1); }, {x});
  CHECK_GRADS([](const tensor_list& in) { return in[0].unflatten(2, {2, 2}).sin(); }, {x});
  CHECK_GRADS([](const tensor_list& in) { return in[0].slice(2, 0, 4, 3) * in[0].narrow(2, 1, 2); }, {x});
  CHECK_GRADS([](const tensor_list& in) { return in[0].select(1, -1) * in[0].select(2, -1).narrow(1, 0, 1); }, {x});
  CHECK_GRADS([](const tensor_list& in) { return in[0].narrow(1, 0, 1).expand({2, 5, 4}) * Scalar(2.0); }, {x});
  CHECK_GRADS([](const tensor_list& in) { return in[0].unsqueeze(1).squeeze(1).squeeze().unsqueeze(-1); }, {x});
  auto m = randn({3, 4}, f64g());
  CHECK_GRADS([](const tensor_list& in) { return in[0].t().contiguous() * in[0].t(); }, {m});
  // A transposed (non-contiguous) input.
  auto mt = randn({4, 3}, TensorOptions(kFloat64)).t().requires_grad_();
  CHECK_GRADS([](const tensor_list& in) { return in[0].reshape({2, 6}) * in[0].reshape({2, 6}); }, {mt});

  // The gradient of a slice lands in the right places.
  auto v = zeros({5}, f64g());
  v.slice(0, 1, 5, 2).sum().backward();
  CHECK(v.grad().to_vector<double>() == std::vector<double>{0, 1, 0, 1, 0});
  auto w = ones({2, 1}, f64g());
  w.expand({2, 3}).sum().backward();
  CHECK(w.grad().to_vector<double>() == std::vector<double>{3, 3});
}

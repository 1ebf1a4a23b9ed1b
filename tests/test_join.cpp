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
}  // namespace

TEST_CASE("cat: values along dim 0, 1 and -1") {
  auto a = tensor<float>({1, 2, 3, 4}, {2, 2});
  auto b = tensor<float>({5, 6}, {1, 2});
  auto c = cat({a, b}, 0);
  CHECK(c.sizes() == Shape{3, 2});
  CHECK(c.to_vector<float>() == std::vector<float>{1, 2, 3, 4, 5, 6});

  auto d = tensor<float>({7, 8}, {2, 1});
  auto e = cat({a, d}, 1);
  CHECK(e.sizes() == Shape{2, 3});
  CHECK(e.to_vector<float>() == std::vector<float>{1, 2, 7, 3, 4, 8});
  CHECK(cat({a, d}, -1).to_vector<float>() == e.to_vector<float>());
  CHECK(cat({a}, 0).to_vector<float>() == a.to_vector<float>());
}

TEST_CASE("cat: non-contiguous inputs, promotion, legacy empty and zero-size pieces") {
  auto a = tensor<float>({1, 2, 3, 4, 5, 6}, {2, 3}).t();  // [3, 2], transposed
  auto b = tensor<float>({10, 11, 12, 13, 14, 15}, {3, 2}).slice(0, 0, 3, 2);  // rows 0 and 2
  auto c = cat({a, b}, 0);
  CHECK(c.sizes() == Shape{5, 2});
  CHECK(c.to_vector<float>() == std::vector<float>{1, 4, 2, 5, 3, 6, 10, 11, 14, 15});

  auto i = tensor<int64_t>({1, 2});
  auto f = tensor<double>({0.5});
  auto p = cat({i, f});
  CHECK(p.dtype() == kFloat64);
  CHECK(p.to_vector<double>() == std::vector<double>{1, 2, 0.5});

  // PyTorch skips 1-d empty tensors whatever the other ranks are.
  auto legacy = cat({zeros({0}), ones({2, 2})}, 1);
  CHECK(legacy.sizes() == Shape{2, 2});
  auto z = cat({zeros({2, 0}), ones({2, 3})}, 1);
  CHECK(z.sizes() == Shape{2, 3});
}

TEST_CASE("cat: errors name the op and the shapes") {
  auto msg = error_of([] { cat({zeros({2, 3}), zeros({3, 2})}, 0); });
  CHECK(msg.find("cat") != std::string::npos);
  CHECK(msg.find("[2, 3]") != std::string::npos);
  CHECK(msg.find("[3, 2]") != std::string::npos);
  CHECK_THROWS_AS(cat({}, 0), ember::Error);
  CHECK_THROWS_AS(cat({zeros({2}), zeros({2, 2})}, 0), ember::Error);
  CHECK_THROWS_AS(cat({zeros({2}), zeros({2})}, 1), ember::Error);
  CHECK_THROWS_AS(cat({scalar_tensor(1.0), scalar_tensor(2.0)}, 0), ember::Error);
  CHECK_THROWS_AS(cat({zeros({2}), Tensor()}, 0), ember::Error);
}

TEST_CASE("cat: gradients") {
  auto a = randn({2, 3}, f64g());
  auto b = randn({4, 3}, f64g());
  CHECK_GRADS([](const tensor_list& in) { return cat(in, 0); }, {a, b});
  auto c = randn({2, 1}, f64g());
  CHECK_GRADS([](const tensor_list& in) { return cat({in[0], in[1] * in[1]}, 1); }, {a.detach().requires_grad_(), c});
  // A mixed-dtype cat sends each input a gradient of its own dtype.
  auto f = randn({2}, TensorOptions(kFloat32).requires_grad(true));
  auto g = randn({3}, f64g());
  cat({f, g}).sum().backward();
  CHECK(f.grad().dtype() == kFloat32);
  CHECK(g.grad().to_vector<double>() == std::vector<double>{1, 1, 1});
}

TEST_CASE("stack: values, dims and errors") {
  auto a = tensor<float>({1, 2});
  auto b = tensor<float>({3, 4});
  auto s0 = stack({a, b});
  CHECK(s0.sizes() == Shape{2, 2});
  CHECK(s0.to_vector<float>() == std::vector<float>{1, 2, 3, 4});
  auto s1 = stack({a, b}, 1);
  CHECK(s1.sizes() == Shape{2, 2});
  CHECK(s1.to_vector<float>() == std::vector<float>{1, 3, 2, 4});
  CHECK(stack({a, b}, -1).to_vector<float>() == s1.to_vector<float>());
  CHECK(stack({scalar_tensor(1.0f), scalar_tensor(2.0f)}).sizes() == Shape{2});
  auto msg = error_of([&] { stack({a, zeros({3})}); });
  CHECK(msg.find("stack") != std::string::npos);
  CHECK_THROWS_AS(stack({a, b}, 3), ember::Error);

  auto x = randn({2, 3}, f64g());
  auto y = randn({2, 3}, f64g());
  CHECK_GRADS([](const tensor_list& in) { return stack({in[0], in[1] * in[0]}, 1); }, {x, y});
}

TEST_CASE("split and chunk: views with the right sizes") {
  auto x = arange(10).to(kFloat32);
  auto parts = split(x, 3);
  REQUIRE(parts.size() == 4);
  CHECK(parts[0].to_vector<float>() == std::vector<float>{0, 1, 2});
  CHECK(parts[3].to_vector<float>() == std::vector<float>{9});
  for (const auto& p : parts) CHECK(p.storage() == x.storage());

  auto m = arange(12).view({3, 4});
  auto cols = m.split(2, 1);
  REQUIRE(cols.size() == 2);
  CHECK(cols[1].to_vector<int64_t>() == std::vector<int64_t>{2, 3, 6, 7, 10, 11});

  auto sized = split(m, {1, 3}, 1);
  REQUIRE(sized.size() == 2);
  CHECK(sized[0].sizes() == Shape{3, 1});
  CHECK(sized[1].to_vector<int64_t>() == std::vector<int64_t>{1, 2, 3, 5, 6, 7, 9, 10, 11});

  auto ch = chunk(x, 3);
  REQUIRE(ch.size() == 3);  // ceil(10/3) = 4 per chunk: 4, 4, 2
  CHECK(ch[0].numel() == 4);
  CHECK(ch[2].numel() == 2);
  CHECK(x.chunk(4).size() == 4);          // 3, 3, 3, 1
  CHECK(arange(6).chunk(4).size() == 3);  // 2, 2, 2 (fewer pieces than asked, as in PyTorch)
  CHECK(zeros({0, 2}).chunk(3).size() == 3);
  CHECK(zeros({0}).split(2).size() == 1);

  CHECK_THROWS_AS(split(x, 0), ember::Error);
  CHECK_THROWS_AS(chunk(x, 0), ember::Error);
  auto msg = error_of([&] { split(m, {1, 2}, 1); });
  CHECK(msg.find("split") != std::string::npos);
  CHECK(msg.find("sum to") != std::string::npos);
  CHECK_THROWS_AS(split(scalar_tensor(1.0), 1), ember::Error);
}

TEST_CASE("split: gradients flow through every piece") {
  auto x = randn({5, 3}, f64g());
  CHECK_GRADS(
      [](const tensor_list& in) {
        auto p = in[0].split(2, 0);
        return cat({p[2] * p[2], p[0], p[1] * Scalar(3.0)}, 0);
      },
      {x});
  CHECK_GRADS(
      [](const tensor_list& in) {
        auto p = split(in[0], {1, 2}, 1);
        return p[1] * p[0];
      },
      {x});
  CHECK_GRADS([](const tensor_list& in) { return in[0].t().chunk(2, 1)[1]; }, {x});
}

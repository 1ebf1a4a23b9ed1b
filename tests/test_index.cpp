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

TEST_CASE("index_select: values along each dim, int32 and 0-d indices") {
  auto x = arange(12).view({3, 4}).to(kFloat32);
  auto r = index_select(x, 0, tensor<int64_t>({2, 0, 2}));
  CHECK(r.sizes() == Shape{3, 4});
  CHECK(r.to_vector<float>() == std::vector<float>{8, 9, 10, 11, 0, 1, 2, 3, 8, 9, 10, 11});
  auto c = x.index_select(1, tensor<int32_t>({3, 1}));
  CHECK(c.sizes() == Shape{3, 2});
  CHECK(c.to_vector<float>() == std::vector<float>{3, 1, 7, 5, 11, 9});
  CHECK(x.index_select(-1, tensor<int32_t>({3, 1})).to_vector<float>() == c.to_vector<float>());
  auto s = index_select(x, 0, scalar_tensor(1, kInt64));
  CHECK(s.sizes() == Shape{1, 4});
  CHECK(index_select(x, 0, zeros({0}, kInt64)).sizes() == Shape{0, 4});
  // Every dtype is a byte copy, float16 included.
  auto h = x.to(kFloat16).index_select(0, tensor<int64_t>({1}));
  CHECK(h.dtype() == kFloat16);
  CHECK(h.to(kFloat32).to_vector<float>() == std::vector<float>{4, 5, 6, 7});
  auto b = (x > 5.0f).index_select(1, tensor<int64_t>({0}));
  CHECK(b.to_vector<bool>() == std::vector<bool>{false, false, true});
}

TEST_CASE("index_select: non-contiguous input and 3-d middle dim") {
  auto x = arange(24).view({2, 3, 4});
  auto t = x.transpose(0, 2);  // [4, 3, 2]
  auto r = t.index_select(1, tensor<int64_t>({2, 2, 0}));
  CHECK(r.sizes() == Shape{4, 3, 2});
  // r[i][j][k] = x[k][idx[j]][i]
  auto v = r.to_vector<int64_t>();
  std::vector<int64_t> idx{2, 2, 0};
  bool ok = true;
  for (int64_t i = 0; i < 4; ++i)
    for (int64_t j = 0; j < 3; ++j)
      for (int64_t k = 0; k < 2; ++k) ok = ok && v[(i * 3 + j) * 2 + k] == k * 12 + idx[j] * 4 + i;
  CHECK(ok);
}

TEST_CASE("index_select: errors") {
  auto x = zeros({3, 4});
  auto msg = error_of([&] { index_select(x, 0, tensor<int64_t>({0, 3})); });
  CHECK(msg.find("index_select") != std::string::npos);
  CHECK(msg.find("index 3") != std::string::npos);
  CHECK(msg.find("size 3") != std::string::npos);
  CHECK_THROWS_AS(index_select(x, 0, tensor<int64_t>({-1})), ember::Error);
  CHECK_THROWS_AS(index_select(x, 0, tensor<float>({0})), ember::Error);
  CHECK_THROWS_AS(index_select(x, 0, zeros({1, 1}, kInt64)), ember::Error);
  CHECK_THROWS_AS(index_select(x, 2, tensor<int64_t>({0})), ember::Error);
}

TEST_CASE("index_select: gradients, repeated indices accumulate, double backward") {
  auto x = randn({4, 3}, f64g());
  auto idx = tensor<int64_t>({3, 0, 3, 1});
  CHECK_GRADS([idx](const tensor_list& in) { return index_select(in[0], 0, idx); }, {x});
  CHECK_GRADS([idx](const tensor_list& in) { return index_select(in[0] * in[0], 1, tensor<int64_t>({2, 2})); }, {x});
  CHECK_GRADS([idx](const tensor_list& in) { return index_select(in[0].t(), 1, idx); }, {x});
  index_select(x, 0, idx).sum().backward();
  CHECK(x.grad().to_vector<double>() == std::vector<double>{1, 1, 1, 1, 1, 1, 0, 0, 0, 2, 2, 2});
}

TEST_CASE("index_add: values and gradients") {
  auto x = ones({3, 2});
  auto src = tensor<float>({1, 2, 3, 4, 5, 6}, {3, 2});
  auto r = index_add(x, 0, tensor<int64_t>({2, 0, 2}), src);
  CHECK(r.to_vector<float>() == std::vector<float>{4, 5, 1, 1, 7, 9});
  CHECK(x.to_vector<float>() == std::vector<float>(6, 1.0f));  // out of place
  auto r2 = index_add(x, 1, tensor<int64_t>({1}), src.narrow(1, 0, 1), 2.0);
  CHECK(r2.to_vector<float>() == std::vector<float>{1, 3, 1, 7, 1, 11});
  CHECK_THROWS_AS(index_add(x, 0, tensor<int64_t>({0}), src), ember::Error);  // 3 rows for 1 index
  CHECK_THROWS_AS(index_add(x, 0, tensor<int64_t>({5, 0, 1}), src), ember::Error);
  CHECK_THROWS_AS(index_add(x, 0, tensor<int64_t>({0, 1, 2}), src.to(kFloat64)), ember::Error);

  auto a = randn({4, 3}, f64g());
  auto s = randn({2, 3}, f64g());
  auto idx = tensor<int64_t>({1, 1});
  CHECK_GRADS([idx](const tensor_list& in) { return index_add(in[0], 0, idx, in[1] * in[1]); }, {a, s});
  auto g = randn({3, 2}, f64g());
  CHECK_GRADS([](const tensor_list& in) { return index_select_backward(in[0], {3, 5}, 1, tensor<int64_t>({4, 0})); }, {g});
}

TEST_CASE("gather: values, smaller index, non-contiguous, errors") {
  auto x = tensor<float>({1, 2, 3, 4}, {2, 2});
  auto g = gather(x, 1, tensor<int64_t>({0, 0, 1, 0}, {2, 2}));
  CHECK(g.to_vector<float>() == std::vector<float>{1, 1, 4, 3});  // torch.gather doc example
  auto g0 = x.gather(0, tensor<int64_t>({1, 0}, {1, 2}));
  CHECK(g0.sizes() == Shape{1, 2});
  CHECK(g0.to_vector<float>() == std::vector<float>{3, 2});

  auto y = arange(12).view({3, 4}).to(kFloat64);
  // index smaller than the input in the non-gathered dim
  auto gi = gather(y, 1, tensor<int64_t>({3, 0, 1, 1}, {2, 2}));
  CHECK(gi.to_vector<double>() == std::vector<double>{3, 0, 5, 5});
  auto gt = gather(y.t(), 0, tensor<int64_t>({2, 0, 1}, {1, 3}));  // y.t() is [4, 3]
  CHECK(gt.to_vector<double>() == std::vector<double>{2, 4, 9});

  auto msg = error_of([&] { gather(x, 1, tensor<int64_t>({0, 2}, {1, 2})); });
  CHECK(msg.find("gather") != std::string::npos);
  CHECK(msg.find("index 2") != std::string::npos);
  CHECK_THROWS_AS(gather(x, 1, tensor<int64_t>({0, 0})), ember::Error);             // rank
  CHECK_THROWS_AS(gather(x, 1, zeros({3, 1}, kInt64)), ember::Error);               // too big
  CHECK_THROWS_AS(gather(x, 1, zeros({2, 1}, kFloat32)), ember::Error);             // dtype
}

TEST_CASE("gather: gradients and double backward") {
  auto x = randn({3, 4}, f64g());
  auto idx = tensor<int64_t>({0, 3, 3, 1, 2, 2}, {3, 2});
  CHECK_GRADS([idx](const tensor_list& in) { return gather(in[0], 1, idx); }, {x});
  CHECK_GRADS([idx](const tensor_list& in) { return gather(in[0] * in[0], 1, idx); }, {x});
  auto idx0 = tensor<int64_t>({2, 2, 0}, {1, 3});
  CHECK_GRADS([idx0](const tensor_list& in) { return gather(in[0].sin(), 0, idx0); }, {x});
  gather(x, 1, idx).sum().backward();
  CHECK(x.grad().to_vector<double>() == std::vector<double>{1, 0, 0, 1, 0, 1, 0, 1, 0, 0, 2, 0});
}

TEST_CASE("scatter_add: values, smaller index, gradients") {
  auto x = zeros({2, 3});
  auto src = tensor<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  auto r = scatter_add(x, 1, tensor<int64_t>({0, 0, 2, 1, 1, 1}, {2, 3}), src);
  CHECK(r.to_vector<float>() == std::vector<float>{3, 0, 3, 0, 15, 0});
  auto r0 = x.scatter_add(0, tensor<int64_t>({1, 0, 1}, {1, 3}), src);  // only src row 0 used
  CHECK(r0.to_vector<float>() == std::vector<float>{0, 2, 0, 1, 0, 3});
  // index [1, 2] smaller than x [2, 3] in dim 1 and than src in dim 0
  auto r1 = scatter_add(ones({2, 3}), 1, tensor<int64_t>({2, 2}, {1, 2}), src);
  CHECK(r1.to_vector<float>() == std::vector<float>{1, 1, 4, 1, 1, 1});
  auto msg = error_of([&] { scatter_add(x, 0, tensor<int64_t>({2, 0, 0}, {1, 3}), src); });
  CHECK(msg.find("scatter_add") != std::string::npos);
  CHECK(msg.find("index 2") != std::string::npos);
  CHECK_THROWS_AS(scatter_add(x, 0, zeros({3, 3}, kInt64), src), ember::Error);
  CHECK_THROWS_AS(scatter_add(x, 0, zeros({1, 3}, kInt64), src.to(kFloat64)), ember::Error);

  auto a = randn({3, 4}, f64g());
  auto s = randn({2, 5}, f64g());
  auto idx = tensor<int64_t>({0, 2, 2, 1, 1, 1}, {2, 3});  // smaller than s in dim 1
  CHECK_GRADS([idx](const tensor_list& in) { return scatter_add(in[0], 0, idx, in[1] * in[1]); }, {a, s});
  CHECK_GRADS([idx](const tensor_list& in) { return scatter_add(in[0].sin(), 0, idx, in[1]); }, {a, s});
}

TEST_CASE("one_hot and embedding") {
  auto oh = one_hot(tensor<int64_t>({0, 2, 1}), 4);
  CHECK(oh.dtype() == kInt64);
  CHECK(oh.sizes() == Shape{3, 4});
  CHECK(oh.to_vector<int64_t>() == std::vector<int64_t>{1, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0});
  auto inferred = one_hot(tensor<int32_t>({1, 3}, {2, 1}));
  CHECK(inferred.sizes() == Shape{2, 1, 4});
  CHECK(inferred.to_vector<int64_t>() == std::vector<int64_t>{0, 1, 0, 0, 0, 0, 0, 1});
  auto msg = error_of([] { one_hot(tensor<int64_t>({0, 4}), 4); });
  CHECK(msg.find("one_hot") != std::string::npos);
  CHECK_THROWS_AS(one_hot(tensor<int64_t>({-1}), 3), ember::Error);
  CHECK_THROWS_AS(one_hot(zeros({0}, kInt64)), ember::Error);

  auto w = arange(10).view({5, 2}).to(kFloat32);
  auto e = embedding(w, tensor<int64_t>({4, 0, 4, 1}, {2, 2}));
  CHECK(e.sizes() == Shape{2, 2, 2});
  CHECK(e.to_vector<float>() == std::vector<float>{8, 9, 0, 1, 8, 9, 2, 3});
  CHECK(embedding(w, scalar_tensor(3, kInt64)).sizes() == Shape{2});
  CHECK_THROWS_AS(embedding(w, tensor<int64_t>({5})), ember::Error);
  CHECK_THROWS_AS(embedding(w.view({10}), tensor<int64_t>({1})), ember::Error);

  auto wg = randn({5, 3}, f64g());
  auto ids = tensor<int64_t>({1, 4, 1, 0, 2, 1}, {2, 3});
  CHECK_GRADS([ids](const tensor_list& in) { return embedding(in[0], ids) * embedding(in[0], ids); }, {wg});
  embedding(wg, ids).sum().backward();
  CHECK(wg.grad().to_vector<double>() == std::vector<double>{1, 1, 1, 3, 3, 3, 1, 1, 1, 0, 0, 0, 1, 1, 1});
}

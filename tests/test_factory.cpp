#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "ember/ember.hpp"

using namespace ember;

namespace {
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ember::Error& e) {
    return e.what();
  }
  return "";
}
double mean_of(const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0) / v.size(); }
double std_of(const std::vector<double>& v) {
  double m = mean_of(v), s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / (v.size() - 1));
}
}  // namespace

TEST_CASE("empty, zeros, ones, full") {
  auto e = empty({2, 3});
  CHECK(e.sizes() == Shape{2, 3});
  CHECK(e.dtype() == kFloat32);
  CHECK(e.device() == kCPU);
  CHECK(e.is_contiguous());
  CHECK(empty({4}, kInt32).dtype() == kInt32);
  auto msg = error_of([] { empty({2, -1}); });
  CHECK(msg.find("negative") != std::string::npos);

  CHECK(zeros({2, 2}).to_vector<float>() == std::vector<float>(4, 0.0f));
  CHECK(ones({3}, kInt64).to_vector<int64_t>() == std::vector<int64_t>{1, 1, 1});
  CHECK(ones({2}, kBool).to_vector<bool>() == std::vector<bool>{true, true});
  CHECK(full({2}, 2.5, kFloat64).to_vector<double>() == std::vector<double>{2.5, 2.5});
  CHECK(full({2}, 7, kInt32).to_vector<int32_t>() == std::vector<int32_t>{7, 7});
  CHECK(full({}, 3.0).dim() == 0);
  CHECK(zeros({0, 3}).numel() == 0);
  auto g = zeros({2}, TensorOptions(kFloat64).requires_grad(true));
  CHECK(g.requires_grad());
  CHECK(g.is_leaf());
  CHECK_THROWS_AS(zeros({2}, TensorOptions(kInt64).requires_grad(true)), ember::Error);
}

TEST_CASE("arange: integral and floating") {
  auto a = arange(5);
  CHECK(a.dtype() == kInt64);
  CHECK(a.to_vector<int64_t>() == std::vector<int64_t>{0, 1, 2, 3, 4});
  CHECK(arange(2, 8, 3).to_vector<int64_t>() == std::vector<int64_t>{2, 5});
  CHECK(arange(5, 0, -2).to_vector<int64_t>() == std::vector<int64_t>{5, 3, 1});
  auto f = arange(0.0, 1.0, 0.25);
  CHECK(f.dtype() == kFloat32);
  CHECK(f.to_vector<float>() == std::vector<float>{0, 0.25f, 0.5f, 0.75f});
  CHECK(arange(1, 2.5, 0.5).to_vector<float>() == std::vector<float>{1, 1.5f, 2});
  CHECK(arange(3, TensorOptions(kFloat64)).to_vector<double>() == std::vector<double>{0, 1, 2});
  CHECK(arange(0).numel() == 0);
  CHECK_THROWS_AS(arange(0, 5, 0), ember::Error);
  auto msg = error_of([] { arange(5, 0, 1); });
  CHECK(msg.find("arange") != std::string::npos);
}

TEST_CASE("linspace and eye") {
  CHECK(linspace(0, 1, 5).to_vector<float>() == std::vector<float>{0, 0.25f, 0.5f, 0.75f, 1});
  CHECK(linspace(2, -2, 3, kFloat64).to_vector<double>() == std::vector<double>{2, 0, -2});
  CHECK(linspace(0, 1, 0).numel() == 0);
  auto l = linspace(0, 1, 101, kFloat64).to_vector<double>();
  CHECK(l.back() == 1.0);  // end point is exact
  CHECK_THROWS_AS(linspace(0, 1, -1), ember::Error);

  CHECK(eye(3).to_vector<float>() == std::vector<float>{1, 0, 0, 0, 1, 0, 0, 0, 1});
  auto r = eye(2, 3, kInt64);
  CHECK(r.sizes() == Shape{2, 3});
  CHECK(r.to_vector<int64_t>() == std::vector<int64_t>{1, 0, 0, 0, 1, 0});
  CHECK(eye(3, 2).to_vector<float>() == std::vector<float>{1, 0, 0, 1, 0, 0});
  CHECK_THROWS_AS(eye(-1), ember::Error);
}

TEST_CASE("rand and randn statistics over 100k samples") {
  manual_seed(123);
  auto u = rand({100000}).to_vector<double>();
  CHECK(*std::min_element(u.begin(), u.end()) >= 0.0);
  CHECK(*std::max_element(u.begin(), u.end()) < 1.0);
  CHECK(mean_of(u) == doctest::Approx(0.5).epsilon(0.01));
  CHECK(std_of(u) == doctest::Approx(1.0 / std::sqrt(12.0)).epsilon(0.01));
  // A quarter of the samples in each quarter of [0, 1).
  int64_t q = std::count_if(u.begin(), u.end(), [](double v) { return v < 0.25; });
  CHECK(std::abs(q - 25000) < 600);

  auto u64 = rand({100000}, kFloat64).to_vector<double>();
  CHECK(mean_of(u64) == doctest::Approx(0.5).epsilon(0.01));

  auto n = randn({100000}).to_vector<double>();
  CHECK(std::abs(mean_of(n)) < 0.02);
  CHECK(std_of(n) == doctest::Approx(1.0).epsilon(0.02));
  int64_t within1 = std::count_if(n.begin(), n.end(), [](double v) { return std::abs(v) < 1.0; });
  CHECK(std::abs(within1 / 100000.0 - 0.6827) < 0.01);
  auto n64 = randn({100000}, kFloat64).to_vector<double>();
  CHECK(std::abs(mean_of(n64)) < 0.02);
  CHECK(std_of(n64) == doctest::Approx(1.0).epsilon(0.02));

  auto like = randn_like(zeros({3, 2}, kFloat64));
  CHECK(like.sizes() == Shape{3, 2});
  CHECK(like.dtype() == kFloat64);
  CHECK(rand_like(zeros({4})).sizes() == Shape{4});
  CHECK_THROWS_AS(rand({2}, kInt64), ember::Error);
  CHECK_THROWS_AS(randn({2}, kInt32), ember::Error);
}

TEST_CASE("randint, randperm") {
  manual_seed(7);
  auto r = randint(-2, 3, {10000});
  CHECK(r.dtype() == kInt64);
  auto v = r.to_vector<int64_t>();
  CHECK(*std::min_element(v.begin(), v.end()) == -2);
  CHECK(*std::max_element(v.begin(), v.end()) == 2);
  for (int64_t k = -2; k <= 2; ++k) {
    int64_t c = std::count(v.begin(), v.end(), k);
    CHECK(std::abs(c - 2000) < 250);
  }
  CHECK(randint(4, {2, 2}, kInt32).dtype() == kInt32);
  CHECK_THROWS_AS(randint(3, 3, {1}), ember::Error);

  auto p = randperm(100).to_vector<int64_t>();
  std::vector<int64_t> sorted = p;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int64_t> iota(100);
  std::iota(iota.begin(), iota.end(), 0);
  CHECK(sorted == iota);
  CHECK(p != iota);  // shuffled (probability of identity is 1/100!)
  CHECK(randperm(0).numel() == 0);
  CHECK(randperm(1).to_vector<int64_t>() == std::vector<int64_t>{0});
  CHECK_THROWS_AS(randperm(-1), ember::Error);
}

TEST_CASE("manual_seed makes every random factory reproducible") {
  manual_seed(42);
  auto a = rand({50}).to_vector<float>();
  auto b = randn({50}, kFloat64).to_vector<double>();
  auto c = randint(0, 1000, {50}).to_vector<int64_t>();
  auto d = randperm(50).to_vector<int64_t>();
  auto e = rand({50}).to_vector<float>();
  CHECK(a != e);  // the stream advances
  manual_seed(42);
  CHECK(rand({50}).to_vector<float>() == a);
  CHECK(randn({50}, kFloat64).to_vector<double>() == b);
  CHECK(randint(0, 1000, {50}).to_vector<int64_t>() == c);
  CHECK(randperm(50).to_vector<int64_t>() == d);
  CHECK(rand({50}).to_vector<float>() == e);
  manual_seed(43);
  CHECK(rand({50}).to_vector<float>() != a);
  // In-place fills draw from the same stream.
  manual_seed(42);
  auto f = empty({50});
  f.uniform_();
  CHECK(f.to_vector<float>() == a);
  f.uniform_(-2, -1);
  CHECK(f.max().item<float>() < -1.0f);
  CHECK_THROWS_AS(f.uniform_(1, 0), ember::Error);
  CHECK_THROWS_AS(f.normal_(0, -1), ember::Error);
}

TEST_CASE("tensor from values") {
  auto t = tensor<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  CHECK(t.sizes() == Shape{2, 3});
  CHECK(t.dtype() == kFloat32);
  CHECK(t.to_vector<float>() == std::vector<float>{1, 2, 3, 4, 5, 6});
  CHECK(tensor<int64_t>({1, 2}).sizes() == Shape{2});
  CHECK(tensor<double>({1.5, 2.5}, {2}, kFloat32).dtype() == kFloat32);
  CHECK(tensor(std::vector<int32_t>{1, 2, 3}).dtype() == kInt32);
  CHECK(tensor<float>({}, {0}).numel() == 0);
  CHECK(tensor<float>({2.5f}, {}).dim() == 0);
  auto msg = error_of([] { tensor<float>({1, 2, 3}, {2, 2}); });
  CHECK(msg.find("tensor") != std::string::npos);
  CHECK(msg.find("[2, 2]") != std::string::npos);
  CHECK_THROWS_AS(tensor<float>({1, 2}, {3}), ember::Error);
  auto rg = tensor<double>({1.0}, {1}, TensorOptions(kFloat64).requires_grad(true));
  CHECK(rg.requires_grad());
}

TEST_CASE("from_blob shares memory and runs the deleter") {
  static int deleted = 0;
  deleted = 0;
  float* buf = new float[6]{1, 2, 3, 4, 5, 6};
  {
    auto t = from_blob(buf, {2, 3}, kFloat32, [](void* p) {
      ++deleted;
      delete[] static_cast<float*>(p);
    });
    CHECK(t.data_ptr<float>() == buf);
    CHECK(t.to_vector<float>() == std::vector<float>{1, 2, 3, 4, 5, 6});
    buf[0] = 10;
    CHECK(t[0][0].item<float>() == 10.0f);
    {
      NoGradGuard ng;
      t[1].fill_(0);
    }
    CHECK(buf[4] == 0.0f);
    auto view = t.t();  // a view keeps the blob alive
    t = Tensor();
    CHECK(deleted == 0);
    CHECK(view[0][0].item<float>() == 10.0f);
  }
  CHECK(deleted == 1);

  double stack_buf[2] = {1.5, 2.5};
  auto nd = from_blob(stack_buf, {2}, kFloat64);  // no deleter: the caller owns the memory
  CHECK(nd.to_vector<double>() == std::vector<double>{1.5, 2.5});
}

TEST_CASE("*_like factories") {
  auto x = randn({2, 3}, kFloat64);
  auto z = zeros_like(x);
  CHECK(z.sizes() == x.sizes());
  CHECK(z.dtype() == kFloat64);
  CHECK(z.to_vector<double>() == std::vector<double>(6, 0.0));
  CHECK(ones_like(x).to_vector<double>() == std::vector<double>(6, 1.0));
  CHECK(ones_like(x, kInt32).dtype() == kInt32);
  CHECK(zeros_like(x, kFloat32).dtype() == kFloat32);
  CHECK(full_like(x, 4).to_vector<double>() == std::vector<double>(6, 4.0));
  CHECK(empty_like(x).sizes() == x.sizes());
  CHECK(empty_like(x, kInt64).dtype() == kInt64);
  // A like-tensor of a non-contiguous input is a fresh contiguous tensor.
  CHECK(zeros_like(x.t()).is_contiguous());
  CHECK(zeros_like(x.t()).sizes() == Shape{3, 2});
  auto xg = randn({2}, TensorOptions(kFloat64).requires_grad(true));
  CHECK(!zeros_like(xg).requires_grad());
}

TEST_CASE("float16 and bfloat16 round trips through to()") {
  std::vector<float> exact{0, 1, -2.25f, 1024, 0.5f, -65504};
  auto h = tensor(exact).to(kFloat16);
  CHECK(h.dtype() == kFloat16);
  CHECK(h.element_size() == 2);
  CHECK(h.to(kFloat32).to_vector<float>() == exact);
  auto b = tensor(std::vector<float>{0, 1, -2.25f, 1024, 0.5f, 3.0e38f}).to(kBFloat16);
  CHECK(b.dtype() == kBFloat16);
  CHECK(b.to(kFloat32).to_vector<float>()[5] == doctest::Approx(3.0e38f).epsilon(0.01));
  CHECK(b.to(kFloat32).to_vector<float>()[2] == -2.25f);

  // Rounding: half keeps ~11 significant bits, bfloat16 ~8.
  auto third = tensor<double>({1.0 / 3.0});
  CHECK(third.to(kFloat16).to(kFloat64).item<double>() == doctest::Approx(1.0 / 3.0).epsilon(1e-3));
  CHECK(third.to(kBFloat16).to(kFloat64).item<double>() == doctest::Approx(1.0 / 3.0).epsilon(4e-3));
  CHECK(third.to(kFloat16).to(kFloat64).item<double>() != 1.0 / 3.0);
  // Out of range for half: infinity; tiny values become subnormals.
  auto big = tensor<float>({70000.0f, -1e-7f}).to(kFloat16).to(kFloat32).to_vector<float>();
  CHECK(std::isinf(big[0]));
  CHECK(big[1] < 0.0f);
  CHECK(big[1] > -2e-7f);
  // Integers and the two 16-bit types convert directly into each other.
  CHECK(tensor<int64_t>({3, -7}).to(kFloat16).to(kInt64).to_vector<int64_t>() == std::vector<int64_t>{3, -7});
  CHECK(h.to(kBFloat16).to(kFloat32).to_vector<float>()[3] == 1024.0f);
  // Factories build 16-bit tensors directly.
  CHECK(ones({2}, kFloat16).to(kFloat32).to_vector<float>() == std::vector<float>{1, 1});
}

TEST_CASE("linspace with one step gives start") {
  // torch.linspace(3, 7, 1) is [3]: with one step the only element is start, not end.
  CHECK(linspace(3, 7, 1).to_vector<float>() == std::vector<float>{3});
}

TEST_CASE("tensor<bool> from values") {
  auto b = tensor<bool>({true, false, true});
  CHECK(b.dtype() == kBool);
  CHECK(b.to_vector<bool>() == std::vector<bool>{true, false, true});
}

TEST_CASE("value-generating factories accept float16/bfloat16") {
  // The 16-bit types are storage types on the CPU, but factories still produce them directly
  // (values computed in double, then converted), as PyTorch does.
  CHECK(arange(4, TensorOptions(kBFloat16)).dtype() == kBFloat16);
  CHECK(linspace(0, 1, 3, kFloat16).to(kFloat32).to_vector<float>() == std::vector<float>{0, 0.5f, 1});
  CHECK(eye(2, -1, kFloat16).to(kFloat32).to_vector<float>() == std::vector<float>{1, 0, 0, 1});
  CHECK(rand({4}, kFloat16).dtype() == kFloat16);
  CHECK(randn({4}, kBFloat16).dtype() == kBFloat16);
}

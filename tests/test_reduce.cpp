#include <doctest/doctest.h>

#include "ember/ember.hpp"

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

using namespace ember;

namespace {

using dvec = std::vector<double>;
const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

TensorOptions f64(bool rg = false) { return TensorOptions(kFloat64).requires_grad(rg); }

/// 0, 1, ..., n-1 as float64 in `shape`.
Tensor iota(const Shape& shape) { return arange(shape.numel(), TensorOptions(kFloat64)).reshape(shape); }

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

/// Naive reference: reduces `vals` (row-major, shape `sizes`) over the sorted `dims` with f
/// applied to each slice's values in index order.
dvec ref_reduce(const dvec& vals, const Shape& sizes, const Shape& dims, const std::function<double(const dvec&)>& f) {
  Shape out_sizes;
  for (int64_t d = 0; d < sizes.size(); ++d)
    if (std::find(dims.begin(), dims.end(), d) == dims.end()) out_sizes.push_back(d);
  std::vector<dvec> slices(static_cast<size_t>(std::max<int64_t>(1, [&] {
    int64_t n = 1;
    for (int64_t d : out_sizes) n *= sizes[d];
    return n;
  }())));
  Shape st = contiguous_strides(sizes);
  for (int64_t flat = 0; flat < sizes.numel(); ++flat) {
    int64_t o = 0;
    for (int64_t d : out_sizes) o = o * sizes[d] + (flat / st[d]) % sizes[d];
    slices[o].push_back(vals[flat]);
  }
  dvec out;
  for (auto& s : slices) out.push_back(f(s));
  return out;
}

double vsum(const dvec& s) {
  double a = 0;
  for (double v : s) a += v;
  return a;
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

// ---- sum / mean / prod ---------------------------------------------------------------------------

TEST_CASE("sum: hand-checked values over dims, negative dims, keepdim and whole tensor") {
  Tensor x = iota({2, 3});  // [[0, 1, 2], [3, 4, 5]]
  check_close(sum(x, {0}), {3, 5, 7});
  check_close(sum(x, {1}), {3, 12});
  check_close(sum(x, {-1}), {3, 12});
  check_close(sum(x), {15});
  CHECK(sum(x).dim() == 0);
  CHECK(sum(x, {0, 1}).dim() == 0);
  CHECK(sum(x, {1}, true).sizes() == Shape{2, 1});
  CHECK(x.sum({0}, true).sizes() == Shape{1, 3});
  // 0-dim input: dim 0 / -1 are accepted.
  Tensor s = scalar_tensor(2.5, kFloat64);
  check_close(sum(s, {0}), {2.5});
  check_close(sum(s, {-1}, true), {2.5});
  CHECK(sum(s, {0}, true).dim() == 0);
  // Integral and bool inputs sum to int64.
  Tensor xi = tensor<int32_t>({1, 2, 3, 4}, {2, 2});
  CHECK(sum(xi).dtype() == kInt64);
  CHECK(sum(xi, {0}).to_vector<int64_t>() == std::vector<int64_t>{4, 6});
  CHECK(sum(tensor<uint8_t>({1, 0, 1}).to(kBool)).item<int64_t>() == 2);
  // Empty dims sum to 0.
  check_close(sum(zeros({2, 0}, kFloat64), {1}), {0, 0});
}

TEST_CASE("sum: every dims combination of a 3-d tensor matches a naive reference, contiguous or not") {
  Tensor base = iota({3, 4, 5}) * 0.5 - 7.0;
  std::vector<Tensor> inputs = {base, base.permute({2, 0, 1}), base.slice(1, 0, 4, 2), base.transpose(0, 2)};
  std::vector<Shape> dim_sets = {{0}, {1}, {2}, {0, 1}, {0, 2}, {1, 2}, {0, 1, 2}, {-1, 0}};
  for (const Tensor& x : inputs) {
    dvec vals = x.contiguous().to_vector<double>();
    for (const Shape& ds : dim_sets) {
      Shape sorted = detail::reduce_dims(ds, x.dim(), "test");
      dvec expected = ref_reduce(vals, x.sizes(), sorted, vsum);
      CAPTURE(x.sizes());
      CAPTURE(ds);
      check_close(sum(x, ds), expected);
      check_close(sum(x, ds, true), expected);
      check_close(mean(x, ds), ref_reduce(vals, x.sizes(), sorted, [](const dvec& s) { return vsum(s) / s.size(); }));
      check_close(amax(x, ds), ref_reduce(vals, x.sizes(), sorted, [](const dvec& s) {
                    return *std::max_element(s.begin(), s.end());
                  }));
      check_close(amin(x, ds), ref_reduce(vals, x.sizes(), sorted, [](const dvec& s) {
                    return *std::min_element(s.begin(), s.end());
                  }));
    }
  }
}

TEST_CASE("sum: float32 fast paths (leading dims, whole tensor split across threads) are exact") {
  // Column sums over leading dims of a contiguous tensor (the bias-gradient shape).
  Tensor x = iota({4, 3, 2}).to(kFloat32);
  check_close(sum(x, {0}), {36, 40, 44, 48, 52, 56});
  check_close(sum(x, {0, 1}), {132, 144});
  check_close(sum(x, {0, 1}, true), {132, 144});
  CHECK(sum(x, {0, 1}, true).sizes() == Shape{1, 1, 2});
  // Per-channel sums of NCHW (a conv bias gradient): leading and trailing dims around the kept
  // one, in place; large enough to run on several threads.
  Tensor g = (iota({8, 64, 11, 11}) * 0.37).sin().to(kFloat32);
  Tensor want = g.to(kFloat64).permute({1, 0, 2, 3}).contiguous().view({64, -1}).sum({1});
  CHECK(sum(g, {0, 2, 3}).sizes() == Shape{64});
  check_close(sum(g, {0, 2, 3}), want.to_vector<double>(), 1e-6);  // float32 result, double sums
  CHECK(sum(g, {0, 2, 3}, true).sizes() == Shape{1, 64, 1, 1});
  CHECK(sum(g, {0, 3}).sizes() == Shape{64, 11});
  check_close(sum(g, {0, 3}).select(0, 5), g.to(kFloat64).select(1, 5).sum({0, 2}).to_vector<double>(), 1e-6);
  // A long vector: large enough to be split into per-thread chunks.
  int64_t n = 300001;
  Tensor big = ones({n}, kFloat32);
  CHECK(sum(big).item<float>() == static_cast<float>(n));
  Tensor r = arange(n, TensorOptions(kFloat64));
  CHECK(sum(r).item<double>() == static_cast<double>(n) * (n - 1) / 2);
  CHECK(mean(big).item<float>() == doctest::Approx(1.0));
  // Extremes in the last chunk, and first occurrence among ties across chunks.
  Tensor v = zeros({n}, kFloat32);
  v.select(0, n - 2).fill_(5);
  v.select(0, 7).fill_(5);
  v.select(0, n - 1).fill_(-3);
  CHECK(max(v).item<float>() == 5);
  CHECK(min(v).item<float>() == -3);
  CHECK(argmax(v).item<int64_t>() == 7);
  CHECK(argmin(v).item<int64_t>() == n - 1);
  v.select(0, 200000).fill_(kNaN);
  CHECK(std::isnan(max(v).item<float>()));
  CHECK(argmax(v).item<int64_t>() == 200000);
  CHECK(argmin(v).item<int64_t>() == 200000);
}

TEST_CASE("mean: values, keepdim, empty input and integral error") {
  Tensor x = iota({2, 3});
  check_close(mean(x), {2.5});
  check_close(x.mean(), {2.5});
  check_close(mean(x, {0}), {1.5, 2.5, 3.5});
  check_close(x.mean({-1}, true), {1, 4});
  CHECK(x.mean({-1}, true).sizes() == Shape{2, 1});
  CHECK(mean(x.to(kFloat32)).dtype() == kFloat32);
  CHECK(std::isnan(mean(zeros({0}, kFloat64)).item<double>()));
  std::string msg = error_of([] { mean(tensor<int64_t>({1, 2})); });
  CHECK(msg.find("mean: could not infer output dtype. Input dtype must be either a floating point or complex dtype") !=
        std::string::npos);
}

TEST_CASE("prod: values, integral promotion and gradient with and without zeros") {
  Tensor x = tensor<double>({2, 3, 4, 1, 5, 6}, {2, 3});
  check_close(prod(x), {720});
  check_close(prod(x, {1}), {24, 30});
  check_close(prod(x, {0}, true), {2, 15, 24});
  CHECK(prod(tensor<int32_t>({2, 3})).dtype() == kInt64);
  CHECK(prod(tensor<int32_t>({2, 3})).item<int64_t>() == 6);
  check_close(prod(zeros({3, 0}, kFloat64), {1}), {1, 1, 1});

  auto grad_of = [](const dvec& v) {
    Tensor t = tensor<double>(v, {static_cast<int64_t>(v.size())}, f64(true));
    prod(t).backward();
    return t.grad();
  };
  check_close(grad_of({2, 3, 4}), {12, 8, 6});
  check_close(grad_of({2, 0, 4}), {0, 8, 0});
  check_close(grad_of({0, 3, 0}), {0, 0, 0});

  Tensor r = rand({3, 4}, f64()) + 0.5;
  r.requires_grad_(true);
  CHECK_GRADS([](const tensor_list& in) { return prod(in[0], {1}); }, {r});
  CHECK_GRADS([](const tensor_list& in) { return prod(in[0]); }, {r});
  CHECK_GRADS([](const tensor_list& in) { return prod(in[0], {0}, true); }, {r});
  // One zero per slice: first and second derivatives are exact.
  Tensor z = tensor<double>({2, 0, 3, -1, 1.5, 0.5}, {2, 3}, f64(true));
  CHECK_GRADS([](const tensor_list& in) { return prod(in[0], {1}); }, {z});
  // Two zeros in a slice: the first derivative is still right.
  Tensor z2 = tensor<double>({0, 0, 3, 2}, {4}, f64(true));
  CHECK_GRADCHECK([](const tensor_list& in) { return prod(in[0]); }, {z2});
}

// ---- max / min / argmax ----------------------------------------------------------------------------

TEST_CASE("amax/amin: ties share the gradient evenly, multiple dims and keepdim") {
  Tensor x = tensor<double>({1, 3, 3, -2, 0, -2}, {2, 3}, f64(true));
  Tensor m = amax(x, {1});
  check_close(m, {3, 0});
  m.sum().backward();
  check_close(x.grad(), {0, 0.5, 0.5, 0, 1, 0});

  Tensor y = tensor<double>({1, 3, 3, -2, 0, -2}, {2, 3}, f64(true));
  Tensor mn = amin(y, {-1}, true);
  CHECK(mn.sizes() == Shape{2, 1});
  check_close(mn, {1, -2});
  mn.sum().backward();
  check_close(y.grad(), {1, 0, 0, 0.5, 0, 0.5});

  check_close(amax(iota({2, 3, 4}), {0, 2}), {15, 19, 23});
  CHECK(amax(iota({2, 3, 4}), {0, 2}, true).sizes() == Shape{1, 3, 1});

  Tensor r = randn({3, 4, 2}, f64(true));
  CHECK_GRADS([](const tensor_list& in) { return amax(in[0], {0, 2}); }, {r});
  CHECK_GRADS([](const tensor_list& in) { return amin(in[0], {1}, true); }, {r});
  CHECK_GRADS([](const tensor_list& in) { return max(in[0]); }, {r});
  CHECK_GRADS([](const tensor_list& in) { return min(in[0]); }, {r});
}

TEST_CASE("max/min whole tensor: values, NaN propagation, ties, bool, non-contiguous") {
  Tensor x = tensor<double>({4, -1, 7, 7, 2, 0}, {2, 3});
  CHECK(max(x).item<double>() == 7);
  CHECK(x.min().item<double>() == -1);
  CHECK(max(x).dim() == 0);
  CHECK(max(x.t()).item<double>() == 7);
  CHECK(std::isnan(max(tensor<double>({1, kNaN, 3})).item<double>()));
  CHECK(std::isnan(min(tensor<float>({1, 2, std::nanf("")})).item<float>()));
  CHECK(max(tensor<double>({-kInf, 1})).item<double>() == 1);
  CHECK(max(tensor<int64_t>({3, -9, 5})).item<int64_t>() == 5);
  Tensor b = max(tensor<uint8_t>({0, 1, 0}).to(kBool));
  CHECK(b.dtype() == kBool);
  CHECK(b.item<bool>());
  CHECK_FALSE(min(tensor<uint8_t>({0, 1}).to(kBool)).item<bool>());

  Tensor t = tensor<double>({5, 1, 5}, {3}, f64(true));
  max(t).backward();
  check_close(t.grad(), {0.5, 0, 0.5});
}

TEST_CASE("max/min along a dim: values, int64 indices, first tie, keepdim, gradient to the index") {
  Tensor x = tensor<double>({1, 9, 9, 4, 0, 2, 8, 8, 8}, {3, 3});
  auto [v, i] = max(x, 1);
  check_close(v, {9, 4, 8});
  CHECK(i.dtype() == kInt64);
  CHECK(i.to_vector<int64_t>() == std::vector<int64_t>{1, 0, 0});
  auto [v0, i0] = max(x, 0, true);
  CHECK(v0.sizes() == Shape{1, 3});
  CHECK(i0.sizes() == Shape{1, 3});
  check_close(v0, {8, 9, 9});
  CHECK(i0.to_vector<int64_t>() == std::vector<int64_t>{2, 0, 0});
  auto [mv, mi] = min(x, -1);
  check_close(mv, {1, 0, 8});
  CHECK(mi.to_vector<int64_t>() == std::vector<int64_t>{0, 1, 0});
  // Non-contiguous input: the indices are positions along the (logical) dim.
  auto [tv, ti] = max(x.t(), 0);
  check_close(tv, {9, 4, 8});
  CHECK(ti.to_vector<int64_t>() == std::vector<int64_t>{1, 0, 0});
  // NaN is the max and its index is returned.
  auto [nv, ni] = max(tensor<double>({1, kNaN, 3, kNaN}, {1, 4}), 1);
  CHECK(std::isnan(nv.item<double>()));
  CHECK(ni.item<int64_t>() == 1);
  // 0-dim input.
  auto [sv, si] = max(scalar_tensor(3.0, kFloat64), 0);
  CHECK(sv.item<double>() == 3);
  CHECK(si.item<int64_t>() == 0);

  // The gradient goes to the selected element only (ties: the first).
  Tensor g = tensor<double>({1, 9, 9, 4, 0, 2}, {2, 3}, f64(true));
  std::get<0>(max(g, 1)).sum().backward();
  check_close(g.grad(), {0, 1, 0, 1, 0, 0});

  Tensor r = randn({3, 4, 2}, f64(true));
  for (int64_t d : {0, 1, -1}) {
    CHECK_GRADS([d](const tensor_list& in) { return std::get<0>(max(in[0], d)); }, {r});
    CHECK_GRADS([d](const tensor_list& in) { return std::get<0>(min(in[0], d, true)); }, {r});
  }
  Tensor s = scalar_tensor(1.5, f64(true));
  CHECK_GRADS([](const tensor_list& in) { return std::get<0>(max(in[0], 0)); }, {s});
}

TEST_CASE("argmax/argmin: dims, keepdim, whole tensor (flattened index), members") {
  Tensor x = tensor<double>({3, 1, 4, 1, 5, 9, 2, 6}, {2, 4});
  CHECK(argmax(x, 1).to_vector<int64_t>() == std::vector<int64_t>{2, 1});
  CHECK(argmin(x, 1).to_vector<int64_t>() == std::vector<int64_t>{1, 2});
  CHECK(x.argmax(0).to_vector<int64_t>() == std::vector<int64_t>{1, 1, 0, 1});
  CHECK(x.argmin(-1, true).sizes() == Shape{2, 1});
  CHECK(argmax(x).item<int64_t>() == 5);
  CHECK(argmin(x).item<int64_t>() == 1);
  CHECK(argmax(x).dim() == 0);
  // Flattened index follows the logical (row-major) order of a transposed view.
  CHECK(argmax(x.t()).item<int64_t>() == 3);  // x.t() = [[3,5],[1,9],[4,2],[1,6]] → 9 at flat 3
  CHECK(argmax(tensor<int32_t>({2, 7, 7})).item<int64_t>() == 1);
  CHECK(argmax(tensor<uint8_t>({0, 1, 1}).to(kBool)).item<int64_t>() == 1);
}

TEST_CASE("reductions: error cases name the op") {
  Tensor x = iota({2, 3});
  std::string m1 = error_of([&] { sum(x, {2}); });
  CHECK(m1.find("sum") != std::string::npos);
  CHECK(m1.find("out of range") != std::string::npos);
  CHECK_THROWS_AS(amax(x, {-3}), Error);
  std::string m2 = error_of([&] { sum(x, {1, -1}); });
  CHECK(m2.find("sum: dim 1 appears multiple times") != std::string::npos);
  CHECK_THROWS_AS(mean(x, {0, 0}), Error);
  std::string m3 = error_of([] { max(zeros({0}, kFloat64)); });
  CHECK(m3.find("max") != std::string::npos);
  CHECK(m3.find("size 0") != std::string::npos);
  CHECK_THROWS_AS(max(zeros({2, 0}, kFloat64), 1), Error);
  CHECK_THROWS_AS(amin(zeros({0, 3}, kFloat64), {0}), Error);
  CHECK_THROWS_AS(argmax(zeros({0}, kFloat64)), Error);
  // Reducing the non-empty dim of a tensor with an empty dim is fine (an empty result).
  CHECK(amax(zeros({0, 3}, kFloat64), {1}).sizes() == Shape{0});
  CHECK(error_of([&] { argmax(x, 5); }).find("argmax") != std::string::npos);
  CHECK(error_of([] { var(tensor<int64_t>({1, 2})); }).find("var") != std::string::npos);
  CHECK(error_of([] { norm(tensor<int64_t>({1, 2})); }).find("norm") != std::string::npos);
  CHECK_THROWS_AS(norm(iota({3}), 0.5), Error);
}

// ---- var / std / norm --------------------------------------------------------------------------------

TEST_CASE("var/std: unbiased by default, correction, dims, keepdim") {
  Tensor x = tensor<double>({1, 2, 3, 4}, {4});
  check_close(var(x), {5.0 / 3.0});
  check_close(var(x, {}, 0), {1.25});
  check_close(ember::std(x), {std::sqrt(5.0 / 3.0)});
  check_close(ember::std(x, {0}, 0), {std::sqrt(1.25)});
  Tensor y = tensor<double>({1, 3, 2, 6, 0, 0}, {2, 3});
  check_close(var(y, {1}), {1, 12});
  check_close(var(y, {0}), {12.5, 4.5, 2});
  CHECK(var(y, {-1}, 1, true).sizes() == Shape{2, 1});
  check_close(ember::std(y, {1}, 1, true), {1, std::sqrt(12.0)});
  check_close(var(y.t(), {0}), {1, 12});  // non-contiguous
  // One element with correction 1: division by 0 → NaN (as torch, which also warns).
  CHECK(std::isnan(var(tensor<double>({3.0})).item<double>()));
  CHECK(var(x.to(kFloat32)).dtype() == kFloat32);

  Tensor r = randn({3, 4}, f64(true));
  CHECK_GRADS([](const tensor_list& in) { return var(in[0]); }, {r});
  CHECK_GRADS([](const tensor_list& in) { return var(in[0], {1}, 0, true); }, {r});
  CHECK_GRADS([](const tensor_list& in) { return ember::std(in[0], {0}); }, {r});
  CHECK_GRADS([](const tensor_list& in) { return ember::std(in[0], {-1, 0}, 1, true); }, {r});
}

TEST_CASE("norm: p = 2, 1, inf, -inf, 0, 3 with dims, and a zero gradient at 0") {
  Tensor x = tensor<double>({3, -4, 0, 0, 1, -1}, {3, 2});
  check_close(norm(x), {std::sqrt(27.0)});
  check_close(norm(x, 2, {1}), {5, 0, std::sqrt(2.0)});
  check_close(norm(x, 1, {1}), {7, 0, 2});
  check_close(norm(x, kInf, {1}, true), {4, 0, 1});
  CHECK(norm(x, kInf, {1}, true).sizes() == Shape{3, 1});
  check_close(norm(x, -kInf, {0}), {0, 0});
  check_close(norm(x, 0, {0}), {2, 2});
  check_close(norm(x, 3, {1}), {std::cbrt(91.0), 0, std::cbrt(2.0)});

  // The gradient at a zero vector is 0, not NaN, for every p.
  for (double p : {2.0, 1.0, 3.0, kInf}) {
    Tensor z = zeros({3}, f64(true));
    norm(z, p).backward();
    CAPTURE(p);
    check_close(z.grad(), {0, 0, 0});
  }
  Tensor w = tensor<double>({3, -4}, {2}, f64(true));
  norm(w).backward();
  check_close(w.grad(), {0.6, -0.8});

  Tensor r = randn({3, 4}, f64(true));
  CHECK_GRADS([](const tensor_list& in) { return norm(in[0]); }, {r});
  CHECK_GRADS([](const tensor_list& in) { return norm(in[0], 2, {1}, true); }, {r});
  CHECK_GRADS([](const tensor_list& in) { return norm(in[0], 1, {0}); }, {r});
  CHECK_GRADS([](const tensor_list& in) { return norm(in[0], kInf, {1}); }, {r});
  CHECK_GRADS([](const tensor_list& in) { return norm(in[0], 3, {0}); }, {r});
  CHECK_GRADS([](const tensor_list& in) { return norm(in[0], 1.5); }, {r});
}

TEST_CASE("sum/mean: gradients and second derivatives through the composites") {
  Tensor r = randn({2, 3, 4}, f64(true));
  CHECK_GRADS([](const tensor_list& in) { return sum(in[0], {0, 2}); }, {r});
  CHECK_GRADS([](const tensor_list& in) { return sum(mul(in[0], in[0]), {1}, true); }, {r});
  CHECK_GRADS([](const tensor_list& in) { return mean(in[0], {-1}); }, {r});
  CHECK_GRADS([](const tensor_list& in) { return mean(mul(in[0], in[0])); }, {r});
  Tensor nc = randn({4, 3}, f64()).t();
  nc.requires_grad_(true);
  CHECK_GRADS([](const tensor_list& in) { return mean(in[0], {0}, true); }, {nc});
}

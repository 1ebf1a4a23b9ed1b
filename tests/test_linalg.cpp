#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "ember/ember.hpp"

using namespace ember;

namespace {

/// Batch index of a tensor with batch dims `tb` for the broadcast batch index `idx` of `batch`.
int64_t broadcast_index(const Shape& tb, const Shape& batch, int64_t flat) {
  int64_t lead = batch.size() - tb.size(), out = 0, mul_ = 1;
  for (int64_t d = batch.size() - 1; d >= 0; --d) {
    int64_t i = flat % batch[d];
    flat /= batch[d];
    int64_t td = d - lead;
    if (td < 0) continue;
    out += (tb[td] == 1 ? 0 : i) * mul_;
    mul_ *= tb[td];
  }
  return out;
}

/// Naive triple loop in double over broadcast batches: a [..., m, k] @ b [..., k, n] (both >= 2-D).
std::vector<double> naive_matmul(const Tensor& a, const Tensor& b, Shape* shape_out = nullptr) {
  std::vector<double> av = a.to_vector<double>(), bv = b.to_vector<double>();
  int64_t m = a.size(-2), k = a.size(-1), n = b.size(-1);
  Shape ba(a.sizes().begin(), a.sizes().end() - 2), bb(b.sizes().begin(), b.sizes().end() - 2);
  Shape batch = broadcast_shapes(ba, bb, "naive");
  std::vector<double> out(static_cast<size_t>(batch.numel() * m * n), 0.0);
  for (int64_t i = 0; i < batch.numel(); ++i) {
    int64_t ia = broadcast_index(ba, batch, i), ib = broadcast_index(bb, batch, i);
    for (int64_t r = 0; r < m; ++r)
      for (int64_t c = 0; c < n; ++c) {
        double s = 0;
        for (int64_t p = 0; p < k; ++p) s += av[ia * m * k + r * k + p] * bv[ib * k * n + p * n + c];
        out[i * m * n + r * n + c] = s;
      }
  }
  if (shape_out) {
    *shape_out = batch;
    shape_out->push_back(m);
    shape_out->push_back(n);
  }
  return out;
}

void check_close(const Tensor& got, const std::vector<double>& want, double tol) {
  std::vector<double> g = got.to_vector<double>();
  REQUIRE(g.size() == want.size());
  double worst = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    double err = std::abs(g[i] - want[i]) / (1.0 + std::abs(want[i]));
    worst = std::max(worst, err);
  }
  CHECK_MESSAGE(worst <= tol, "max relative error " << worst << " > " << tol);
}

double tol_for(DType t) { return t == kFloat32 ? 2e-5 : 1e-12; }

/// a @ b checked against the naive loop, including the result shape.
void check_matmul(const Tensor& a, const Tensor& b, const Tensor& got) {
  Shape s;
  auto want = naive_matmul(a, b, &s);
  CHECK(got.sizes() == s);
  check_close(got, want, tol_for(a.dtype()));
}

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ember::Error& e) {
    return e.what();
  }
  return "(no error)";
}

TensorOptions f64(bool rg = true) { return TensorOptions(kFloat64).requires_grad(rg); }

}  // namespace

TEST_CASE("mm matches a naive triple loop in float32 and float64") {
  for (DType dt : {kFloat32, kFloat64}) {
    for (auto [m, k, n] : std::vector<std::array<int64_t, 3>>{{1, 1, 1}, {3, 4, 5}, {17, 33, 9}, {64, 130, 70}}) {
      Tensor a = randn({m, k}, dt), b = randn({k, n}, dt);
      Tensor c = mm(a, b);
      CHECK(c.dtype() == dt);
      check_matmul(a, b, c);
      check_matmul(a, b, a.mm(b));
    }
  }
}

TEST_CASE("mm on hand-checked values") {
  Tensor a = tensor<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = tensor<float>({7, 8, 9, 10, 11, 12}, {3, 2});
  CHECK(mm(a, b).to_vector<float>() == std::vector<float>{58, 64, 139, 154});
}

TEST_CASE("mm reads transposed and sliced operands without changing the result") {
  for (DType dt : {kFloat32, kFloat64}) {
    Tensor base_a = randn({12, 10}, dt), base_b = randn({9, 14}, dt);
    // Transposed views: column-major maps.
    Tensor at = randn({7, 12}, dt).t();  // [12, 7], stride {1, 12}
    Tensor bt = randn({5, 7}, dt).t();   // [7, 5]
    CHECK_FALSE(at.is_contiguous());
    check_matmul(at, bt, mm(at, bt));
    check_matmul(at, bt.contiguous(), mm(at, bt.contiguous()));
    check_matmul(at.contiguous(), bt, mm(at.contiguous(), bt));
    // Row slices (leading dimension larger than the row length) and column slices.
    Tensor as = base_a.slice(1, 2, 9);          // [12, 7], stride {10, 1}
    Tensor bs = base_b.slice(0, 1, 8);          // [7, 14]
    check_matmul(as, bs, mm(as, bs));
    // Doubly strided: neither layout fits, so a contiguous copy is used.
    Tensor ad = base_a.slice(1, 0, 10, 2).slice(0, 0, 12, 3);  // [4, 5], stride {30, 2}
    Tensor bd = base_b.slice(0, 0, 9, 2).slice(1, 0, 14, 2);   // [5, 7]
    check_matmul(ad, bd, mm(ad, bd));
    // A transposed slice (column-major with a leading dimension larger than the column length).
    Tensor ats = base_a.slice(0, 1, 8).t();  // [10, 7], stride {1, 10}
    check_matmul(ats, bs, mm(ats, bs));
    // An expanded operand (row stride 0) fits no BLAS layout and is made contiguous first.
    Tensor row = randn({1, 7}, dt).expand({6, 7});
    check_matmul(row, bs, mm(row, bs));
  }
}

TEST_CASE("mm with empty dimensions") {
  Tensor a = randn({3, 0}), b = randn({0, 4});
  Tensor c = mm(a, b);
  CHECK(c.sizes() == Shape{3, 4});
  for (float v : c.to_vector<float>()) CHECK(v == 0.0f);
  CHECK(mm(randn({0, 5}), randn({5, 2})).sizes() == Shape{0, 2});
  CHECK(matmul(randn({2, 0, 5}), randn({5, 3})).sizes() == Shape{2, 0, 3});
}

TEST_CASE("bmm matches the naive loop for small (batch-parallel) and large (Eigen-threaded) matrices") {
  for (DType dt : {kFloat32, kFloat64}) {
    Tensor a = randn({6, 3, 4}, dt), b = randn({6, 4, 5}, dt);
    check_matmul(a, b, bmm(a, b));
    Tensor la = randn({2, 80, 70}, dt), lb = randn({2, 70, 90}, dt);
    check_matmul(la, lb, bmm(la, lb));
    // Many tiny products (the attention-score shape) and transposed batch operands.
    Tensor q = randn({64, 8, 16}, dt), kk = randn({64, 8, 16}, dt);
    check_matmul(q, kk.transpose(1, 2), bmm(q, kk.transpose(1, 2)));
    // Batch dim not outermost in memory.
    Tensor p = randn({3, 5, 4}, dt).permute({1, 0, 2});  // [5, 3, 4]
    Tensor r = randn({5, 4, 2}, dt);
    check_matmul(p, r, bmm(p, r));
  }
}

TEST_CASE("matmul covers every dimension case with PyTorch semantics") {
  for (DType dt : {kFloat32, kFloat64}) {
    double tol = tol_for(dt);
    Tensor v3 = randn({3}, dt), w3 = randn({3}, dt);
    SUBCASE("1-D @ 1-D is a 0-dim dot product") {
      Tensor d = matmul(v3, w3);
      CHECK(d.dim() == 0);
      check_close(d, naive_matmul(v3.unsqueeze(0), w3.unsqueeze(1)), tol);
      check_close(dot(v3, w3), naive_matmul(v3.unsqueeze(0), w3.unsqueeze(1)), tol);
      // Strided vectors.
      Tensor sv = randn({9}, dt).slice(0, 0, 9, 3);
      check_close(matmul(sv, w3), naive_matmul(sv.unsqueeze(0), w3.unsqueeze(1)), tol);
    }
    SUBCASE("2-D @ 1-D and 1-D @ 2-D drop the promoted dim") {
      Tensor m = randn({4, 3}, dt);
      Tensor mv = matmul(m, v3);
      CHECK(mv.sizes() == Shape{4});
      check_close(mv, naive_matmul(m, v3.unsqueeze(1)), tol);
      Tensor u4 = randn({4}, dt);
      Tensor vm = matmul(u4, m);
      CHECK(vm.sizes() == Shape{3});
      check_close(vm, naive_matmul(u4.unsqueeze(0), m), tol);
    }
    SUBCASE("N-D @ 2-D folds into one product; N-D @ 1-D") {
      Tensor x = randn({2, 5, 3}, dt), w = randn({3, 4}, dt);
      check_matmul(x, w, matmul(x, w));
      Tensor xt = randn({5, 2, 3}, dt).transpose(0, 1);  // non-contiguous batch
      check_matmul(xt, w, matmul(xt, w));
      Tensor y = matmul(x, v3);
      CHECK(y.sizes() == Shape{2, 5});
      check_close(y, naive_matmul(x, v3.unsqueeze(1)), tol);
      Tensor x4 = randn({2, 2, 5, 3}, dt);
      check_matmul(x4, w.t().contiguous().t(), matmul(x4, w.t().contiguous().t()));
    }
    SUBCASE("1-D @ N-D and 2-D @ N-D broadcast the first operand") {
      Tensor b = randn({2, 3, 4}, dt);
      Tensor y = matmul(v3, b);
      CHECK(y.sizes() == Shape{2, 4});
      check_close(y, naive_matmul(v3.unsqueeze(0), b), tol);
      Tensor a = randn({5, 3}, dt);
      check_matmul(a, b, matmul(a, b));
    }
    SUBCASE("batch dims broadcast") {
      Tensor a = randn({2, 1, 3, 4}, dt), b = randn({5, 4, 2}, dt);
      Tensor c = matmul(a, b);
      CHECK(c.sizes() == Shape{2, 5, 3, 2});
      check_matmul(a, b, c);
      Tensor a2 = randn({1, 3, 4}, dt), b2 = randn({6, 4, 2}, dt).transpose(-1, -2).contiguous().transpose(-1, -2);
      check_matmul(a2, b2, matmul(a2, b2));
      Tensor e = randn({3, 4}, dt).expand({7, 3, 4});  // stride-0 batch
      check_matmul(e, b2.slice(0, 0, 1), matmul(e, b2.slice(0, 0, 1)));
      Tensor same_a = randn({3, 2, 4}, dt), same_b = randn({3, 4, 6}, dt);
      check_matmul(same_a, same_b, same_a.matmul(same_b));
    }
  }
}

TEST_CASE("addmm: beta * bias + alpha * a @ b with broadcast bias") {
  for (DType dt : {kFloat32, kFloat64}) {
    Tensor a = randn({4, 3}, dt), b = randn({3, 5}, dt);
    std::vector<double> p = naive_matmul(a, b);
    for (Shape bs : {Shape{5}, Shape{4, 5}, Shape{1, 5}, Shape{4, 1}, Shape{}}) {
      Tensor bias = randn(bs, dt);
      Tensor full_bias = bias.expand({4, 5}).contiguous();
      std::vector<double> bv = full_bias.to_vector<double>();
      std::vector<double> want(p.size());
      for (size_t i = 0; i < p.size(); ++i) want[i] = 0.5 * bv[i] + 2.0 * p[i];
      Tensor c = addmm(bias, a, b, 0.5, 2.0);
      CHECK(c.sizes() == Shape{4, 5});
      check_close(c, want, tol_for(dt));
      for (size_t i = 0; i < p.size(); ++i) want[i] = bv[i] + p[i];
      check_close(addmm(bias, a, b), want, tol_for(dt));
    }
    // beta == 0 ignores the bias entirely, NaN included.
    Tensor nan_bias = full({5}, std::numeric_limits<double>::quiet_NaN(), dt);
    check_close(addmm(nan_bias, a, b, 0.0, 1.0), p, tol_for(dt));
    // Transposed operands.
    Tensor at = randn({3, 4}, dt).t();
    check_close(addmm(zeros({5}, dt), at, b), naive_matmul(at, b), tol_for(dt));
  }
}

TEST_CASE("linear: x @ W^T + b over flattened leading dims") {
  for (DType dt : {kFloat32, kFloat64}) {
    Tensor w = randn({6, 4}, dt), bias = randn({6}, dt);
    auto want = [&](const Tensor& x, bool with_bias) {
      Shape s;
      auto v = naive_matmul(x.dim() == 1 ? x.unsqueeze(0) : x, w.t(), &s);
      if (with_bias) {
        std::vector<double> bv = bias.to_vector<double>();
        for (size_t i = 0; i < v.size(); ++i) v[i] += bv[i % 6];
      }
      return v;
    };
    Tensor x2 = randn({5, 4}, dt);
    Tensor y2 = linear(x2, w, bias);
    CHECK(y2.sizes() == Shape{5, 6});
    check_close(y2, want(x2, true), tol_for(dt));
    check_close(linear(x2, w), want(x2, false), tol_for(dt));
    Tensor x3 = randn({2, 3, 4}, dt);
    Tensor y3 = linear(x3, w, bias);
    CHECK(y3.sizes() == Shape{2, 3, 6});
    check_close(y3, want(x3, true), tol_for(dt));
    Tensor x1 = randn({4}, dt);
    Tensor y1 = linear(x1, w, bias);
    CHECK(y1.sizes() == Shape{6});
    check_close(y1, want(x1, true), tol_for(dt));
    // Non-contiguous input and weight.
    Tensor xn = randn({4, 2, 3}, dt).permute({1, 2, 0});  // [2, 3, 4]
    check_close(linear(xn, w, bias), want(xn, true), tol_for(dt));
    Tensor wt = randn({4, 6}, dt).t();  // [6, 4] transposed view
    Shape s;
    auto ref = naive_matmul(x2, wt.t(), &s);
    check_close(linear(x2, wt), ref, tol_for(dt));
  }
}

TEST_CASE("outer product") {
  Tensor a = tensor<double>({1, 2, 3}), b = tensor<double>({4, 5});
  Tensor o = outer(a, b);
  CHECK(o.sizes() == Shape{3, 2});
  CHECK(o.to_vector<double>() == std::vector<double>{4, 5, 8, 10, 12, 15});
}

TEST_CASE("linalg errors name the op and the shapes") {
  Tensor a = randn({32, 1600}), b = randn({160, 50});
  std::string msg = message_of([&] { matmul(a, b); });
  CHECK(msg.find("matmul: shapes [32, 1600] and [160, 50] cannot be multiplied") != std::string::npos);
  CHECK_THROWS_AS(mm(a, b), ember::Error);
  CHECK(message_of([&] { mm(a, b); }).find("mm: shapes [32, 1600] and [160, 50]") != std::string::npos);
  CHECK(message_of([&] { mm(randn({3}), randn({3, 2})); }).find("mm: expected 2-D") != std::string::npos);
  CHECK(message_of([&] { bmm(randn({2, 3, 4}), randn({3, 4, 5})); }).find("bmm: batch sizes") != std::string::npos);
  CHECK(message_of([&] { bmm(randn({2, 3, 4}), randn({2, 5, 5})); }).find("bmm: shapes") != std::string::npos);
  CHECK(message_of([&] { bmm(randn({3, 4}), randn({4, 5})); }).find("bmm: expected 3-D") != std::string::npos);
  CHECK(message_of([&] { matmul(randn({3}), randn({4})); }).find("matmul: shapes [3] and [4]") != std::string::npos);
  CHECK(message_of([&] { matmul(randn({2, 3, 4}), randn({3, 4, 5})); }).find("cannot be broadcast") !=
        std::string::npos);
  CHECK(message_of([&] { matmul(randn({}), randn({3})); }).find("matmul: both arguments need at least 1") !=
        std::string::npos);
  CHECK(message_of([&] { dot(randn({2, 2}), randn({2})); }).find("dot: expected 1-D") != std::string::npos);
  CHECK(message_of([&] { linear(randn({5, 3}), randn({6, 4})); }).find("linear: input of shape [5, 3]") !=
        std::string::npos);
  CHECK(message_of([&] { linear(randn({5, 4}), randn({6, 4}), randn({5})); }).find("linear: expected a bias") !=
        std::string::npos);
  CHECK(message_of([&] { addmm(randn({3}), randn({2, 4}), randn({4, 5})); }).find("addmm: bias of shape [3]") !=
        std::string::npos);
  // dtypes: mixed, and integer products (unsupported, as in CUDA PyTorch).
  CHECK(message_of([&] { mm(randn({2, 2}), randn({2, 2}, kFloat64)); }).find("same dtype") != std::string::npos);
  std::string im = message_of([&] { matmul(ones({2, 2}, kInt64), ones({2, 2}, kInt64)); });
  CHECK(im.find("matmul") != std::string::npos);
  CHECK(im.find("int64") != std::string::npos);
}

TEST_CASE("gradients of mm, bmm and dot (gradcheck + gradgradcheck, float64)") {
  Tensor a = randn({3, 4}, f64()), b = randn({4, 2}, f64());
  CHECK_GRADS([](const tensor_list& in) { return mm(in[0], in[1]); }, {a, b});
  // Transposed and sliced inputs.
  Tensor at = randn({4, 3}, f64()), bs = randn({4, 5}, f64());
  CHECK_GRADS([](const tensor_list& in) { return mm(in[0].t(), in[1].slice(1, 1, 4)); }, {at, bs});
  // Only one side requiring grad.
  Tensor bc = randn({4, 2}, f64(false));
  CHECK_GRADS([](const tensor_list& in) { return mm(in[0], in[1]); }, {a, bc});
  Tensor ba = randn({2, 3, 4}, f64()), bb = randn({2, 4, 2}, f64());
  CHECK_GRADS([](const tensor_list& in) { return bmm(in[0], in[1]); }, {ba, bb});
  Tensor u = randn({5}, f64()), v = randn({5}, f64());
  CHECK_GRADS([](const tensor_list& in) { return dot(in[0], in[1]); }, {u, v});
  CHECK_GRADS([](const tensor_list& in) { return outer(in[0], in[1]); }, {u, v});
}

TEST_CASE("gradients of matmul in every dimension case (float64)") {
  auto f = [](const tensor_list& in) { return matmul(in[0], in[1]); };
  auto check = [&](const Shape& sa, const Shape& sb) {
    CAPTURE(sa);
    CAPTURE(sb);
    Tensor a = randn(sa, f64()), b = randn(sb, f64());
    CHECK_GRADS(f, {a, b});
  };
  check({4}, {4});
  check({3, 4}, {4});
  check({4}, {4, 2});
  check({3, 4}, {4, 2});
  check({2, 3, 4}, {4, 2});   // folded
  check({2, 3, 4}, {4});      // folded, 1-D second
  check({4}, {2, 4, 3});      // 1-D first, batched
  check({3, 4}, {2, 4, 2});   // 2-D broadcast against a batch
  check({2, 1, 3, 4}, {2, 4, 2});  // batch broadcasting on both sides
  check({2, 3, 4}, {2, 4, 2});
  // A non-contiguous batched operand.
  Tensor a = randn({3, 2, 4}, f64()), b = randn({2, 4, 2}, f64());
  CHECK_GRADS([](const tensor_list& in) { return matmul(in[0].transpose(0, 1), in[1]); }, {a, b});
}

TEST_CASE("gradients of addmm and linear (float64)") {
  Tensor bias = randn({2}, f64()), a = randn({3, 4}, f64()), b = randn({4, 2}, f64());
  CHECK_GRADS([](const tensor_list& in) { return addmm(in[0], in[1], in[2]); }, {bias, a, b});
  CHECK_GRADS([](const tensor_list& in) { return addmm(in[0], in[1], in[2], 0.5, -1.5); }, {bias, a, b});
  Tensor bias2 = randn({3, 1}, f64());
  CHECK_GRADS([](const tensor_list& in) { return addmm(in[0], in[1], in[2], 2.0, 0.25); }, {bias2, a, b});

  Tensor w = randn({3, 4}, f64()), lb = randn({3}, f64());
  auto lin = [](const tensor_list& in) { return linear(in[0], in[1], in[2]); };
  CHECK_GRADS(lin, {randn({5, 4}, f64()), w, lb});
  CHECK_GRADS(lin, {randn({2, 3, 4}, f64()), w, lb});
  CHECK_GRADS(lin, {randn({4}, f64()), w, lb});
  CHECK_GRADS([](const tensor_list& in) { return linear(in[0], in[1]); }, {randn({2, 4}, f64()), w});
  // Non-contiguous input, and a constant input with trainable weights (the first layer of a net).
  CHECK_GRADS([](const tensor_list& in) { return linear(in[0].transpose(0, 1), in[1], in[2]); },
              {randn({4, 2, 4}, f64()), w, lb});
  CHECK_GRADS(lin, {randn({6, 4}, f64(false)), w, lb});
}

TEST_CASE("linear's backward gives the textbook gradients") {
  Tensor x = randn({5, 4}, f64()), w = randn({3, 4}, f64()), b = randn({3}, f64());
  Tensor y = linear(x, w, b);
  y.sum().backward();
  // d/dx sum(xW^T + b) = ones @ W; d/dW = ones^T @ x; d/db = rows.
  Tensor ones_g = ones({5, 3}, kFloat64);
  check_close(x.grad(), naive_matmul(ones_g, w), 1e-12);
  check_close(w.grad(), naive_matmul(ones_g.t(), x.detach()), 1e-12);
  CHECK(b.grad().to_vector<double>() == std::vector<double>{5, 5, 5});
}

#include <doctest/doctest.h>

#include "ember/ember.hpp"
#include "ember/cuda/device.hpp"

// CPU/CUDA parity for the CUDA backend (kernels/*.cu): every case computes the same thing on
// both devices and compares. Without the backend or a GPU each case prints why and passes.

#ifndef EMBER_WITH_CUDA

TEST_CASE("cuda: backend not built") {
  CHECK_FALSE(ember::cuda_is_available());
  CHECK(ember::cuda_device_count() == 0);
  MESSAGE("CUDA tests skipped: Ember was built without the CUDA backend (link ember::cuda)");
}

#else

#include <cmath>
#include <limits>
#include <vector>

#include "ember/cuda/launch.hpp"
#include "ember/cuda/runtime.hpp"

using namespace ember;

namespace {

#define EMBER_REQUIRE_GPU()                                        \
  do {                                                             \
    if (!ember::cuda_is_available()) {                             \
      MESSAGE("CUDA tests skipped: no GPU visible");               \
      return;                                                      \
    }                                                              \
  } while (0)

/// Same shape and dtype, and every element within atol + rtol * |expected| (NaN matches NaN).
void expect_close(const Tensor& got, const Tensor& want, double rtol = 1e-6, double atol = 1e-6,
                  const char* what = "") {
  INFO(what);
  REQUIRE(got.sizes() == want.sizes());
  REQUIRE(got.dtype() == want.dtype());
  std::vector<double> g = got.to_vector<double>(), w = want.to_vector<double>();
  int64_t bad = 0;
  double worst = 0;
  int64_t worst_i = -1;
  for (size_t i = 0; i < g.size(); ++i) {
    if (std::isnan(w[i]) && std::isnan(g[i])) continue;
    if (std::isinf(w[i]) && g[i] == w[i]) continue;
    double err = std::abs(g[i] - w[i]);
    if (!(err <= atol + rtol * std::abs(w[i]))) {
      ++bad;
      if (!(err <= worst)) {
        worst = err;
        worst_i = static_cast<int64_t>(i);
      }
    }
  }
  if (bad > 0) {
    INFO("first worst element " << worst_i << ": got " << g[worst_i] << ", want " << w[worst_i]);
    CHECK(bad == 0);
  }
}

/// The exact same bytes (after conversion to double).
void expect_equal(const Tensor& got, const Tensor& want, const char* what = "") { expect_close(got, want, 0, 0, what); }

Tensor gpu(const Tensor& t) { return t.to(kCUDA); }

/// Random values of dtype `dt` on the CPU: normals scaled for floats, small integers otherwise.
Tensor sample(const Shape& s, DType dt, double scale = 2.0) {
  Tensor x = randn(s, kFloat64) * scale;
  if (is_floating(dt)) return x.to(dt);
  if (dt == kBool) return gt(x, 0.0);
  if (dt == kUInt8) return (x.abs() * 10.0).to(kInt64).to(kUInt8);
  return (x * 10.0).to(kInt64).to(dt);
}

const DType kAllDTypes[] = {kBool, kUInt8, kInt32, kInt64, kFloat16, kBFloat16, kFloat32, kFloat64};

}  // namespace

TEST_CASE("cuda: runtime queries") {
  EMBER_REQUIRE_GPU();
  CHECK(cuda::device_count() >= 1);
  CHECK(ember::cuda_device_count() == cuda::device_count());
  cuda::synchronize();
  bool before = cuda::allow_tf32();
  cuda::set_allow_tf32(true);
  CHECK(cuda::allow_tf32());
  cuda::set_allow_tf32(before);
}

TEST_CASE("cuda: host/device round trips keep every dtype's bytes") {
  EMBER_REQUIRE_GPU();
  for (DType dt : kAllDTypes) {
    INFO(dt);
    Tensor x = sample({3, 5, 7}, dt);
    Tensor d = gpu(x);
    CHECK(d.is_cuda());
    CHECK(d.dtype() == dt);
    expect_equal(d.cpu(), x, "round trip");
    // Non-contiguous source on the device, non-contiguous destination on the host.
    expect_equal(d.transpose(0, 2).cpu(), x.transpose(0, 2), "transposed d2h");
    Tensor host_dst = zeros({7, 5, 3}, dt).transpose(0, 2);
    host_dst.copy_(d);
    expect_equal(host_dst, x, "d2h into a strided host tensor");
    Tensor dev_dst = zeros({7, 5, 3}, TensorOptions(dt).device(kCUDA)).transpose(0, 2);
    dev_dst.copy_(x);
    expect_equal(dev_dst.cpu(), x, "h2d into a strided device tensor");
  }
}

TEST_CASE("cuda: dtype conversion matches the CPU for all 64 pairs") {
  EMBER_REQUIRE_GPU();
  for (DType from : kAllDTypes) {
    Tensor x = sample({4, 33}, from, 40.0);
    Tensor d = gpu(x);
    for (DType to : kAllDTypes) {
      INFO(from << " -> " << to);
      expect_equal(d.to(to).cpu(), x.to(to), "contiguous");
      expect_equal(d.t().to(to).cpu(), x.t().to(to), "transposed");
    }
  }
}

TEST_CASE("cuda: strided and broadcast copies") {
  EMBER_REQUIRE_GPU();
  Tensor x = randn({6, 8, 5});
  Tensor d = gpu(x);
  expect_equal(d.permute({2, 0, 1}).contiguous().cpu(), x.permute({2, 0, 1}).contiguous());
  expect_equal(d.slice(1, 1, 8, 3).contiguous().cpu(), x.slice(1, 1, 8, 3).contiguous());
  expect_equal(d.select(2, 3).contiguous().cpu(), x.select(2, 3).contiguous());
  Tensor row = randn({1, 5});
  Tensor dst = zeros({4, 5}, kCUDA);
  dst.copy_(gpu(row));
  expect_equal(dst.cpu(), row.expand({4, 5}).contiguous());
  // copy_ with conversion into a sliced destination leaves the rest alone.
  Tensor big = zeros({4, 6}, TensorOptions(kFloat64).device(kCUDA));
  Tensor part = big.slice(1, 1, 6, 2);
  part.copy_(gpu(randn({4, 3})));
  Tensor host = big.cpu();
  CHECK(host.select(1, 0).abs().sum().item<double>() == 0.0);
  CHECK(host.select(1, 2).abs().sum().item<double>() == 0.0);
  // Empty tensors move without touching the device.
  CHECK(gpu(zeros({0, 3})).cpu().numel() == 0);
}

TEST_CASE("cuda: fill for every dtype, including strided views") {
  EMBER_REQUIRE_GPU();
  for (DType dt : kAllDTypes) {
    INFO(dt);
    Tensor d = full({3, 4}, 1.5, TensorOptions(dt).device(kCUDA));
    expect_equal(d.cpu(), full({3, 4}, 1.5, dt));
    Tensor z = zeros({5, 6}, TensorOptions(dt).device(kCUDA));
    z.t().slice(0, 0, 6, 2).fill_(1);
    Tensor zc = zeros({5, 6}, dt);
    zc.t().slice(0, 0, 6, 2).fill_(1);
    expect_equal(z.cpu(), zc);
  }
  Tensor s = scalar_tensor(-7, TensorOptions(kInt64).device(kCUDA));
  CHECK(s.item<int64_t>() == -7);
}

TEST_CASE("cuda: binary ops match the CPU with broadcasting and strides") {
  EMBER_REQUIRE_GPU();
  const BinaryOp ops[] = {BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div, BinaryOp::Pow,
                          BinaryOp::Maximum, BinaryOp::Minimum, BinaryOp::Eq, BinaryOp::Ne, BinaryOp::Lt,
                          BinaryOp::Le, BinaryOp::Gt, BinaryOp::Ge, BinaryOp::LogicalAnd, BinaryOp::LogicalOr};
  for (DType dt : {kFloat32, kFloat64, kInt32, kInt64, kUInt8}) {
    Tensor a = sample({5, 1, 7}, dt);
    Tensor b = sample({7, 6}, dt).t();  // non-contiguous [6, 7], broadcast against a
    if (!is_floating(dt)) b = b.abs().clamp(0, 4);  // keep Pow finite and exact
    Tensor da = gpu(a), db = gpu(b);
    for (BinaryOp op : ops) {
      if (op == BinaryOp::Div && !is_floating(dt)) continue;  // true division promotes first
      if (op == BinaryOp::Pow && dt == kUInt8) continue;       // overflowing casts differ (UB in C++)
      INFO(dt << " op " << static_cast<int>(op));
      double tol = dt == kFloat32 ? 1e-5 : 1e-12;
      expect_close(binary_kernel(op, da, db, 0.5).cpu(), binary_kernel(op, a, b, 0.5), tol, tol);
    }
  }
  // Public spellings, scalars and bool arithmetic.
  Tensor x = randn({4, 5}), y = randn({5});
  Tensor dx = gpu(x), dy = gpu(y);
  expect_close((dx + dy * 2.0 - dx / (dy.abs() + 1.0)).cpu(), x + y * 2.0 - x / (y.abs() + 1.0), 1e-6, 1e-6);
  expect_close(add(dx, dy, 3).cpu(), add(x, y, 3), 1e-6, 1e-6);
  expect_equal((dx > 0.5).cpu(), x > 0.5);
  Tensor bx = x > 0, by = y > 0;
  expect_equal((gpu(bx) + gpu(by)).cpu(), bx + by);
  expect_equal((gpu(bx) * gpu(by)).cpu(), bx * by);
  CHECK_THROWS_AS(sub(gpu(bx), gpu(by)), ember::Error);
  // NaN propagates through maximum/minimum as on the CPU.
  Tensor n = tensor<float>({1.f, std::numeric_limits<float>::quiet_NaN(), 3.f});
  Tensor m = tensor<float>({2.f, 0.f, std::numeric_limits<float>::quiet_NaN()});
  expect_equal(binary_kernel(BinaryOp::Maximum, gpu(n), gpu(m)).cpu(), binary_kernel(BinaryOp::Maximum, n, m));
  // In place on a strided device tensor, broadcast operand.
  Tensor z = randn({6, 4}), r = randn({6});
  Tensor dz = gpu(z);
  {
    NoGradGuard ng;
    z.t().add_(r, 2);
    dz.t().add_(gpu(r), 2);
  }
  expect_close(dz.cpu(), z, 1e-6, 1e-6);
}

TEST_CASE("cuda: every unary op matches the CPU") {
  EMBER_REQUIRE_GPU();
  const UnaryOp float_ops[] = {UnaryOp::Neg, UnaryOp::Exp, UnaryOp::Log, UnaryOp::Log1p, UnaryOp::Expm1,
                               UnaryOp::Sqrt, UnaryOp::Rsqrt, UnaryOp::Abs, UnaryOp::Sign, UnaryOp::Square,
                               UnaryOp::Reciprocal, UnaryOp::Sin, UnaryOp::Cos, UnaryOp::Tanh, UnaryOp::Sigmoid,
                               UnaryOp::Relu, UnaryOp::LeakyRelu, UnaryOp::Elu, UnaryOp::GeluErf, UnaryOp::GeluTanh,
                               UnaryOp::Softplus, UnaryOp::Silu, UnaryOp::Clamp, UnaryOp::ClampMin, UnaryOp::ClampMax,
                               UnaryOp::PowScalar, UnaryOp::Floor, UnaryOp::Ceil, UnaryOp::Round,
                               UnaryOp::LogicalNot, UnaryOp::IsNan};
  for (DType dt : {kFloat32, kFloat64}) {
    Tensor x = sample({40, 9}, dt, 3.0).t();  // strided input
    Tensor pos = x.abs() + 0.1;
    Tensor dx = gpu(x), dpos = gpu(pos);
    for (UnaryOp op : float_ops) {
      INFO(dt << " op " << static_cast<int>(op));
      bool needs_pos = op == UnaryOp::Log || op == UnaryOp::Sqrt || op == UnaryOp::Rsqrt || op == UnaryOp::PowScalar;
      const Tensor& in = needs_pos ? pos : x;
      const Tensor& din = needs_pos ? dpos : dx;
      double alpha = 0.2, beta = 1.5;  // slope/alpha/beta/min/exponent, threshold/max
      if (op == UnaryOp::PowScalar) alpha = 2.5;
      if (op == UnaryOp::Clamp) alpha = -0.5;
      double tol = dt == kFloat32 ? 2e-6 : 1e-13;
      expect_close(unary_kernel(op, din, alpha, beta).cpu(), unary_kernel(op, in, alpha, beta), tol, tol);
    }
    // The PowScalar special cases and the Round tie rule.
    for (double e : {2.0, 1.0, 0.5, -1.0, 3.0, -2.0})
      expect_close(unary_kernel(UnaryOp::PowScalar, dpos, e).cpu(), unary_kernel(UnaryOp::PowScalar, pos, e), 1e-6, 1e-6);
    Tensor ties = tensor<double>({-2.5, -1.5, -0.5, 0.5, 1.5, 2.5}).to(dt);
    expect_equal(ember::round(gpu(ties)).cpu(), ember::round(ties));
  }
  // Integer ops and the float functions on integers (computed in float32).
  for (DType dt : {kInt32, kInt64, kUInt8}) {
    Tensor x = sample({7, 6}, dt);
    Tensor dx = gpu(x);
    for (UnaryOp op : {UnaryOp::Neg, UnaryOp::Abs, UnaryOp::Sign, UnaryOp::Square, UnaryOp::Relu, UnaryOp::Clamp,
                       UnaryOp::ClampMin, UnaryOp::ClampMax, UnaryOp::PowScalar, UnaryOp::Floor, UnaryOp::LogicalNot,
                       UnaryOp::IsNan, UnaryOp::Exp, UnaryOp::Sigmoid}) {
      INFO(dt << " op " << static_cast<int>(op));
      expect_close(unary_kernel(op, dx, 3, 9).cpu(), unary_kernel(op, x, 3, 9), 2e-6, 2e-6);
    }
  }
  // float16 / bfloat16 compute in float: compare with the float32 CPU result, rounded.
  for (DType dt : {kFloat16, kBFloat16}) {
    Tensor x = sample({64}, dt, 1.5);
    Tensor dx = gpu(x);
    for (UnaryOp op : {UnaryOp::Exp, UnaryOp::Tanh, UnaryOp::Sigmoid, UnaryOp::GeluErf, UnaryOp::Relu, UnaryOp::Neg}) {
      INFO(dt << " op " << static_cast<int>(op));
      Tensor want = unary_kernel(op, x.to(kFloat32)).to(dt);
      expect_close(unary_kernel(op, dx).cpu(), want, dt == kFloat16 ? 2e-3 : 1e-2, 1e-3);
    }
  }
  // Public spellings.
  Tensor x = randn({3, 4});
  expect_close(gpu(x).sigmoid().cpu(), x.sigmoid(), 1e-6, 1e-6);
  expect_close(gpu(x).clamp(-0.5, 0.5).cpu(), x.clamp(-0.5, 0.5), 0, 0);
  expect_close(gpu(x).pow(3).cpu(), x.pow(3), 1e-6, 1e-6);
  CHECK_THROWS_AS(unary_kernel(UnaryOp::Neg, gpu(x > 0)), ember::Error);
}

TEST_CASE("cuda: where") {
  EMBER_REQUIRE_GPU();
  Tensor c = randn({4, 5}) > 0, a = randn({4, 5}), b = randn({5});
  Tensor out = empty({4, 5}, kCUDA);
  Tensor dc = gpu(c), da = gpu(a), db = gpu(b);
  cuda::where(cuda::arg(out), cuda::arg(dc), cuda::arg(da), cuda::arg(db, out.sizes()));
  std::vector<float> av = a.to_vector<float>(), bv = b.to_vector<float>(), ov = out.to_vector<float>();
  std::vector<bool> cb;
  for (bool v : c.to_vector<bool>()) cb.push_back(v);
  for (int i = 0; i < 20; ++i) CHECK(ov[i] == (cb[i] ? av[i] : bv[i % 5]));
}

TEST_CASE("cuda: reductions match the CPU") {
  EMBER_REQUIRE_GPU();
  const ReduceOp ops[] = {ReduceOp::Sum, ReduceOp::Prod, ReduceOp::Max, ReduceOp::Min, ReduceOp::ArgMax, ReduceOp::ArgMin};
  // Short rows (warp per row) and long rows (block per row), several dim sets.
  for (DType dt : {kFloat32, kFloat64, kInt32, kInt64}) {
    for (Shape shape : {Shape{37, 5}, Shape{3, 1000}, Shape{4, 6, 300}}) {
      Tensor x = sample(shape, dt, 1.0);
      if (is_floating(dt)) x = x.clone() * 0.5 + 1.0;  // keep products finite
      else x = x.clamp(-2, 2);
      Tensor dx = gpu(x);
      for (ReduceOp op : ops) {
        for (Shape dims : {Shape{-1}, Shape{0}, Shape{}}) {
          bool arg = op == ReduceOp::ArgMax || op == ReduceOp::ArgMin;
          if (arg && dims.size() != 1) continue;
          INFO(dt << " shape " << shape << " dims " << dims << " op " << static_cast<int>(op));
          double tol = op == ReduceOp::Prod ? 1e-5 : (dt == kFloat32 ? 1e-6 : 1e-12);
          if (op == ReduceOp::Prod && !is_floating(dt)) tol = 0;
          expect_close(reduce_kernel(op, dx, dims, false, "t").cpu(), reduce_kernel(op, x, dims, false, "t"), tol, tol);
        }
      }
    }
  }
  // Sums keep the CPU's double accumulation: a long float32 row agrees to float rounding.
  Tensor big = randn({1, 1 << 20}) + 3.0;
  expect_close(gpu(big).sum().cpu(), big.sum(), 1e-6, 0);
  // NaN wins max/min/argmax, first occurrence; ties go to the first index.
  float nan = std::numeric_limits<float>::quiet_NaN();
  Tensor t = tensor<float>({1.f, 5.f, nan, 5.f, nan, -3.f, 5.f, 2.f}, {2, 4});
  for (ReduceOp op : ops)
    expect_equal(reduce_kernel(op, gpu(t), {1}, false, "t").cpu(), reduce_kernel(op, t, {1}, false, "t"));
  Tensor ties = tensor<float>({2.f, 7.f, 7.f, 1.f, 1.f});
  CHECK(gpu(ties).argmax(0).item<int64_t>() == 1);
  CHECK(gpu(ties).argmin(0).item<int64_t>() == 3);
  // Integer and bool sums promote to int64 like the CPU.
  Tensor b = randn({50}) > 0;
  CHECK(gpu(b).sum().item<int64_t>() == b.sum().item<int64_t>());
  // float16/bfloat16 rows reduce on the GPU (accumulated in double).
  Tensor h = sample({8, 500}, kFloat16, 1.0);
  expect_close(reduce_kernel(ReduceOp::Sum, gpu(h), {1}, false, "t").cpu().to(kFloat32),
               reduce_kernel(ReduceOp::Sum, h.to(kFloat32), {1}, false, "t"), 2e-3, 2e-2);
  expect_equal(reduce_kernel(ReduceOp::Max, gpu(h), {1}, false, "t").cpu().to(kFloat32),
               reduce_kernel(ReduceOp::Max, h.to(kFloat32), {1}, false, "t"));
}

TEST_CASE("cuda: softmax and log_softmax match the CPU") {
  EMBER_REQUIRE_GPU();
  for (DType dt : {kFloat32, kFloat64}) {
    for (Shape shape : {Shape{7, 10}, Shape{3, 2000}, Shape{2, 5, 3}}) {
      Tensor x = sample(shape, dt, 4.0);
      Tensor dx = gpu(x);
      double tol = dt == kFloat32 ? 1e-6 : 1e-13;
      for (int64_t dim : {-1, 0}) {
        INFO(dt << " shape " << shape << " dim " << dim);
        expect_close(softmax(dx, dim).cpu(), softmax(x, dim), tol, tol);
        expect_close(log_softmax(dx, dim).cpu(), log_softmax(x, dim), tol, tol);
      }
    }
  }
  // Direct launcher: large logits stay finite, -inf gives 0 / -inf, a NaN poisons its row.
  float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  Tensor x = gpu(tensor<float>({1000.f, 1001.f, -inf, 0.f, nan, 1.f}, {2, 3}));
  Tensor y = empty({2, 3}, kCUDA), ly = empty({2, 3}, kCUDA);
  cuda::softmax_last(cuda::arg(y), cuda::arg(x), 2, 3, false);
  cuda::softmax_last(cuda::arg(ly), cuda::arg(x), 2, 3, true);
  std::vector<float> v = y.to_vector<float>(), lv = ly.to_vector<float>();
  CHECK(v[0] == doctest::Approx(1.0 / (1.0 + std::exp(1.0))).epsilon(1e-6));
  CHECK(v[2] == 0.f);
  CHECK(lv[2] == -inf);
  CHECK(std::isnan(v[3]));
  CHECK(std::isnan(lv[5]));
  // float16 on the GPU against float32 on the CPU.
  Tensor h = sample({4, 33}, kFloat16, 2.0);
  Tensor hy = empty({4, 33}, TensorOptions(kFloat16).device(kCUDA));
  cuda::softmax_last(cuda::arg(hy), cuda::arg(gpu(h)), 4, 33, false);
  expect_close(hy.cpu().to(kFloat32), softmax(h.to(kFloat32), -1), 2e-3, 1e-4);
}

TEST_CASE("cuda: rand and randn draw the CPU's numbers") {
  EMBER_REQUIRE_GPU();
  for (DType dt : {kFloat32, kFloat64}) {
    INFO(dt);
    manual_seed(1234);
    Tensor c1 = rand({1000}, dt);
    Tensor c2 = randn({3, 333}, dt);
    Tensor c3 = empty({50}, dt).uniform_(-2, 5);
    Tensor c4 = empty({50}, dt).normal_(1, 3);
    manual_seed(1234);
    Tensor g1 = rand({1000}, TensorOptions(dt).device(kCUDA));
    Tensor g2 = randn({3, 333}, TensorOptions(dt).device(kCUDA));
    Tensor g3 = empty({50}, TensorOptions(dt).device(kCUDA)).uniform_(-2, 5);
    Tensor g4 = empty({50}, TensorOptions(dt).device(kCUDA)).normal_(1, 3);
    expect_equal(g1.cpu(), c1, "rand");
    expect_equal(g3.cpu(), c3, "uniform_");
    // log/cos may differ from glibc's in the last bit of a double.
    double tol = dt == kFloat32 ? 1e-6 : 1e-13;
    expect_close(g2.cpu(), c2, tol, tol, "randn");
    expect_close(g4.cpu(), c4, tol, tol, "normal_");
  }
  // A non-contiguous target is filled through a temporary, same stream as the CPU.
  manual_seed(7);
  Tensor c = empty({6, 4}).t();
  c.uniform_();
  manual_seed(7);
  Tensor g = empty({6, 4}, kCUDA).t();
  g.uniform_();
  expect_equal(g.cpu(), c);
  // float16 draws on the GPU are the float32 draws rounded.
  manual_seed(9);
  Tensor f = rand({100});
  manual_seed(9);
  Tensor hf = rand({100}, TensorOptions(kFloat16).device(kCUDA));
  expect_equal(hf.cpu(), f.to(kFloat16));
}

TEST_CASE("cuda: index_select, index_add, gather, scatter_add match the CPU") {
  EMBER_REQUIRE_GPU();
  for (DType dt : {kFloat32, kFloat64, kInt64, kInt32}) {
    Tensor x = sample({5, 7, 3}, dt);
    Tensor dx = gpu(x);
    for (int64_t dim : {0, 1, 2}) {
      INFO(dt << " dim " << dim);
      int64_t n = x.size(dim);
      Tensor idx = tensor<int64_t>({n - 1, 0, 1 % n, 1 % n, n - 2});  // repeats accumulate in index_add
      Tensor didx = gpu(idx);
      Tensor sel = index_select(x, dim, idx);
      expect_equal(index_select(dx, dim, didx).cpu(), sel);
      expect_equal(index_select(dx, dim, gpu(idx.to(kInt32))).cpu(), sel);
      Tensor src = sample(sel.sizes(), dt);
      double tol = dt == kFloat32 ? 1e-6 : 1e-12;
      expect_close(index_add(dx, dim, didx, gpu(src)).cpu(), index_add(x, dim, idx, src), tol, tol);
      // gather/scatter_add with an index of x's rank (smaller along the other dims).
      Shape is = x.sizes();
      is[dim] = 4;
      if (dim != 0) is[0] = 3;
      Tensor gidx = (rand(is, kFloat64) * static_cast<double>(n)).to(kInt64).clamp(0, n - 1);
      expect_equal(gather(dx, dim, gpu(gidx)).cpu(), gather(x, dim, gidx));
      Tensor gsrc = sample(is, dt);
      expect_close(scatter_add(dx, dim, gpu(gidx), gpu(gsrc)).cpu(), scatter_add(x, dim, gidx, gsrc), tol, tol);
    }
  }
  // Direct launchers for the dtypes the CPU path does not compute: float16, bfloat16, uint8.
  for (DType dt : {kFloat16, kBFloat16, kUInt8}) {
    INFO(dt);
    Tensor src = ones({2, 6, 3}, TensorOptions(dt).device(kCUDA));
    Tensor idx = gpu(tensor<int64_t>({1, 1, 0, 3, 1, 0}));
    Tensor out = full({2, 4, 3}, 9, TensorOptions(dt).device(kCUDA));
    cuda::index_add(cuda::arg(out), cuda::arg(src), cuda::arg(idx), 2, 4, 3);  // zeroes out first
    std::vector<float> v = out.to_vector<float>();
    // counts per destination row: row0 = 2, row1 = 3, row2 = 0, row3 = 1
    const float want[4] = {2, 3, 0, 1};
    for (int o = 0; o < 2; ++o)
      for (int r = 0; r < 4; ++r)
        for (int i = 0; i < 3; ++i) CHECK(v[(o * 4 + r) * 3 + i] == want[r]);
  }
  // Autograd through index_select on the device.
  Tensor w = randn({6, 3}, TensorOptions(kFloat64).requires_grad(true));
  Tensor dw = gpu(w.detach()).requires_grad_(true);
  Tensor idx = tensor<int64_t>({2, 2, 5, 0});
  (index_select(w, 0, idx) * 2.0).sum().backward();
  (index_select(dw, 0, gpu(idx)) * 2.0).sum().backward();
  expect_close(dw.grad().cpu(), w.grad(), 1e-12, 1e-12);
}

TEST_CASE("cuda: gemm through cuBLAS matches the CPU (all transposes, batched, 4 dtypes)") {
  EMBER_REQUIRE_GPU();
  for (DType dt : {kFloat64, kFloat32}) {
    double tol = dt == kFloat64 ? 1e-12 : 1e-4;
    Tensor a = sample({13, 17}, dt, 1.0), b = sample({17, 11}, dt, 1.0);
    Tensor da = gpu(a), db = gpu(b);
    INFO(dt);
    expect_close(matmul(da, db).cpu(), matmul(a, b), tol, tol, "NN");
    expect_close(matmul(gpu(a.t().contiguous()).t(), db).cpu(), matmul(a, b), tol, tol, "TN");
    expect_close(matmul(da, gpu(b.t().contiguous()).t()).cpu(), matmul(a, b), tol, tol, "NT");
    Tensor ba = sample({4, 5, 6}, dt, 1.0), bb = sample({4, 6, 3}, dt, 1.0);
    expect_close(matmul(gpu(ba), gpu(bb)).cpu(), matmul(ba, bb), tol, tol, "batched");
    expect_close(matmul(gpu(ba), gpu(b.slice(0, 0, 6).slice(1, 0, 3).contiguous())).cpu(),
                 matmul(ba, b.slice(0, 0, 6).slice(1, 0, 3).contiguous()), tol, tol, "broadcast batch");
    Tensor x = sample({8, 17}, dt, 1.0), wt = sample({11, 17}, dt, 1.0), bias = sample({11}, dt, 1.0);
    expect_close(linear(gpu(x), gpu(wt), gpu(bias)).cpu(), linear(x, wt, bias), tol, tol, "linear");
  }
  // Direct launcher: alpha/beta, row-major leading dimensions, float16 and bfloat16.
  for (DType dt : {kFloat32, kFloat16, kBFloat16, kFloat64}) {
    INFO(dt);
    int64_t m = 5, n = 4, k = 3;
    Tensor a = sample({2, m, k}, kFloat64, 1.0), b = sample({2, k, n}, kFloat64, 1.0), c = sample({2, m, n}, kFloat64, 1.0);
    Tensor da = gpu(a.to(dt)), db = gpu(b.to(dt)), dc = gpu(c.to(dt));
    cuda::gemm(dt, false, false, m, n, k, 2.0, da.raw_data(), k, m * k, db.raw_data(), n, k * n, 0.5, dc.raw_data(), n,
               m * n, 2);
    Tensor want = matmul(a.to(dt).to(kFloat64), b.to(dt).to(kFloat64)) * 2.0 + c.to(dt).to(kFloat64) * 0.5;
    double tol = dt == kFloat64 ? 1e-12 : (dt == kFloat32 ? 1e-5 : (dt == kFloat16 ? 5e-3 : 3e-2));
    expect_close(dc.cpu().to(kFloat64), want, tol, tol);
  }
  // TF32 changes float32 products only within TF32 rounding.
  Tensor a = randn({64, 64}), b = randn({64, 64});
  cuda::set_allow_tf32(true);
  Tensor fast = matmul(gpu(a), gpu(b)).cpu();
  cuda::set_allow_tf32(false);
  expect_close(fast, matmul(a, b), 1e-2, 5e-2);
  CHECK_THROWS_AS(cuda::gemm(kInt32, false, false, 1, 1, 1, 1.0, nullptr, 1, 1, nullptr, 1, 1, 0.0, nullptr, 1, 1, 1),
                  ember::Error);
}

TEST_CASE("cuda: autograd gives the CPU's gradients, double backward included") {
  EMBER_REQUIRE_GPU();
  Tensor x0 = randn({4, 3}, kFloat64), w0 = randn({3, 5}, kFloat64), b0 = randn({5}, kFloat64);
  auto run = [&](Device dev) {
    Tensor x = x0.to(dev).requires_grad_(true), w = w0.to(dev).requires_grad_(true), b = b0.to(dev).requires_grad_(true);
    Tensor h = (matmul(x, w) + b).tanh();
    Tensor y = (log_softmax(h * 3.0, -1) * h.sigmoid()).sum() + (x * x).exp().sum() / 10.0;
    tensor_list g = autograd::grad({y}, {x, w, b}, {}, std::nullopt, /*create_graph=*/true);
    // A gradient penalty: differentiate the squared gradient norm again.
    Tensor pen = (g[0] * g[0]).sum() + (g[1] * g[1]).sum();
    tensor_list gg = autograd::grad({pen}, {x, w, b});
    return tensor_list{g[0].detach(), g[1].detach(), g[2].detach(), gg[0], gg[1], gg[2]};
  };
  tensor_list cpu = run(kCPU), dev = run(kCUDA);
  for (size_t i = 0; i < cpu.size(); ++i) {
    INFO("gradient " << i);
    CHECK(dev[i].is_cuda());
    expect_close(dev[i].cpu(), cpu[i], 1e-10, 1e-10);
  }
  // backward() accumulates into .grad on the device.
  Tensor p = randn({3}, TensorOptions(kFloat32).device(kCUDA).requires_grad(true));
  (p * p).sum().backward();
  (p * 3.0).sum().backward();
  expect_close(p.grad().cpu(), p.detach().cpu() * 2.0 + 3.0, 1e-6, 1e-6);
}

TEST_CASE("cuda: the caching allocator reuses blocks and keeps consistent stats") {
  EMBER_REQUIRE_GPU();
  cuda::synchronize();
  auto step = [] {
    Tensor a = randn({256, 128}, kCUDA);      // 128 KiB: small pool
    Tensor b = randn({1024, 1024}, kCUDA);    // 4 MiB: large pool
    Tensor c = (matmul(a.t(), a) + 1.0).relu();
    Tensor d = b.sum({0}) * 2.0;
    return c.sum().item<float>() + d.sum().item<float>();
  };
  for (int i = 0; i < 3; ++i) step();  // warm-up
  uint64_t mallocs = cuda::num_device_mallocs();
  size_t base = cuda::memory_allocated();
  for (int i = 0; i < 20; ++i) step();
  CHECK(cuda::num_device_mallocs() == mallocs);
  CHECK(cuda::memory_allocated() == base);

  cuda::reset_peak_memory_stats();
  CHECK(cuda::max_memory_allocated() == cuda::memory_allocated());
  {
    Tensor t = empty({1000}, kCUDA);  // 4000 bytes, rounded to 4096
    CHECK(cuda::memory_allocated() == base + 4096);
    CHECK(cuda::max_memory_allocated() >= base + 4096);
    CHECK(cuda::memory_reserved() >= cuda::memory_allocated());
    Tensor big = empty({3 << 20}, kCUDA);  // 12 MiB
    CHECK(cuda::memory_allocated() >= base + (size_t{12} << 20));
  }
  CHECK(cuda::memory_allocated() == base);
  CHECK(cuda::max_memory_allocated() >= base + (size_t{12} << 20));
  size_t reserved = cuda::memory_reserved();
  cuda::empty_cache();
  CHECK(cuda::memory_reserved() <= reserved);
  CHECK(cuda::memory_reserved() >= cuda::memory_allocated());
  // After empty_cache the next allocation of a big block must go to the driver again.
  uint64_t before = cuda::num_device_mallocs();
  { Tensor again = empty({3 << 20}, kCUDA); }
  CHECK(cuda::num_device_mallocs() == before + 1);
  // An impossible request fails with ember::Error naming the sizes, never aborts.
  try {
    cuda::allocate(size_t{1} << 50, 0);
    CHECK_MESSAGE(false, "expected out of memory");
  } catch (const ember::Error& e) {
    CHECK(std::string(e.what()).find("out of memory") != std::string::npos);
  }
  CHECK_THROWS_AS(cuda::allocate(16, 99), ember::Error);
  cuda::deallocate(nullptr, 0);  // no-ops
  int local = 0;
  cuda::deallocate(&local, 0);
}

TEST_CASE("cuda: errors name the op") {
  EMBER_REQUIRE_GPU();
  Tensor a = randn({2, 3}, kCUDA), b = randn({2, 3});
  try {
    (void)(a + b);
    CHECK_MESSAGE(false, "expected a device mismatch error");
  } catch (const ember::Error& e) {
    CHECK(std::string(e.what()).find("add") != std::string::npos);
  }
  CHECK_THROWS_AS(cuda::softmax_last(cuda::arg(a), cuda::arg(gpu(tensor<int64_t>({1, 2}))), 1, 2, false), ember::Error);
}

TEST_CASE("cuda: whole-tensor reductions of long rows (two-pass path) match the CPU") {
  EMBER_REQUIRE_GPU();
  manual_seed(21);
  Tensor x = randn({3 << 20});  // 3M elements: long enough for the two-pass reduction
  Tensor g = x.to(kCUDA);
  CHECK(g.sum().item<double>() == doctest::Approx(x.sum().item<double>()).epsilon(1e-4));
  CHECK(g.max().item<float>() == x.max().item<float>());
  CHECK(g.min().item<float>() == x.min().item<float>());
  CHECK(ones({1 << 21}, kCUDA).sum().item<float>() == 2097152.0f);
  Tensor i = arange(int64_t{1} << 21).to(kCUDA);
  CHECK(i.sum().item<int64_t>() == (int64_t{1} << 21) * ((int64_t{1} << 21) - 1) / 2);
  CHECK(ember::argmax(g).item<int64_t>() == ember::argmax(x).item<int64_t>());
}

#endif  // EMBER_WITH_CUDA

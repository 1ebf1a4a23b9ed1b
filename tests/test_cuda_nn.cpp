#include <doctest/doctest.h>

#include "ember/ember.hpp"
#include "ember/cuda/device.hpp"

// CUDA convolution and pooling (kernels/conv.cu, kernels/pool.cu) against naive CPU references
// written here, and the conv/pool ops and a small CNN on CUDA against the CPU. Without the CUDA
// backend or a GPU every case prints why and passes.

#ifndef EMBER_WITH_CUDA

TEST_CASE("cuda: nn layers (backend not built)") {
  CHECK_FALSE(ember::cuda_is_available());
  MESSAGE("CUDA nn tests skipped: Ember was built without the CUDA backend (link ember::cuda)");
}

#else

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "ember/cuda/cudnn.hpp"
#include "ember/cuda/dnn.hpp"
#include "ember/cuda/optim.hpp"
#include "ember/cuda/runtime.hpp"
#if __has_include("ember/ops/conv.hpp")
#include "ember/ops/conv.hpp"
#define EMBER_NN_HAVE_CONV_OPS 1
#endif
#if __has_include("ember/ops/pool.hpp") && __has_include("ember/ops/batch_norm.hpp")
#include "ember/ops/batch_norm.hpp"
#include "ember/ops/pool.hpp"
#define EMBER_NN_HAVE_POOL_OPS 1
#endif

using namespace ember;

namespace {

#define EMBER_NN_REQUIRE_GPU()                         \
  do {                                                 \
    if (!ember::cuda_is_available()) {                 \
      MESSAGE("CUDA nn tests skipped: no GPU visible"); \
      return;                                          \
    }                                                  \
  } while (0)

/// Same shape, every element within atol + rtol * |expected| (NaN matches NaN); reports the worst.
void expect_close(const Tensor& got, const Tensor& want, double rtol, double atol, const std::string& what = "") {
  INFO(what);
  REQUIRE(got.sizes() == want.sizes());
  std::vector<double> g = got.to(kFloat64).cpu().to_vector<double>(), w = want.to(kFloat64).cpu().to_vector<double>();
  int64_t bad = 0, worst_i = -1;
  double worst = 0;
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
    INFO(bad << " of " << g.size() << " elements differ; worst at " << worst_i << ": got " << g[worst_i] << ", want "
              << w[worst_i]);
    CHECK(bad == 0);
  }
}

/// Tolerance (rtol = atol) for results of one dtype against a float64 reference computed from
/// the same (rounded) inputs; the sums here have at most a few hundred terms of size ~1.
double tol_for(DType dt) {
  switch (dt) {
    case DType::Float64: return 1e-10;
    case DType::Float32: return 1e-4;
    case DType::Float16: return 1e-2;
    default: return 6e-2;  // bfloat16: 8 significant bits
  }
}

const DType kFloatTypes[] = {kFloat64, kFloat32, kFloat16, kBFloat16};

/// Values of dtype dt (on the CPU), rounded once so the reference sees exactly what the GPU sees.
Tensor sample(const Shape& s, DType dt, double scale = 1.0) { return (randn(s, kFloat64) * scale).to(dt); }

Tensor dev_empty(const Shape& s, DType dt) { return empty(s, TensorOptions(dt).device(kCUDA)); }

// ---- naive references (float64, straight from the definitions) ------------------------------------

int64_t conv_out(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d) { return (in + 2 * p - d * (k - 1) - 1) / s + 1; }

cuda::ConvParams conv_params(DType dt, int64_t n, int64_t c, int64_t h, int64_t w, int64_t o, int64_t kh, int64_t kw,
                             int64_t s, int64_t p, int64_t d, int64_t groups) {
  cuda::ConvParams q;
  q.dtype = dt;
  q.n = n, q.c = c, q.h = h, q.w = w, q.o = o, q.kh = kh, q.kw = kw, q.groups = groups;
  q.stride[0] = s, q.stride[1] = s + (s > 1 ? 1 : 0);  // unequal strides in h and w when strided
  q.pad[0] = p, q.pad[1] = p > 0 ? p - 1 : 0;
  q.dil[0] = d, q.dil[1] = d;
  q.oh = conv_out(h, kh, q.stride[0], q.pad[0], d);
  q.ow = conv_out(w, kw, q.stride[1], q.pad[1], d);
  return q;
}

/// Calls f(n, oc, oy, ox, ic, ki, kj, iy, ix) for every multiply of the convolution that hits x.
template <typename F>
void each_tap(const cuda::ConvParams& p, F f) {
  int64_t cg = p.c / p.groups, og = p.o / p.groups;
  for (int64_t n = 0; n < p.n; ++n)
    for (int64_t oc = 0; oc < p.o; ++oc)
      for (int64_t oy = 0; oy < p.oh; ++oy)
        for (int64_t ox = 0; ox < p.ow; ++ox)
          for (int64_t icg = 0; icg < cg; ++icg)
            for (int64_t ki = 0; ki < p.kh; ++ki)
              for (int64_t kj = 0; kj < p.kw; ++kj) {
                int64_t iy = oy * p.stride[0] - p.pad[0] + ki * p.dil[0];
                int64_t ix = ox * p.stride[1] - p.pad[1] + kj * p.dil[1];
                if (iy < 0 || iy >= p.h || ix < 0 || ix >= p.w) continue;
                f(n, oc, oy, ox, (oc / og) * cg + icg, icg, ki, kj, iy, ix);
              }
}

struct ConvRef {
  std::vector<double> y, dx, dw;
};

ConvRef conv_reference(const cuda::ConvParams& p, const Tensor& x, const Tensor& w, const Tensor& dy) {
  std::vector<double> xv = x.to(kFloat64).to_vector<double>(), wv = w.to(kFloat64).to_vector<double>(),
                      gv = dy.to(kFloat64).to_vector<double>();
  ConvRef r;
  r.y.assign(p.n * p.o * p.oh * p.ow, 0.0);
  r.dx.assign(xv.size(), 0.0);
  r.dw.assign(wv.size(), 0.0);
  int64_t cg = p.c / p.groups;
  each_tap(p, [&](int64_t n, int64_t oc, int64_t oy, int64_t ox, int64_t ic, int64_t icg, int64_t ki, int64_t kj,
                  int64_t iy, int64_t ix) {
    int64_t yi = ((n * p.o + oc) * p.oh + oy) * p.ow + ox;
    int64_t xi = ((n * p.c + ic) * p.h + iy) * p.w + ix;
    int64_t wi = ((oc * cg + icg) * p.kh + ki) * p.kw + kj;
    r.y[yi] += xv[xi] * wv[wi];
    r.dx[xi] += gv[yi] * wv[wi];
    r.dw[wi] += gv[yi] * xv[xi];
  });
  return r;
}

Tensor as_tensor(const std::vector<double>& v, const Shape& s) { return tensor(v, s, TensorOptions(kFloat64)); }

/// Runs the three launchers on the GPU and compares them with the reference.
void check_conv_launchers(const cuda::ConvParams& p, const std::string& what) {
  DType dt = p.dtype;
  Shape xs{p.n, p.c, p.h, p.w}, ws{p.o, p.c / p.groups, p.kh, p.kw}, ys{p.n, p.o, p.oh, p.ow};
  Tensor x = sample(xs, dt), w = sample(ws, dt, 0.5), dy = sample(ys, dt);
  ConvRef ref = conv_reference(p, x, w, dy);
  Tensor dx_ = x.to(kCUDA), dw_ = w.to(kCUDA), ddy = dy.to(kCUDA);
  Tensor y = dev_empty(ys, dt), gx = dev_empty(xs, dt), gw = dev_empty(ws, dt);
  cuda::conv2d_forward(p, dx_.raw_data(), dw_.raw_data(), y.raw_data());
  cuda::conv2d_backward_data(p, ddy.raw_data(), dw_.raw_data(), gx.raw_data());
  cuda::conv2d_backward_filter(p, dx_.raw_data(), ddy.raw_data(), gw.raw_data());
  double tol = tol_for(dt);
  // The filter gradient sums over the batch and the output plane: scale its tolerance by that.
  double wtol = tol * std::sqrt(static_cast<double>(p.n * p.oh * p.ow));
  expect_close(y.cpu(), as_tensor(ref.y, ys), tol, tol, what + ": forward");
  expect_close(gx.cpu(), as_tensor(ref.dx, xs), tol, tol, what + ": backward data");
  expect_close(gw.cpu(), as_tensor(ref.dw, ws), tol, wtol, what + ": backward filter");
}

struct PoolRef {
  std::vector<double> y, dx;
  std::vector<int64_t> idx;
};

cuda::PoolParams pool_params(DType dt, int64_t n, int64_t c, int64_t h, int64_t w, int64_t k, int64_t s, int64_t p,
                             int64_t d, bool ceil_mode, bool count_include_pad = true) {
  cuda::PoolParams q;
  q.dtype = dt;
  q.n = n, q.c = c, q.h = h, q.w = w, q.kh = k, q.kw = k + 1;
  q.stride[0] = s, q.stride[1] = s;
  q.pad[0] = p, q.pad[1] = p;
  q.dil[0] = d, q.dil[1] = d;
  q.count_include_pad = count_include_pad;
  auto out = [&](int64_t in, int64_t kk, int64_t pp) {
    int64_t span = d * (kk - 1) + 1;
    int64_t num = in + 2 * pp - span + (ceil_mode ? s - 1 : 0);
    int64_t o = num / s + 1;
    if (ceil_mode && (o - 1) * s >= in + pp) --o;  // the last window must start inside the input or left padding
    return o;
  };
  q.oh = out(h, q.kh, p);
  q.ow = out(w, q.kw, p);
  return q;
}

/// PyTorch's max pooling (first maximum, NaN wins) and its scatter backward, and average
/// pooling with both divisor rules and its backward.
PoolRef pool_reference(const cuda::PoolParams& p, const Tensor& x, const Tensor& dy, bool is_max) {
  std::vector<double> xv = x.to(kFloat64).to_vector<double>(), gv = dy.to(kFloat64).to_vector<double>();
  PoolRef r;
  int64_t planes = p.n * p.c, ohw = p.oh * p.ow, hw = p.h * p.w;
  r.y.assign(planes * ohw, 0.0);
  r.idx.assign(planes * ohw, -1);
  r.dx.assign(planes * hw, 0.0);
  for (int64_t pl = 0; pl < planes; ++pl)
    for (int64_t oy = 0; oy < p.oh; ++oy)
      for (int64_t ox = 0; ox < p.ow; ++ox) {
        int64_t o = pl * ohw + oy * p.ow + ox;
        int64_t y0 = oy * p.stride[0] - p.pad[0], x0 = ox * p.stride[1] - p.pad[1];
        if (is_max) {
          double best = -std::numeric_limits<double>::infinity();
          int64_t bi = -1;
          for (int64_t i = 0; i < p.kh; ++i)
            for (int64_t j = 0; j < p.kw; ++j) {
              int64_t iy = y0 + i * p.dil[0], ix = x0 + j * p.dil[1];
              if (iy < 0 || iy >= p.h || ix < 0 || ix >= p.w) continue;
              double v = xv[pl * hw + iy * p.w + ix];
              if (bi < 0 || v > best || std::isnan(v)) {  // ties keep the first; a later NaN takes over
                best = v;
                bi = iy * p.w + ix;
              }
            }
          r.y[o] = best;
          r.idx[o] = bi;
          r.dx[pl * hw + bi] += gv[o];
        } else {
          int64_t y1 = std::min(y0 + p.kh, p.h + p.pad[0]), x1 = std::min(x0 + p.kw, p.w + p.pad[1]);
          int64_t padded = (y1 - y0) * (x1 - x0);
          int64_t cy0 = std::max<int64_t>(y0, 0), cx0 = std::max<int64_t>(x0, 0);
          int64_t cy1 = std::min(y1, p.h), cx1 = std::min(x1, p.w);
          int64_t div = p.count_include_pad ? padded : (cy1 - cy0) * (cx1 - cx0);
          double sum = 0;
          for (int64_t iy = cy0; iy < cy1; ++iy)
            for (int64_t ix = cx0; ix < cx1; ++ix) {
              sum += xv[pl * hw + iy * p.w + ix];
              r.dx[pl * hw + iy * p.w + ix] += gv[o] / static_cast<double>(div);
            }
          r.y[o] = sum / static_cast<double>(div);
        }
      }
  return r;
}

void check_pool_launchers(const cuda::PoolParams& p, bool is_max, const Tensor& x, const std::string& what) {
  DType dt = p.dtype;
  Shape xs{p.n, p.c, p.h, p.w}, ys{p.n, p.c, p.oh, p.ow};
  Tensor dy = sample(ys, dt);
  PoolRef ref = pool_reference(p, x, dy, is_max);
  Tensor dxin = x.to(kCUDA), ddy = dy.to(kCUDA);
  Tensor y = dev_empty(ys, dt), gx = zeros(xs, TensorOptions(dt).device(kCUDA));
  double tol = tol_for(dt);
  if (is_max) {
    Tensor idx = dev_empty(ys, kInt64);
    cuda::max_pool2d_forward(p, dxin.raw_data(), y.raw_data(), idx.data_ptr<int64_t>());
    cuda::max_pool2d_backward(p, ddy.raw_data(), idx.data_ptr<int64_t>(), gx.raw_data());
    expect_close(y.cpu(), as_tensor(ref.y, ys), 0, 0, what + ": max values (exact)");
    CHECK_MESSAGE(idx.cpu().to_vector<int64_t>() == ref.idx, what << ": max indices");
    expect_close(gx.cpu(), as_tensor(ref.dx, xs), tol, tol, what + ": max backward");
  } else {
    cuda::avg_pool2d_forward(p, dxin.raw_data(), y.raw_data());
    cuda::avg_pool2d_backward(p, ddy.raw_data(), gx.raw_data());
    expect_close(y.cpu(), as_tensor(ref.y, ys), tol, tol, what + ": avg forward");
    expect_close(gx.cpu(), as_tensor(ref.dx, xs), tol, tol, what + ": avg backward");
  }
}

/// Restores cuDNN's switch and TF32 when a test case ends, even on failure.
struct BackendGuard {
  bool cudnn = cuda::cudnn_enabled(), tf32 = cuda::allow_tf32();
  ~BackendGuard() {
    cuda::set_cudnn_enabled(cudnn);
    cuda::set_allow_tf32(tf32);
  }
};

}  // namespace

// ---- launchers against the naive references ----------------------------------------------------------

TEST_CASE("cuda: conv2d launchers match a naive reference (stride, padding, dilation, groups; 4 dtypes)") {
  EMBER_NN_REQUIRE_GPU();
  BackendGuard guard;
  MESSAGE("cuDNN: " << (cuda::cudnn_available() ? "available, version " + std::to_string(cuda::cudnn_version())
                                                : std::string("not available (im2col + cuBLAS fallback)")));
  manual_seed(1);
  struct Geo {
    int64_t n, c, h, w, o, kh, kw, s, p, d, g;
  };
  const Geo geos[] = {
      {2, 3, 9, 8, 4, 3, 3, 1, 1, 1, 1},    // plain 3x3, same padding
      {3, 4, 11, 10, 6, 3, 2, 2, 2, 1, 2},  // strided (2, 3), padded (2, 1), 2 groups, rectangular kernel
      {2, 2, 12, 13, 4, 3, 3, 1, 2, 2, 1},  // dilation 2
      {1, 6, 7, 7, 6, 3, 3, 2, 1, 1, 6},    // depthwise
      {2, 5, 6, 5, 3, 1, 1, 1, 0, 1, 1},    // pointwise
      {2, 1, 28, 28, 8, 5, 5, 3, 0, 1, 1},  // MNIST-sized input, stride (3, 4)
  };
  for (bool use_cudnn : {true, false}) {
    cuda::set_cudnn_enabled(use_cudnn);
    for (DType dt : kFloatTypes) {
      for (const Geo& g : geos) {
        cuda::ConvParams p = conv_params(dt, g.n, g.c, g.h, g.w, g.o, g.kh, g.kw, g.s, g.p, g.d, g.g);
        std::string what = std::string(use_cudnn ? "cudnn " : "fallback ") + dtype_name(dt) + " x [" +
                           std::to_string(g.n) + "," + std::to_string(g.c) + "," + std::to_string(g.h) + "," +
                           std::to_string(g.w) + "] o " + std::to_string(g.o) + " k " + std::to_string(g.kh) + "x" +
                           std::to_string(g.kw) + " s " + std::to_string(g.s) + " p " + std::to_string(g.p) + " d " +
                           std::to_string(g.d) + " g " + std::to_string(g.g);
        check_conv_launchers(p, what);
      }
    }
  }
}

TEST_CASE("cuda: conv2d launchers: TF32, empty batches, a short output (output_padding), errors") {
  EMBER_NN_REQUIRE_GPU();
  BackendGuard guard;
  manual_seed(2);
  // TF32 may round the float32 inputs to 10 bits: results stay within that rounding.
  cuda::set_allow_tf32(true);
  {
    cuda::ConvParams p = conv_params(kFloat32, 2, 8, 10, 10, 8, 3, 3, 1, 1, 1, 1);
    Tensor x = sample({2, 8, 10, 10}, kFloat32), w = sample({8, 8, 3, 3}, kFloat32, 0.5);
    Tensor y = dev_empty({2, 8, p.oh, p.ow}, kFloat32);
    Tensor xd = x.to(kCUDA), wd = w.to(kCUDA);
    cuda::conv2d_forward(p, xd.raw_data(), wd.raw_data(), y.raw_data());
    ConvRef ref = conv_reference(p, x, w, zeros({2, 8, p.oh, p.ow}));
    expect_close(y.cpu(), as_tensor(ref.y, {2, 8, p.oh, p.ow}), 1e-2, 3e-2, "tf32 forward");
  }
  cuda::set_allow_tf32(false);

  // n = 0: nothing to compute, and the filter gradient of no samples is zero.
  for (bool use_cudnn : {true, false}) {
    cuda::set_cudnn_enabled(use_cudnn);
    cuda::ConvParams p = conv_params(kFloat32, 0, 3, 5, 5, 2, 3, 3, 1, 1, 1, 1);
    Tensor gw = full({2, 3, 3, 3}, 7.0, TensorOptions(kFloat32).device(kCUDA));
    cuda::conv2d_forward(p, nullptr, nullptr, nullptr);
    cuda::conv2d_backward_data(p, nullptr, nullptr, nullptr);
    cuda::conv2d_backward_filter(p, nullptr, nullptr, gw.raw_data());
    CHECK(gw.cpu().abs().sum().item<float>() == 0.0f);
  }

  // An output shorter than the formula (conv_transpose2d with output_padding >= stride but below
  // the dilation): positions past oh/ow simply don't exist; cuDNN can't take it, the fallback does.
  for (DType dt : {kFloat64, kFloat32}) {
    cuda::set_cudnn_enabled(true);
    cuda::ConvParams p = conv_params(dt, 2, 3, 9, 9, 2, 3, 3, 1, 0, 3, 1);
    p.oh -= 1;  // the forward output would have one row more
    check_conv_launchers(p, std::string("short output ") + dtype_name(dt));
  }

  // Bad geometry and dtypes are ember::Errors that name the op.
  cuda::ConvParams bad = conv_params(kFloat32, 1, 3, 5, 5, 2, 3, 3, 1, 0, 1, 1);
  bad.oh = 9;
  try {
    cuda::conv2d_forward(bad, nullptr, nullptr, nullptr);
    CHECK_MESSAGE(false, "expected an error");
  } catch (const ember::Error& e) {
    CHECK(std::string(e.what()).find("conv2d (cuda)") != std::string::npos);
    CHECK(std::string(e.what()).find("output size") != std::string::npos);
  }
  cuda::ConvParams ints = conv_params(kInt32, 1, 3, 5, 5, 2, 3, 3, 1, 0, 1, 1);
  CHECK_THROWS_AS(cuda::conv2d_backward_data(ints, nullptr, nullptr, nullptr), ember::Error);
  cuda::ConvParams groups = conv_params(kFloat32, 1, 3, 5, 5, 2, 3, 3, 1, 0, 1, 2);
  CHECK_THROWS_AS(cuda::conv2d_backward_filter(groups, nullptr, nullptr, nullptr), ember::Error);
}

#ifdef EMBER_NN_HAVE_CONV_OPS
TEST_CASE("cuda: a warm conv training step calls no cudaMalloc and keeps one plan per shape") {
  EMBER_NN_REQUIRE_GPU();
  BackendGuard guard;
  cuda::set_cudnn_enabled(true);
  manual_seed(3);
  Tensor x = randn({16, 3, 20, 20}, kCUDA);
  Tensor w1 = (randn({8, 3, 3, 3}) * 0.3).to(kCUDA).requires_grad_(true);
  Tensor w2 = (randn({4, 8, 3, 3}) * 0.3).to(kCUDA).requires_grad_(true);
  auto step = [&] {
    Tensor h = relu(conv2d(x, w1, {}, 1, 1));
    Tensor y = conv2d(h, w2, {}, 2, 1, 1, 1);
    Tensor loss = (y * y).mean();
    loss.backward();
    float l = loss.item<float>();
    w1.grad().zero_();
    w2.grad().zero_();
    return l;
  };
  for (int i = 0; i < 3; ++i) step();
  cuda::synchronize();
  uint64_t mallocs = cuda::num_device_mallocs();
  size_t plans = cuda::conv_plan_cache_size();
  float first = step();
  for (int i = 0; i < 10; ++i) CHECK(step() == first);  // same inputs, same algorithms: same loss
  CHECK(cuda::num_device_mallocs() == mallocs);
  CHECK(cuda::conv_plan_cache_size() == plans);
  if (cuda::cudnn_available()) CHECK(plans >= 2);  // one per layer geometry
}

#endif  // EMBER_NN_HAVE_CONV_OPS

TEST_CASE("cuda: max_pool2d launchers: values, first-maximum indices, NaN, overlapping backward") {
  EMBER_NN_REQUIRE_GPU();
  manual_seed(4);
  for (DType dt : kFloatTypes) {
    struct Geo {
      int64_t n, c, h, w, k, s, p, d;
      bool ceil;
    };
    const Geo geos[] = {
        {2, 3, 8, 9, 2, 2, 0, 1, false},   // the MNIST CNN's pool (kernel 2x3 here: kw = k + 1)
        {2, 2, 9, 10, 3, 1, 1, 1, false},  // overlapping windows, padding
        {1, 3, 11, 12, 3, 2, 1, 2, true},  // dilation, ceil mode
        {2, 2, 7, 7, 3, 2, 1, 1, true},    // ceil mode: the last window hangs over the edge
    };
    for (const Geo& g : geos) {
      cuda::PoolParams p = pool_params(dt, g.n, g.c, g.h, g.w, g.k, g.s, g.p, g.d, g.ceil);
      std::string what = std::string(dtype_name(dt)) + " k " + std::to_string(g.k) + " s " + std::to_string(g.s) +
                         " p " + std::to_string(g.p) + " d " + std::to_string(g.d) + (g.ceil ? " ceil" : "");
      check_pool_launchers(p, true, sample({g.n, g.c, g.h, g.w}, dt), what);
      // Ties (few distinct values) take the first maximum; NaN wins its window.
      Tensor ties = round(randn({g.n, g.c, g.h, g.w}, kFloat64) * 1.5).clamp(-1.0, 1.0);
      std::vector<double> tv = ties.to_vector<double>();
      tv[3] = std::numeric_limits<double>::quiet_NaN();
      tv[tv.size() / 2] = std::numeric_limits<double>::quiet_NaN();
      check_pool_launchers(p, true, as_tensor(tv, ties.sizes()).to(dt), what + " ties + NaN");
    }
  }
  cuda::PoolParams bad = pool_params(kFloat32, 1, 1, 5, 5, 2, 1, 2, 1, false);
  CHECK_THROWS_AS(cuda::max_pool2d_forward(bad, nullptr, nullptr, nullptr), ember::Error);
}

TEST_CASE("cuda: avg_pool2d launchers: padding with both divisor rules, ceil mode, backward") {
  EMBER_NN_REQUIRE_GPU();
  manual_seed(5);
  for (DType dt : kFloatTypes) {
    struct Geo {
      int64_t n, c, h, w, k, s, p;
      bool ceil;
    };
    const Geo geos[] = {
        {2, 3, 8, 9, 2, 2, 0, false},
        {2, 2, 9, 10, 3, 1, 1, false},  // overlapping, padded
        {1, 3, 10, 11, 3, 2, 1, true},  // ceil mode: windows clipped by the padded input
        {2, 2, 5, 6, 4, 3, 2, true},
    };
    for (const Geo& g : geos) {
      for (bool include_pad : {true, false}) {
        cuda::PoolParams p = pool_params(dt, g.n, g.c, g.h, g.w, g.k, g.s, g.p, 1, g.ceil, include_pad);
        std::string what = std::string(dtype_name(dt)) + " k " + std::to_string(g.k) + " s " + std::to_string(g.s) +
                           " p " + std::to_string(g.p) + (g.ceil ? " ceil" : "") +
                           (include_pad ? " count_include_pad" : " exclude pad");
        check_pool_launchers(p, false, sample({g.n, g.c, g.h, g.w}, dt), what);
      }
    }
  }
  cuda::PoolParams dilated = pool_params(kFloat32, 1, 1, 5, 5, 2, 1, 0, 2, false);
  CHECK_THROWS_AS(cuda::avg_pool2d_forward(dilated, nullptr, nullptr), ember::Error);
}

// ---- fused optimizer updates against torch.optim's formulas (the CPU optimizers) ---------------------

TEST_CASE("cuda: fused SGD and Adam/AdamW updates follow the CPU optimizers for 3 steps") {
  EMBER_NN_REQUIRE_GPU();
  manual_seed(9);
  for (DType dt : {kFloat64, kFloat32, kFloat16}) {
    double tol = dt == kFloat64 ? 1e-12 : (dt == kFloat32 ? 2e-6 : 4e-3);
    // float16 is a storage type on the CPU: its reference optimizer runs in float32.
    DType ref_dt = dt == kFloat16 ? kFloat32 : dt;
    Tensor p0 = sample({37, 5}, dt);
    std::vector<Tensor> grads = {sample({37, 5}, dt), sample({37, 5}, dt), sample({37, 5}, dt)};
    // SGD: momentum + dampening + weight decay, then nesterov, then plain with maximize.
    for (int variant = 0; variant < 3; ++variant) {
      INFO(dtype_name(dt) << " SGD variant " << variant);
      optim::SGDOptions so(0.05);
      cuda::SgdParams sp;
      sp.lr = 0.05;
      if (variant == 0) so.momentum(0.9).dampening(0.1).weight_decay(0.01), sp.momentum = 0.9, sp.dampening = 0.1,
                        sp.weight_decay = 0.01;
      if (variant == 1) so.momentum(0.8).nesterov(true), sp.momentum = 0.8, sp.nesterov = true;
      if (variant == 2) so.maximize(true), sp.maximize = true;
      Tensor pc = p0.to(ref_dt).clone().requires_grad_(true);
      optim::SGD opt(std::vector<Tensor>{pc}, so);
      Tensor pd = p0.to(kCUDA), buf = zeros({37, 5}, TensorOptions(dt).device(kCUDA));
      for (int t = 0; t < 3; ++t) {
        pc.set_grad(grads[t].to(ref_dt).clone());
        opt.step();
        Tensor gd = grads[t].to(kCUDA);
        sp.first_step = t == 0;
        cuda::sgd_update(dt, pd.numel(), pd.raw_data(), gd.raw_data(), sp.momentum != 0 ? buf.raw_data() : nullptr, sp);
        expect_close(pd, pc.detach(), tol, tol, "parameter after step " + std::to_string(t + 1));
      }
    }
    // Adam, AdamW (decoupled decay), Adam with amsgrad and L2 decay.
    for (int variant = 0; variant < 3; ++variant) {
      INFO(dtype_name(dt) << " Adam variant " << variant);
      cuda::AdamParams ap;
      ap.lr = 0.01;
      Tensor pc = p0.to(ref_dt).clone().requires_grad_(true);
      std::unique_ptr<optim::Optimizer> opt;
      if (variant == 0) {
        opt = std::make_unique<optim::Adam>(std::vector<Tensor>{pc}, optim::AdamOptions(0.01));
      } else if (variant == 1) {
        opt = std::make_unique<optim::AdamW>(std::vector<Tensor>{pc}, optim::AdamWOptions(0.01).weight_decay(0.1));
        ap.decoupled = true, ap.weight_decay = 0.1;
      } else {
        opt = std::make_unique<optim::Adam>(std::vector<Tensor>{pc},
                                            optim::AdamOptions(0.01).weight_decay(0.05).amsgrad(true));
        ap.weight_decay = 0.05, ap.amsgrad = true;
      }
      auto state = [&] { return zeros({37, 5}, TensorOptions(dt).device(kCUDA)); };
      Tensor pd = p0.to(kCUDA), m = state(), v = state(), vmax = state();
      for (int t = 0; t < 3; ++t) {
        pc.set_grad(grads[t].to(ref_dt).clone());
        opt->step();
        Tensor gd = grads[t].to(kCUDA);
        ap.step = t + 1;
        cuda::adam_update(dt, pd.numel(), pd.raw_data(), gd.raw_data(), m.raw_data(), v.raw_data(),
                          ap.amsgrad ? vmax.raw_data() : nullptr, ap);
        expect_close(pd, pc.detach(), tol, tol, "parameter after step " + std::to_string(t + 1));
      }
    }
  }
  cuda::AdamParams zero_step;
  zero_step.step = 0;
  CHECK_THROWS_AS(cuda::adam_update(kFloat32, 0, nullptr, nullptr, nullptr, nullptr, nullptr, zero_step), ember::Error);
  cuda::SgdParams mom;
  mom.momentum = 0.9;
  Tensor p = zeros({4}, kCUDA);
  CHECK_THROWS_AS(cuda::sgd_update(kFloat32, 4, p.raw_data(), p.raw_data(), nullptr, mom), ember::Error);
  CHECK_THROWS_AS(cuda::sgd_update(kInt64, 0, nullptr, nullptr, nullptr, cuda::SgdParams{}), ember::Error);
}

// ---- ops on CUDA against the same ops on the CPU -------------------------------------------------------

#ifdef EMBER_NN_HAVE_CONV_OPS

TEST_CASE("cuda: conv2d and conv_transpose2d ops and their gradients match the CPU") {
  EMBER_NN_REQUIRE_GPU();
  manual_seed(6);
  struct Case {
    int64_t n, c, h, w, o, k, s, p, d, g;
  };
  const Case cases[] = {{2, 3, 10, 9, 4, 3, 1, 1, 1, 1}, {2, 4, 11, 12, 6, 3, 2, 1, 1, 2}, {1, 2, 12, 12, 4, 3, 1, 2, 2, 1}};
  for (DType dt : {kFloat64, kFloat32}) {
    double tol = dt == kFloat64 ? 1e-10 : 2e-4;
    for (const Case& k : cases) {
      INFO(dtype_name(dt) << " c " << k.c << " o " << k.o << " s " << k.s << " p " << k.p << " d " << k.d << " g " << k.g);
      Tensor x0 = sample({k.n, k.c, k.h, k.w}, dt), w0 = sample({k.o, k.c / k.g, k.k, k.k}, dt, 0.4),
             b0 = sample({k.o}, dt);
      auto run = [&](Device dev) {
        Tensor x = x0.to(dev).detach().requires_grad_(true), w = w0.to(dev).detach().requires_grad_(true), b = b0.to(dev).detach().requires_grad_(true);
        Tensor y = conv2d(x, w, b, k.s, k.p, k.d, k.g);
        Tensor loss = (y * y.sin()).sum();
        loss.backward();
        return tensor_list{y.detach(), x.grad(), w.grad(), b.grad()};
      };
      tensor_list cpu = run(kCPU), gpu = run(kCUDA);
      const char* names[] = {"y", "dx", "dw", "db"};
      for (size_t i = 0; i < cpu.size(); ++i) {
        CHECK(gpu[i].is_cuda());
        expect_close(gpu[i], cpu[i], tol, tol * 10, names[i]);
      }
      // The transposed convolution with the same weight (as [C_in, C_out/g, k, k]) and output_padding.
      Tensor wt0 = sample({k.c, k.o / k.g, k.k, k.k}, dt, 0.4);
      int64_t op = k.s > 1 ? 1 : 0;
      auto run_t = [&](Device dev) {
        Tensor x = x0.to(dev).detach().requires_grad_(true), w = wt0.to(dev).detach().requires_grad_(true);
        Tensor y = conv_transpose2d(x, w, {}, k.s, k.p, op, k.g, k.d);
        (y * y).sum().backward();
        return tensor_list{y.detach(), x.grad(), w.grad()};
      };
      tensor_list tc = run_t(kCPU), tg = run_t(kCUDA);
      for (size_t i = 0; i < tc.size(); ++i) expect_close(tg[i], tc[i], tol, tol * 10, std::string("transposed ") + names[i]);
    }
  }
  // output_padding >= stride (allowed below the dilation): the fallback path on CUDA.
  Tensor x = sample({1, 2, 5, 5}, kFloat64), w = sample({2, 3, 3, 3}, kFloat64);
  expect_close(conv_transpose2d(x.to(kCUDA), w.to(kCUDA), {}, 1, 0, 1, 1, 2), conv_transpose2d(x, w, {}, 1, 0, 1, 1, 2),
               1e-10, 1e-10, "output_padding 1 with stride 1, dilation 2");
}

TEST_CASE("cuda: double backward through conv (a gradient penalty) matches the CPU") {
  EMBER_NN_REQUIRE_GPU();
  manual_seed(7);
  Tensor x0 = sample({2, 2, 7, 7}, kFloat64), w0 = sample({3, 2, 3, 3}, kFloat64, 0.5), v0 = sample({5, 27}, kFloat64, 0.3);
  auto run = [&](Device dev) {
    Tensor x = x0.to(dev).detach().requires_grad_(true), w = w0.to(dev).detach().requires_grad_(true), v = v0.to(dev).detach().requires_grad_(true);
    Tensor h = leaky_relu(conv2d(x, w, {}, 2, 1), 0.2);  // [2, 3, 4, 4]
    Tensor out = linear(h.reshape({2, 48}).slice(1, 0, 27), v).tanh().sum();
    tensor_list g = autograd::grad({out}, {x}, {}, std::nullopt, /*create_graph=*/true);
    Tensor penalty = ((g[0] * g[0]).sum({1, 2, 3}).sqrt() - 1.0).pow(2.0).mean();
    tensor_list gg = autograd::grad({penalty}, {x, w, v});
    return tensor_list{g[0].detach(), gg[0], gg[1], gg[2]};
  };
  tensor_list cpu = run(kCPU), gpu = run(kCUDA);
  const char* names[] = {"d out / dx", "d penalty / dx", "d penalty / dw", "d penalty / dv"};
  for (size_t i = 0; i < cpu.size(); ++i) expect_close(gpu[i], cpu[i], 1e-9, 1e-10, names[i]);
}

TEST_CASE("cuda: a small CNN gives the CPU's loss and gradients, before and after one SGD step") {
  EMBER_NN_REQUIRE_GPU();
  manual_seed(8);
  // conv(1->4, 3) -> relu -> conv(4->8, 3, stride 2) -> relu -> linear(8*5*5 -> 10) -> cross_entropy,
  // float64 so the comparison is tight.
  std::vector<Tensor> init = {sample({4, 1, 3, 3}, kFloat64, 0.5), sample({4}, kFloat64, 0.1),
                              sample({8, 4, 3, 3}, kFloat64, 0.3), sample({8}, kFloat64, 0.1),
                              sample({10, 200}, kFloat64, 0.1),    sample({10}, kFloat64, 0.1)};
  Tensor images = sample({6, 1, 14, 14}, kFloat64);  // -> 12x12 -> 5x5
  Tensor labels = tensor<int64_t>({3, 1, 4, 1, 5, 9}, {6});
  auto run = [&](Device dev) {
    std::vector<Tensor> params;
    // clone: on the CPU to() returns `init` itself, and the SGD step below must not change it.
    for (const Tensor& t : init) params.push_back(t.to(dev).detach().clone().requires_grad_(true));
    Tensor x = images.to(dev), t = labels.to(dev);
    auto forward = [&] {
      Tensor h = relu(conv2d(x, params[0], params[1], 1, 0));
      h = relu(conv2d(h, params[2], params[3], 2, 0));
      return nn::functional::cross_entropy(linear(h.reshape({6, 200}), params[4], params[5]), t);
    };
    optim::SGD opt(params, optim::SGDOptions(0.1).momentum(0.9));
    opt.zero_grad();
    Tensor loss0 = forward();
    loss0.backward();
    tensor_list out{loss0.detach()};
    for (const Tensor& p : params) out.push_back(p.grad().clone());
    opt.step();
    opt.zero_grad();
    Tensor loss1 = forward();
    loss1.backward();
    out.push_back(loss1.detach());
    for (const Tensor& p : params) out.push_back(p.detach().clone());
    for (const Tensor& p : params) out.push_back(p.grad().clone());
    return out;
  };
  tensor_list cpu = run(kCPU), gpu = run(kCUDA);
  REQUIRE(cpu.size() == gpu.size());
  for (size_t i = 0; i < cpu.size(); ++i) expect_close(gpu[i], cpu[i], 1e-9, 1e-11, "CNN tensor " + std::to_string(i));
  CHECK(cpu[7].item<double>() < cpu[0].item<double>());  // the step lowered the loss
}

#endif  // EMBER_NN_HAVE_CONV_OPS

#ifdef EMBER_NN_HAVE_POOL_OPS
TEST_CASE("cuda: max/avg/adaptive pooling and batch_norm ops match the CPU, gradients and double backward included") {
  EMBER_NN_REQUIRE_GPU();
  manual_seed(10);
  for (DType dt : {kFloat64, kFloat32}) {
    double tol = dt == kFloat64 ? 1e-12 : 1e-5;
    Tensor x0 = sample({2, 3, 9, 10}, dt);
    using Fn = std::function<Tensor(const Tensor&)>;
    const std::pair<const char*, Fn> cases[] = {
        {"max_pool2d 2", [](const Tensor& x) { return max_pool2d(x, 2); }},
        {"max_pool2d 3/1 pad 1", [](const Tensor& x) { return max_pool2d(x, 3, 1, 1); }},
        {"max_pool2d dilated ceil", [](const Tensor& x) { return max_pool2d(x, {3, 2}, 2, 1, 2, true); }},
        {"avg_pool2d 2", [](const Tensor& x) { return avg_pool2d(x, 2); }},
        {"avg_pool2d pad ceil", [](const Tensor& x) { return avg_pool2d(x, 3, 2, 1, true, true); }},
        {"avg_pool2d exclude pad", [](const Tensor& x) { return avg_pool2d(x, 3, 2, 1, true, false); }},
        {"adaptive_avg_pool2d", [](const Tensor& x) { return adaptive_avg_pool2d(x.slice(2, 0, 8), {4, 5}); }},
    };
    for (const auto& [name, f] : cases) {
      INFO(dtype_name(dt) << " " << name);
      auto run = [&](Device dev) {
        Tensor x = x0.to(dev).detach().requires_grad_(true);
        Tensor y = f(x);
        Tensor loss = (y * y * y).sum();
        tensor_list g = autograd::grad({loss}, {x}, {}, std::nullopt, /*create_graph=*/true);
        tensor_list gg = autograd::grad({(g[0] * g[0]).sum()}, {x});
        return tensor_list{y.detach(), g[0].detach(), gg[0]};
      };
      tensor_list cpu = run(kCPU), gpu = run(kCUDA);
      for (size_t i = 0; i < cpu.size(); ++i) expect_close(gpu[i], cpu[i], tol, tol, name + std::to_string(i));
    }
    auto [yc, ic] = max_pool2d_with_indices(x0, 3, 2, 1);
    auto [yg, ig] = max_pool2d_with_indices(x0.to(kCUDA), 3, 2, 1);
    CHECK(ig.cpu().to_vector<int64_t>() == ic.to_vector<int64_t>());

    // batch_norm in training mode (batch statistics, running stats updated) and eval mode.
    Tensor w0 = sample({3}, dt), b0 = sample({3}, dt);
    auto run_bn = [&](Device dev) {
      Tensor x = x0.to(dev).detach().requires_grad_(true), w = w0.to(dev).detach().requires_grad_(true), b = b0.to(dev).detach().requires_grad_(true);
      Tensor rm = zeros({3}, TensorOptions(dt).device(dev)), rv = ones({3}, TensorOptions(dt).device(dev));
      Tensor y = batch_norm(x, rm, rv, w, b, /*training=*/true, 0.1, 1e-5);
      (y * y.sin()).sum().backward();
      Tensor ye = batch_norm(x.detach(), rm, rv, w.detach(), b.detach(), /*training=*/false);
      return tensor_list{y.detach(), x.grad(), w.grad(), b.grad(), rm, rv, ye};
    };
    tensor_list bc = run_bn(kCPU), bg = run_bn(kCUDA);
    for (size_t i = 0; i < bc.size(); ++i) expect_close(bg[i], bc[i], tol * 10, tol * 10, "batch_norm " + std::to_string(i));
  }
}
#endif  // EMBER_NN_HAVE_POOL_OPS

#endif  // EMBER_WITH_CUDA

#include <doctest/doctest.h>

#include "ember/ember.hpp"
#include "ember/nn/nn.hpp"
#include "ember/ops/conv.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

// conv2d / conv_transpose2d / the conv adjoints and nn::Conv2d, nn::ConvTranspose2d: hand-checked
// values, PyTorch goldens (tests/golden/layers.json), gradcheck + gradgradcheck in float64,
// error messages, module state and reprs.

#include "layer_golden.hpp"

namespace {

using ember::Tensor;
using ember::tensor_list;
using json = nlohmann::json;

ember::Int2 int2(const json& j) {
  if (j.is_array()) return {j.at(0).get<int64_t>(), j.at(1).get<int64_t>()};
  return j.get<int64_t>();
}
ember::Conv2dPadding padding_arg(const json& j) {
  if (j.is_string()) return j.get<std::string>();
  return int2(j);
}

}  // namespace

TEST_CASE("conv2d: hand-checked values") {
  // 1 input channel 3x3, a 2x2 kernel of ones: each output is the sum of a 2x2 window.
  Tensor x = ember::arange(9, ember::TensorOptions(ember::kFloat32)).view({1, 1, 3, 3});
  Tensor w = ember::ones({1, 1, 2, 2});
  CHECK(ember::conv2d(x, w).to_vector<float>() == std::vector<float>{8, 12, 20, 24});
  // With padding 1 and stride 2 the corners see one input element each.
  Tensor y = ember::conv2d(x, w, ember::tensor<float>({10.f}), 2, 1);
  CHECK(y.sizes() == ember::Shape{1, 1, 2, 2});
  CHECK(y.to_vector<float>() == std::vector<float>{10, 13, 19, 34});
  // Unbatched input keeps its 3 dims.
  CHECK(ember::conv2d(x.view({1, 3, 3}), w).sizes() == ember::Shape{1, 2, 2});
  // "same" keeps the spatial size, "valid" is no padding.
  CHECK(ember::conv2d(x, ember::ones({2, 1, 3, 3}), {}, 1, "same").sizes() == ember::Shape{1, 2, 3, 3});
  CHECK(ember::conv2d(x, ember::ones({2, 1, 3, 3}), {}, 1, "valid").sizes() == ember::Shape{1, 2, 1, 1});
}

TEST_CASE("conv2d: non-contiguous inputs give the same result") {
  Tensor x = ember::randn({3, 2, 5, 6}, ember::kFloat64);
  Tensor w = ember::randn({4, 2, 3, 3}, ember::kFloat64);
  Tensor xt = x.transpose(2, 3).contiguous().transpose(2, 3);  // same values, strided
  Tensor wt = w.permute({1, 0, 2, 3}).contiguous().permute({1, 0, 2, 3});
  CHECK_FALSE(xt.is_contiguous());
  Tensor a = ember::conv2d(x, w, {}, 1, 1), b = ember::conv2d(xt, wt, {}, 1, 1);
  CHECK(ember::max(ember::abs(a - b)).item<double>() < 1e-12);
}

TEST_CASE("conv2d: matches PyTorch (goldens)") {
  int n = run_golden("conv2d", [](const tensor_list& in, const json& a) {
    return ember::conv2d(in[0], in[1], a.at("bias").get<bool>() ? in[2] : Tensor(), int2(a.at("stride")),
                         padding_arg(a.at("padding")), int2(a.at("dilation")), a.at("groups").get<int64_t>());
  });
  CHECK(n == 8);
}

TEST_CASE("conv_transpose2d: matches PyTorch (goldens)") {
  int n = run_golden("conv_transpose2d", [](const tensor_list& in, const json& a) {
    return ember::conv_transpose2d(in[0], in[1], a.at("bias").get<bool>() ? in[2] : Tensor(), int2(a.at("stride")),
                                   int2(a.at("padding")), int2(a.at("output_padding")), a.at("groups").get<int64_t>(),
                                   int2(a.at("dilation")));
  });
  CHECK(n == 4);
}

TEST_CASE("conv2d: gradcheck and gradgradcheck (float64)") {
  struct Geo {
    const char* name;
    ember::Shape x, w;
    ember::Int2 stride, pad, dil;
    int64_t groups;
  };
  std::vector<Geo> geos = {
      {"basic", {2, 2, 5, 4}, {3, 2, 3, 2}, 1, 0, 1, 1},
      {"stride/pad", {1, 2, 6, 5}, {2, 2, 3, 3}, {2, 1}, {1, 2}, 1, 1},
      {"dilation", {1, 1, 7, 6}, {2, 1, 2, 3}, 1, 1, {2, 1}, 1},
      {"groups", {2, 4, 4, 4}, {4, 2, 2, 2}, 2, 1, 1, 2},
      {"1x1", {2, 3, 3, 2}, {2, 3, 1, 1}, 1, 0, 1, 1},
  };
  for (const auto& g : geos) {
    CAPTURE(g.name);
    Tensor x = ember::randn(g.x, f64g()), w = ember::randn(g.w, f64g()), b = ember::randn({g.w[0]}, f64g());
    auto f = [&](const tensor_list& in) { return ember::conv2d(in[0], in[1], in[2], g.stride, g.pad, g.dil, g.groups); };
    CHECK_GRADS(f, {x, w, b});
  }
}

TEST_CASE("conv2d adjoints and conv_transpose2d: gradcheck and gradgradcheck (float64)") {
  Tensor x = ember::randn({2, 2, 5, 5}, f64g()), w = ember::randn({4, 1, 3, 3}, f64g());
  Tensor gy = ember::randn({2, 4, 3, 3}, f64g());
  auto fin = [](const tensor_list& in) {
    return ember::conv2d_input_grad(in[0], in[1], {2, 2, 5, 5}, 2, 1, 1, 2);
  };
  CHECK_GRADS(fin, {gy, w});
  auto fw = [](const tensor_list& in) { return ember::conv2d_weight_grad(in[0], in[1], {4, 1, 3, 3}, 2, 1, 1, 2); };
  CHECK_GRADS(fw, {x, gy});

  Tensor xt = ember::randn({1, 4, 3, 2}, f64g()), wt = ember::randn({4, 1, 3, 3}, f64g()), bt = ember::randn({2}, f64g());
  auto ft = [](const tensor_list& in) { return ember::conv_transpose2d(in[0], in[1], in[2], 2, 1, 1, 2); };
  CHECK_GRADS(ft, {xt, wt, bt});
}

TEST_CASE("conv2d: the adjoints agree with autograd") {
  Tensor x = ember::randn({2, 3, 6, 6}, f64g()), w = ember::randn({4, 3, 3, 3}, f64g());
  Tensor y = ember::conv2d(x, w, {}, 2, 1);
  Tensor g = ember::randn(y.sizes(), ember::kFloat64);
  tensor_list gr = ember::autograd::grad({y}, {x, w}, {g});
  Tensor gx = ember::conv2d_input_grad(g, w, x.sizes(), 2, 1), gw = ember::conv2d_weight_grad(x, g, w.sizes(), 2, 1);
  CHECK(ember::max(ember::abs(gr[0] - gx)).item<double>() < 1e-12);
  CHECK(ember::max(ember::abs(gr[1] - gw)).item<double>() < 1e-12);
}

namespace {

struct NaiveGeo {
  int64_t n, c, h, w, o, kh, kw, groups;
  ember::Int2 stride, pad, dil;
};

// y, dx = adjoint(g), dw = adjoint(g) of conv2d by their definitions, in float64 loops: the
// reference for the chunked im2col + GEMM kernels.
struct NaiveConv {
  std::vector<double> y, dx, dw;
};

NaiveConv naive_conv(const NaiveGeo& q, const std::vector<double>& x, const std::vector<double>& w,
                     const std::vector<double>& g, int64_t oh, int64_t ow) {
  const int64_t cg = q.c / q.groups, og = q.o / q.groups;
  NaiveConv r;
  r.y.assign(q.n * q.o * oh * ow, 0.0);
  r.dx.assign(x.size(), 0.0);
  r.dw.assign(w.size(), 0.0);
  for (int64_t n = 0; n < q.n; ++n)
    for (int64_t o = 0; o < q.o; ++o)
      for (int64_t oy = 0; oy < oh; ++oy)
        for (int64_t ox = 0; ox < ow; ++ox) {
          const int64_t yi = ((n * q.o + o) * oh + oy) * ow + ox;
          for (int64_t ci = 0; ci < cg; ++ci) {
            const int64_t c = (o / og) * cg + ci;
            for (int64_t i = 0; i < q.kh; ++i)
              for (int64_t j = 0; j < q.kw; ++j) {
                int64_t iy = oy * q.stride.h - q.pad.h + i * q.dil.h, ix = ox * q.stride.w - q.pad.w + j * q.dil.w;
                if (iy < 0 || iy >= q.h || ix < 0 || ix >= q.w) continue;
                const int64_t xi = ((n * q.c + c) * q.h + iy) * q.w + ix, wi = ((o * cg + ci) * q.kh + i) * q.kw + j;
                r.y[yi] += w[wi] * x[xi];
                r.dx[xi] += w[wi] * g[yi];
                r.dw[wi] += x[xi] * g[yi];
              }
          }
        }
  return r;
}

double max_rel_diff(const std::vector<double>& a, const std::vector<double>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]) / (1.0 + std::abs(b[i])));
  return m;
}

}  // namespace

TEST_CASE("conv2d: batched kernels (images in chunks, threads) match a naive float64 reference") {
  // The CPU kernels put the im2col columns of several images side by side in one GEMM (a chunk
  // of ~1000 output columns): batches that do not divide into chunks, chunks split across
  // threads, one-image chunks (large maps), groups, stride, padding, dilation, 1x1.
  std::vector<NaiveGeo> geos = {
      {61, 3, 8, 8, 5, 3, 3, 1, 1, 0, 1},             // 6x6 outputs: chunks of <= 28 images
      {37, 32, 8, 8, 8, 3, 3, 1, 1, 1, 1},            // K = 288: the chunk bounded by its size
      {23, 4, 9, 7, 6, 3, 2, 2, {2, 1}, {1, 2}, 1},   // groups, stride, padding
      {19, 2, 11, 10, 4, 2, 3, 1, 1, 2, {2, 1}},      // dilation with padding
      {5, 2, 36, 35, 3, 3, 3, 1, 1, 0, 1},            // 34x33 outputs: one image per GEMM
      {29, 6, 5, 5, 4, 1, 1, 2, 1, 0, 1},             // pointwise with groups
      {9, 3, 7, 7, 4, 1, 1, 1, 2, 0, 1},              // 1x1 with stride (not pointwise)
  };
  const int saved = ember::get_num_threads();
  for (int threads : {1, 2}) {
    ember::set_num_threads(threads);
    for (size_t k = 0; k < geos.size(); ++k) {
      const NaiveGeo& q = geos[k];
      CAPTURE(k);
      CAPTURE(threads);
      Tensor x = ember::randn({q.n, q.c, q.h, q.w}, f64g());
      Tensor w = ember::randn({q.o, q.c / q.groups, q.kh, q.kw}, f64g());
      Tensor y = ember::conv2d(x, w, {}, q.stride, q.pad, q.dil, q.groups);
      Tensor g = ember::randn(y.sizes(), ember::kFloat64);
      tensor_list gr = ember::autograd::grad({y}, {x, w}, {g});
      NaiveConv r = naive_conv(q, x.to_vector<double>(), w.to_vector<double>(), g.to_vector<double>(), y.size(2),
                               y.size(3));
      CHECK(max_rel_diff(y.to_vector<double>(), r.y) < 1e-12);
      CHECK(max_rel_diff(gr[0].to_vector<double>(), r.dx) < 1e-12);
      CHECK(max_rel_diff(gr[1].to_vector<double>(), r.dw) < 1e-12);
      // Autograd's filter gradient reads the columns the forward kept (conv_saved_cols); the
      // public conv2d_weight_grad builds them again. Same GEMMs, so the same bits.
      Tensor dw = ember::conv2d_weight_grad(x.detach(), g, w.sizes(), q.stride, q.pad, q.dil, q.groups);
      CHECK(dw.to_vector<double>() == gr[1].to_vector<double>());
      // The bias is added while the chunk's GEMM output is scattered into y.
      Tensor b = ember::randn({q.o}, ember::kFloat64);
      Tensor yb = ember::conv2d(x.detach(), w.detach(), b, q.stride, q.pad, q.dil, q.groups);
      CHECK(ember::max(ember::abs(yb - (y.detach() + b.view({1, q.o, 1, 1})))).item<double>() < 1e-12);
      // float32 runs the same kernels.
      Tensor y32 = ember::conv2d(x.detach().to(ember::kFloat32), w.detach().to(ember::kFloat32), {}, q.stride, q.pad,
                                 q.dil, q.groups);
      CHECK(max_rel_diff(y32.to(ember::kFloat64).to_vector<double>(), r.y) < 1e-4);
    }
  }
  ember::set_num_threads(saved);
}

TEST_CASE("conv2d: WGAN-GP style gradient penalty differentiates through conv") {
  // d/dw of ||d(sum conv(x, w)^2)/dx||^2 — a second-order gradient through the conv.
  Tensor x = ember::randn({2, 1, 5, 5}, f64g()), w = ember::randn({2, 1, 3, 3}, f64g());
  auto penalty = [](const tensor_list& in) {
    ember::GradModeGuard on(true);  // gradcheck evaluates fn under NoGradGuard; the penalty needs a graph
    Tensor y = ember::conv2d(in[0], in[1], {}, 1, 1);
    Tensor gx = ember::autograd::grad({(y * y).sum()}, {in[0]}, {}, true, true)[0];
    return (gx * gx).sum();
  };
  CHECK_GRADCHECK(penalty, {x, w});
}

TEST_CASE("conv2d: error messages") {
  Tensor x = ember::randn({8, 1, 28, 28}), w = ember::randn({32, 3, 3, 3});
  CHECK_THROWS_WITH_AS(ember::conv2d(x, w),
                       "conv2d: expected input with 3 channels (weight [32, 3, 3, 3]), got input of shape [8, 1, 28, 28]",
                       ember::Error);
  CHECK_THROWS_WITH_AS(ember::conv2d(ember::randn({1, 1, 2, 2}), ember::randn({1, 1, 3, 3})),
                       doctest::Contains("conv2d: kernel size (dilated) 3 is larger than the padded input size 2"),
                       ember::Error);
  CHECK_THROWS_WITH_AS(ember::conv2d(ember::randn({1, 4, 5, 5}), ember::randn({6, 2, 3, 3}), {}, 1, 0, 1, 4),
                       doctest::Contains("must be divisible by groups=4"), ember::Error);
  CHECK_THROWS_WITH_AS(ember::conv2d(ember::randn({1, 4, 5, 5}), ember::randn({6, 2, 3, 3}), {}, 1, 0, 1, 0),
                       doctest::Contains("groups must be positive"), ember::Error);
  CHECK_THROWS_WITH_AS(ember::conv2d(ember::randn({1, 1, 5, 5}), ember::randn({2, 1, 3, 3}), ember::randn({3})),
                       doctest::Contains("conv2d: expected a bias of shape [2]"), ember::Error);
  CHECK_THROWS_WITH_AS(ember::conv2d(ember::randn({5, 5}), ember::randn({2, 1, 3, 3})),
                       doctest::Contains("conv2d: expected a 3-d [C, H, W] or 4-d"), ember::Error);
  CHECK_THROWS_WITH_AS(ember::conv2d(ember::randn({1, 1, 5, 5}), ember::randn({2, 1, 3, 3}), {}, 2, "same"),
                       doctest::Contains("not supported for strided"), ember::Error);
  CHECK_THROWS_WITH_AS(ember::conv2d(ember::randn({1, 1, 5, 5}), ember::randn({2, 1, 3, 3}), {}, 0),
                       doctest::Contains("stride must be positive"), ember::Error);
  CHECK_THROWS_WITH_AS(ember::conv2d(ember::randn({1, 1, 5, 5}), ember::randn({2, 1, 3, 3}), {}, 1, "full"),
                       doctest::Contains("\"same\" or \"valid\""), ember::Error);
  CHECK_THROWS_WITH_AS(ember::conv2d(ember::randn({1, 1, 5, 5}, ember::kFloat64), ember::randn({2, 1, 3, 3})),
                       doctest::Contains("differ"), ember::Error);
  CHECK_THROWS_WITH_AS(ember::conv_transpose2d(ember::randn({1, 2, 3, 3}), ember::randn({2, 1, 3, 3}), {}, 1, 0, 1),
                       doctest::Contains("output padding must be smaller"), ember::Error);
  CHECK_THROWS_WITH_AS(ember::conv_transpose2d(ember::randn({1, 3, 3, 3}), ember::randn({2, 1, 3, 3})),
                       doctest::Contains("conv_transpose2d: expected input with 2 channels"), ember::Error);
}

TEST_CASE("nn::Conv2d / ConvTranspose2d: options, init, state_dict keys, repr") {
  namespace nn = ember::nn;
  auto c = std::make_shared<nn::Conv2d>(nn::Conv2dOptions(1, 32, 3).stride(1).padding(1));
  CHECK(c->weight.sizes() == ember::Shape{32, 1, 3, 3});
  CHECK(c->bias.sizes() == ember::Shape{32});
  // kaiming_uniform(a = sqrt(5)) and the bias both give U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = 9.
  double bound = 1.0 / 3.0;
  CHECK(ember::max(ember::abs(c->weight)).item<float>() <= bound);
  CHECK(ember::max(ember::abs(c->weight)).item<float>() > 0.8 * bound);
  CHECK(ember::max(ember::abs(c->bias)).item<float>() <= bound);
  auto sd = c->state_dict();
  CHECK(sd.keys() == std::vector<std::string>{"weight", "bias"});
  CHECK(c->repr() == "Conv2d(1, 32, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))");
  CHECK(c->forward(ember::randn({4, 1, 28, 28})).sizes() == ember::Shape{4, 32, 28, 28});

  nn::Conv2d c2(nn::Conv2dOptions(4, 8, {3, 1}).stride(2).dilation(2).groups(2).bias(false));
  CHECK(c2.repr() == "Conv2d(4, 8, kernel_size=(3, 1), stride=(2, 2), dilation=(2, 2), groups=2, bias=False)");
  CHECK(c2.weight.sizes() == ember::Shape{8, 2, 3, 1});
  CHECK_FALSE(c2.bias.defined());
  CHECK(c2.state_dict().keys() == std::vector<std::string>{"weight"});
  nn::Conv2d c3(3, 3, 3);
  CHECK(c3.repr() == "Conv2d(3, 3, kernel_size=(3, 3), stride=(1, 1))");
  nn::Conv2d c4(nn::Conv2dOptions(3, 3, 3).padding("same"));
  CHECK(c4.repr() == "Conv2d(3, 3, kernel_size=(3, 3), stride=(1, 1), padding=same)");
  CHECK_THROWS_WITH_AS(nn::Conv2d(nn::Conv2dOptions(3, 4, 3).groups(2)), doctest::Contains("divisible by groups"),
                       ember::Error);

  nn::ConvTranspose2d t(nn::ConvTranspose2dOptions(8, 4, 4).stride(2).padding(1));
  CHECK(t.weight.sizes() == ember::Shape{8, 4, 4, 4});
  CHECK(t.repr() == "ConvTranspose2d(8, 4, kernel_size=(4, 4), stride=(2, 2), padding=(1, 1))");
  CHECK(t.forward(ember::randn({2, 8, 7, 7})).sizes() == ember::Shape{2, 4, 14, 14});
  CHECK(t.state_dict().keys() == std::vector<std::string>{"weight", "bias"});
  // ConvTranspose2d's fan_in is weight.size(1) * k * k (PyTorch computes it from the weight).
  CHECK(ember::max(ember::abs(t.bias)).item<float>() <= 1.0 / std::sqrt(64.0));
}

TEST_CASE("conv2d: timing at the MNIST shapes (batch 32, informational)") {
  // conv1 1->32 3x3 on 28x28, conv2 32->64 3x3 on 13x13, forward + backward.
  Tensor x1 = ember::randn({32, 1, 28, 28}), w1 = ember::randn({32, 1, 3, 3}, ember::TensorOptions().requires_grad(true));
  Tensor x2 = ember::randn({32, 32, 13, 13}, ember::TensorOptions().requires_grad(true));
  Tensor w2 = ember::randn({64, 32, 3, 3}, ember::TensorOptions().requires_grad(true));
  auto step = [&] {
    ember::conv2d(x1, w1).sum().backward();
    ember::conv2d(x2, w2).sum().backward();
  };
  step();
  auto t0 = std::chrono::steady_clock::now();
  const int reps = 5;
  for (int i = 0; i < reps; ++i) step();
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / reps;
  MESSAGE("conv1+conv2 forward+backward, batch 32, ", ember::get_num_threads(), " threads: ", ms, " ms");
  CHECK(ms > 0);
}

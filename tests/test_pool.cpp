#include <doctest/doctest.h>

#include "ember/ember.hpp"
#include "ember/nn/nn.hpp"
#include "ember/ops/pool.hpp"

#include <cmath>
#include <fstream>
#include <functional>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

// max_pool2d (+ indices), avg_pool2d, adaptive_avg_pool2d and their modules: hand-checked values,
// PyTorch goldens (tests/golden/layers.json), gradcheck + gradgradcheck in float64, errors, reprs.

#include "layer_golden.hpp"

namespace {

using ember::Tensor;
using ember::tensor_list;
using json = nlohmann::json;

ember::Int2 int2(const json& j) {
  if (j.is_array()) return {j.at(0).get<int64_t>(), j.at(1).get<int64_t>()};
  return j.get<int64_t>();
}

}  // namespace

TEST_CASE("max_pool2d: hand-checked values and indices") {
  Tensor x = ember::tensor<float>({1, 5, 2, 0,  //
                                   3, 4, 7, 1,  //
                                   9, 0, 1, 1,  //
                                   2, 8, 1, 6},
                                  {1, 1, 4, 4});
  auto [v, idx] = ember::max_pool2d_with_indices(x, 2);
  CHECK(v.to_vector<float>() == std::vector<float>{5, 7, 9, 6});
  CHECK(idx.dtype() == ember::kInt64);
  CHECK(idx.to_vector<int64_t>() == std::vector<int64_t>{1, 6, 8, 15});
  // Unbatched input, odd size floors; ceil_mode keeps the partial window.
  CHECK(ember::max_pool2d(ember::zeros({3, 5, 5}), 2).sizes() == ember::Shape{3, 2, 2});
  CHECK(ember::max_pool2d(ember::zeros({3, 5, 5}), 2, std::nullopt, 0, 1, true).sizes() == ember::Shape{3, 3, 3});
  // The gradient goes to the argmax only.
  Tensor xg = x.to(ember::kFloat64).requires_grad_(true);
  ember::max_pool2d(xg, 2).sum().backward();
  CHECK(xg.grad().to_vector<double>() ==
        std::vector<double>{0, 1, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 1});
  // A NaN in a window wins (as in PyTorch).
  Tensor n = ember::tensor<float>({1, std::numeric_limits<float>::quiet_NaN(), 2, 3}, {1, 1, 2, 2});
  CHECK(std::isnan(ember::max_pool2d(n, 2).item<float>()));
}

// The 2x2 stride-2 fast path against a brute-force scan: many ties (values in {0, 1, 2}, the first
// maximum in scan order wins), NaNs (a NaN wins; the row falls back to the generic loop), odd
// widths (the last column is dropped) and planes of one row.
TEST_CASE("max_pool2d: the 2x2 fast path matches a brute-force scan, ties and NaN included") {
  for (auto [h, w] : {std::pair<int64_t, int64_t>{6, 8}, {7, 9}, {2, 34}}) {
    Tensor x = ember::randint(0, 3, {2, 3, h, w}).to(ember::kFloat32);
    float* px = x.data_ptr<float>();
    px[5] = px[w + 40] = std::numeric_limits<float>::quiet_NaN();
    auto [y, idx] = ember::max_pool2d_with_indices(x, 2);
    const int64_t oh = h / 2, ow = w / 2;
    REQUIRE(y.sizes() == ember::Shape{2, 3, oh, ow});
    int64_t mismatches = 0;
    for (int64_t pl = 0; pl < 6; ++pl)
      for (int64_t oy = 0; oy < oh; ++oy)
        for (int64_t ox = 0; ox < ow; ++ox) {
          int64_t best = -1;
          float bv = 0;
          for (int64_t i = 0; i < 2; ++i)
            for (int64_t j = 0; j < 2; ++j) {
              const int64_t off = (2 * oy + i) * w + 2 * ox + j;
              const float v = px[pl * h * w + off];
              if (best < 0 || v > bv || std::isnan(v)) bv = v, best = off;
            }
          const int64_t o = pl * oh * ow + oy * ow + ox;
          const float got = y.data_ptr<float>()[o];
          mismatches += idx.data_ptr<int64_t>()[o] != best || (std::isnan(bv) ? !std::isnan(got) : got != bv);
        }
    CHECK(mismatches == 0);
    // Without autograd, max_pool2d runs the values-only kernel: the same maxima, for 2x2 windows
    // and for a generic window with padding and ceil_mode.
    auto same_values = [](const Tensor& a, const Tensor& b) {
      const float *pa = a.data_ptr<float>(), *pb = b.data_ptr<float>();
      for (int64_t i = 0; i < a.numel(); ++i)
        if (!(pa[i] == pb[i] || (std::isnan(pa[i]) && std::isnan(pb[i])))) return false;
      return a.sizes() == b.sizes();
    };
    CHECK(same_values(ember::max_pool2d(x, 2), y));
    CHECK(same_values(ember::max_pool2d(x, {3, 2}, {2, 1}, 1, 1, true),
                      std::get<0>(ember::max_pool2d_with_indices(x, {3, 2}, {2, 1}, 1, 1, true))));
  }
}

// max_pool2d(x, 2) on the CPU keeps no indices for its backward: it finds each window's argmax
// again from the saved input and output. Its gradient must equal the one scattered through the
// forward's indices (max_pool2d_backward), ties, NaNs, odd sizes and 3-d inputs included.
TEST_CASE("max_pool2d: the 2x2 backward without stored indices matches the indexed backward") {
  auto same = [](const Tensor& a, const Tensor& b) {
    return a.sizes() == b.sizes() && a.dtype() == b.dtype() &&
           a.to(ember::kFloat64).to_vector<double>() == b.to(ember::kFloat64).to_vector<double>();
  };
  for (auto [h, w] : {std::pair<int64_t, int64_t>{6, 8}, {7, 9}, {2, 34}, {3, 2}}) {
    for (ember::DType dt : {ember::kFloat32, ember::kFloat64}) {
      Tensor x = ember::randint(0, 3, {2, 3, h, w}).to(dt);
      Tensor xf = x.to(ember::kFloat64);
      if (h * w > 40) {  // NaNs in two windows (one with two NaNs: the last one takes the gradient)
        double* px = xf.data_ptr<double>();
        px[5] = px[w + 40] = px[w + 41] = std::numeric_limits<double>::quiet_NaN();
        x = xf.to(dt);
      }
      Tensor g = ember::randn({2, 3, h / 2, w / 2}).to(dt);
      Tensor xr = x.clone().requires_grad_(true);
      Tensor y = ember::max_pool2d(xr, 2);
      y.backward(g);
      auto [v, idx] = ember::max_pool2d_with_indices(x, 2);
      Tensor want = ember::max_pool2d_backward(g, idx, x.sizes());
      CHECK(same(xr.grad(), want));
      // Unbatched [C, H, W] input.
      Tensor x3 = x.select(0, 1).clone().requires_grad_(true);
      ember::max_pool2d(x3, 2).backward(g.select(0, 1));
      CHECK(same(x3.grad(), want.select(0, 1)));
    }
  }
  // Double backward goes through the differentiable form (indices made on demand).
  Tensor x = (ember::randperm(2 * 2 * 6 * 8).to(ember::kFloat64) * 0.1).view({2, 2, 6, 8}).requires_grad_(true);
  auto mp = [](const tensor_list& in) { return ember::max_pool2d(in[0], 2); };
  CHECK_GRADS(mp, {x});
  // The saved output is checked like any saved tensor: changing it in place is an error.
  Tensor xr = ember::randn({1, 2, 4, 4}).requires_grad_(true);
  Tensor y = ember::max_pool2d(xr, 2);
  y.detach().mul_(2.0);
  CHECK_THROWS_WITH_AS(y.sum().backward(), doctest::Contains("inplace"), ember::Error);
}

TEST_CASE("avg_pool2d / adaptive_avg_pool2d: hand-checked values") {
  Tensor x = ember::arange(16, ember::TensorOptions(ember::kFloat64)).view({1, 1, 4, 4});
  CHECK(ember::avg_pool2d(x, 2).to_vector<double>() == std::vector<double>{2.5, 4.5, 10.5, 12.5});
  // padding 1, kernel 2, stride 2: corner window holds x[0,0] and three zeros.
  CHECK(ember::avg_pool2d(x, 2, 2, 1).to_vector<double>()[0] == 0.0);
  CHECK(ember::avg_pool2d(x, 2, 2, 1, false, true).to_vector<double>()[1] == (1 + 2) / 4.0);
  CHECK(ember::avg_pool2d(x, 2, 2, 1, false, false).to_vector<double>()[1] == (1 + 2) / 2.0);
  CHECK(ember::adaptive_avg_pool2d(x, 1).item<double>() == 7.5);
  CHECK(ember::adaptive_avg_pool2d(x, {2, 1}).to_vector<double>() == std::vector<double>{3.5, 11.5});
  // Non-contiguous input (a transposed view) gives the transposed result.
  Tensor xt = x.transpose(2, 3);
  CHECK(ember::avg_pool2d(xt, 2).to_vector<double>() == std::vector<double>{2.5, 10.5, 4.5, 12.5});
}

TEST_CASE("pooling: matches PyTorch (goldens)") {
  int n = run_golden("max_pool2d", [](const tensor_list& in, const json& a) {
    auto [v, idx] = ember::max_pool2d_with_indices(in[0], int2(a.at("kernel")), int2(a.at("stride")),
                                                   int2(a.at("padding")), int2(a.at("dilation")),
                                                   a.at("ceil_mode").get<bool>());
    return v;
  });
  CHECK(n == 5);
  // The indices too.
  for (const json& c : golden().is_null() ? json::array() : golden().at("cases")) {
    if (c.at("op") != "max_pool2d") continue;
    const json& a = c.at("args");
    auto [v, idx] = ember::max_pool2d_with_indices(from_json(c.at("inputs").at(0)), int2(a.at("kernel")),
                                                   int2(a.at("stride")), int2(a.at("padding")), int2(a.at("dilation")),
                                                   a.at("ceil_mode").get<bool>());
    CHECK(idx.to_vector<int64_t>() == c.at("extra").at("indices").at("data").get<std::vector<int64_t>>());
  }
  n = run_golden("avg_pool2d", [](const tensor_list& in, const json& a) {
    return ember::avg_pool2d(in[0], int2(a.at("kernel")), int2(a.at("stride")), int2(a.at("padding")),
                             a.at("ceil_mode").get<bool>(), a.at("count_include_pad").get<bool>());
  });
  CHECK(n == 5);
  n = run_golden("adaptive_avg_pool2d",
                 [](const tensor_list& in, const json& a) { return ember::adaptive_avg_pool2d(in[0], int2(a.at("output_size"))); });
  CHECK(n == 4);
}

TEST_CASE("pooling: gradcheck and gradgradcheck (float64)") {
  // Distinct values, so no max tie sits within the finite-difference step.
  Tensor x = (ember::randperm(2 * 2 * 7 * 6).to(ember::kFloat64) * 0.1).view({2, 2, 7, 6}).requires_grad_(true);
  auto mp = [](const tensor_list& in) { return ember::max_pool2d(in[0], {3, 2}, {2, 1}, 1, 1, true); };
  CHECK_GRADS(mp, {x});
  auto mpd = [](const tensor_list& in) { return ember::max_pool2d(in[0], 2, 1, 1, 2); };
  CHECK_GRADS(mpd, {x});
  Tensor y = ember::randn({2, 2, 7, 6}, f64g());
  auto ap = [](const tensor_list& in) { return ember::avg_pool2d(in[0], 3, 2, 1, true, false); };
  CHECK_GRADS(ap, {y});
  auto ap2 = [](const tensor_list& in) { return ember::avg_pool2d(in[0], {2, 3}, 1, {1, 0}); };
  CHECK_GRADS(ap2, {y});
  auto ad = [](const tensor_list& in) { return ember::adaptive_avg_pool2d(in[0], {3, 4}); };
  CHECK_GRADS(ad, {y});
  // max_pool2d_backward itself: differentiable in the gradient it scatters.
  auto [v, idx] = ember::max_pool2d_with_indices(x.detach(), 2);
  Tensor g = ember::randn(v.sizes(), f64g());
  auto mb = [idx = idx](const tensor_list& in) { return ember::max_pool2d_backward(in[0], idx, {2, 2, 7, 6}); };
  CHECK_GRADS(mb, {g});
}

TEST_CASE("pooling: error messages") {
  CHECK_THROWS_WITH_AS(ember::max_pool2d(ember::zeros({4, 4}), 2), doctest::Contains("max_pool2d: expected a non-empty 3-d"),
                       ember::Error);
  CHECK_THROWS_WITH_AS(ember::max_pool2d(ember::zeros({1, 1, 4, 4}), 2, 2, 2),
                       doctest::Contains("max_pool2d: pad should be non-negative and at most half"), ember::Error);
  CHECK_THROWS_WITH_AS(ember::max_pool2d(ember::zeros({1, 1, 2, 2}), 3), doctest::Contains("output size"), ember::Error);
  CHECK_THROWS_WITH_AS(ember::avg_pool2d(ember::zeros({1, 1, 4, 4}), 0), doctest::Contains("avg_pool2d: kernel_size must be positive"),
                       ember::Error);
  CHECK_THROWS_WITH_AS(ember::adaptive_avg_pool2d(ember::zeros({1, 1, 4, 4}), 0),
                       doctest::Contains("adaptive_avg_pool2d: output_size must be positive"), ember::Error);
  CHECK_THROWS_WITH_AS(ember::max_pool2d(ember::zeros({1, 1, 4, 4}, ember::kInt64), 2),
                       doctest::Contains("max_pool2d: expected a float32 or float64"), ember::Error);
}

TEST_CASE("nn pooling modules: forward, repr, no state") {
  namespace nn = ember::nn;
  auto mp = std::make_shared<nn::MaxPool2d>(2);
  CHECK(mp->repr() == "MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)");
  CHECK(mp->forward(ember::randn({2, 3, 26, 26})).sizes() == ember::Shape{2, 3, 13, 13});
  CHECK(mp->state_dict().size() == 0);
  nn::MaxPool2d mp2(nn::MaxPool2dOptions({3, 2}).stride(1).ceil_mode(true));
  CHECK(mp2.repr() == "MaxPool2d(kernel_size=(3, 2), stride=1, padding=0, dilation=1, ceil_mode=True)");
  nn::AvgPool2d ap(nn::AvgPool2dOptions(3).stride(2).padding(1));
  CHECK(ap.repr() == "AvgPool2d(kernel_size=3, stride=2, padding=1)");
  CHECK(ap.forward(ember::randn({1, 2, 7, 7})).sizes() == ember::Shape{1, 2, 4, 4});
  nn::AdaptiveAvgPool2d gap(1);
  CHECK(gap.repr() == "AdaptiveAvgPool2d(output_size=1)");
  CHECK(gap.forward(ember::randn({2, 5, 7, 3})).sizes() == ember::Shape{2, 5, 1, 1});
  CHECK(nn::AdaptiveAvgPool2d({2, 3}).repr() == "AdaptiveAvgPool2d(output_size=(2, 3))");
}

TEST_CASE("max_pool2d: ceil_mode on odd sizes keeps the partial last window inside the input (ASan found reads past it)") {
  // 5x5 ramp, 2x2 windows, stride 2, ceil_mode: the last row/column of windows holds one input
  // row/column. Values are the flat positions, so each maximum is its window's bottom-right element.
  ember::Tensor x = ember::arange(0, 25, 1, ember::TensorOptions(ember::kFloat32)).view({1, 1, 5, 5});
  ember::Tensor y = ember::max_pool2d(x, 2, 2, 0, 1, /*ceil_mode=*/true);
  REQUIRE(y.sizes() == ember::Shape{1, 1, 3, 3});
  CHECK(y.to_vector<float>() == std::vector<float>{6, 8, 9, 16, 18, 19, 21, 23, 24});
  // Two planes and a batch: every plane's partial windows read only its own rows.
  ember::Tensor x2 = ember::arange(0, 2 * 3 * 7 * 7, 1, ember::TensorOptions(ember::kFloat32)).view({2, 3, 7, 7});
  ember::Tensor y2 = ember::max_pool2d(x2, 2, 2, 0, 1, true);
  REQUIRE(y2.sizes() == ember::Shape{2, 3, 4, 4});
  auto v = y2.to_vector<float>();
  for (int p = 0; p < 6; ++p)
    for (int i = 0; i < 4; ++i)
      for (int j = 0; j < 4; ++j) {
        const int r = std::min(2 * i + 1, 6), c = std::min(2 * j + 1, 6);
        CHECK(v[static_cast<size_t>(p * 16 + i * 4 + j)] == static_cast<float>(p * 49 + r * 7 + c));
      }
}

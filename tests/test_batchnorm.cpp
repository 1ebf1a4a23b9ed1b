#include <doctest/doctest.h>

#include "ember/ember.hpp"
#include "ember/nn/nn.hpp"
#include "ember/nn/batchnorm.hpp"
#include "ember/ops/batch_norm.hpp"

#include <cmath>
#include <fstream>
#include <functional>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

// batch_norm and nn::BatchNorm1d/2d: hand-checked values,
// PyTorch goldens (tests/golden/layers.json), gradcheck + gradgradcheck in float64, errors, reprs.

#include "layer_golden.hpp"

namespace {

using ember::Tensor;
using ember::tensor_list;
using json = nlohmann::json;

}  // namespace

TEST_CASE("batch_norm: hand-checked training and eval values, running statistics") {
  // One channel with values 1, 3 (mean 2, biased var 1, unbiased var 2).
  Tensor x = ember::tensor<double>({1, 3}, {2, 1});
  Tensor rm = ember::zeros({1}, ember::kFloat64), rv = ember::ones({1}, ember::kFloat64);
  Tensor y = ember::batch_norm(x, rm, rv, {}, {}, true, 0.1, 0.0);
  CHECK(y.to_vector<double>() == std::vector<double>{-1, 1});
  CHECK(rm.item<double>() == doctest::Approx(0.2));
  CHECK(rv.item<double>() == doctest::Approx(0.9 + 0.1 * 2));
  // Eval: (x - rm) / sqrt(rv + eps) * w + b.
  Tensor w = ember::tensor<double>({2.0}), b = ember::tensor<double>({0.5});
  Tensor z = ember::batch_norm(x, rm, rv, w, b, false, 0.1, 0.0);
  CHECK(z.to_vector<double>()[0] == doctest::Approx((1 - 0.2) / std::sqrt(1.1) * 2 + 0.5));
  // Eval does not touch the running statistics.
  CHECK(rm.item<double>() == doctest::Approx(0.2));
  // Training without running statistics is allowed (batch statistics only).
  CHECK(ember::batch_norm(x, {}, {}, {}, {}, true).sizes() == ember::Shape{2, 1});
}

TEST_CASE("batch_norm: matches PyTorch (goldens, incl. running stats after the step)") {
  const json& g = golden();
  int n = run_golden("batch_norm", [](const tensor_list& in, const json& a) {
    bool affine = a.at("affine").get<bool>();
    return ember::batch_norm(in[0], in[1], in[2], affine ? in[3] : Tensor(), affine ? in[4] : Tensor(),
                             a.at("training").get<bool>(), a.at("momentum").get<double>(), a.at("eps").get<double>());
  });
  CHECK(n == 5);
  for (const json& c : g.is_null() ? json::array() : g.at("cases")) {
    if (c.at("op") != "batch_norm") continue;
    const json& a = c.at("args");
    Tensor x = from_json(c.at("inputs").at(0)), rm = from_json(c.at("inputs").at(1)), rv = from_json(c.at("inputs").at(2));
    bool affine = a.at("affine").get<bool>();
    ember::batch_norm(x, rm, rv, affine ? from_json(c.at("inputs").at(3)) : Tensor(),
                      affine ? from_json(c.at("inputs").at(4)) : Tensor(), a.at("training").get<bool>(),
                      a.at("momentum").get<double>(), a.at("eps").get<double>());
    std::string name = c.at("name");
    std::string m1 = compare(rm, c.at("extra").at("running_mean"), name + " running_mean");
    std::string m2 = compare(rv, c.at("extra").at("running_var"), name + " running_var");
    CHECK_MESSAGE(m1 == "", m1);
    CHECK_MESSAGE(m2 == "", m2);
  }
}

TEST_CASE("batch_norm: gradcheck and gradgradcheck (float64, training and eval)") {
  Tensor x = ember::randn({4, 3, 2, 2}, f64g()), w = ember::randn({3}, f64g()), b = ember::randn({3}, f64g());
  auto train = [](const tensor_list& in) {
    return ember::batch_norm(in[0], {}, {}, in[1], in[2], true, 0.1, 1e-5);
  };
  CHECK_GRADS(train, {x, w, b});
  Tensor x1 = ember::randn({5, 2}, f64g());
  auto train1d = [](const tensor_list& in) { return ember::batch_norm(in[0], {}, {}, {}, {}, true); };
  CHECK_GRADS(train1d, {x1});
  Tensor rm = ember::randn({3}, ember::kFloat64), rv = ember::rand({3}, ember::kFloat64) + 0.5;
  auto eval = [rm, rv](const tensor_list& in) { return ember::batch_norm(in[0], rm, rv, in[1], in[2], false); };
  CHECK_GRADS(eval, {x, w, b});
}

TEST_CASE("batch_norm: error messages") {
  CHECK_THROWS_WITH_AS(ember::batch_norm(ember::randn({1, 3}), {}, {}, {}, {}, true),
                       doctest::Contains("batch_norm: expected more than 1 value per channel when training"), ember::Error);
  CHECK_THROWS_WITH_AS(ember::batch_norm(ember::randn({4, 3}), ember::zeros({2}), ember::ones({2})),
                       doctest::Contains("batch_norm: expected running_mean of shape [3]"), ember::Error);
  CHECK_THROWS_WITH_AS(ember::batch_norm(ember::randn({4, 3}), {}, {}, {}, {}, false),
                       doctest::Contains("required in eval mode"), ember::Error);
  CHECK_THROWS_WITH_AS(ember::batch_norm(ember::randn({4}), {}, {}, {}, {}, true),
                       doctest::Contains("batch_norm: expected an input of shape [N, C]"), ember::Error);
  ember::nn::BatchNorm2d bn(3);
  CHECK_THROWS_WITH_AS(bn.forward(ember::randn({4, 3})), doctest::Contains("BatchNorm2d: expected 4D input (got 2D"),
                       ember::Error);
  CHECK_THROWS_WITH_AS(bn.forward(ember::randn({4, 2, 3, 3})), doctest::Contains("BatchNorm2d: expected input with 3 channels"),
                       ember::Error);
  ember::nn::BatchNorm1d bn1(3);
  CHECK_THROWS_WITH_AS(bn1.forward(ember::randn({4, 3, 2, 2})), doctest::Contains("BatchNorm1d: expected 2D or 3D input"),
                       ember::Error);
}

TEST_CASE("nn::BatchNorm1d/2d: state_dict keys, running stats, eval mode, repr") {
  namespace nn = ember::nn;
  auto bn = std::make_shared<nn::BatchNorm2d>(4);
  CHECK(bn->state_dict().keys() ==
        std::vector<std::string>{"weight", "bias", "running_mean", "running_var", "num_batches_tracked"});
  CHECK(bn->num_batches_tracked.dtype() == ember::kInt64);
  CHECK(bn->repr() == "BatchNorm2d(4, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)");
  Tensor x = ember::randn({8, 4, 3, 3}) * 2 + 3;
  Tensor y = bn->forward(x);
  CHECK(bn->num_batches_tracked.item<int64_t>() == 1);
  // Training output is normalised per channel.
  CHECK(ember::max(ember::abs(ember::mean(y, {0, 2, 3}))).item<float>() < 1e-5);
  Tensor expected_rm = ember::mean(x, {0, 2, 3}) * 0.1;
  CHECK(ember::max(ember::abs(bn->running_mean - expected_rm)).item<float>() < 1e-5);
  bn->eval();
  Tensor rm_before = bn->running_mean.clone();
  Tensor z = bn->forward(x);
  CHECK(ember::max(ember::abs(bn->running_mean - rm_before)).item<float>() == 0);
  CHECK(bn->num_batches_tracked.item<int64_t>() == 1);
  Tensor manual = (x - bn->running_mean.view({1, 4, 1, 1})) / ember::sqrt(bn->running_var.view({1, 4, 1, 1}) + 1e-5);
  CHECK(ember::max(ember::abs(z - manual)).item<float>() < 1e-4);

  // Cumulative average (momentum = None) and no affine / no running stats.
  nn::BatchNorm1d cum(nn::BatchNorm1dOptions(2).momentum(std::nullopt).affine(false));
  CHECK(cum.repr() == "BatchNorm1d(2, eps=1e-05, momentum=None, affine=False, track_running_stats=True)");
  CHECK(cum.state_dict().keys() == std::vector<std::string>{"running_mean", "running_var", "num_batches_tracked"});
  Tensor a = ember::tensor<float>({0, 0, 2, 2}, {2, 2}), b = ember::tensor<float>({4, 4, 6, 6}, {2, 2});
  cum.forward(a);
  cum.forward(b);
  CHECK(cum.running_mean.to_vector<float>() == std::vector<float>{3, 3});  // (1 + 5) / 2
  nn::BatchNorm1d nostats(nn::BatchNorm1dOptions(2).track_running_stats(false));
  CHECK(nostats.state_dict().keys() == std::vector<std::string>{"weight", "bias"});
  nostats.eval();
  CHECK(nostats.forward(ember::randn({3, 2, 5})).sizes() == ember::Shape{3, 2, 5});  // batch statistics

  // Gradients reach weight and bias.
  bn->train();
  (bn->forward(x) * ember::randn({8, 4, 3, 3})).sum().backward();
  CHECK(bn->weight.grad().defined());
  CHECK(bn->bias.grad().defined());
}

TEST_CASE("batch_norm: the fused CPU kernels agree with the composed formulas in float64 (large offset)") {
  using namespace ember;
  manual_seed(12);
  // |mean| / std = 2000: E[x^2] - E[x]^2 in float would lose every digit; the kernels sum in
  // double around a per-channel shift.
  Tensor x = add(mul(randn({8, 5, 7, 9}), Scalar(0.5)), Scalar(1000.0)).requires_grad_();
  Tensor w = randn({5}).requires_grad_(), b = randn({5}).requires_grad_();
  Tensor rm = zeros({5}), rv = ones({5});
  Tensor y = batch_norm(x, rm, rv, w, b, true, 0.1, 1e-5);
  Tensor g = randn(x.sizes());
  y.backward(g);
  // Reference: the composed formulas on float64 copies.
  Tensor xd = x.detach().to(kFloat64).requires_grad_(), wd = w.detach().to(kFloat64).requires_grad_(),
         bd = b.detach().to(kFloat64).requires_grad_();
  Shape dims{0, 2, 3}, bshape{1, 5, 1, 1};
  Tensor mean = ember::mean(xd, dims, true), xc = sub(xd, mean);
  Tensor var = ember::mean(mul(xc, xc), dims, true);
  Tensor yref = add(mul(mul(xc, rsqrt(add(var, Scalar(1e-5)))), wd.view(bshape)), bd.view(bshape));
  yref.backward(g.to(kFloat64));
  auto max_err = [](const Tensor& a, const Tensor& r) {
    return ember::abs(sub(a.detach().to(kFloat64), r.detach())).max().item<double>();
  };
  // y is rounded to float (|y| up to ~5 here) and x itself holds float32 digits around 1000
  // (ulp 6e-5, scaled by w * invstd ~ 4): errors of a few 1e-4 are float32's, a naive
  // E[x^2] - E[x]^2 in float would be off by O(1).
  CHECK(max_err(y, yref) < 5e-4);
  CHECK(max_err(x.grad(), xd.grad()) < 2e-4);
  CHECK(max_err(w.grad(), wd.grad()) < 1e-3);
  CHECK(max_err(b.grad(), bd.grad()) < 1e-3);
  // Running statistics: momentum 0.1 of the batch mean and the unbiased variance.
  const double n = 8 * 7 * 9;
  CHECK(max_err(rm, mul(mean.detach().reshape({5}), Scalar(0.1))) < 1e-3);
  CHECK(max_err(rv, add(mul(var.detach().reshape({5}), Scalar(0.1 * n / (n - 1))), Scalar(0.9))) < 1e-5);
}

#include <doctest/doctest.h>

#include "ember/ember.hpp"
#include "golden_json.hpp"
#include "ember/nn/nn.hpp"
#include "ember/nn/spectral_norm.hpp"

#include <cmath>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

// nn::utils::spectral_norm: PyTorch 1.13 goldens over training steps (tests/golden/gan/
// spectral_norm.json from make_gan_golden.py: outputs, u/v, weight_orig/bias gradients, eval mode,
// state_dict names), the wrapper's state and mode handling, errors, gradcheck + gradgradcheck.

#ifndef EMBER_SOURCE_DIR
#define EMBER_SOURCE_DIR "."
#endif

namespace {

using ember::Tensor;
using ember::tensor_list;
using json = nlohmann::json;
namespace nn = ember::nn;

Tensor sn_from_json(const json& j) { return ember_test::tensor_from_json(j); }

/// Empty when `a` matches the JSON tensor within `tol` (relative to max(1, |expected|)).
std::string sn_compare(const Tensor& a, const json& e, const std::string& what, double tol = 1e-10) {
  return ember_test::compare_to_golden(a, e, what, ember_test::Tolerance::relative_floor_one(tol));
}

#define SN_CHECK_CLOSE(a, e, what)                \
  do {                                            \
    std::string msg_ = sn_compare((a), (e), (what)); \
    CHECK_MESSAGE(msg_.empty(), msg_);            \
  } while (0)

const json& sn_golden() {
  static const json j = [] {
    std::ifstream f(std::string(EMBER_SOURCE_DIR) + "/tests/golden/gan/spectral_norm.json");
    return f ? json::parse(f) : json();
  }();
  return j;
}

nn::StateDict state_from_json(const json& sd) {
  nn::StateDict out;
  for (const auto& k : sd.at("keys")) out.insert(k.get<std::string>(), sn_from_json(sd.at("tensors").at(k.get<std::string>())));
  return out;
}

/// The spectrally normalised layer of a golden case, in float64 with PyTorch's initial state.
std::shared_ptr<nn::SpectralNormBase> make_sn_layer(const json& c) {
  const json& a = c.at("args");
  int64_t n = c.at("n_power_iterations");
  std::shared_ptr<nn::SpectralNormBase> m;
  if (c.at("kind") == "linear") {
    m = nn::utils::spectral_norm(std::make_shared<nn::Linear>(a.at("in"), a.at("out")), "weight", n);
  } else if (c.at("kind") == "conv2d") {
    m = nn::utils::spectral_norm(std::make_shared<nn::Conv2d>(
        nn::Conv2dOptions(a.at("in"), a.at("out"), a.at("k").get<int64_t>()).stride(a.at("stride").get<int64_t>()).padding(
            a.at("padding").get<int64_t>())), "weight", n);
  } else {
    m = nn::utils::spectral_norm(std::make_shared<nn::ConvTranspose2d>(
        nn::ConvTranspose2dOptions(a.at("in"), a.at("out"), a.at("k").get<int64_t>()).stride(a.at("stride").get<int64_t>()).padding(
            a.at("padding").get<int64_t>())), "weight", n);
  }
  m->to(ember::kFloat64);
  m->load_state_dict(state_from_json(c.at("initial")));  // strict: PyTorch's names must be ours
  return m;
}

}  // namespace

TEST_CASE("spectral_norm: PyTorch's state_dict names, shapes, repr and the wrapped layer") {
  auto lin = std::make_shared<nn::Linear>(5, 4);
  Tensor w = lin->weight;
  auto sn = nn::utils::spectral_norm(lin);
  CHECK(sn->state_dict().keys() == std::vector<std::string>{"bias", "weight_orig", "weight_u", "weight_v"});
  CHECK(sn->weight_orig.impl() == w.impl());  // the layer's own tensor, as PyTorch keeps the Parameter
  CHECK(sn->module()->weight.impl() == w.impl());
  REQUIRE(sn->parameters().size() == 2);
  CHECK(sn->parameters()[0].impl() == lin->bias.impl());
  CHECK(sn->parameters()[1].impl() == w.impl());
  CHECK(sn->num_parameters() == 24);
  CHECK(sn->weight_u.sizes() == ember::Shape{4});
  CHECK(sn->weight_v.sizes() == ember::Shape{5});
  CHECK(ember::norm(sn->weight_u).item<double>() == doctest::Approx(1.0));
  CHECK(ember::norm(sn->weight_v).item<double>() == doctest::Approx(1.0));
  CHECK_FALSE(sn->weight_u.requires_grad());
  CHECK(sn->repr() == "Linear(in_features=5, out_features=4, bias=True)");
  CHECK(sn->dim() == 0);

  // ConvTranspose2d's weight is [in, out, kh, kw]: dim defaults to 1, so u has out channels.
  auto ct = nn::utils::spectral_norm(std::make_shared<nn::ConvTranspose2d>(3, 2, 4));
  CHECK(ct->dim() == 1);
  CHECK(ct->weight_u.sizes() == ember::Shape{2});
  CHECK(ct->weight_v.sizes() == ember::Shape{48});
  auto cv = nn::utils::spectral_norm(std::make_shared<nn::Conv2d>(3, 2, 4), "weight", 1, 1e-12, -1);
  CHECK(cv->dim() == 3);
  CHECK(cv->weight_u.sizes() == ember::Shape{4});
  CHECK(cv->weight_v.sizes() == ember::Shape{24});

  // Inside a model the names carry the usual prefix and nothing else.
  nn::Sequential seq(nn::utils::spectral_norm(std::make_shared<nn::Linear>(3, 2)), std::make_shared<nn::Tanh>());
  CHECK(seq.state_dict().keys() == std::vector<std::string>{"0.bias", "0.weight_orig", "0.weight_u", "0.weight_v"});
  CHECK(seq.forward(ember::randn({2, 3})).sizes() == ember::Shape{2, 2});

  // Mode, dtype and init reach the wrapped layer.
  sn->eval();
  CHECK_FALSE(sn->module()->is_training());
  sn->train();
  CHECK(sn->module()->is_training());
  sn->to(ember::kFloat64);
  CHECK(sn->module()->weight.dtype() == ember::kFloat64);
  CHECK(sn->weight_u.dtype() == ember::kFloat64);
  CHECK(sn->module()->bias.dtype() == ember::kFloat64);
  sn->apply([](nn::Module& m) {
    if (auto* l = dynamic_cast<nn::Linear*>(&nn::utils::unwrap_spectral_norm(m))) nn::init::constant_(l->weight, 0.5);
  });
  CHECK(sn->weight_orig.to_vector<double>() == std::vector<double>(20, 0.5));
}

TEST_CASE("spectral_norm: errors") {
  CHECK_THROWS_WITH_AS(nn::utils::spectral_norm(std::make_shared<nn::Linear>(3, 2), "weight", 0),
                       doctest::Contains("expected n_power_iterations to be positive"), ember::Error);
  CHECK_THROWS_WITH_AS(nn::utils::spectral_norm(std::make_shared<nn::Linear>(3, 2), "bias"),
                       doctest::Contains("spectral_norm: parameter 'bias' is not the `weight` member"), ember::Error);
  CHECK_THROWS_WITH_AS(nn::utils::spectral_norm(std::make_shared<nn::Linear>(3, 2), "weight", 1, 1e-12, 2),
                       doctest::Contains("spectral_norm: dimension 2 out of range"), ember::Error);
  CHECK_THROWS_WITH_AS(nn::utils::spectral_norm(std::make_shared<nn::Linear>(nn::LinearOptions(3, 2).bias(false)),
                                                &nn::Linear::bias, "bias"),
                       doctest::Contains("parameter 'bias' of Linear is undefined"), ember::Error);
  CHECK_THROWS_WITH_AS(nn::utils::spectral_norm(std::shared_ptr<nn::Linear>()), doctest::Contains("module is null"),
                       ember::Error);
  // A failing forward leaves the layer's weight member at weight_orig.
  auto conv = nn::utils::spectral_norm(std::make_shared<nn::Conv2d>(3, 2, 3));
  CHECK_THROWS_AS(conv->forward(ember::randn({1, 4, 5, 5})), ember::Error);
  CHECK(conv->module()->weight.impl() == conv->weight_orig.impl());
  // A PyTorch checkpoint with the plain layer's names does not load into the normalised layer.
  nn::Linear plain(3, 2);
  CHECK_THROWS_WITH_AS(nn::utils::spectral_norm(std::make_shared<nn::Linear>(3, 2))->load_state_dict(plain.state_dict()),
                       doctest::Contains("Missing key(s) in state_dict: \"weight_orig\", \"weight_u\", \"weight_v\""),
                       ember::Error);
}

TEST_CASE("spectral_norm: training steps, u/v, gradients and eval mode match PyTorch (goldens)") {
  const json& g = sn_golden();
  if (g.is_null()) {
    MESSAGE("tests/golden/gan/spectral_norm.json not found (define EMBER_SOURCE_DIR); golden cases skipped");
    return;
  }
  int cases = 0;
  for (const json& c : g.at("cases")) {
    ++cases;
    const std::string name = c.at("name");
    auto m = make_sn_layer(c);
    CHECK(m->state_dict().keys() == c.at("initial").at("keys").get<std::vector<std::string>>());
    m->train();
    int step = 0;
    for (const json& s : c.at("steps")) {
      std::string at = name + " step " + std::to_string(step++);
      Tensor out = m->forward(sn_from_json(s.at("input")));
      SN_CHECK_CLOSE(out, s.at("output"), at + " output");
      SN_CHECK_CLOSE(m->named_buffers()[0].second, s.at("weight_u"), at + " weight_u");
      SN_CHECK_CLOSE(m->named_buffers()[1].second, s.at("weight_v"), at + " weight_v");
      // PyTorch's module.weight after the forward: the same sigma, without another iteration.
      SN_CHECK_CLOSE(m->compute_weight(false), s.at("weight"), at + " normalised weight");
      (out * sn_from_json(s.at("grad_output"))).sum().backward();
      auto params = m->named_parameters();  // bias, weight_orig
      REQUIRE(params.size() == 2);
      SN_CHECK_CLOSE(params[1].second.grad(), s.at("grad_weight_orig"), at + " grad weight_orig");
      SN_CHECK_CLOSE(params[0].second.grad(), s.at("grad_bias"), at + " grad bias");
      ember::NoGradGuard ng;
      for (auto& [n, p] : params) p.sub_(p.grad(), 0.1);
      m->zero_grad();
    }
    // Eval: no power iteration, u and v stay as they are, the output uses them.
    m->eval();
    Tensor u0 = m->named_buffers()[0].second.clone();
    Tensor out = m->forward(sn_from_json(c.at("eval").at("input")));
    SN_CHECK_CLOSE(out, c.at("eval").at("output"), name + " eval output");
    SN_CHECK_CLOSE(m->named_buffers()[0].second, c.at("eval").at("weight_u"), name + " eval weight_u");
    SN_CHECK_CLOSE(m->named_buffers()[1].second, c.at("eval").at("weight_v"), name + " eval weight_v");
    CHECK(m->named_buffers()[0].second.to_vector<double>() == u0.to_vector<double>());
  }
  CHECK(cases == 3);
}

TEST_CASE("spectral_norm: two training forwards then one backward (the GAN pattern)") {
  // The second forward updates u and v in place; the first forward's backward must still work
  // and see the values it used: its weight_orig gradient is that of a lone forward.
  ember::manual_seed(5);
  auto a = nn::utils::spectral_norm(std::make_shared<nn::Linear>(4, 3));
  a->to(ember::kFloat64);
  Tensor x1 = ember::randn({2, 4}, ember::kFloat64), x2 = ember::randn({2, 4}, ember::kFloat64);
  nn::StateDict start;
  for (const auto& [n, t] : a->state_dict()) start.insert(n, t.clone());
  Tensor y1 = a->forward(x1);
  a->forward(x2).sum().backward();
  Tensor g2 = a->weight_orig.grad().clone();
  a->zero_grad();
  y1.sum().backward();
  Tensor g1 = a->weight_orig.grad().clone();

  auto b = nn::utils::spectral_norm(std::make_shared<nn::Linear>(4, 3));
  b->to(ember::kFloat64);
  b->load_state_dict(start);
  b->forward(x1).sum().backward();
  CHECK(g1.to_vector<double>() == b->weight_orig.grad().to_vector<double>());
  CHECK_FALSE(g1.to_vector<double>() == g2.to_vector<double>());
}

TEST_CASE("spectral_norm: gradcheck and gradgradcheck through the normalised weight (float64)") {
  // Eval mode: with the power iteration, u and v would follow each finite-difference
  // perturbation, while the analytic gradient (PyTorch's too) treats them as constants.
  ember::manual_seed(11);
  auto f64g = ember::TensorOptions(ember::kFloat64).requires_grad(true);
  {
    auto lin = nn::utils::spectral_norm(std::make_shared<nn::Linear>(4, 3));
    lin->to(ember::kFloat64);
    lin->forward(ember::randn({1, 4}, ember::kFloat64));  // one power iteration
    lin->eval();
    Tensor x = ember::randn({2, 4}, f64g);
    auto f = [&](const tensor_list&) { return ember::tanh(lin->forward(x)); };
    CHECK_GRADS(f, {x, lin->weight_orig, lin->module()->bias});
  }
  {
    auto conv = nn::utils::spectral_norm(std::make_shared<nn::Conv2d>(nn::Conv2dOptions(2, 3, 3).padding(1)));
    conv->to(ember::kFloat64);
    conv->eval();
    Tensor x = ember::randn({1, 2, 4, 4}, f64g);
    auto f = [&](const tensor_list&) { return ember::leaky_relu(conv->forward(x), 0.2); };
    CHECK_GRADS(f, {x, conv->weight_orig});
  }
  {
    auto ct = nn::utils::spectral_norm(std::make_shared<nn::ConvTranspose2d>(
        nn::ConvTranspose2dOptions(2, 2, 3).stride(2).padding(1)));
    ct->to(ember::kFloat64);
    ct->eval();
    Tensor x = ember::randn({1, 2, 2, 2}, f64g);
    auto f = [&](const tensor_list&) { return ember::tanh(ct->forward(x)); };
    CHECK_GRADS(f, {x, ct->weight_orig});
  }
}

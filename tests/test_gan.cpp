#include <doctest/doctest.h>

#include "ember/ember.hpp"
#include "golden_json.hpp"
#include "ember/nn/nn.hpp"
#include "ember/nn/spectral_norm.hpp"
#include "ember/optim/optim.hpp"

#include <cmath>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

// Tutorial 4's WGAN-GP critic at toy size: dropout's double backward keeps its mask, a
// gradgradcheck of the whole critic (embedding, cat, view, conv2d, leaky_relu, dropout, spectral
// norm, linear) in float64, and one critic step (gradient penalty through
// autograd::grad(create_graph=true), its parameter gradients) against PyTorch 1.13
// (tests/golden/gan/gp.json from make_gan_golden.py).

#ifndef EMBER_SOURCE_DIR
#define EMBER_SOURCE_DIR "."
#endif

namespace {

using ember::Tensor;
using ember::tensor_list;
using json = nlohmann::json;
namespace nn = ember::nn;

/// The tutorial's critic with its sizes as parameters: Embedding(classes, img*img) of the label
/// as a second channel, Conv2d(2, c1, 4, 2, 1) + LeakyReLU(0.2) + Dropout, then spectrally
/// normalised Conv2d(c1, c2, 4, 2, 1), Conv2d(c2, c3, 3, 1, 1), Linear(c3*(img/4)^2, hidden),
/// Linear(hidden, 1), each but the last followed by LeakyReLU(0.2) + Dropout. The full one is
/// Critic(10, 28, 64, 128, 256, 1024, 0.3).
struct Critic : nn::Module {
  Critic(int64_t classes, int64_t img, int64_t c1, int64_t c2, int64_t c3, int64_t hidden, double p)
      : img(img), p(p) {
    label_emb = register_module("label_emb", std::make_shared<nn::Embedding>(classes, img * img));
    conv1 = register_module("conv1", std::make_shared<nn::Conv2d>(nn::Conv2dOptions(2, c1, 4).stride(2).padding(1)));
    conv2 = register_module("conv2", nn::utils::spectral_norm(std::make_shared<nn::Conv2d>(
                                         nn::Conv2dOptions(c1, c2, 4).stride(2).padding(1))));
    conv3 = register_module("conv3", nn::utils::spectral_norm(std::make_shared<nn::Conv2d>(
                                         nn::Conv2dOptions(c2, c3, 3).stride(1).padding(1))));
    int64_t s = img / 4;
    fc1 = register_module("fc1", nn::utils::spectral_norm(std::make_shared<nn::Linear>(c3 * s * s, hidden)));
    fc2 = register_module("fc2", nn::utils::spectral_norm(std::make_shared<nn::Linear>(hidden, 1)));
  }
  Tensor act(const Tensor& h) { return ember::dropout(ember::leaky_relu(h, 0.2), p, is_training()); }
  Tensor forward(const Tensor& x, const Tensor& y) {
    Tensor c = label_emb->forward(y).view({-1, 1, img, img});
    Tensor h = act(conv1->forward(ember::cat({x, c}, 1)));
    h = act(conv2->forward(h));
    h = act(conv3->forward(h));
    h = act(fc1->forward(h.view({h.size(0), -1})));
    return fc2->forward(h);
  }
  int64_t img;
  double p;
  std::shared_ptr<nn::Embedding> label_emb;
  std::shared_ptr<nn::Conv2d> conv1;
  std::shared_ptr<nn::SpectralNorm<nn::Conv2d>> conv2, conv3;
  std::shared_ptr<nn::SpectralNorm<nn::Linear>> fc1, fc2;
};

/// WGAN-GP's penalty mean((||grad_x D(x_hat)||_2 - 1)^2) at x_hat = alpha*real + (1-alpha)*fake,
/// differentiable in D's parameters (create_graph).
Tensor gradient_penalty(Critic& D, const Tensor& real, const Tensor& fake, const Tensor& y, const Tensor& alpha) {
  Tensor x_hat = (alpha * real + (1.0 - alpha) * fake).detach().requires_grad_(true);
  Tensor d = D.forward(x_hat, y);
  Tensor g = ember::autograd::grad({d}, {x_hat}, {ember::ones_like(d)}, /*retain_graph=*/true, /*create_graph=*/true)[0];
  g = g.view({g.size(0), -1});
  return ember::mean(ember::pow(ember::norm(g, 2, {1}) - 1.0, 2));
}

Tensor gan_from_json(const json& j) { return ember_test::tensor_from_json(j); }

/// Empty when `a` matches the JSON tensor within `tol` relative to max(1, |expected|); a JSON null
/// (PyTorch: unused) must be an undefined or all-zero gradient.
std::string gan_compare(const Tensor& a, const json& e, const std::string& what, double tol = 1e-9) {
  if (e.is_null()) {
    if (!a.defined()) return "";
    for (double v : a.to_vector<double>())
      if (v != 0) return what + ": PyTorch has no gradient, Ember's is nonzero";
    return "";
  }
  if (!a.defined()) {
    // allow_unused's undefined gradient is PyTorch's zeros (e.g. biases: leaky_relu's derivative
    // is piecewise constant, so grad_x D does not depend on them).
    for (double v : e.at("data").get<std::vector<double>>())
      if (v != 0) return what + ": undefined, PyTorch's is nonzero";
    return "";
  }
  return ember_test::compare_to_golden(a, e, what, ember_test::Tolerance::relative_floor_one(tol));
}

#define GAN_CHECK_CLOSE(a, e, what)                   \
  do {                                                \
    std::string msg_ = gan_compare((a), (e), (what)); \
    CHECK_MESSAGE(msg_.empty(), msg_);                \
  } while (0)

}  // namespace

TEST_CASE("dropout in training mode: the double backward uses the forward's mask") {
  // y = dropout(x)^2 summed: dy/dx = 2 x s^2 and d2y/dx2 = 2 s^2, with s the forward's mask
  // scaled by 1/(1-p). A fresh mask in the backward would break the relation to y / x.
  ember::manual_seed(3);
  Tensor x = ember::randn({64}, ember::TensorOptions(ember::kFloat64).requires_grad(true));
  const double p = 0.3;
  Tensor y = ember::dropout(x, p, true);
  Tensor g = ember::autograd::grad({(y * y).sum()}, {x}, {}, true, true)[0];
  Tensor gg = ember::autograd::grad({g.sum()}, {x})[0];
  std::vector<double> xv = x.to_vector<double>(), yv = y.to_vector<double>(), gv = g.to_vector<double>(),
                      ggv = gg.to_vector<double>();
  int dropped = 0;
  for (size_t i = 0; i < xv.size(); ++i) {
    double s = yv[i] / xv[i];  // 0 or 1/(1-p)
    dropped += s == 0;
    CHECK(s == doctest::Approx(s == 0 ? 0.0 : 1.0 / (1.0 - p)));
    CHECK(gv[i] == doctest::Approx(2 * xv[i] * s * s));
    CHECK(ggv[i] == doctest::Approx(2 * s * s));
  }
  CHECK(dropped > 5);
  CHECK(dropped < 40);
}

TEST_CASE("critic: gradgradcheck of the whole tiny critic with dropout (float64)") {
  ember::manual_seed(21);
  Critic D(2, 8, 2, 3, 2, 3, 0.3);
  D.to(ember::kFloat64);
  D.train();
  // The spectral norms without their power iteration, so that u and v stay put while the finite
  // differences perturb the weights (the analytic gradient treats them as constants in either mode).
  for (auto* sn : std::vector<nn::Module*>{D.conv2.get(), D.conv3.get(), D.fc1.get(), D.fc2.get()}) sn->eval();
  auto f64g = ember::TensorOptions(ember::kFloat64).requires_grad(true);
  // One image: conv2d spreads a batch over threads however small the images (for_images), which
  // costs a scheduler slice per call on a loaded machine and dominates a finite-difference check.
  Tensor x = ember::randn({1, 1, 8, 8}, f64g);
  Tensor y = ember::tensor<int64_t>({1}, {1});
  // Every evaluation redraws the same dropout masks.
  auto f = [&](const tensor_list&) {
    ember::manual_seed(77);
    return D.forward(x, y);
  };
  // The masks really drop units here (training mode), and the same ones every time.
  Tensor a = f({}), b = f({});
  CHECK(a.to_vector<double>() == b.to_vector<double>());
  D.eval();
  CHECK(a.to_vector<double>() != D.forward(x, y).to_vector<double>());
  D.train();
  for (auto* sn : std::vector<nn::Module*>{D.conv2.get(), D.conv3.get(), D.fc1.get(), D.fc2.get()}) sn->eval();
  CHECK_GRADS(f, {x, D.label_emb->weight, D.conv1->weight, D.conv2->weight_orig, D.fc1->weight_orig,
                  D.fc2->weight_orig, D.conv3->module()->bias});
}

TEST_CASE("critic: one WGAN-GP step (penalty, parameter gradients, u/v) matches PyTorch (golden)") {
  std::ifstream file(std::string(EMBER_SOURCE_DIR) + "/tests/golden/gan/gp.json");
  if (!file) {
    MESSAGE("tests/golden/gan/gp.json not found (define EMBER_SOURCE_DIR); golden skipped");
    return;
  }
  const json g = json::parse(file);
  Critic D(10, 8, 4, 6, 5, 7, 0.0);  // no dropout: the RNGs differ
  D.to(ember::kFloat64);
  nn::StateDict sd;
  for (const auto& k : g.at("initial").at("keys"))
    sd.insert(k.get<std::string>(), gan_from_json(g.at("initial").at("tensors").at(k.get<std::string>())));
  CHECK(D.state_dict().keys() == g.at("initial").at("keys").get<std::vector<std::string>>());
  D.load_state_dict(sd);
  D.train();
  Tensor real = gan_from_json(g.at("real")), fake = gan_from_json(g.at("fake")), y = gan_from_json(g.at("labels")),
         alpha = gan_from_json(g.at("alpha"));
  Tensor d_real = D.forward(real, y).mean();
  Tensor d_fake = D.forward(fake, y).mean();
  Tensor gp = gradient_penalty(D, real, fake, y, alpha);
  CHECK(d_real.item<double>() == doctest::Approx(g.at("d_real").get<double>()).epsilon(1e-10));
  CHECK(d_fake.item<double>() == doctest::Approx(g.at("d_fake").get<double>()).epsilon(1e-10));
  CHECK(gp.item<double>() == doctest::Approx(g.at("gp").get<double>()).epsilon(1e-10));
  auto named = D.named_parameters();
  CHECK(named.size() == g.at("param_names").size());
  tensor_list params;
  for (auto& [n, t] : named) params.push_back(t);
  tensor_list g_gp = ember::autograd::grad({gp * 10.0}, params, {}, /*retain_graph=*/true, false, /*allow_unused=*/true);
  Tensor d_loss = d_fake - d_real + gp * 10.0;
  CHECK(d_loss.item<double>() == doctest::Approx(g.at("d_loss").get<double>()).epsilon(1e-10));
  d_loss.backward();
  for (size_t i = 0; i < named.size(); ++i) {
    const std::string& n = named[i].first;
    GAN_CHECK_CLOSE(g_gp[i], g.at("grad_10gp").at(n), "grad of 10*GP w.r.t. " + n);
    GAN_CHECK_CLOSE(named[i].second.grad(), g.at("grad_d_loss").at(n), "grad of d_loss w.r.t. " + n);
  }
  for (auto& [n, b] : D.named_buffers()) GAN_CHECK_CLOSE(b, g.at("buffers_after").at(n), n + " after three forwards");
}

TEST_CASE("critic: a few Adam steps with the gradient penalty lower the critic loss and stay finite") {
  ember::manual_seed(8);
  Critic D(10, 8, 4, 6, 5, 7, 0.0);  // a single image: dropout noise would swamp the trend
  D.train();
  ember::optim::Adam opt(D.parameters(), ember::optim::AdamOptions(1e-2).betas({0.5, 0.999}));
  // One image per batch for speed (see the gradgradcheck above on conv2d's threading).
  Tensor real = ember::rand({1, 1, 8, 8}) * 2.0 - 1.0, fake = ember::tanh(ember::randn({1, 1, 8, 8}));
  Tensor y = ember::tensor<int64_t>({4}), alpha = ember::rand({1, 1, 1, 1});
  std::vector<double> losses;
  for (int step = 0; step < 12; ++step) {
    Tensor loss = D.forward(fake, y).mean() - D.forward(real, y).mean() + gradient_penalty(D, real, fake, y, alpha) * 10.0;
    opt.zero_grad();
    loss.backward();
    opt.step();
    losses.push_back(loss.item<double>());
  }
  for (double l : losses) CHECK(std::isfinite(l));
  for (auto& p : D.parameters()) CHECK(std::isfinite(ember::sum(p).item<double>()));
  CHECK(losses.back() < 0.5 * losses.front());
}

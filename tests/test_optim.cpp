#include <doctest/doctest.h>

#include "ember/ember.hpp"
#include "ember/nn/nn.hpp"
#include "ember/optim/optim.hpp"

#include <cmath>
#include <fstream>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

// Optimizer trajectories, scheduler lr sequences and clip_grad_norm_ values produced by real
// torch.optim (tests/golden/make_optim_golden.py → tests/golden/optim.json).
#ifndef EMBER_SOURCE_DIR
#define EMBER_SOURCE_DIR "."
#endif

using namespace ember;
using json = nlohmann::json;

namespace {

const json& golden() {
  static const json j = [] {
    std::ifstream f(std::string(EMBER_SOURCE_DIR) + "/tests/golden/optim.json");
    REQUIRE_MESSAGE(f.good(), "cannot open tests/golden/optim.json (run from the repository root)");
    return json::parse(f);
  }();
  return j;
}

// The quadratic of make_optim_golden.py, in float64.
struct Quadratic {
  Tensor x = tensor<double>({1.0, -2.0, 0.5}).requires_grad_(true);
  Tensor w = tensor<double>({0.3, -0.7, 1.5, 0.2}, {2, 2}).requires_grad_(true);
  Tensor a = tensor<double>({1.0, 3.0, 0.5});
  Tensor b = tensor<double>({0.2, -0.1, 0.3});
  Tensor c = tensor<double>({2.0, 0.5, 1.0, 4.0}, {2, 2});
  Tensor d = tensor<double>({0.1, 0.0, -0.2, 0.3}, {2, 2});
  Tensor loss() const { return (a * x * x).sum() + (b * x).sum() + (c * w * w).sum() + (d * w).sum(); }
  std::vector<double> flat() const {
    auto v = x.to_vector<double>();
    auto u = w.to_vector<double>();
    v.insert(v.end(), u.begin(), u.end());
    return v;
  }
};

template <typename Options>
Options options_from(const json& j, Options o) {
  for (auto& [k, v] : j.items()) REQUIRE_MESSAGE(o.set_value(k, static_cast<double>(v)), "unknown option ", k);
  return o;
}

std::unique_ptr<optim::Optimizer> make_optimizer(const json& c, const Quadratic& q) {
  std::string kind = c["optimizer"];
  bool groups = !c["w_group_options"].empty();
  auto make = [&]<typename Opt, typename Options>(Options defaults) -> std::unique_ptr<optim::Optimizer> {
    defaults = options_from(c["options"], defaults);
    if (!groups) return std::make_unique<Opt>(std::vector<Tensor>{q.x, q.w}, defaults);
    Options wo = options_from(c["w_group_options"], defaults);
    return std::make_unique<Opt>(std::vector<optim::ParamGroup>{optim::ParamGroup({q.x}), optim::ParamGroup({q.w}, wo)},
                                 defaults);
  };
  if (kind == "SGD") return make.template operator()<optim::SGD>(optim::SGDOptions(0.0));
  if (kind == "Adam") return make.template operator()<optim::Adam>(optim::AdamOptions());
  if (kind == "AdamW") return make.template operator()<optim::AdamW>(optim::AdamWOptions());
  if (kind == "RMSprop") return make.template operator()<optim::RMSprop>(optim::RMSpropOptions());
  FAIL("unknown optimizer ", kind);
  return nullptr;
}

void check_close(const std::vector<double>& got, const json& want, double tol, const std::string& what) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    double w = want[i].get<double>();
    INFO(what, " element ", i, ": got ", got[i], " want ", w);
    CHECK(std::abs(got[i] - w) <= tol * std::max(1.0, std::abs(w)));
  }
}

void one_step(optim::Optimizer& opt, const Quadratic& q) {
  opt.zero_grad();
  q.loss().backward();
  opt.step();
}

}  // namespace

TEST_CASE("optim: trajectories match torch.optim on a quadratic (float64)") {
  for (const auto& c : golden()["optimizers"]) {
    SUBCASE(c["name"].get<std::string>().c_str()) {
      Quadratic q;
      auto opt = make_optimizer(c, q);
      const auto& traj = c["trajectory"];
      for (size_t s = 0; s < traj.size(); ++s) {
        one_step(*opt, q);
        check_close(q.flat(), traj[s], 1e-5, c["name"].get<std::string>() + " step " + std::to_string(s + 1));
      }
    }
  }
}

TEST_CASE("optim: state_dict round trip resumes identically") {
  for (const auto& c : golden()["optimizers"]) {
    SUBCASE(c["name"].get<std::string>().c_str()) {
      Quadratic q;
      auto opt = make_optimizer(c, q);
      one_step(*opt, q);
      one_step(*opt, q);
      nn::StateDict sd = opt->state_dict();
      CHECK(sd.contains("param_groups.0.lr"));
      CHECK(sd.contains("param_groups.0.params"));
      // A fresh optimizer at the same parameter values, with the saved state, continues exactly.
      Quadratic q2;
      {
        NoGradGuard ng;
        q2.x.copy_(q.x);
        q2.w.copy_(q.w);
      }
      json fresh = c;
      fresh["options"]["lr"] = 123.0;  // overwritten by load_state_dict
      auto opt2 = make_optimizer(fresh, q2);
      opt2->load_state_dict(sd);
      CHECK(opt2->param_groups()[0].options().get_lr() == doctest::Approx(opt->param_groups()[0].options().get_lr()));
      for (int s = 0; s < 3; ++s) {
        one_step(*opt, q);
        one_step(*opt2, q2);
      }
      auto a = q.flat(), b = q2.flat();
      for (size_t i = 0; i < a.size(); ++i) CHECK(a[i] == b[i]);
      // The loaded state is a copy: the two optimizers do not share buffers.
      for (const auto& [k, t] : opt2->state_dict())
        if (k.rfind("state.", 0) == 0 && t.dim() > 0) CHECK(t.storage() != opt->state_dict().at(k).storage());
      check_close(q.flat(), c["trajectory"][4], 1e-5, "after resume");
    }
  }
}

TEST_CASE("optim: state_dict keys and load errors") {
  Quadratic q;
  optim::Adam opt({q.x, q.w}, optim::AdamOptions(0.1).betas({0.8, 0.9}));
  one_step(opt, q);
  auto sd = opt.state_dict();
  CHECK(sd.contains("state.0.step"));
  CHECK(sd.at("state.0.step").item<int64_t>() == 1);
  CHECK(sd.contains("state.1.exp_avg"));
  CHECK(sd.contains("state.1.exp_avg_sq"));
  CHECK(sd.at("param_groups.0.betas.0").item<double>() == doctest::Approx(0.8));
  CHECK(sd.at("param_groups.0.params").to_vector<int64_t>() == std::vector<int64_t>{0, 1});

  // Wrong number of parameters in the group.
  optim::Adam small({q.x});
  CHECK_THROWS_WITH_AS(small.load_state_dict(sd), doctest::Contains("doesn't match the size"), ember::Error);
  // Wrong shapes.
  Tensor other = zeros({5}, kFloat64).requires_grad_(true);
  optim::Adam shaped({other, q.w});
  CHECK_THROWS_WITH_AS(shaped.load_state_dict(sd), doctest::Contains("has shape"), ember::Error);
  // An unknown option.
  auto bad = sd;
  bad.insert("param_groups.0.bogus", scalar_tensor(1.0, kFloat64));
  optim::Adam fresh({q.x, q.w});
  CHECK_THROWS_WITH_AS(fresh.load_state_dict(bad), doctest::Contains("bogus"), ember::Error);
  // Malformed index.
  auto bad2 = sd;
  bad2.insert("state.x.exp_avg", zeros({3}, kFloat64));
  CHECK_THROWS_WITH_AS(fresh.load_state_dict(bad2), doctest::Contains("malformed key"), ember::Error);
  // SGD state is loadable into SGD but the momentum buffer goes where it belongs.
  optim::SGD sgd({q.x, q.w}, optim::SGDOptions(0.1).momentum(0.9));
  one_step(sgd, q);
  auto ssd = sgd.state_dict();
  CHECK(ssd.contains("state.0.momentum_buffer"));
  CHECK_FALSE(ssd.contains("state.0.step"));
}

TEST_CASE("optim: option validation and param groups") {
  Quadratic q;
  CHECK_THROWS_WITH_AS(optim::SGD({q.x}, optim::SGDOptions(-1.0)), doctest::Contains("learning rate"), ember::Error);
  CHECK_THROWS_WITH_AS(optim::SGD({q.x}, optim::SGDOptions(0.1).nesterov(true)), doctest::Contains("Nesterov"),
                       ember::Error);
  CHECK_THROWS_WITH_AS(optim::Adam({q.x}, optim::AdamOptions(0.1).betas({1.0, 0.9})), doctest::Contains("beta"),
                       ember::Error);
  CHECK_THROWS_WITH_AS(optim::Adam({q.x, q.x}), doctest::Contains("more than one parameter group"), ember::Error);
  CHECK_THROWS_WITH_AS(optim::Adam(std::vector<Tensor>{}), doctest::Contains("empty parameter list"), ember::Error);
  Tensor nonleaf = q.x * 2.0;
  CHECK_THROWS_WITH_AS(optim::SGD({nonleaf}, optim::SGDOptions(0.1)), doctest::Contains("non-leaf"), ember::Error);

  optim::SGD opt({optim::ParamGroup({q.x}), optim::ParamGroup({q.w}, optim::SGDOptions(0.5))}, optim::SGDOptions(0.1));
  CHECK(opt.param_groups().size() == 2);
  CHECK(opt.param_groups()[0].options().get_lr() == 0.1);
  CHECK(opt.param_groups()[1].options().get_lr() == 0.5);
  // A parameter without a gradient is left alone; zero_grad() makes grads undefined.
  auto w0 = q.w.to_vector<double>();
  (q.x * q.x).sum().backward();
  opt.step();
  CHECK(q.w.to_vector<double>() == w0);
  CHECK(q.x.grad().defined());
  opt.zero_grad();
  CHECK_FALSE(q.x.grad().defined());
  (q.x * q.x).sum().backward();
  opt.zero_grad(/*set_to_none=*/false);
  REQUIRE(q.x.grad().defined());
  CHECK(q.x.grad().abs().sum().item<double>() == 0.0);
}

TEST_CASE("optim: schedulers match torch.optim.lr_scheduler") {
  const json& g = golden()["schedulers"];
  auto run = [&](const std::string& name, auto make) {
    INFO("scheduler ", name);
    Tensor p1 = zeros({2}, kFloat64).requires_grad_(true), p2 = zeros({2}, kFloat64).requires_grad_(true);
    optim::SGD opt({optim::ParamGroup({p1}), optim::ParamGroup({p2}, optim::SGDOptions(0.02))}, optim::SGDOptions(0.1));
    auto sched = make(opt);
    const json& want = g[name];
    auto lrs = [&] { return std::vector<double>{opt.param_groups()[0].options().get_lr(), opt.param_groups()[1].options().get_lr()}; };
    check_close(lrs(), want[0], 1e-12, name + " at construction");
    CHECK(sched->get_last_lr() == lrs());
    for (size_t s = 1; s < want.size(); ++s) {
      opt.step();
      sched->step();
      check_close(lrs(), want[s], 1e-12, name + " step " + std::to_string(s));
    }
  };
  run("step", [](optim::Optimizer& o) { return std::make_unique<optim::StepLR>(o, 3, 0.5); });
  run("multistep", [](optim::Optimizer& o) { return std::make_unique<optim::MultiStepLR>(o, std::vector<int64_t>{2, 5, 5, 9}, 0.1); });
  run("cosine", [](optim::Optimizer& o) { return std::make_unique<optim::CosineAnnealingLR>(o, 5, 0.001); });
  run("linear", [](optim::Optimizer& o) { return std::make_unique<optim::LinearLR>(o, 0.25, 1.0, 4); });
  run("lambda", [](optim::Optimizer& o) {
    return std::make_unique<optim::LambdaLR>(o, [](int64_t e) { return std::pow(0.95, static_cast<double>(e)); });
  });
}

TEST_CASE("optim: ReduceLROnPlateau matches torch") {
  const json& g = golden();
  std::vector<double> metrics = g["plateau_metrics"].get<std::vector<double>>();
  auto run = [&](const std::string& name, const optim::ReduceLROnPlateauOptions& o, bool accuracy) {
    Tensor p1 = zeros({2}, kFloat64).requires_grad_(true), p2 = zeros({2}, kFloat64).requires_grad_(true);
    optim::SGD opt({optim::ParamGroup({p1}), optim::ParamGroup({p2}, optim::SGDOptions(0.02))}, optim::SGDOptions(0.1));
    optim::ReduceLROnPlateau sched(opt, o);
    const json& want = g["schedulers"][name];
    check_close(sched.get_last_lr(), want[0], 1e-12, name);
    for (size_t s = 0; s < metrics.size(); ++s) {
      sched.step(accuracy ? 1 - metrics[s] : metrics[s]);
      check_close(sched.get_last_lr(), want[s + 1], 1e-12, name + " step " + std::to_string(s + 1));
    }
  };
  using O = optim::ReduceLROnPlateauOptions;
  run("plateau_min", O().factor(0.5).patience(2).threshold(0.01).cooldown(1).min_lr(0.004), false);
  run("plateau_max_abs", O().mode(O::Mode::Max).factor(0.2).patience(1).threshold(0.05).threshold_mode(O::ThresholdMode::Abs), true);
  Tensor p = zeros({1}, kFloat64).requires_grad_(true);
  optim::SGD opt({p}, optim::SGDOptions(0.1));
  CHECK_THROWS_WITH_AS(optim::ReduceLROnPlateau(opt, O().factor(1.5)), doctest::Contains("factor"), ember::Error);
}

TEST_CASE("optim: scheduler state_dict resumes the schedule") {
  Tensor p = zeros({1}, kFloat64).requires_grad_(true);
  optim::SGD a({p}, optim::SGDOptions(1.0));
  optim::CosineAnnealingLR sa(a, 10, 0.0);
  for (int i = 0; i < 4; ++i) sa.step();
  Tensor p2 = zeros({1}, kFloat64).requires_grad_(true);
  optim::SGD b({p2}, optim::SGDOptions(1.0));
  optim::CosineAnnealingLR sb(b, 10, 0.0);
  b.load_state_dict(a.state_dict());
  sb.load_state_dict(sa.state_dict());
  CHECK(sb.last_epoch() == 4);
  for (int i = 0; i < 5; ++i) {
    sa.step();
    sb.step();
    CHECK(sa.get_last_lr()[0] == doctest::Approx(sb.get_last_lr()[0]).epsilon(1e-14));
  }
  optim::ReduceLROnPlateau ra(a), rb(b);
  ra.step(1.0);
  ra.step(2.0);
  rb.load_state_dict(ra.state_dict());
  CHECK(rb.best() == 1.0);
  CHECK(rb.num_bad_epochs() == 1);
}

TEST_CASE("nn::utils::clip_grad_norm_ matches torch") {
  for (const auto& c : golden()["clip_grad_norm"]) {
    double norm_type = c["norm_type"].is_string() ? std::numeric_limits<double>::infinity() : c["norm_type"].get<double>();
    double max_norm = c["max_norm"].get<double>();
    INFO("norm_type ", norm_type, " max_norm ", max_norm);
    Tensor g1 = zeros({2}, kFloat64).requires_grad_(true), g2 = zeros({2, 2}, kFloat64).requires_grad_(true);
    g1.set_grad(tensor<double>({3.0, 4.0}));
    g2.set_grad(tensor<double>({1.0, -2.0, 0.0, 2.0}, {2, 2}));
    Tensor unused = zeros({3}, kFloat64).requires_grad_(true);  // no grad: skipped
    double total = nn::utils::clip_grad_norm_({g1, unused, g2}, max_norm, norm_type);
    CHECK(total == doctest::Approx(c["total"].get<double>()).epsilon(1e-12));
    auto got = g1.grad().to_vector<double>();
    auto got2 = g2.grad().to_vector<double>();
    got.insert(got.end(), got2.begin(), got2.end());
    check_close(got, c["grads"], 1e-10, "clipped grads");
  }
  Tensor p = zeros({2}, kFloat64).requires_grad_(true);
  p.set_grad(tensor<double>({std::numeric_limits<double>::infinity(), 1.0}));
  CHECK_THROWS_WITH_AS(nn::utils::clip_grad_norm_({p}, 1.0, 2.0, true), doctest::Contains("non-finite"), ember::Error);
  CHECK(nn::utils::clip_grad_norm_(std::vector<Tensor>{}, 1.0) == 0.0);
  p.set_grad(tensor<double>({-3.0, 0.5}));
  nn::utils::clip_grad_value_({p}, 1.0);
  CHECK(p.grad().to_vector<double>() == std::vector<double>{-1.0, 0.5});
}

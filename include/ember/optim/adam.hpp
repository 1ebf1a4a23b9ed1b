#pragma once
/// optim::Adam and optim::AdamW, with torch.optim's single-tensor updates:
///   t += 1;  g = grad (+ weight_decay * p for Adam;  AdamW instead does p *= 1 - lr * weight_decay)
///   m = b1 * m + (1 - b1) * g;   v = b2 * v + (1 - b2) * g * g;   (amsgrad: vmax = max(vmax, v))
///   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
///
/// Example:
/// ```
///   ember::optim::Adam opt(model->parameters(), ember::optim::AdamOptions(1e-3).betas({0.9, 0.999}));
///   ember::optim::AdamW optw(model->parameters(), ember::optim::AdamWOptions(1e-3).weight_decay(0.05));
/// ```
#include <cmath>
#include <utility>

#include "ember/ops/inplace.hpp"
#include "ember/ops/pointwise.hpp"
#include "ember/ops/unary.hpp"
#include "ember/optim/optimizer.hpp"

namespace ember::optim {

namespace detail {

/// (beta1, beta2): decay rates of the first and second moment averages.
using Betas = std::pair<double, double>;

/// The fields Adam and AdamW share; `Derived` supplies the weight_decay default.
template <typename Derived>
struct AdamOptionsBase : public OptimizerCloneableOptions<Derived> {
  explicit AdamOptionsBase(double lr, double weight_decay) : lr_(lr), weight_decay_(weight_decay) {}
  EMBER_ARG_CRTP(Derived, double, lr);
  EMBER_ARG_CRTP(Derived, double, weight_decay);
  EMBER_ARG_CRTP(Derived, Betas, betas) = {0.9, 0.999};
  EMBER_ARG_CRTP(Derived, double, eps) = 1e-8;
  /// Use the maximum of past second moments (Reddi et al.).
  EMBER_ARG_CRTP(Derived, bool, amsgrad) = false;
  EMBER_ARG_CRTP(Derived, bool, maximize) = false;

 public:
  std::vector<std::pair<std::string, double>> values() const override {
    return {{"lr", lr_},         {"betas.0", betas_.first},           {"betas.1", betas_.second},
            {"eps", eps_},       {"weight_decay", weight_decay_},     {"amsgrad", amsgrad_ ? 1.0 : 0.0},
            {"maximize", maximize_ ? 1.0 : 0.0}};
  }
  bool set_value(const std::string& k, double v) override {
    if (k == "lr") lr_ = v;
    else if (k == "betas.0") betas_.first = v;
    else if (k == "betas.1") betas_.second = v;
    else if (k == "eps") eps_ = v;
    else if (k == "weight_decay") weight_decay_ = v;
    else if (k == "amsgrad") amsgrad_ = v != 0;
    else if (k == "maximize") maximize_ = v != 0;
    else return false;
    return true;
  }
};

}  // namespace detail

/// Adam's options; weight_decay (default 0) is an L2 term added to the gradient.
struct AdamOptions : public detail::AdamOptionsBase<AdamOptions> {
  AdamOptions(double lr = 1e-3) : AdamOptionsBase(lr, 0.0) {}  // NOLINT
};
/// AdamW's options; weight_decay (default 1e-2) is decoupled: p *= 1 - lr * weight_decay.
struct AdamWOptions : public detail::AdamOptionsBase<AdamWOptions> {
  AdamWOptions(double lr = 1e-3) : AdamOptionsBase(lr, 1e-2) {}  // NOLINT
};

namespace detail {

/// One Adam/AdamW step over every group (`decoupled` selects AdamW's weight decay).
template <typename Options>
void adam_step(Optimizer& opt, const std::string& name, bool decoupled) {
  NoGradGuard ng;
  for (auto& group : opt.param_groups()) {
    auto* op = dynamic_cast<Options*>(&group.options());
    EMBER_CHECK(op != nullptr, name, ": a parameter group has options of another optimizer");
    const Options& o = *op;
    auto [b1, b2] = o.betas();
    for (auto& p : group.params()) {
      Tensor g = p.grad();
      if (!g.defined()) continue;
      if (o.maximize()) g = neg(g);
      ParamState& st = opt.state(p);
      if (st.tensors.empty()) {
        st.tensors["exp_avg"] = zeros_like(p.detach());
        st.tensors["exp_avg_sq"] = zeros_like(p.detach());
        if (o.amsgrad()) st.tensors["max_exp_avg_sq"] = zeros_like(p.detach());
      }
      Tensor& m = st.tensors.at("exp_avg");
      Tensor& v = st.tensors.at("exp_avg_sq");
      st.step += 1;
      if (o.weight_decay() != 0) {
        if (decoupled) p.mul_(1.0 - o.lr() * o.weight_decay());
        else g = add(g, p, o.weight_decay());
      }
      m.mul_(b1).add_(g, 1.0 - b1);
      v.mul_(b2).addcmul_(g, g, 1.0 - b2);
      double t = static_cast<double>(st.step);
      double bias_correction1 = 1.0 - std::pow(b1, t);
      double bias_correction2_sqrt = std::sqrt(1.0 - std::pow(b2, t));
      double step_size = o.lr() / bias_correction1;
      Tensor denom;
      if (o.amsgrad()) {
        auto it = st.tensors.find("max_exp_avg_sq");
        if (it == st.tensors.end()) it = st.tensors.emplace("max_exp_avg_sq", zeros_like(p.detach())).first;
        it->second.copy_(maximum(it->second, v));
        denom = div(sqrt(it->second), bias_correction2_sqrt);
      } else {
        denom = div(sqrt(v), bias_correction2_sqrt);
      }
      denom.add_(o.eps());
      p.addcdiv_(m, denom, -step_size);
    }
  }
}

template <typename Options>
void check_adam_options(const OptimizerOptions& base, const char* name) {
  const auto* o = dynamic_cast<const Options*>(&base);
  EMBER_CHECK(o != nullptr, name, ": parameter group options must be ", name, "Options");
  EMBER_CHECK(o->eps() >= 0, name, ": invalid epsilon value: ", o->eps());
  EMBER_CHECK(o->betas().first >= 0 && o->betas().first < 1, name, ": invalid beta parameter at index 0: ",
              o->betas().first);
  EMBER_CHECK(o->betas().second >= 0 && o->betas().second < 1, name, ": invalid beta parameter at index 1: ",
              o->betas().second);
  EMBER_CHECK(o->weight_decay() >= 0, name, ": invalid weight_decay value: ", o->weight_decay());
}

}  // namespace detail

class Adam : public Optimizer {
 public:
  Adam(std::vector<ParamGroup> groups, const AdamOptions& defaults = {})
      : Optimizer("Adam", std::move(groups), std::make_unique<AdamOptions>(defaults), /*counts_steps=*/true) {
    init_groups();
  }
  Adam(const std::vector<Tensor>& params, const AdamOptions& defaults = {})
      : Adam(std::vector<ParamGroup>{ParamGroup(params)}, defaults) {}
  void step() override { detail::adam_step<AdamOptions>(*this, name_, /*decoupled=*/false); }

 protected:
  void check_options(const OptimizerOptions& o) const override {
    Optimizer::check_options(o);
    detail::check_adam_options<AdamOptions>(o, "Adam");
  }
};

class AdamW : public Optimizer {
 public:
  AdamW(std::vector<ParamGroup> groups, const AdamWOptions& defaults = {})
      : Optimizer("AdamW", std::move(groups), std::make_unique<AdamWOptions>(defaults), /*counts_steps=*/true) {
    init_groups();
  }
  AdamW(const std::vector<Tensor>& params, const AdamWOptions& defaults = {})
      : AdamW(std::vector<ParamGroup>{ParamGroup(params)}, defaults) {}
  void step() override { detail::adam_step<AdamWOptions>(*this, name_, /*decoupled=*/true); }

 protected:
  void check_options(const OptimizerOptions& o) const override {
    Optimizer::check_options(o);
    detail::check_adam_options<AdamWOptions>(o, "AdamW");
  }
};

}  // namespace ember::optim

#pragma once
/// optim::RMSprop with torch.optim.RMSprop's update:
///   g = grad + weight_decay * p;   v = alpha * v + (1 - alpha) * g * g
///   avg = sqrt(v - (centered ? mean_g^2 : 0)) + eps   (centered: mean_g = alpha * mean_g + (1 - alpha) * g)
///   momentum > 0: buf = momentum * buf + g / avg;  p -= lr * buf      else: p -= lr * g / avg
///
/// Example:
/// ```
///   ember::optim::RMSprop opt(model->parameters(), ember::optim::RMSpropOptions(1e-3).momentum(0.9));
/// ```
#include "ember/ops/inplace.hpp"
#include "ember/ops/unary.hpp"
#include "ember/optim/optimizer.hpp"

namespace ember::optim {

struct RMSpropOptions : public OptimizerCloneableOptions<RMSpropOptions> {
  RMSpropOptions(double lr = 1e-2) : lr_(lr) {}  // NOLINT
  EMBER_ARG(double, lr);
  /// Smoothing constant of the squared-gradient average.
  EMBER_ARG(double, alpha) = 0.99;
  EMBER_ARG(double, eps) = 1e-8;
  EMBER_ARG(double, weight_decay) = 0;
  EMBER_ARG(double, momentum) = 0;
  /// Normalise by the estimated variance instead of the second moment.
  EMBER_ARG(bool, centered) = false;
  EMBER_ARG(bool, maximize) = false;

 public:
  std::vector<std::pair<std::string, double>> values() const override {
    return {{"lr", lr_},           {"alpha", alpha_},       {"eps", eps_},
            {"weight_decay", weight_decay_}, {"momentum", momentum_}, {"centered", centered_ ? 1.0 : 0.0},
            {"maximize", maximize_ ? 1.0 : 0.0}};
  }
  bool set_value(const std::string& k, double v) override {
    if (k == "lr") lr_ = v;
    else if (k == "alpha") alpha_ = v;
    else if (k == "eps") eps_ = v;
    else if (k == "weight_decay") weight_decay_ = v;
    else if (k == "momentum") momentum_ = v;
    else if (k == "centered") centered_ = v != 0;
    else if (k == "maximize") maximize_ = v != 0;
    else return false;
    return true;
  }
};

class RMSprop : public Optimizer {
 public:
  RMSprop(std::vector<ParamGroup> groups, const RMSpropOptions& defaults = {})
      : Optimizer("RMSprop", std::move(groups), std::make_unique<RMSpropOptions>(defaults), /*counts_steps=*/true) {
    init_groups();
  }
  RMSprop(const std::vector<Tensor>& params, const RMSpropOptions& defaults = {})
      : RMSprop(std::vector<ParamGroup>{ParamGroup(params)}, defaults) {}

  void step() override {
    NoGradGuard ng;
    for (auto& group : groups_) {
      const auto& o = options_as<RMSpropOptions>(group, name_);
      for (auto& p : group.params()) {
        Tensor g = p.grad();
        if (!g.defined()) continue;
        if (o.maximize()) g = neg(g);
        ParamState& st = state(p);
        auto buffer = [&](const char* k) -> Tensor& {
          auto it = st.tensors.find(k);
          if (it == st.tensors.end()) it = st.tensors.emplace(k, zeros_like(p.detach())).first;
          return it->second;
        };
        Tensor& square_avg = buffer("square_avg");
        st.step += 1;
        if (o.weight_decay() != 0) g = add(g, p, o.weight_decay());
        square_avg.mul_(o.alpha()).addcmul_(g, g, 1.0 - o.alpha());
        Tensor avg;
        if (o.centered()) {
          Tensor& grad_avg = buffer("grad_avg");
          grad_avg.mul_(o.alpha()).add_(g, 1.0 - o.alpha());
          avg = sqrt(sub(square_avg, mul(grad_avg, grad_avg)));
        } else {
          avg = sqrt(square_avg);
        }
        avg.add_(o.eps());
        if (o.momentum() > 0) {
          Tensor& buf = buffer("momentum_buffer");
          buf.mul_(o.momentum()).addcdiv_(g, avg);
          p.add_(buf, -o.lr());
        } else {
          p.addcdiv_(g, avg, -o.lr());
        }
      }
    }
  }

 protected:
  void check_options(const OptimizerOptions& base) const override {
    Optimizer::check_options(base);
    const auto* o = dynamic_cast<const RMSpropOptions*>(&base);
    EMBER_CHECK(o != nullptr, "RMSprop: parameter group options must be RMSpropOptions");
    EMBER_CHECK(o->eps() >= 0, "RMSprop: invalid epsilon value: ", o->eps());
    EMBER_CHECK(o->alpha() >= 0, "RMSprop: invalid alpha value: ", o->alpha());
    EMBER_CHECK(o->momentum() >= 0, "RMSprop: invalid momentum value: ", o->momentum());
    EMBER_CHECK(o->weight_decay() >= 0, "RMSprop: invalid weight_decay value: ", o->weight_decay());
  }
};

}  // namespace ember::optim

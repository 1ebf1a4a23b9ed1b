#pragma once
/// optim::SGD: stochastic gradient descent with momentum, dampening, Nesterov momentum and
/// (L2) weight decay, with torch.optim.SGD's update:
///   g = grad + weight_decay * p
///   buf = g (first step) | momentum * buf + (1 - dampening) * g
///   g = nesterov ? g + momentum * buf : buf            (when momentum != 0)
///   p -= lr * g
///
/// Example:
/// ```
///   ember::optim::SGD opt(model->parameters(), ember::optim::SGDOptions(0.1).momentum(0.9).weight_decay(5e-4));
/// ```
#include "ember/optim/optimizer.hpp"
#include "ember/ops/inplace.hpp"

namespace ember::optim {

struct SGDOptions : public OptimizerCloneableOptions<SGDOptions> {
  SGDOptions(double lr) : lr_(lr) {}  // NOLINT: SGD(params, 0.1) reads like PyTorch
  EMBER_ARG(double, lr);
  EMBER_ARG(double, momentum) = 0;
  EMBER_ARG(double, dampening) = 0;
  EMBER_ARG(double, weight_decay) = 0;
  EMBER_ARG(bool, nesterov) = false;
  /// Maximise the objective instead of minimising it.
  EMBER_ARG(bool, maximize) = false;

 public:
  std::vector<std::pair<std::string, double>> values() const override {
    return {{"lr", lr_}, {"momentum", momentum_}, {"dampening", dampening_}, {"weight_decay", weight_decay_},
            {"nesterov", nesterov_ ? 1.0 : 0.0}, {"maximize", maximize_ ? 1.0 : 0.0}};
  }
  bool set_value(const std::string& k, double v) override {
    if (k == "lr") lr_ = v;
    else if (k == "momentum") momentum_ = v;
    else if (k == "dampening") dampening_ = v;
    else if (k == "weight_decay") weight_decay_ = v;
    else if (k == "nesterov") nesterov_ = v != 0;
    else if (k == "maximize") maximize_ = v != 0;
    else return false;
    return true;
  }
};

class SGD : public Optimizer {
 public:
  SGD(std::vector<ParamGroup> groups, const SGDOptions& defaults)
      : Optimizer("SGD", std::move(groups), std::make_unique<SGDOptions>(defaults), /*counts_steps=*/false) {
    init_groups();
  }
  SGD(const std::vector<Tensor>& params, const SGDOptions& defaults)
      : SGD(std::vector<ParamGroup>{ParamGroup(params)}, defaults) {}

  void step() override {
    NoGradGuard ng;
    for (auto& group : groups_) {
      const auto& o = options_as<SGDOptions>(group, name_);
      for (auto& p : group.params()) {
        Tensor g = p.grad();
        if (!g.defined()) continue;
        if (o.maximize()) g = neg(g);
        if (o.weight_decay() != 0) g = add(g, p, o.weight_decay());
        if (o.momentum() != 0) {
          auto& st = state(p).tensors;
          auto it = st.find("momentum_buffer");
          Tensor buf;
          if (it == st.end()) {
            buf = g.detach().clone();
            st["momentum_buffer"] = buf;
          } else {
            buf = it->second;
            buf.mul_(o.momentum()).add_(g, 1.0 - o.dampening());
          }
          g = o.nesterov() ? add(g, buf, o.momentum()) : buf;
        }
        p.add_(g, -o.lr());
      }
    }
  }

 protected:
  void check_options(const OptimizerOptions& base) const override {
    Optimizer::check_options(base);
    const auto* o = dynamic_cast<const SGDOptions*>(&base);
    EMBER_CHECK(o != nullptr, "SGD: parameter group options must be SGDOptions");
    EMBER_CHECK(o->momentum() >= 0, "SGD: invalid momentum value: ", o->momentum());
    EMBER_CHECK(o->weight_decay() >= 0, "SGD: invalid weight_decay value: ", o->weight_decay());
    EMBER_CHECK(!o->nesterov() || (o->momentum() > 0 && o->dampening() == 0),
                "SGD: Nesterov momentum requires a momentum and zero dampening (got momentum=", o->momentum(),
                ", dampening=", o->dampening(), ")");
  }
};

}  // namespace ember::optim
